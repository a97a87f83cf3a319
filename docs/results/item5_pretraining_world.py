"""Session 15's research script for issue 12 item 5 (kept so docs/experiments.md's third demo-world trial can be rerun;
not part of the package): nearest-centroid dish accuracy, on the demo world's test dish photos, of CLIPs trained
elsewhere (a separate Gest-Synth world) against the CLIP the demo trains on its own world.

    python docs/results/item5_pretraining_world.py DEMO_WORLD OWN_CLIP OTHER_CLIP [OTHER_CLIP ...] > out.md

DEMO_WORLD holds `synth/` and `dataset/` (`gest-showcases experiment --num_reviews 1000` makes one under `world/`);
each CLIP is a `gest-showcases train-clip` output folder. Centroids come from the demo world's train dish photos, as
`train-clip --synth_truth` measures it (`metrics.clip_quality.subject_probe`, called once per test photo so that each
photo's hit is known); intervals: Wilson 95% for each accuracy, paired bootstrap over the test photos (10,000
resamples) for each difference from OWN_CLIP.
"""

import sys
from math import sqrt

import numpy as np
import torch

from gest_showcases.features.clip import load_clip
from gest_showcases.features.inputs import IMAGE_COLUMNS, read_config_rows
from gest_showcases.metrics.clip_quality import read_photo_embeddings, subject_probe
from gest_showcases.metrics.synth_truth import SynthTruth


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p, d = hits / n, 1 + z * z / n
    centre, half = (p + z * z / (2 * n)) / d, z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return 100 * (centre - half), 100 * (centre + half)


def dish_hits(clip: str, world: str, truth: SynthTruth) -> np.ndarray:
    """1/0 per test dish photo (in a fixed order): is its nearest train-dish centroid its own dish?"""
    rows = [
        r
        for r in read_config_rows(f"{world}/dataset", "s1", columns=IMAGE_COLUMNS)
        if r["split"] in ("train", "test")
    ]
    image_model, _ = load_clip(clip)
    embeds = read_photo_embeddings(f"{world}/dataset", rows, image_model, f"{world}/synth/images")
    labelled = {
        split: sorted(
            (pic, truth.pic_subjects[pic])
            for row in rows
            if row["split"] == split
            for pic in row["pics"]
            if pic in embeds and truth.subject_kinds.get(truth.pic_subjects.get(pic)) == "dish"
        )
        for split in ("train", "test")
    }
    train = torch.stack([embeds[pic] for pic, _ in labelled["train"]])
    train_subjects = [subject for _, subject in labelled["train"]]
    return np.array([
        subject_probe(train, train_subjects, embeds[pic][None], [subject])["nearest_centroid"]
        for pic, subject in labelled["test"]
    ])  # fmt: skip


def main() -> None:
    world, own, others = sys.argv[1], sys.argv[2], sys.argv[3:]
    truth = SynthTruth.load(f"{world}/synth/ground_truth.json")
    base = dish_hits(own, world, truth)
    n = len(base)
    rng = np.random.default_rng(0)
    resamples = rng.integers(0, n, size=(10_000, n))
    print(
        f"| CLIP | NC dish accuracy on the demo world's {n} test dish photos [Wilson 95%] | minus the own-world CLIP [paired bootstrap 95%] |"
    )
    print("|---|---:|---:|")
    low, high = wilson(int(base.sum()), n)
    print(f"| {own} | {100 * base.mean():.1f} [{low:.1f}, {high:.1f}] | |")
    for clip in others:
        hits = dish_hits(clip, world, truth)
        difference = 100 * (hits - base)[resamples].mean(axis=1)
        low, high = wilson(int(hits.sum()), n)
        print(
            f"| {clip} | {100 * hits.mean():.1f} [{low:.1f}, {high:.1f}] | {100 * (hits - base).mean():+.1f} "
            f"[{np.percentile(difference, 2.5):+.1f}, {np.percentile(difference, 97.5):+.1f}] |"
        )


if __name__ == "__main__":
    main()
