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

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch.nn.functional as F
from scipy.stats import rankdata

from gest_showcases import cli
from gest_showcases.commands import train_pc2l
from gest_showcases.features.cache import load_features
from gest_showcases.generation import collator as collator_module
from gest_showcases.generation.negatives import entity_labels, entity_spans, load_parser
from gest_showcases.metrics.synth_truth import SynthTruth


def shown_subjects(truth: SynthTruth, pics) -> set[str]:
    """The subjects `pics` show (a photo of no subject gives none)."""
    return {truth.pic_subjects[pic] for pic in pics} - {None}


def review_photos(world: Path) -> dict[str, list[str]]:
    """Each s2 review's photos, in the order of its `pics` (what `load_split` reads), by review id."""
    pics_by_review = {}
    for path in sorted((world / "dataset" / "s2").glob("*.parquet")):
        rows = pd.read_parquet(path, columns=["review_id", "pics"])
        pics_by_review.update(zip(rows.review_id, map(list, rows.pics), strict=True))
    return pics_by_review


def count(world: Path) -> None:
    """The declaration's figures on the training split: how often pairs share a photo subject, and how well two
    label sources a real-data method could have (the photos' features, the targets' noun chunks) find those pairs."""
    truth = SynthTruth.load(world / "synth" / "ground_truth.json")
    rows = pd.read_parquet(next((world / "dataset" / "s2").glob("train-*.parquet")))
    shown = [shown_subjects(truth, pics) for pics in rows.pics]
    named = [set(truth.named_subjects(text)) for text in rows.explanation]
    size = len(rows)
    off_diagonal = ~np.eye(size, dtype=bool)
    shares = np.array([[bool(shown[i] & shown[j]) for j in range(size)] for i in range(size)]) & off_diagonal
    fits = np.array([[bool(named[j]) and named[j] <= shown[i] for j in range(size)] for i in range(size)]) & off_diagonal
    pairs = off_diagonal.sum()
    print(f"{world}: {size} training examples, {pairs} ordered pairs")
    print(f"  photos share a subject: {shares.sum() / pairs:.2%} of pairs, {15 * shares.sum() / pairs:.2f} of a row's "
          "15 negatives at batch 16")
    print(f"  every subject the other target names is shown: {fits.sum() / pairs:.2%} of pairs, "
          f"{15 * fits.sum() / pairs:.2f} per row")

    def report(name: str, predicted: np.ndarray) -> None:
        predicted = predicted & off_diagonal
        found = (predicted & shares).sum()
        print(f"  {name}: {15 * predicted.sum() / pairs:.2f} per row, precision {found / max(predicted.sum(), 1):.2f}, "
              f"recall {found / shares.sum():.2f}")

    # The photos' features (the world's stand-in CLIP): the largest cosine between a photo of i and one of j.
    table = load_features(world / "features", "image")
    features = [F.normalize(table.lookup(list(pics))[0], dim=-1) for pics in rows.pics]
    largest = np.array([[float((features[i] @ features[j].T).max()) for j in range(size)] for i in range(size)])
    positives, negatives = largest[shares], largest[off_diagonal & ~shares]
    ranks = rankdata(np.concatenate([positives, negatives]))
    auc = (ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2) / (len(positives) * len(negatives))
    print(f"  photo features, largest cosine: AUC {auc:.2f}")
    for threshold in (0.5, 0.6, 0.7, 0.8):
        report(f"largest cosine >= {threshold}", largest >= threshold)
    # The targets' noun chunks (the entities CCL's hard negatives swap), lowercased.
    texts = list(rows.explanation)
    chunks = entity_labels(texts, entity_spans(texts, load_parser()))  # what --in_batch_labels noun_chunks gives
    report("a shared noun chunk", np.array([[bool(chunks[i] & chunks[j]) for j in range(size)] for i in range(size)]))


if sys.argv[1] == "--count":
    count(Path(sys.argv[2]))
    sys.exit(0)

output_dir, options = sys.argv[1], sys.argv[2:]
world_truth = SynthTruth.load(Path(output_dir) / "world" / "synth" / "ground_truth.json")
review_pics = review_photos(Path(output_dir) / "world")
original_load_split = train_pc2l.load_split
original_shared_content = collator_module.shared_content
tally = {"batches": 0, "negatives": 0, "excluded": 0}


def load_split_with_labels(data_args, split, config, tables):
    columns = original_load_split(data_args, split, config, tables)
    # The photos the features were read for: load_split keeps each example's first max_images.
    columns["content_labels"] = [
        shown_subjects(world_truth, review_pics[review_id][: config.max_images]) for review_id in columns["review_id"]
    ]
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
