"""benchmarks/bench_image_paths.py: the folder resolved once against each photo's path resolved whole."""

import json

import pytest


@pytest.fixture
def bench(import_benchmark):
    return import_benchmark("bench_image_paths")


def test_a_tiny_run_finds_the_same_photos_outside(bench, tmp_path):
    output = tmp_path / "paths.json"
    report = bench.main(["--photos", "20", "--noisy", "--output", str(output)])
    assert json.loads(output.read_text())["outside"] == report["outside"] == ["../../secret", "out"]
    assert report["identical_outside"] and report["photos"] == 23
