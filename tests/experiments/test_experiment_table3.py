"""The experiment's Table 3: the untrained history-cosine row, its paired differences, and cached seeds gaining it."""

import json

import numpy as np
import pytest

from gest_showcases.commands.experiment import Experiment, ExperimentArguments
from gest_showcases.experiments.grid import CE_ONLY, PC2L
from gest_showcases.experiments.summary import pooled_differences, summarise, tables_markdown
from gest_showcases.metrics import intervals

# Per-example Prec@3 / Recall@3 of two seeds over four test examples (the rule's are the same in both seeds).
HISTORY = {"precision": [1 / 3, 0.0, 2 / 3, 1 / 3], "recall": [0.5, 0.0, 1.0, 0.5], "diversity": [0.4] * 4}
IMG = [
    {"precision": [0.0, 0.0, 1 / 3, 1 / 3], "recall": [0.0, 0.0, 0.5, 0.5], "diversity": [0.8] * 4},
    {"precision": [1 / 3, 0.0, 0.0, 0.0], "recall": [0.5, 0.0, 0.0, 0.0], "diversity": [0.9] * 4},
]


def _per_seed():
    return {
        seed: {"selection": {"history-cosine": HISTORY, "img": IMG[seed]}, "generation": {}, "references": ["a"] * 4}
        for seed in (0, 1)
    }


def test_history_cosine_minus_each_method_is_paired_over_the_same_resamples_with_the_seeds_pooled():
    results = summarise(_per_seed(), num_resamples=200)
    difference = results["selection_differences"]["history-cosine - img"]
    # Oracle: the mean over seeds of the per-example differences, resampled with the summary's own indices.
    per_example = np.mean([np.subtract(HISTORY["precision"], seed["precision"]) for seed in IMG], axis=0)
    assert difference["precision"]["estimate"] == pytest.approx(per_example.mean())
    resampled = per_example[intervals.resample_indices(4, 200, seed=12345)].mean(-1)
    assert difference["precision"]["ci95"] == pytest.approx(list(np.percentile(resampled, [2.5, 97.5])))
    assert difference["precision"]["share_a_greater"] == pytest.approx(float((resampled > 0).mean()))
    assert set(results["selection_differences"]) == {"history-cosine - img"}  # only the methods every seed has
    rows = tables_markdown(results, ExperimentArguments(tables=["3"]), 4, 1.0).split("## Table 3")[1].splitlines()
    paired = [row for row in rows if row.startswith("| history-cosine - img (paired, seeds pooled) |")]
    assert len(paired) == 1
    assert paired[0].split("|")[2].strip().startswith(f"{100 * per_example.mean():.1f} [")


def test_a_cached_seed_gains_the_missing_rows_from_its_trained_selectors_and_keeps_the_rest(tmp_path, monkeypatch):
    experiment = Experiment(ExperimentArguments(output_dir=str(tmp_path), seeds=1))
    seed_dir = experiment.seed_dir(0)
    learned = {"precision": [0.0, 1.0], "recall": [0.0, 1.0], "diversity": [0.5, 0.5]}
    scores = {"selection": {"random": learned, "img": learned, "text": learned, "img+text": learned},
              "generation": {}, "references": ["a", "b"]}  # fmt: skip
    (seed_dir / "selector").mkdir(parents=True)
    (seed_dir / "scores.json").write_text(json.dumps(scores))
    asked = []

    def fake_select_photos(selector_dir, rows, methods):
        asked.append((selector_dir, methods))
        return {m: {"precision": np.array([1.0, 0.0]), "recall": np.array([1.0, 0.0]),
                    "diversity": np.array([0.2, 0.2]), "pic_ids": [["p"], ["q"]]} for m in methods}  # fmt: skip

    monkeypatch.setattr(experiment, "select_photos", fake_select_photos)
    experiment._add_selection_rows(0, [{}, {}], scores)
    assert asked == []  # no trained selectors (no `.done`): nothing to score beside
    (seed_dir / "selector" / ".done").write_text("{}")
    experiment._add_selection_rows(0, [{}, {}], scores)
    assert asked == [(seed_dir / "selector", ("history-cosine",))]
    saved = json.loads((seed_dir / "scores.json").read_text())
    assert saved["selection"]["history-cosine"] == {"precision": [1.0, 0.0], "recall": [1.0, 0.0], "diversity": [0.2, 0.2]}
    assert all(saved["selection"][m] == learned for m in ("random", "img", "text", "img+text"))
    experiment._add_selection_rows(0, [{}, {}], saved)  # complete now: nothing asked again
    assert len(asked) == 1


