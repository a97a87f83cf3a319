"""The experiment's Table 2: PC2L's rows, then the baselines the run trained, each with the paper's input column."""

from gest_showcases.commands.experiment import ExperimentArguments
from gest_showcases.experiments.grid import CE_ONLY, PC2L
from gest_showcases.experiments.summary import tables_markdown


def _results(systems):
    # One distinct BLEU-1 per system, so each printed row can be traced to its entry.
    generation = {
        name: {"bleu_1": {"estimate": 0.01 * (i + 1), "ci95": None}} for i, name in enumerate(systems)
    }
    return {
        "generation": generation,
        "selection": {},
        "differences": {"bleu_1": {"estimate": 0.5, "ci95": None}},
    }


def _table2(markdown):
    lines = markdown.split("## Table 2")[1].strip().splitlines()
    return [
        [cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:] if line.startswith("|")
    ]


def test_table2_lists_pc2l_the_baselines_and_gt_with_their_inputs():
    results = _results([CE_ONLY, PC2L, "ST", "R2Gen", "Ref2Seq", "PETER", "PEPLER", "GT"])
    rows = _table2(tables_markdown(results, ExperimentArguments(tables=["2"]), 10, 60.0))
    assert rows[0][:3] == ["System", "Input", "BLEU-1"]
    body = {row[0]: row[1:3] for row in rows[2:]}
    assert list(body) == [CE_ONLY, PC2L, "ST", "R2Gen", "Ref2Seq", "PETER", "PEPLER", "GT",
                          "PC2L - CE only (paired, seeds pooled)"]  # fmt: skip
    assert body == {
        CE_ONLY: ["img+text", "1.0"], PC2L: ["img+text", "2.0"], "ST": ["img", "3.0"], "R2Gen": ["img", "4.0"],
        "Ref2Seq": ["text", "5.0"], "PETER": ["ids", "6.0"], "PEPLER": ["ids", "7.0"], "GT": ["-", "8.0"],
        "PC2L - CE only (paired, seeds pooled)": ["", "50.0"],
    }  # fmt: skip


def test_table2_shows_only_the_baselines_the_run_asked_for():
    results = _results([CE_ONLY, PC2L, "ST", "PETER", "GT"])
    only_peter = _table2(
        tables_markdown(results, ExperimentArguments(tables=["2"], baselines=["peter"]), 10, 60.0)
    )
    assert [row[0] for row in only_peter[2:-2]] == [CE_ONLY, PC2L, "PETER"]
    none = _table2(tables_markdown(results, ExperimentArguments(tables=["2"], baselines=["none"]), 10, 60.0))
    assert [row[0] for row in none[2:-2]] == [CE_ONLY, PC2L]
