"""benchmarks/gpu_suite.sh: the unattended GPU job. Its benchmarks must import on a machine that has torch and
transformers but no datasets/evaluate/spacy (the lent H200), and the job must leave what finished in two files."""

import json
import os
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


def test_the_suite_bundles_what_finished_and_skips_what_the_time_limit_leaves_out(tmp_path):
    out = tmp_path / "out"
    environment = _environment(OUT=str(out), SUITE_ONLY="greedy_map")
    result = subprocess.run(
        ["bash", str(SUITE)], capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(path.name for path in out.iterdir()) == ["suite.json", "suite.log"]
    bundle = json.loads((out / "suite.json").read_text())
    assert list(bundle) == ["greedy_map"]  # SUITE_ONLY ran that one alone
    assert bundle["greedy_map"]["environment"]["noisy"] in (True, False)
    assert "=== greedy_map exit 0" in (out / "suite.log").read_text()

    short = tmp_path / "short"
    environment = _environment(OUT=str(short), SUITE_SECONDS="10")
    result = subprocess.run(
        ["bash", str(SUITE)], capture_output=True, text=True, env=environment, timeout=120
    )
    log = (short / "suite.log").read_text()
    assert all(f"=== {name} skipped" in log for name in ("pc2l", "generation", "gated_decoder"))
    assert not (short / "suite.json").exists()  # nothing finished, nothing bundled
