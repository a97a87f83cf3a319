"""How a trained generator tells a target from its entity-swapped negative, on training and on held-out examples.

H9's noise (session 14) was meant to keep H7's CCL informative by making the training photos look held-out. This
probe reads what the trained models do: for each example, the margin `log p(Y | V, R) - log p(Y_swap | V, R)`
(whole-sequence log-likelihoods, the loss's own score; the random swap train-pc2l makes with `--negative_seed` =
the cell's seed, i.e. the H7 cell's negatives; CE only trains with none) with its own inputs, with its photos replaced by another example's, and with its history reviews
replaced by another example's (the input-reliance probe's derangement). It prints per split the mean CCL loss
(`softplus(-margin)`, H7's loss with one negative) and the share of examples whose target is preferred.

    python docs/results/h9_separation_probe.py EXPERIMENT_DIR clip|oracle VARIANT_SUFFIX ce|pc2l [SEEDS]
    # e.g. /tmp/s12/demo-world clip -entity_likelihood pc2l 3; CE only: /tmp/s12/demo-world clip "" ce 3
"""

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import gest_showcases.features
from gest_showcases.experiments.grid import CE_ONLY, LOSS_CONFIGS, PC2L, load_generator_cell, reference_nll
from gest_showcases.generation.collator import PC2LDataset
from gest_showcases.generation.negatives import entity_spans, load_parser, make_hard_negatives
from gest_showcases.generation.probe import derangement, with_swapped_inputs
from gest_showcases.generation.training_run import PC2LDataArguments, load_split


def margins(model, tokenizer, dataset: PC2LDataset) -> np.ndarray:
    """`log p(Y | V, R) - log p(Y_swap | V, R)` per example (`reference_nll`: whole targets, never truncated)."""
    columns = dataset.columns
    as_negatives = PC2LDataset(columns["negative"], columns["image_features"], columns["review_features"])
    limits = (model.config.max_images, model.config.max_reviews)
    nll = [reference_nll(model, data, tokenizer, *limits)["nll"] for data in (dataset, as_negatives)]
    return nll[1] - nll[0]


def main(folder: Path, kind: str, suffix: str, system: str, seeds: range) -> None:
    features = folder / "world" / "features" if kind == "clip" else folder / "oracle-features-0.5"
    data_args = PC2LDataArguments(
        dataset=str(folder / "world" / "dataset"), features=str(features), image_kind="image"
    )
    tables = {k: gest_showcases.features.load_features(str(features), k) for k in ("image", "review")}
    parser = load_parser()
    print(
        f"{folder} {kind} generators{suffix} {system}: mean CCL loss softplus(-margin) / share preferring the target"
    )
    print("| seed | split | examples | own inputs | photos swapped | reviews swapped |")
    print("|---:|---|---:|---:|---:|---:|")
    for seed in seeds:
        cell = folder / kind / f"seed-{seed}" / f"generators{suffix}" / "-".join(LOSS_CONFIGS[system])
        model, tokenizer = load_generator_cell(cell)
        for split in ("train", "validation"):
            columns = load_split(data_args, split, model.config, tables)
            spans = entity_spans(columns["target"], parser)
            negatives = make_hard_negatives(columns["target"], seed=seed, spans=spans)
            dataset = PC2LDataset(
                columns["target"], columns["image_features"], columns["review_features"], negatives
            )
            mapping = derangement(len(dataset), seed=0)
            cells = []
            for variant in (dataset, with_swapped_inputs(dataset, "image_features", mapping),
                            with_swapped_inputs(dataset, "review_features", mapping)):  # fmt: skip
                m = torch.from_numpy(margins(model, tokenizer, variant))
                cells.append(f"{F.softplus(-m).mean():.3f} / {(m > 0).float().mean():.2f}")
            print(f"| {seed} | {split} | {len(dataset)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    folder, kind, suffix, system = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    main(
        folder,
        kind,
        suffix,
        {"ce": CE_ONLY, "pc2l": PC2L}[system],
        range(int(sys.argv[5]) if len(sys.argv) > 5 else 3),
    )
