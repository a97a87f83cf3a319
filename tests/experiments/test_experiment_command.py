"""`gest-showcases experiment --quick` end to end: tables with intervals, results.json, and a resumable grid that
gains the baselines' rows without retraining the cells it holds: Table 2's seven rows, with every metric."""

import json

import pytest

from gest_showcases import cli

TABLE2_ROWS = ["CE only", "PC2L (CCL + PCL)", "ST", "R2Gen", "Ref2Seq", "PETER", "PEPLER"]


def _rows(markdown, title):
    """The first column of the table under `title` (header and rule left out)."""
    lines = markdown.split(title)[1].split("\n## ")[0].splitlines()
    return [line.strip("|").split("|")[0].strip() for line in lines if line.startswith("|")][2:]


@pytest.mark.slow
def test_quick_experiment_writes_tables_and_resumes_without_rerunning(tmp_path, capsys):
    argv = ["experiment", "--quick", "--seeds", "2", "--tables", "2", "3", "--output_dir", str(tmp_path),
            "--baselines", "none"]  # fmt: skip
    assert cli.main(argv) == 0
    results = json.loads((tmp_path / "results-clip.json").read_text())
    tables = (tmp_path / "tables-clip.md").read_text()
    assert "## Table 3" in tables and "## Table 2" in tables and "## Table 4" not in tables
    pc2l = results["generation"]["PC2L (CCL + PCL)"]
    for metric in (
        "bleu_1",
        "distinct_2",
        "grounded_recall",
        "distinct_outputs",
        "delta_images",
        "delta_reviews",
        "ppl_token",
        "ppl_word",
    ):
        assert set(pc2l[metric]["per_seed"]) == {"0", "1"}
        assert "ci95" in pc2l[metric]
    # Every Table 2 metric per seed (as `evaluate` scores them), mean and interval across the seeds.
    for metric in ("bleu_4", "meteor", "nist_4", "distinct_1", "clip_align", "clip_score_cosine"):
        entry = results["table2_all"]["PC2L (CCL + PCL)"][metric]
        assert set(entry["per_seed"]) == {"0", "1"} and entry["estimate"] is not None and "ci95" in entry
    assert _rows(tables, "## Table 2, every metric") == ["CE only", "PC2L (CCL + PCL)", "GT"]
    every_metric = sorted(tmp_path.glob("clip/seed-*/table2-all.json"))
    assert len(every_metric) == 2
    assert set(results["selection"]) == {"random", "history-cosine", "img", "text", "img+text"}
    assert "grounded_precision" in results["differences"]
    # The references are scored against their own photos: every subject they name is one the photos show.
    assert results["generation"]["GT"]["hallucination"]["estimate"] == 0.0

    markers = sorted(tmp_path.glob("clip/seed-*/**/.done"))
    assert len(markers) == 2 * 3  # per seed: the selectors and the two generators
    stamps = [marker.stat().st_mtime_ns for marker in markers]
    scored = [path.stat().st_mtime_ns for path in every_metric]
    capsys.readouterr()
    assert cli.main(argv) == 0  # resumes: every cell is done
    assert [marker.stat().st_mtime_ns for marker in markers] == stamps
    assert [path.stat().st_mtime_ns for path in every_metric] == scored  # nothing scored again
    resumed = json.loads((tmp_path / "results-clip.json").read_text())
    assert resumed["generation"]["PC2L (CCL + PCL)"]["bleu_1"] == pc2l["bleu_1"]
    # The compute time counts the cells an earlier call ran: the resumed run reports the same figure.
    assert results["compute_seconds"] > results["seconds_this_run"] / 2
    assert resumed["compute_seconds"] == pytest.approx(results["compute_seconds"])
    assert resumed["seconds_this_run"] < results["compute_seconds"]
    # Where the time went: every world stage, and per seed the selectors, each generator and the scoring, named by
    # their folders; they sum to the compute time.
    cells = results["cell_seconds"]
    assert {"world/synth", "world/train-clip", "clip/seed-0/selector", "clip/seed-1/scores"} <= set(cells)
    assert {cell for cell in cells if cell.startswith("clip/seed-0/")} == {
        *(str(marker.parent.relative_to(tmp_path)) for marker in markers if "seed-0" in str(marker)),
        "clip/seed-0/scores", "clip/seed-0/table2-all",
    }  # fmt: skip
    assert all(seconds > 0 for seconds in cells.values())
    assert sum(cells.values()) == pytest.approx(results["compute_seconds"]) and resumed["cell_seconds"] == cells

    # A later run with the baselines trains and scores only the baselines' cells: Table 2's seven rows.
    capsys.readouterr()
    assert cli.main(argv[:-2]) == 0
    assert [marker.stat().st_mtime_ns for marker in markers] == stamps
    assert len(sorted(tmp_path.glob("clip/seed-*/baselines/*/.done"))) == 2 * 5
    with_baselines = json.loads((tmp_path / "results-clip.json").read_text())
    assert with_baselines["generation"]["PC2L (CCL + PCL)"]["bleu_1"] == pc2l["bleu_1"]
    assert with_baselines["table2_all"]["PC2L (CCL + PCL)"] == results["table2_all"]["PC2L (CCL + PCL)"]
    assert set(with_baselines["generation"]["PETER"]["bleu_1"]["per_seed"]) == {"0", "1"}
    assert "ppl_word" not in with_baselines["generation"]["PETER"]
    printed = capsys.readouterr().out
    assert _rows(printed, "## Table 2: PC2L") == [*TABLE2_ROWS, "GT", "PC2L - CE only (paired, seeds pooled)"]
    assert _rows(printed, "## Table 2, every metric") == [*TABLE2_ROWS, "GT"]
    assert "| PETER | ids |" in (tmp_path / "tables-clip.md").read_text()
    records = [json.loads(line) for line in (tmp_path / "clip" / "seed-0" / "generations.jsonl").open()]
    assert {record["system"] for record in records} == set(TABLE2_ROWS)
