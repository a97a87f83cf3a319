"""`gest-showcases experiment --quick` end to end: tables with intervals, results.json, and a resumable grid that
gains the baselines' rows without retraining the cells it holds."""

import json

import pytest

from gest_showcases import cli


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
    ):
        assert set(pc2l[metric]["per_seed"]) == {"0", "1"}
        assert "ci95" in pc2l[metric]
    assert set(results["selection"]) == {"random", "img", "text", "img+text"}
    assert "grounded_precision" in results["differences"]
    # The references are scored against their own photos: every subject they name is one the photos show.
    assert results["generation"]["GT"]["hallucination"]["estimate"] == 0.0

    markers = sorted(tmp_path.glob("clip/seed-*/**/.done"))
    assert len(markers) == 2 * 3  # per seed: the selectors and the two generators
    stamps = [marker.stat().st_mtime_ns for marker in markers]
    capsys.readouterr()
    assert cli.main(argv) == 0  # resumes: every cell is done
    assert [marker.stat().st_mtime_ns for marker in markers] == stamps
    resumed = json.loads((tmp_path / "results-clip.json").read_text())
    assert resumed["generation"]["PC2L (CCL + PCL)"]["bleu_1"] == pc2l["bleu_1"]
    # The compute time counts the cells an earlier call ran: the resumed run reports the same figure.
    assert results["compute_seconds"] > results["seconds_this_run"] / 2
    assert resumed["compute_seconds"] == pytest.approx(results["compute_seconds"])
    assert resumed["seconds_this_run"] < results["compute_seconds"]

    # A later run with a baseline trains and scores only the baseline's cells.
    assert cli.main([*argv[:-1], "peter"]) == 0
    assert [marker.stat().st_mtime_ns for marker in markers] == stamps
    assert len(sorted(tmp_path.glob("clip/seed-*/baselines/peter/.done"))) == 2
    with_peter = json.loads((tmp_path / "results-clip.json").read_text())
    assert with_peter["generation"]["PC2L (CCL + PCL)"]["bleu_1"] == pc2l["bleu_1"]
    assert set(with_peter["generation"]["PETER"]["bleu_1"]["per_seed"]) == {"0", "1"}
    assert "| PETER | ids |" in (tmp_path / "tables-clip.md").read_text()
    records = [json.loads(line) for line in (tmp_path / "clip" / "seed-0" / "generations.jsonl").open()]
    assert {record["system"] for record in records} == {"CE only", "PC2L (CCL + PCL)", "PETER"}
