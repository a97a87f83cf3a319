"""benchmarks/bench_explanation_filter.py: the batched filter against the per-review code it replaced."""

import json
from pathlib import Path

import pytest


@pytest.fixture
def bench(import_benchmark):
    return import_benchmark("bench_explanation_filter")


def test_reviews_follow_the_stated_shapes(bench):
    sentences, images = bench.reviews(2000, 1000, seed=0)
    assert len(sentences) == len(images) == 2000
    assert 5.2 < sum(map(len, sentences)) / 2000 < 5.8 and all(1 <= len(i) <= 10 for i in images)
    unknown = sum(int(Path(p).stem[3:]) >= 1000 for group in images for p in group) / sum(map(len, images))
    assert 0.02 < unknown < 0.08


def test_a_tiny_run_writes_both_classifiers_with_identical_kept_sentences(bench, tmp_path):
    output = tmp_path / "filter.json"
    argv = ["--reviews", "50", "--photos", "40", "--dim", "8", "--repeats", "1", "--noisy", "--output", str(output)]
    report = bench.main(argv)
    assert json.loads(output.read_text())["rows"] == report["rows"]
    assert [row["classifier"] for row in report["rows"]] == ["[t; v] (paper)", "[t; v; t*v] (--interaction)"]
    assert all(row["identical_kept_sentences"] and row["kept_sentences"] > 0 for row in report["rows"])
    assert report["environment"]["cores"] >= 1 and "load_average_1m_start" in report["environment"]
