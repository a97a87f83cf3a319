"""benchmarks/_env.py: the environment every benchmark records, and its refusal to time on a loaded machine."""

import importlib.metadata
import json
import os
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
TINY_SELECTOR = json.dumps({"text_dim": 512, "image_dim": 512, "user_hidden_sizes": [16],
                            "image_hidden_sizes": [16], "embed_dim": 8})  # fmt: skip


@pytest.fixture
def bench(monkeypatch):
    """The benchmarks folder on `sys.path`, as when a benchmark runs as a script."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _env

    return _env


@pytest.mark.parametrize(("load", "noisy", "expected"), [(1.99, False, False), (2.0, False, False),
                                                         (1.5, True, False), (2.01, True, True)])  # fmt: skip
def test_check_load_flags_a_load_above_the_cores(bench, load, noisy, expected):
    assert bench.check_load(load, 2, noisy) is expected


def test_check_load_refuses_a_loaded_machine_without_noisy(bench):
    with pytest.raises(bench.LoadedMachineError, match=r"load average 2\.01 exceeds the 2 cores.*--noisy"):
        bench.check_load(2.01, 2, noisy=False)
    assert bench.check_load(6.0, 8, noisy=False) is False  # the same load on a bigger machine is quiet


def test_start_exits_on_a_loaded_machine_and_marks_noisy_runs(bench, capsys):
    with pytest.raises(SystemExit, match="^refused: 1-minute load average 3.50 exceeds the 2 cores"):
        bench.start(noisy=False, load_1m=3.5, cores=2)
    record = bench.start(noisy=True, load_1m=3.5, cores=2)
    assert record["noisy"] is True and record["load_average_1m_start"] == 3.5
    assert capsys.readouterr().out.startswith("NOISY (--noisy): 1-minute load average 3.50 on 2 cores")
    quiet = bench.start(noisy=False, load_1m=0.4, cores=2)
    assert quiet["noisy"] is False and capsys.readouterr().out == ""


def test_finish_writes_the_environment_with_the_results(bench, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MALLOC_TOP_PAD_", "1073741824")
    monkeypatch.setenv("MALLOCX", "not glibc's")
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    record = bench.start(noisy=True, load_1m=5.0, cores=2)
    report = bench.finish({"speedup": 3.0}, record, tmp_path / "out" / "bench.json")
    written = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert written == report
    assert written["speedup"] == 3.0 and written["noisy"] is True
    environment = written["environment"]
    assert set(environment) == {"cores", "load_average_1m_start", "load_average_1m_end", "cpu_model", "gpu",
                                "torch_threads", "torch", "transformers", "python", "platform", "allocator_environment",
                                "noisy"}  # fmt: skip
    assert environment["allocator_environment"] == {"MALLOC_TOP_PAD_": "1073741824"}
    assert environment["cores"] == 2 and environment["load_average_1m_start"] == 5.0
    assert environment["torch_threads"] == torch.get_num_threads()  # torch is imported here
    assert environment["torch"] == importlib.metadata.version("torch")
    assert environment["transformers"] == importlib.metadata.version("transformers")
    assert environment["cpu_model"] and environment["load_average_1m_end"] >= 0
    assert capsys.readouterr().out.count("NOISY (--noisy)") == 2  # at the start and under the figures


def test_every_benchmark_uses_the_shared_helper():
    scripts = sorted(BENCHMARKS.glob("bench_*.py"))
    assert len(scripts) >= 8
    for script in scripts:
        source = script.read_text()
        for call in ("_env.add_noisy_argument(parser)", "_env.start(", "_env.finish("):
            assert call in source, f"{script.name} does not call {call}"
        assert "json.dump(" not in source and "getloadavg" not in source, f"{script.name} records on its own"


def test_selector_benchmark_reports_the_ratio_and_refuses_on_load(bench, tmp_path, monkeypatch):
    import bench_selector

    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "set_num_threads", lambda count: None)  # keep the session's threads

    argv = ["--examples", "24", "--batch-size", "8", "--businesses", "4", "--min-pool", "3", "--max-pool", "6",
            "--steps", "1", "--config", TINY_SELECTOR, "--output", str(tmp_path / "s.json")]  # fmt: skip
    monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 99.0, 99.0))
    with pytest.raises(SystemExit, match="refused"):
        bench_selector.main(argv)
    assert not (tmp_path / "s.json").exists()

    report = bench_selector.main([*argv, "--noisy"])
    assert report["environment"]["torch_threads"] == threads
    assert json.loads((tmp_path / "s.json").read_text()) == report
    assert report["noisy"] is True and report["environment"]["load_average_1m_start"] == 99.0
    assert set(report["speedup_over_before"]) == {"per_slot", "distinct_images"}
    assert report["fetch_same_batches"] is True and report["fetch_speedup"] > 0
    rows = report["image_mlp_rows_per_step"]
    assert rows["distinct_images"] < rows["before"] == rows["per_slot"]
    for agreement in report["first_step_agreement_with_before"].values():
        assert agreement["loss_abs_difference"] <= 1e-5
        assert agreement["gradient_max_relative_difference"] <= 1e-5
