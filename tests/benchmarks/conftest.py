"""The benchmarks run as scripts (their folder on `sys.path`, `import _env`); their tests import them the same way."""

import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def import_benchmark(monkeypatch):
    """`import_benchmark("bench_x")`: the module `benchmarks/bench_x.py`, imported as when it runs as a script."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module
