"""H20 (session 33): in-batch false negatives left out of CCL and PCL by the world's ground truth: a probe, not a method.

CCL and PCL treat every other target of the batch as a negative. On Gest-Synth some of those targets describe what
the anchor's photos show. This script gives every training and validation example the subjects of its photos (the
world's `ground_truth.json`) as `content_labels`, so the collator marks the pairs whose photos share a subject
(`shared_content`) and the losses leave them out of each other's negatives (`generation.losses`); everything else
is the experiment unchanged. Real data has no such labels, so a gain here would only say that a proxy is worth
building.

    python docs/results/h20_false_negatives.py --count WORLD_DIR
        # how often training pairs share a subject (the declaration's figures)
    python docs/results/h20_false_negatives.py EXPERIMENT_DIR [gest-showcases experiment options...]
    # e.g. /tmp/s32/demo --features clip --num_reviews 1000 --clip_extra_reviews 2000 --pc2l_epochs 30 --seeds 3 \
    #      --tables 2 --baselines none --variant shared-excluded

EXPERIMENT_DIR is the experiment's `--output_dir`, whose world (`world/`) must exist. The run prints the share of the
collated batches' in-batch negatives (training and validation) that the labels left out.
"""

import json
import re
import sys
from pathlib import Path

import pandas as pd

from gest_showcases import cli
from gest_showcases.commands import train_pc2l
from gest_showcases.generation import collator as collator_module


def photo_subjects(world: Path) -> dict[str, list[str]]:
    """Each s2 review's photos' subjects, in the order of its `pics` (what `load_split` reads), by review id."""
    truth = json.loads((world / "synth" / "ground_truth.json").read_text())
    subjects = {}
    for path in sorted((world / "dataset" / "s2").glob("*.parquet")):
        rows = pd.read_parquet(path, columns=["review_id", "pics"])
        for review_id, pics in zip(rows.review_id, rows.pics, strict=True):
            subjects[review_id] = [truth["pics"][pic]["subject"] for pic in pics]
    return subjects


def count(world: Path) -> None:
    truth = json.loads((world / "synth" / "ground_truth.json").read_text())
    rows = pd.read_parquet(next((world / "dataset" / "s2").glob("train-*.parquet")))
    aliases = {alias.lower(): name for name, subject in truth["subjects"].items() for alias in subject["aliases"]}
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, aliases), key=len, reverse=True)) + r")\b")
    shown = [{truth["pics"][pic]["subject"] for pic in pics} for pics in rows.pics]
    named = [{aliases[match] for match in pattern.findall(text.lower())} for text in rows.explanation]
    pairs = [(i, j) for i in range(len(rows)) for j in range(len(rows)) if i != j]
    share = sum(bool(shown[i] & shown[j]) for i, j in pairs) / len(pairs)
    fits = sum(bool(named[j]) and named[j] <= shown[i] for i, j in pairs) / len(pairs)
    print(f"{world}: {len(rows)} training examples, {len(pairs)} ordered pairs")
    print(f"  photos share a subject: {share:.2%} of pairs, {15 * share:.2f} of a row's 15 negatives at batch 16")
    print(f"  every subject the other target names is shown: {fits:.2%} of pairs, {15 * fits:.2f} per row")


if sys.argv[1] == "--count":
    count(Path(sys.argv[2]))
    sys.exit(0)

output_dir, options = sys.argv[1], sys.argv[2:]
subjects = photo_subjects(Path(output_dir) / "world")
original_load_split = train_pc2l.load_split
original_shared_content = collator_module.shared_content
tally = {"batches": 0, "negatives": 0, "excluded": 0}


def load_split_with_labels(data_args, split, config, tables):
    columns = original_load_split(data_args, split, config, tables)
    # The photos the features were read for: load_split keeps each example's first max_images.
    columns["content_labels"] = [set(subjects[review_id][: config.max_images]) for review_id in columns["review_id"]]
    return columns


def counted_shared_content(labels):
    mask = original_shared_content(labels)
    size = mask.shape[0]
    tally["batches"] += 1
    tally["negatives"] += size * (size - 1)
    tally["excluded"] += int(mask.sum() - mask.diagonal().sum())
    return mask


# train-pc2l reads its splits, and the collator builds its mask, by these names: every cell of the call gets labels.
train_pc2l.load_split = load_split_with_labels
collator_module.shared_content = counted_shared_content
status = cli.main(["experiment", "--output_dir", output_dir, *options])
if tally["batches"]:
    share = tally["excluded"] / tally["negatives"]
    print(f"shared content: {tally['excluded']} of {tally['negatives']} in-batch negatives left out ({share:.2%}) "
          f"over {tally['batches']} collated batches")
else:  # zero with cells trained in this call means the patch no longer reaches the cells: the run was plain PC2L
    print("shared content: no labelled batch in this call (0 when every cell was already done)")
sys.exit(status)
