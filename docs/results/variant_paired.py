"""Session 21's research script for issue 12 (H13d in docs/experiments.md; not part of the package): one generator
of an experiment folder minus another, paired over the test examples with the seeds pooled
(`experiments.summary.pooled_differences`, the grid's own pairing for PC2L - CE only), where the two come from
different scores files of the same folder (a variant against the run without it, e.g. `scores-smollm2-ungated.json`
against `scores-smollm2.json`), which the experiment's own tables never pair.

    python docs/results/variant_paired.py EXPERIMENT_DIR SCORES_A:SYSTEM_A SCORES_B:SYSTEM_B [FEATURES] [SEEDS]

e.g. `python docs/results/variant_paired.py /tmp/exp19s scores-smollm2-ungated.json:ce-only
scores-smollm2.json:ce-only clip 3`. Prints one Markdown row, A - B, on every column the experiment's tables print.
A scores file given as a path with `{seed}` in it (`/tmp/other/clip/seed-{seed}/scores.json:ce-only`) is read from
there instead, so two folders of the same world can be paired (their test examples must be the same).
"""

import json
import sys
from pathlib import Path

from gest_showcases.experiments.summary import GENERATION_COLUMNS, pooled_differences


def cells(work: Path, features: str, seeds: int, side: str) -> tuple[list[dict], list[list[str]]]:
    """The scores cells of `SCORES_FILE:SYSTEM` over the seeds, and each seed's test references."""
    scores_file, _, system = side.partition(":")
    paths = [
        Path(scores_file.format(seed=seed)) if "{seed}" in scores_file else work / features / f"seed-{seed}" / scores_file
        for seed in range(seeds)
    ]
    scores = [json.loads(path.read_text()) for path in paths]
    if any(system not in score["generation"] for score in scores):
        raise SystemExit(f"{side}: no such system in every seed (have: {sorted(scores[0]['generation'])})")
    return [score["generation"][system] for score in scores], [score["references"] for score in scores]


def main() -> None:
    work, side_a, side_b = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    features = sys.argv[4] if len(sys.argv) > 4 else "clip"
    seeds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    cells_a, references = cells(work, features, seeds, side_a)
    cells_b, references_b = cells(work, features, seeds, side_b)
    if references != references_b:
        raise SystemExit("the two scores files hold different test examples: they cannot be paired")
    differences = pooled_differences(cells_a, cells_b, references, 1000)
    columns = [(key, label, scale) for key, label, scale in GENERATION_COLUMNS if key in differences]
    print(f"| {side_a} - {side_b}, {seeds} seeds pooled | " + " | ".join(label for _, label, _ in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    row = []
    for key, _, scale in columns:
        if differences[key]["ci95"] is None:  # e.g. a personal share where a side names no dish
            row.append("-")
            continue
        low, high = (scale * value for value in differences[key]["ci95"])
        row.append(f"{scale * differences[key]['estimate']:+.2f} [{low:+.2f}, {high:+.2f}]")
    print(f"| {len(references[0])} test examples | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
