#!/usr/bin/env bash
# Gest-Synth end to end, from a fresh checkout after `make venv`:
#   synth -> build (Gest-raw and Gest-s2 inputs) -> train-clip -> features -> distill (paper's
#   classifier and the interaction variant; s2 rebuilt from s1) -> diversity (Figure 3) ->
#   train-selector (Table 3).
# Usage: examples/run_synth_pipeline.sh [WORK_DIR]   (default: synth-e2e; replaced if it exists)
# Every step is seeded; figures land in WORK_DIR (classifier*/distill_metrics.json,
# diversity/diversity.json, figure3.png, selector/table3.md). Torch uses 2 threads (TORCH_THREADS to change).
set -euo pipefail

WORK=${1:-synth-e2e}
THREADS=${TORCH_THREADS:-2}
HERE=$(cd "$(dirname "$0")/.." && pwd)
GS="$HERE/.venv/bin/gest-showcases"
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1

rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

# 1. The world (seed 0, default size: 3,000 review slots, 64x64 photos).
"$GS" synth --output_dir synth --seed 0

# 2. Two dataset folders: from Gest-raw's file, and from Gest-s2's (its published splits).
"$GS" build --input synth/image_review_all.json --images synth/images --output_dir built_raw
"$GS" build --input synth/filter_all_t.json --images synth/images --output_dir built_s2

# 3. A small CLIP trained from scratch on built_raw's train-split reviews and photos (no annotations,
#    no ground truth), saved like any CLIP checkpoint. The photos stay in synth/images, beside the dataset
#    folders: every command that reads them gets that folder as --images.
"$GS" train-clip --dataset built_raw --images synth/images --output_dir clip-synth --num_threads "$THREADS"

# 4. CLIP features of both folders (image; review and sentence text).
"$GS" features --dataset built_raw --images synth/images --clip_model clip-synth --output_dir features_raw \
    --kinds image text --num_workers 0
"$GS" features --dataset built_s2 --images synth/images --clip_model clip-synth --output_dir features_s2 \
    --kinds image text --num_workers 0

# 5. The explanation classifier on Gest-Synth's annotations (8:1:1 by pair, seed 0): the paper's
#    [t ; v] form, which also rebuilds built_raw with s2 distilled from s1, and the [t ; v ; t*v] variant.
"$GS" distill --annotations synth/annotations.jsonl --images synth/images --features features_raw \
    --clip_model clip-synth --output_dir classifier \
    --dataset built_raw --build_inputs synth/image_review_all.json --build_images synth/images --num_workers 0
"$GS" distill --annotations synth/annotations.jsonl --images synth/images --features features_raw \
    --clip_model clip-synth --output_dir classifier-interaction --interaction --num_workers 0

# 6. Figure 3: the three visual diversities of both folders.
"$GS" diversity --dataset built_raw built_s2 --features features_raw features_s2 \
    --names Gest-Synth-raw Gest-Synth-s2 --plot figure3.png --output_dir diversity

# 7. Table 3: random / img / text / img+text DPP selectors on built_raw's s1, scored on its test split.
"$GS" train-selector --dataset built_raw --features features_raw --output_dir selector --use_cpu

echo "done: $(pwd)"
