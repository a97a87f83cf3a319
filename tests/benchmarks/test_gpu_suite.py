"""benchmarks/gpu_suite.sh: the unattended GPU job. Its benchmarks must import on a machine that has torch and
transformers but no datasets/evaluate/spacy (the lent H200), and the job must leave what finished in two files."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SUITE = BENCHMARKS / "gpu_suite.sh"
GPU_BENCHMARKS = ["bench_pc2l", "bench_generation", "bench_features", "bench_greedy_map", "bench_pipeline",
                  "bench_baselines", "bench_gated_decoder"]  # fmt: skip

# As on the GPU machine: `import datasets` raises ModuleNotFoundError and `importlib.util.find_spec` (transformers'
# availability check) answers None.
BLOCK_MISSING_PACKAGES = """
import sys
for name in ("datasets", "evaluate", "spacy", "nltk", "bert_score", "gradio"):
    sys.modules[name] = None
"""


def _environment(**extra) -> dict:
    src = str(BENCHMARKS.parent / "src")
    # `python3` in the script is this interpreter.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return os.environ | {"PYTHONPATH": src, "PATH": path, "DEVICE": "cpu"} | extra


def test_every_suite_benchmark_is_in_the_script_and_imports_without_datasets_evaluate_spacy():
    script = SUITE.read_text()
    assert sorted(name for name in GPU_BENCHMARKS if f"benchmarks/{name}.py" in script) == sorted(
        GPU_BENCHMARKS
    )
    imports = "; ".join(f"import {name}" for name in GPU_BENCHMARKS)
    code = BLOCK_MISSING_PACKAGES + f"sys.path.insert(0, {str(BENCHMARKS)!r})\n{imports}\nprint('imported')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_environment())
    assert result.returncode == 0, result.stderr[-2000:]
    assert "imported" in result.stdout


def _suite(**environment) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SUITE)], capture_output=True, text=True, env=_environment(**environment), timeout=300
    )


def test_the_suite_bundles_what_finished_and_skips_what_the_time_limit_leaves_out(tmp_path):
    out = tmp_path / "out"
    result = _suite(OUT=str(out), SUITE_ONLY="greedy_map")
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(path.name for path in out.iterdir()) == ["suite.json", "suite.log"]
    bundle = json.loads((out / "suite.json").read_text())
    assert list(bundle) == ["greedy_map"]  # SUITE_ONLY ran that one alone
    assert bundle["greedy_map"]["environment"]["noisy"] in (True, False)
    assert "\n=== greedy_map exit 0" in (out / "suite.log").read_text()

    # A rerun into the same folder keeps the first run's log and results, and names what it could not run.
    result = _suite(OUT=str(out), SUITE_ONLY="greedy_mpa")
    assert result.returncode == 0, result.stderr[-2000:]
    log = (out / "suite.log").read_text()
    assert "=== greedy_map exit 0" in log and "SUITE_ONLY: greedy_mpa did not run" in log
    assert list(json.loads((out / "suite.json").read_text())) == ["greedy_map"]

    # The whole job's deadline caps a benchmark's own limit (greedy_map's is 45 s).
    capped = tmp_path / "capped"
    result = _suite(OUT=str(capped), SUITE_ONLY="greedy_map", SUITE_SECONDS="30")
    assert result.returncode == 0, result.stderr[-2000:]
    limit = int(re.search(r"=== greedy_map \(limit (\d+)s\)", (capped / "suite.log").read_text())[1])
    assert 20 <= limit <= 30

    short = tmp_path / "short"
    _suite(OUT=str(short), SUITE_SECONDS="10")
    log = (short / "suite.log").read_text()
    assert all(f"=== {name} skipped" in log for name in ("pc2l", "generation", "gated_decoder"))
    assert not (short / "suite.json").exists()  # nothing finished, nothing bundled
