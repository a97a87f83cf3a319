"""Session 18's research script for issue 12 item 5 (kept so docs/experiments.md's fifth demo-world trial can be
rerun; not part of the package): train the stand-in CLIP on the union of two worlds' train splits.

    python docs/results/item5_union_world.py DEMO_WORLD OTHER_WORLD OUTPUT_DIR SEED

Each world folder holds `synth/` and `dataset/` (`gest-showcases synth` + `build`). The CLIP is trained exactly as
`gest-showcases train-clip` trains the demo's (`commands.demo.world_stages`' options) with OTHER_WORLD as its
`--extra_dataset`: DEMO_WORLD's train split followed by OTHER_WORLD's; validation is DEMO_WORLD's.
`item5_pretraining_world.py` then measures its dish accuracy on DEMO_WORLD. (The trial itself ran an earlier form of
this script that joined the two splits by wrapping `read_paired_reviews`; the package's option joins them the same
way, and reproduced seed 0's CLIP.)
"""

import json
import sys
import time
from pathlib import Path

from gest_showcases.experiments.world import CLIP_IMAGE_SIZE, CLIP_IMAGE_TOWER, CLIP_PAIR_WITH
from gest_showcases.features import clip_training


def main() -> None:
    demo_world, other_world, output_dir, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    start = time.perf_counter()
    summary = clip_training.train(
        f"{demo_world}/dataset",
        output_dir,
        images=f"{demo_world}/synth/images",
        extra_dataset=f"{other_world}/dataset",
        extra_images=f"{other_world}/synth/images",
        image_size=CLIP_IMAGE_SIZE,
        image_tower=CLIP_IMAGE_TOWER,
        hidden_size=64,
        pair_with=CLIP_PAIR_WITH,
        num_train_epochs=20,
        batch_size=64,
        seed=seed,
        num_threads=2,
    )
    summary["wall_seconds"] = time.perf_counter() - start
    (Path(output_dir) / "union_summary.json").write_text(json.dumps(summary, indent=2))
    print(f"seed {seed}: {summary['train_images']} training images, {summary['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
