"""A process's memory as the benchmarks report it: resident set, its peak over a block, tensor bytes.

On CPU, PyTorch allocates through the C library (glibc's `malloc` on Linux), so what a step costs shows only in the
process's resident set (RSS). Two things make the plain peak (`ru_maxrss`) misleading, and this module handles both:

- the peak is over the whole process so far, so a benchmark holding several models shows their sum. Linux resets
  the peak ("high water mark", `VmHWM`) to the current RSS when "5" is written to `/proc/self/clear_refs`:
  `peak_during` does that, so a block's peak is its own (`process_peak_gib` still knows the peak before resets);
- glibc keeps memory that PyTorch freed in its heaps instead of returning it to the system (its mmap threshold
  rises to the largest block freed, up to 32 MiB, so most activations land in heaps), about 1 GiB after a
  GPT-2-small step. `release_freed_memory` returns it (`malloc_trim`), so that RSS before a step counts live memory.

Used by `bench_pc2l.py` and `memory_pc2l.py` (they run as scripts, so this folder is on `sys.path`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import resource
from collections.abc import Iterable, Iterator

import torch

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"
_RESET_PEAK = "5"  # clear_refs: reset the peak resident set size to the current one (Linux >= 4.0)
# The peak before each reset, in order: `process_peak_gib` is the whole process's (or a phase's), resets or not.
_peaks_before_resets_gib: list[float] = []


def parse_status(text: str) -> dict[str, float]:
    """The `Vm*` sizes of a `/proc/<pid>/status` text, in GiB (the file gives kB)."""
    sizes = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.startswith("Vm") and value.strip().endswith("kB"):
            sizes[key] = int(value.split()[0]) / 2**20
    return sizes


def _status() -> dict[str, float]:
    try:
        with open(_STATUS) as handle:
            return parse_status(handle.read())
    except OSError:  # not Linux
        return {}


def resident_gib() -> float:
    """The process's resident set now (`VmRSS`); the peak so far where the system does not say."""
    return _status().get("VmRSS", _ru_maxrss_gib())


def peak_resident_gib() -> float:
    """The process's peak resident set since the start or the last `reset_peak_resident` (`VmHWM`)."""
    return _status().get("VmHWM", _ru_maxrss_gib())


def process_peak_gib(since: int = 0) -> float:
    """The process's peak resident set since it started, across `reset_peak_resident` calls; with `since`, a
    `peak_mark()`, since that mark."""
    return max([*_peaks_before_resets_gib[since:], peak_resident_gib()])


def peak_mark() -> int:
    """A mark for `process_peak_gib(since=...)`, which then counts the peaks from now on (the resident set's peak
    is reset here: the one so far is before the mark)."""
    reset_peak_resident()
    return len(_peaks_before_resets_gib)


def _ru_maxrss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def reset_peak_resident() -> bool:
    """Make the peak resident set the current one (Linux); whether it could."""
    peak = peak_resident_gib()
    try:
        with open(_CLEAR_REFS, "w") as handle:
            handle.write(_RESET_PEAK)
    except OSError:
        return False
    _peaks_before_resets_gib.append(peak)
    return True


def release_freed_memory() -> None:
    """Collect garbage and give the C library's free heap memory back to the system (glibc's `malloc_trim`), so
    that the resident set counts what is alive."""
    gc.collect()
    library = ctypes.util.find_library("c")
    if library is not None:
        libc = ctypes.CDLL(library)
        if hasattr(libc, "malloc_trim"):  # glibc only
            libc.malloc_trim(0)


@contextlib.contextmanager
def peak_during(device: torch.device | str = "cpu") -> Iterator[dict]:
    """Yields a dict that holds, on exit, the block's memory in GiB: `before` (in use at its start), `peak` (the
    most in use during it) and `added` (`peak - before`).

    CPU: the process's resident set, freed heap memory released first (`release_freed_memory`) and the peak reset
    (`reset_peak_resident`), so neither memory that glibc kept nor an earlier peak counts. CUDA: memory allocated
    by tensors (`torch.cuda.max_memory_allocated`, its peak reset).
    """
    device = torch.device(device)
    result = {}
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        result["before"] = torch.cuda.memory_allocated() / 2**30
    else:
        release_freed_memory()
        reset_peak_resident()
        result["before"] = resident_gib()
    yield result
    if device.type == "cuda":
        torch.cuda.synchronize()
        result["peak"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        result["peak"] = peak_resident_gib()
    result["added"] = result["peak"] - result["before"]


def tensor_gib(tensors: Iterable[torch.Tensor | None]) -> float:
    """What `tensors` occupy, each storage once (tied weights, views), in GiB; `None`s are skipped."""
    storages = {}
    for tensor in tensors:
        if tensor is not None:
            storage = tensor.untyped_storage()
            storages[(storage.device, storage.data_ptr())] = storage.nbytes()
    return sum(storages.values()) / 2**30


def optimizer_state_gib(optimizer: torch.optim.Optimizer) -> float:
    """The optimizer's state tensors (Adam: `exp_avg`, `exp_avg_sq`, `step`; nested per part in
    `SeparateNormaliserAdamW`'s), in GiB."""

    def tensors(state: dict):
        for value in state.values():
            if isinstance(value, torch.Tensor):
                yield value
            elif isinstance(value, dict):
                yield from tensors(value)

    return tensor_gib(tensor for state in optimizer.state.values() for tensor in tensors(state))
