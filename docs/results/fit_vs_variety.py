"""Session 34's research script for issue 12 (docs/experiments.md, "variety follows the fit"; not part of the
package): per cell of experiment folders (variant x seed x system), the final training cross-entropy (mean of the
last 10 logged `loss_ce`), the test references' perplexity per word, the photo reliance (dCE) and the distinct
outputs and grounded precision, and Spearman's rho between them over each folder's cells.

    python docs/results/fit_vs_variety.py EXPERIMENT_DIR [EXPERIMENT_DIR ...]

e.g. `python docs/results/fit_vs_variety.py /tmp/s32/demo /tmp/s32/w1` (stand-in-CLIP features, 3 seeds). Reads every
`results-clip*.json` of a folder: the plain call's CE only and PC2L, and each variant's PC2L (its CE only is the
plain one's, so it is counted once).
"""

import json
import statistics
import sys
from pathlib import Path

from scipy.stats import spearmanr

CELLS = {"CE only": "none-none", "PC2L (CCL + PCL)": "ccl-pcl"}
METRICS = ("ppl_word", "delta_images", "distinct_outputs", "grounded_precision")


def folder_rows(root: Path) -> list[dict]:
    rows = []
    for results in sorted(root.glob("results-clip*.json")):
        variant = results.stem.removeprefix("results-clip").lstrip("-")
        generation = json.loads(results.read_text())["generation"]
        for system, cell in CELLS.items():
            if variant and system == "CE only":
                continue
            for seed, _ in enumerate(generation[system]["distinct_outputs"]["per_seed"]):
                state = root / "clip" / f"seed-{seed}" / f"generators{'-' + variant if variant else ''}" / cell
                log = json.loads((state / "trainer_state.json").read_text())["log_history"]
                steps = [entry for entry in log if "loss_ce" in entry and "grad_norm" in entry]
                row = {"variant": variant or "plain", "system": system, "seed": seed,
                       "train_ce": statistics.mean(entry["loss_ce"] for entry in steps[-10:])}  # fmt: skip
                for metric in METRICS:
                    row[metric] = generation[system][metric]["per_seed"][str(seed)]["estimate"]
                rows.append(row)
    return rows


def main() -> None:
    for root in map(Path, sys.argv[1:]):
        rows = folder_rows(root)
        print(f"## {root} ({len(rows)} cells)\n")
        print("| variant | system | seed | train CE | PPL/word | dCE photos | distinct outputs | grounded P |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            print(f"| {row['variant']} | {row['system']} | {row['seed']} | {row['train_ce']:.3f} | {row['ppl_word']:.2f} "
                  f"| {row['delta_images']:.3f} | {row['distinct_outputs']:.0f} | {100 * row['grounded_precision']:.1f} |")
        pairs = [("ppl_word", "distinct_outputs"), ("delta_images", "distinct_outputs"),
                 ("train_ce", "distinct_outputs"), ("train_ce", "grounded_precision")]  # fmt: skip
        print()
        for a, b in pairs:
            rho = spearmanr([row[a] for row in rows], [row[b] for row in rows])[0]
            print(f"- Spearman rho({a}, {b}) = {rho:+.2f}")
        print()


if __name__ == "__main__":
    main()
