"""What every benchmark records about the machine it ran on, and its refusal to time on a loaded one.

Every `bench_*.py` here uses it the same way (they run as scripts, so this folder is on `sys.path`):

    import _env

    _env.add_noisy_argument(parser)
    args = parser.parse_args(argv)
    environment = _env.start(args.noisy)  # after setting torch's threads, before timing anything
    ...
    _env.finish(results, environment, args.output)  # JSON with an "environment" block and "noisy"

A ratio timed while other processes compete for the cores says little about the code: issue 18's PC2L
step read 1.29x CE-only on a loaded 2-core machine and 1.79x on a quiet one. So a benchmark refuses to
start while the 1-minute load average exceeds the core count, unless `--noisy`; then its output and
JSON say the figures are noisy. The load is judged once, at the start: later readings include the
benchmark's own threads and workers (on 2 cores, a 2-thread benchmark alone drives the average to 2),
so the reading at the end is recorded for the reader but decides nothing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path


class LoadedMachineError(RuntimeError):
    """The machine is busier than its cores and the benchmark was not told `--noisy`."""


def add_noisy_argument(parser: argparse.ArgumentParser) -> None:
    """Adds `--noisy` (time and report even when the load average exceeds the core count)."""
    parser.add_argument(
        "--noisy",
        action="store_true",
        help="run even when the 1-minute load average exceeds the core count; the output is marked noisy",
    )


def check_load(load_1m: float, cores: int, noisy: bool) -> bool:
    """Whether a run starting at this load is noisy (load above `cores`).

    Raises:
        LoadedMachineError: when it is and `noisy` was not asked for.
    """
    loaded = load_1m > cores
    if loaded and not noisy:
        raise LoadedMachineError(
            f"1-minute load average {load_1m:.2f} exceeds the {cores} cores: ratios timed now would measure "
            "the other processes; rerun on a quiet machine, or pass --noisy to report them marked noisy"
        )
    return loaded


def cpu_model() -> str:
    """The CPU's model name (`/proc/cpuinfo` on Linux, else what `platform` knows)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(load_1m: float | None = None, cores: int | None = None) -> dict:
    """The machine and software a benchmark runs on; `load_1m` and `cores` default to this machine's now.

    `torch_threads` is `None` for benchmarks that never import torch (importing it here would only
    slow them down); `gpu` is `None` without CUDA. `allocator_environment`: the variables that change how memory is
    allocated (glibc's `MALLOC_*`, `LD_PRELOAD`): in session 40 glibc's settings that keep freed memory instead of
    handing it back to the system (and faulting it in again) took `bench_pc2l.py`'s projected-gradient step from 7.0
    to 3.8 s on CPU.
    """
    torch = sys.modules.get("torch")
    gpu = None
    if torch is not None and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name()
    return {
        "cores": os.cpu_count() if cores is None else cores,
        "load_average_1m_start": round(os.getloadavg()[0] if load_1m is None else load_1m, 2),
        "cpu_model": cpu_model(),
        "gpu": gpu,
        "torch_threads": None if torch is None else torch.get_num_threads(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "allocator_environment": {
            name: value for name, value in sorted(os.environ.items()) if name.startswith("MALLOC_") or name == "LD_PRELOAD"
        },
    }


def start(noisy: bool, load_1m: float | None = None, cores: int | None = None) -> dict:
    """Records the environment and applies the load rule: exits with a one-line reason on a loaded
    machine unless `noisy`; says so when the run goes ahead noisy. `load_1m`, `cores`: for tests."""
    record = environment(load_1m, cores)
    try:
        record["noisy"] = check_load(record["load_average_1m_start"], record["cores"], noisy)
    except LoadedMachineError as error:
        raise SystemExit(f"refused: {error}") from None
    if record["noisy"]:
        print(_noisy_line(record), flush=True)
    return record


def finish(results: dict, record: dict, output: str | Path | None) -> dict:
    """`results` with `noisy` and the `environment` block (plus the load at the end), written as JSON to
    `output` when given; repeats the noisy warning under the figures."""
    record = {**record, "load_average_1m_end": round(os.getloadavg()[0], 2)}
    report = {**results, "noisy": record["noisy"], "environment": record}
    if record["noisy"]:
        print(_noisy_line(record))
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _noisy_line(record: dict) -> str:
    return (
        f"NOISY (--noisy): 1-minute load average {record['load_average_1m_start']:.2f} on "
        f"{record['cores']} cores at the start; the ratios measure the other processes too"
    )