def _cell(texts, grounded):
    """A scored cell of one system and seed: texts and per-example (named shown subjects, named subjects)."""
    numerators, denominators = zip(*grounded, strict=True)
    return {
        "texts": texts,
        "truth_parts": {"grounded_precision": [list(numerators), list(denominators)]},
        "probe": {},
    }


def test_pooled_differences_pair_the_seeds_on_the_same_resamples_against_a_hand_computation():
    references = [["the ramen is great", "their sushi is fresh", "the pizza was thin", "a burger here"]] * 2
    cells_a = [_cell(["the ramen", "the sushi", "the pizza", "a taco"], [(1, 1), (1, 1), (0, 1), (1, 2)]),
               _cell(["the ramen", "the ramen", "pizza", "a taco"], [(1, 1), (0, 1), (1, 1), (2, 2)])]  # fmt: skip
    cells_b = [_cell(["the ramen"] * 4, [(0, 1), (1, 1), (0, 1), (0, 2)]),
               _cell(["a taco"] * 4, [(1, 1), (0, 1), (0, 1), (1, 2)])]  # fmt: skip
    differences = pooled_differences(cells_a, cells_b, references, num_resamples=200)
    # The oracle: per seed a micro-averaged ratio on each resample of the examples, averaged over the seeds, A - B.
    indices = intervals.resample_indices(4, 200, seed=12345)
    everything = np.arange(4)[None]

    def pooled(cells, rows):
        ratios = []
        for cell in cells:
            num, den = (np.asarray(part, dtype=float) for part in cell["truth_parts"]["grounded_precision"])
            ratios.append(num[rows].sum(-1) / den[rows].sum(-1))
        return np.mean(ratios, axis=0)

    resampled = pooled(cells_a, indices) - pooled(cells_b, indices)
    got = differences["grounded_precision"]
    assert got["estimate"] == pytest.approx((pooled(cells_a, everything) - pooled(cells_b, everything))[0])
    assert got["ci95"] == pytest.approx(list(np.percentile(resampled, [2.5, 97.5])))
    assert got["share_a_greater"] == pytest.approx((resampled > 0).mean())
    # A - B is -(B - A), on the same resamples; the text metrics come along.
    reverse = pooled_differences(cells_b, cells_a, references, num_resamples=200)
    assert reverse["grounded_precision"]["estimate"] == pytest.approx(-got["estimate"])
    assert {"bleu_1", "distinct_outputs"} <= set(differences)
    # A metric one cell lacks is left out; cells over other examples are refused.
    del cells_b[1]["truth_parts"]["grounded_precision"]
    assert "grounded_precision" not in pooled_differences(cells_a, cells_b, references, num_resamples=200)
    shorter = [_cell(cell["texts"][:3], [(1, 1)] * 3) for cell in cells_a]
    with pytest.raises(ValueError, match="need the same examples"):
        pooled_differences(cells_a, shorter, references, num_resamples=200)


def test_the_summaries_split_each_text_once(treebank_splits):
    """Every system and seed reads the same references: `pooled_differences` and `summarise` split each text once."""
    references = [["the ramen is great", "their sushi is fresh"]] * 2
    cells = [_cell(["the ramen", "the sushi"], [(1, 1), (1, 1)]), _cell(["the ramen", "a taco"], [(1, 1), (0, 1)])]
    pooled_differences(cells, cells[::-1], references, num_resamples=20)
    texts = {"the ramen is great", "their sushi is fresh", "the ramen", "the sushi", "a taco"}
    assert sorted(treebank_splits) == sorted(texts)
    treebank_splits.clear()
    per_seed = {seed: {"selection": {}, "generation": {PC2L: cells[seed], CE_ONLY: cells[1 - seed]},
                       "references": references[seed]} for seed in (0, 1)}  # fmt: skip
    summarise(per_seed, num_resamples=20)
    assert sorted(treebank_splits) == sorted(texts)
