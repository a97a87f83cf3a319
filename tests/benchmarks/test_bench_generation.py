"""benchmarks/bench_generation.py's options (its timings are the benchmark's, not a test's)."""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_a_batch_of_one_is_refused_before_any_model_is_built(tmp_path):
    """Session 29's benchmark audit: `--batch-size 1` ran for 85 s, then failed on the empty batch one smaller that
    checks the compiled step does not recompile, and wrote no JSON."""
    output = tmp_path / "out.json"
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_generation.py"), "--batch-size", "1", "--output", str(output)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].endswith("--batch-size 1: give at least 2")
    assert not output.exists()
