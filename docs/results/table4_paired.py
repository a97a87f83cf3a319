"""Session 18's research script for issue 12 (kept so docs/experiments.md's Table 4 on the demo's world can be
rerun; not part of the package): every Table 4 row minus CE only, paired over the test examples with the seeds pooled
(`experiments.summary.pooled_differences`, the grid's own pairing for PC2L - CE only), from a finished
`gest-showcases experiment --tables 4` folder's `scores.json` cells.

    python docs/results/table4_paired.py EXPERIMENT_DIR [FEATURES] [SEEDS] > out.md
"""

import json
import sys
from pathlib import Path

from gest_showcases.experiments.grid import CE_ONLY, LOSS_CONFIGS
from gest_showcases.experiments.summary import pooled_differences

METRICS = (("distinct_2", "Distinct-2", 100), ("grounded_precision", "Grounded P", 100),
           ("hallucination", "Halluc.", 100), ("distinct_outputs", "Distinct outputs", 1))  # fmt: skip


def main() -> None:
    work = Path(sys.argv[1])
    features = sys.argv[2] if len(sys.argv) > 2 else "clip"
    seeds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    scores = [
        json.loads((work / features / f"seed-{seed}" / "scores.json").read_text()) for seed in range(seeds)
    ]
    references = [score["references"] for score in scores]
    print(
        f"| paired - CE only, {seeds} seeds pooled | " + " | ".join(label for _, label, _ in METRICS) + " |"
    )
    print("|---|" + "---:|" * len(METRICS))
    for system in LOSS_CONFIGS:
        if system == CE_ONLY:
            continue
        differences = pooled_differences(
            [score["generation"][system] for score in scores],
            [score["generation"][CE_ONLY] for score in scores],
            references,
            1000,
        )
        cells = []
        for key, _, scale in METRICS:
            low, high = (scale * value for value in differences[key]["ci95"])
            cells.append(f"{scale * differences[key]['estimate']:+.1f} [{low:+.1f}, {high:+.1f}]")
        print(f"| {system} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
