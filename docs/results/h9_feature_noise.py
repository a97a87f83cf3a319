"""H9 (session 14): fresh noise on the training photos' features, with and without H7's likelihood CCL.

Reads the scored seeds of four `gest-showcases experiment` runs in one output folder (same world, seeds and epochs):
the default run (CE only, the paper's PC2L), `--variant entity_likelihood` (H7), `--variant noise05 --variant_ce_only
--generator_args '--image_feature_noise 0.5'` (CE only and the paper's PC2L, both with noise) and `--variant
entity_likelihood_noise05` (H7's options plus `--image_feature_noise 0.5`). Prints, per comparison, the paired
difference pooled over the seeds (`experiments.summary.pooled_differences`: the experiment's own statistic), and
the interaction: (H7 + noise - CE only + noise) - (H7 - CE only), each resample's four values from the same test
examples and seeds.

    python docs/results/h9_feature_noise.py EXPERIMENT_DIR clip|oracle [SEEDS]
"""

import json
import sys
from pathlib import Path

from gest_showcases.experiments.grid import CE_ONLY, PC2L
from gest_showcases.experiments.summary import generation_statistics, pooled_differences
from gest_showcases.metrics import intervals
from gest_showcases.metrics.per_example import interval_dict

NUM_RESAMPLES = 1000  # the experiment's default
COLUMNS = (("bleu_1", "BLEU-1", 100), ("distinct_2", "Distinct-2", 100),
           ("grounded_precision", "Grounded P", 100), ("grounded_recall", "Grounded R", 100),
           ("hallucination", "Halluc.", 100), ("distinct_outputs", "Distinct outputs", 1),
           ("ppl_word", "PPL/word", 1), ("delta_images", "dCE photos", 1))  # fmt: skip
# (row, (variant suffix, system), (variant suffix, system)): A - B.
PLAIN_CE, CE_NOISE = ("", CE_ONLY), ("-noise05", CE_ONLY)
H7, H7_NOISE = ("-entity_likelihood", PC2L), ("-entity_likelihood_noise05", PC2L)
PAPER, PAPER_NOISE = ("", PC2L), ("-noise05", PC2L)
COMPARISONS = (
    ("H7 + noise - CE only (the demo's done-when)", H7_NOISE, PLAIN_CE),
    ("H7 + noise - CE only + noise (prediction a)", H7_NOISE, CE_NOISE),
    ("CE only + noise - CE only (the noise alone)", CE_NOISE, PLAIN_CE),
    ("H7 - CE only (H7, reference)", H7, PLAIN_CE),
    ("H7 + noise - H7", H7_NOISE, H7),
    ("paper's PC2L + noise - CE only + noise", PAPER_NOISE, CE_NOISE),
    ("paper's PC2L + noise - paper's PC2L", PAPER_NOISE, PAPER),
)


def _cells(
    folder: Path, kind: str, seeds: range, variant: tuple[str, str]
) -> tuple[list[dict], list[list[str]]]:
    suffix, system = variant
    scores = [json.loads((folder / kind / f"seed-{s}" / f"scores{suffix}.json").read_text()) for s in seeds]
    return [score["generation"][system] for score in scores], [score["references"] for score in scores]


def _cell(entry: dict, scale: float) -> str:
    low, high = entry["ci95"]
    digits = 2 if scale == 1 else 1
    return f"{entry['estimate'] * scale:+.{digits}f} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


def _interaction(folder: Path, kind: str, seeds: range, key: str) -> dict:
    """(H7 + noise - CE + noise) - (H7 - CE) on shared resamples, seeds pooled."""
    pooled = {}
    for name, variant in (("h7n", H7_NOISE), ("cen", CE_NOISE), ("h7", H7), ("ce", PLAIN_CE)):
        cells, references = _cells(folder, kind, seeds, variant)
        per_seed = [
            generation_statistics(cell, refs)[key] for cell, refs in zip(cells, references, strict=True)
        ]
        pooled[name] = intervals.pool_statistics([statistic for statistic, _ in per_seed])
        n = per_seed[0][1]
    difference = intervals.paired_difference(
        lambda idx: pooled["h7n"](idx) - pooled["cen"](idx),
        lambda idx: pooled["h7"](idx) - pooled["ce"](idx),
        intervals.resample_indices(n, NUM_RESAMPLES, seed=12345),
    )
    return interval_dict(difference.difference)


def main(folder: Path, kind: str, seeds: range) -> None:
    print(
        f"{folder} ({kind} features), seeds {list(seeds)}, paired bootstrap over the test examples, seeds pooled"
    )
    print(f"| Paired, {len(seeds)} seeds pooled | " + " | ".join(name for _, name, _ in COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for row, a, b in COMPARISONS:
        cells_a, references = _cells(folder, kind, seeds, a)
        cells_b, _ = _cells(folder, kind, seeds, b)
        differences = pooled_differences(cells_a, cells_b, references, NUM_RESAMPLES)
        print(f"| {row} | " + " | ".join(_cell(differences[key], scale) for key, _, scale in COLUMNS) + " |")
    interaction = [_cell(_interaction(folder, kind, seeds, key), scale) for key, _, scale in COLUMNS]
    print("| interaction: (H7 + noise - CE + noise) - (H7 - CE) | " + " | ".join(interaction) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], range(int(sys.argv[3]) if len(sys.argv) > 3 else 3))
