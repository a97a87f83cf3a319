"""benchmarks/bench_evaluate.py: evaluate's scoring with each text tokenised once, against every time."""

import json

import pytest


@pytest.fixture
def bench(import_benchmark):
    return import_benchmark("bench_evaluate")


def test_a_tiny_run_scores_both_sides_identically(bench, tmp_path):
    output = tmp_path / "evaluate.json"
    report = bench.main(["--size", "30", "--rounds", "1", "--noisy", "--output", str(output)])
    assert json.loads(output.read_text())["identical_outputs"] is report["identical_outputs"] is True
    assert set(report["median_seconds"]) == {"memoised", "baseline"}
    assert report["median_seconds"]["memoised"]["total"] > 0


def test_the_generations_share_references_and_repeat_every_third_text(bench):
    records = bench.generations(6, 2, seed=0)
    first, second = records[:6], records[6:]
    assert [r.reference for r in first] == [r.reference for r in second]
    assert [r.system for r in records] == ["system-0"] * 6 + ["system-1"] * 6
    assert first[2].generated == first[1].generated and first[5].generated == first[4].generated
    assert first[0].generated != second[0].generated
