"""Session 18's research script for issue 12 item 5 (kept so docs/experiments.md's fifth demo-world trial can be
rerun; not part of the package): train the stand-in CLIP on the union of two worlds' train splits.

    python docs/results/item5_union_world.py DEMO_WORLD OTHER_WORLD OUTPUT_DIR SEED

Each world folder holds `synth/` and `dataset/` (`gest-showcases synth` + `build`). The CLIP is trained exactly as
`gest-showcases train-clip` trains the demo's (`commands.demo.world_stages`' options), except that its train split
is DEMO_WORLD's followed by OTHER_WORLD's; validation is DEMO_WORLD's. `item5_pretraining_world.py` then measures
its dish accuracy on DEMO_WORLD. The union is made by wrapping `clip_training.read_paired_reviews` for the one call
that reads the train split, so nothing else of the training changes.
"""

import json
import sys
import time
from pathlib import Path

import torch

from gest_showcases.experiments.world import CLIP_IMAGE_SIZE, CLIP_IMAGE_TOWER, CLIP_PAIR_WITH
from gest_showcases.features import clip_training
from gest_showcases.features.clip_training import PairedReviews


def concatenated(first: PairedReviews, second: PairedReviews) -> PairedReviews:
    """`first`'s reviews then `second`'s, with `second`'s image and review indices shifted past `first`'s."""
    return PairedReviews(
        pixels=torch.cat([first.pixels, second.pixels]),
        image_review=torch.cat([first.image_review, second.image_review + len(first.sentences)]),
        first_image=torch.cat([first.first_image, second.first_image + len(first.pixels)]),
        sentences=first.sentences + second.sentences,
        texts=first.texts + second.texts,
    )


def main() -> None:
    demo_world, other_world, output_dir, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    read = clip_training.read_paired_reviews

    def read_union(dataset, split, preprocessing, images=None):
        own = read(dataset, split, preprocessing, images)
        if split != "train":
            return own
        other = read(f"{other_world}/dataset", "train", preprocessing, f"{other_world}/synth/images")
        return concatenated(own, other)

    clip_training.read_paired_reviews = read_union
    start = time.perf_counter()
    summary = clip_training.train(
        f"{demo_world}/dataset",
        output_dir,
        images=f"{demo_world}/synth/images",
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
