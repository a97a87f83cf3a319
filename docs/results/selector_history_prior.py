"""Table 3 with `train-selector --history_prior` (session 12): per-example Prec@3 / Recall@3 / Div@3 of the
history-cosine rule and of the learned img and img+text selectors with and without the prior, on the s1 test split
of the experiment's world, 3 training seeds; paired bootstrap over the test examples with the seeds' per-example
values averaged (1,000 resamples, the same for every row).

    python docs/results/selector_history_prior.py WORLD_DIR SELECTOR_DIR_PATTERN
    # e.g. /tmp/s10/grid/world '/tmp/s12/sel-s{seed}-prior{prior}'

SELECTOR_DIR_PATTERN names the `train-selector --output_dir` of each seed and prior (its `selector-<mode>` folders).
"""

import sys
from pathlib import Path

import numpy as np

from gest_showcases.commands.train_selector import S1_COLUMNS
from gest_showcases.data.build import load_built
from gest_showcases.features.cache import load_features
from gest_showcases.metrics.selection import diversity_at_k, precision_at_k, recall_at_k
from gest_showcases.selection import DPPImageSelector
from gest_showcases.selection.dataset import build_selection_dataset, collate_selection
from gest_showcases.selection.training import history_cosine_select

K, SEEDS, PRIORS, MODES = 3, (0, 1, 2), (0, 10), ("img", "img+text")
world, pattern = Path(sys.argv[1]), sys.argv[2]
rows = load_built(world / "dataset", "s1")["test"].select_columns(S1_COLUMNS)
dataset = build_selection_dataset(rows, load_features(world / "features", "image"), load_features(world / "features", "review"))
batch = collate_selection([dataset[i] for i in range(len(dataset))])


def scores(selected):
    return {
        "Prec@3": precision_at_k(selected, batch["target_mask"], K).numpy(),
        "Recall@3": recall_at_k(selected, batch["target_mask"], K).numpy(),
        "Div@3": diversity_at_k(selected, batch["candidate_features"], K).numpy(),
    }


per_row = {"history-cosine": scores(history_cosine_select(batch["profile_image"], batch["candidate_features"], batch["candidate_mask"], K).indices)}
for mode in MODES:
    for prior in PRIORS:
        per_seed = []
        for seed in SEEDS:
            folder = Path(pattern.format(seed=seed, prior=prior)) / f"selector-{mode}"
            model = DPPImageSelector.from_pretrained(folder).eval()
            selected = model.select(batch["profile_text"], batch["profile_image"], batch["candidate_features"], candidate_mask=batch["candidate_mask"], k=K).indices
            per_seed.append(scores(selected))
        name = f"{mode}" + (f", history prior {prior}" if prior else " (paper)")
        per_row[name] = {key: np.mean([s[key] for s in per_seed], axis=0) for key in per_seed[0]}
        per_row[name]["per_seed_prec"] = [float(s["Prec@3"].mean()) * 100 for s in per_seed]

n = len(dataset)
resamples = np.random.default_rng(0).integers(0, n, (1000, n))


def cell(values, scale=100):
    boot = values[resamples].mean(axis=1) * scale
    digits = 1 if scale == 100 else 2  # Div@3 is a mean distance, not a share
    low, high = np.percentile(boot, [2.5, 97.5])
    return f"{values.mean() * scale:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


print(f"{n} s1 test examples, seeds {SEEDS} averaged per example; 95% paired bootstrap\n")
print("| Method | Prec@3 | Recall@3 | Div@3 | Prec@3 per seed |")
print("|---|---:|---:|---:|---:|")
for name, values in per_row.items():
    seeds = ", ".join(f"{v:.1f}" for v in values.get("per_seed_prec", [])) or "-"
    print(f"| {name} | {cell(values['Prec@3'])} | {cell(values['Recall@3'])} | {cell(values['Div@3'], 1)} | {seeds} |")
for a, b in (("img+text, history prior 10", "img+text (paper)"), ("img+text, history prior 10", "history-cosine"),
             ("img, history prior 10", "history-cosine")):
    print(f"| {a} - {b} (paired) | {cell(per_row[a]['Prec@3'] - per_row[b]['Prec@3'])} | "
          f"{cell(per_row[a]['Recall@3'] - per_row[b]['Recall@3'])} | {cell(per_row[a]['Div@3'] - per_row[b]['Div@3'], 1)} | - |")
