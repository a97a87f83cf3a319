"""Where the memory of `bench_pc2l.py` goes (issue 18), on CPU: the process's resident set phase by phase, and
each training variant alone in a fresh process, its step's peak split into what holds it.

- Phases: `bench_pc2l.py`'s training and generation in this order, in one process as the benchmark runs them,
  the resident set (RSS) after each phase, before and after the heap memory glibc kept is released, and the
  phase's peak.
- Variants: each in a fresh process (so that nothing of another variant stays), with the model a user of that
  variant trains: the peak of its first step (which allocates Adam's states) and of a later one, and the later
  step's peak split, by `torch.distributed._tools.mem_tracker.MemTracker` (it follows every tensor), into
  parameters, gradients, optimizer states, activations and temporaries at that moment; the rest of the peak over
  the imports is what the C allocator holds. Also what the step saves for backward, its logits, and the step
  under the FLOP counter that `bench_pc2l.py` runs.
- Allocator: the full PC2L variant once more with glibc's mmap threshold fixed at 1 MiB (`MALLOC_MMAP_THRESHOLD_`),
  so that freed activations go back to the system at once: the peak that glibc's heaps add.

Memory, unlike time, does not depend on the machine's load, so this runs anywhere:

    PYTHONPATH=src python benchmarks/memory_pc2l.py --output memory_pc2l.json
"""

import argparse
import json
import os
import subprocess
import sys

import _env
import torch
from bench_pc2l import (
    SEPARATE,
    TARGET_TOKENS,
    VARIANTS,
    bench_generation,
    bench_training,
    build_model,
    saved_for_backward,
    separate_normaliser_optimizer,
    synthetic_batch,
    training_step,
)
from memory_stats import (
    optimizer_state_gib,
    peak_during,
    peak_mark,
    process_peak_gib,
    release_freed_memory,
    resident_gib,
    tensor_gib,
)
from torch.distributed._tools.mem_tracker import MemTracker
from torch.utils.flop_counter import FlopCounterMode

VOCAB_SIZE = 50257
# glibc's mmap threshold for the allocator check: blocks from 1 MiB on are mapped, and unmapped when freed.
FIXED_MMAP_THRESHOLD = {"MALLOC_MMAP_THRESHOLD_": str(2**20)}


class PhaseLog:
    """Called by `bench_training` / `bench_generation` after each phase: records the resident set then, before
    and after releasing freed heap memory, and the phase's peak."""

    def __init__(self):
        self.rows = [{"phase": "imports", "resident_gib": resident_gib(), "peak_gib": process_peak_gib()}]
        self.mark = peak_mark()

    def __call__(self, phase: str) -> None:
        row = {"phase": phase, "peak_gib": process_peak_gib(since=self.mark), "resident_gib": resident_gib()}
        release_freed_memory()
        row["resident_released_gib"] = resident_gib()
        self.rows.append(row)
        self.mark = peak_mark()


def measure_phases(batch_size: int, gen_batch_size: int) -> dict:
    """`bench_pc2l.py`'s CPU run (one warm-up round, one timed round, one generate call each), phase by phase."""
    log = PhaseLog()
    args = argparse.Namespace(warmup=1, steps=1, gen_repeats=1, gen_batch_size=gen_batch_size)
    device = torch.device("cpu")
    batch = synthetic_batch(max(batch_size, gen_batch_size), VOCAB_SIZE, device)
    train_batch = {key: value[:batch_size] for key, value in batch.items()}
    log("synthetic batch")
    training, resident = bench_training(train_batch, args, device, phase=log)
    log("training model freed")
    bench_generation(batch, args, device, phase=log)
    step_memory = {name: {key: row[key] for key in ("step_peak_memory_gib", "step_memory_gib")}
                   for name, row in training.items()}  # fmt: skip
    return {"phases": log.rows, "training_resident_gib": resident, "step_memory_gib": step_memory,
            "process_peak_gib": process_peak_gib()}  # fmt: skip


def measure_variant(name: str, batch_size: int) -> dict:
    """One variant's model (built with its own configuration) and AdamW, alone in this process: the memory
    of its steps and what holds the peak of a later one (GiB)."""
    device = torch.device("cpu")
    record = {"variant": name, "after_imports_gib": resident_gib()}
    batch = synthetic_batch(batch_size, VOCAB_SIZE, device)
    model, optimizer = build_model(device, *VARIANTS[name])
    if name == SEPARATE:
        optimizer = separate_normaliser_optimizer(model)
    step = training_step(name, batch, model, optimizer)
    record["model_built_gib"] = resident_gib()
    record["parameters_gib"] = tensor_gib(model.parameters())
    with peak_during(device) as first:
        step()
    record["first_step_peak_gib"] = first["peak"]
    record["after_first_step_gib"] = resident_gib()  # before glibc's heaps are released
    record["adam_states_gib"] = optimizer_state_gib(optimizer)
    with peak_during(device) as later:
        step()
    record["step_peak_gib"] = later["peak"]
    record["step_adds_gib"] = later["added"]
    record["after_step_gib"] = resident_gib()
    release_freed_memory()
    record["after_step_released_gib"] = resident_gib()

    tracker = MemTracker()
    tracker.track_external(model, optimizer, *batch.values())
    with tracker:
        step()
    peak = tracker.get_tracker_snapshot("peak")[device]
    record["tensors_at_peak_gib"] = {str(kind.value if hasattr(kind, "value") else kind).lower(): size / 2**30
                                     for kind, size in peak.items()}  # fmt: skip
    with saved_for_backward(step.parameters) as saved:
        step()
    record["saved_for_backward_gib"] = saved["gib"]
    record["target_logits_gib"] = batch_size * TARGET_TOKENS * model.config.decoder.vocab_size * 4 / 2**30
    with peak_during(device) as counted, FlopCounterMode(display=False):
        step()
    record["flop_counter_step_peak_gib"] = counted["peak"]
    # What the C allocator holds at the peak beyond the live tensors (and beyond the imports' own memory).
    record["allocator_gib"] = (
        record["step_peak_gib"] - record["after_imports_gib"] - record["tensors_at_peak_gib"]["total"]
    )
    return record


def run_fresh(arguments: list[str], environment: dict | None = None) -> dict:
    """This script in a fresh process with `arguments`; its JSON answer."""
    command = [sys.executable, __file__, *arguments]
    completed = subprocess.run(
        command, env={**os.environ, **(environment or {})}, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def print_report(report: dict) -> None:
    phases = report["phases"]
    print(f"\n| phase of bench_pc2l.py (CPU, batch {report['batch_size']}) | peak GiB | RSS after GiB "
          "| RSS after, freed heap released GiB |")  # fmt: skip
    print("|---|---|---|---|")
    for row in phases["phases"]:
        released = row.get("resident_released_gib")
        released = "" if released is None else f"{released:.2f}"
        print(f"| {row['phase']} | {row['peak_gib']:.2f} | {row['resident_gib']:.2f} | {released} |")
    print(f"\nprocess peak: {phases['process_peak_gib']:.2f} GiB")
    print("\n| variant, fresh process | first step peak | step peak | in bench_pc2l.py | params | grads "
          "| Adam states | activations | temporaries | allocator | saved for backward | logits [B, L, V] "
          "| step peak under FLOP counter |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in report["variants"]:
        tensors = row["tensors_at_peak_gib"]
        in_bench = phases["step_memory_gib"][row["variant"]]["step_peak_memory_gib"]
        print(f"| {row['variant']} | {row['first_step_peak_gib']:.2f} | {row['step_peak_gib']:.2f} | "
              f"{in_bench:.2f} | "
              f"{tensors['parameter']:.2f} | {tensors['gradient']:.2f} | {tensors['optstate']:.2f} | "
              f"{tensors['activation']:.2f} | {tensors['temp']:.2f} | {row['allocator_gib']:.2f} | "
              f"{row['saved_for_backward_gib']:.2f} | {row['target_logits_gib']:.3f} | "
              f"{row['flop_counter_step_peak_gib']:.2f} |")  # fmt: skip
    imports = report["variants"][0]["after_imports_gib"]
    print(f"\n(GiB. Step peak: a fresh process's RSS, = imports {imports:.2f} + the tensors alive at the peak "
          "(MemTracker's split; gradients accumulated over two decoder calls count as temporaries) + the allocator's "
          "rest. In bench_pc2l.py: the same step on the model all variants share, heap released before it.)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=4, help="training batch (bench_pc2l.py's, CPU)")
    parser.add_argument("--gen-batch-size", type=int, default=4, help="generation batch")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--output", default="memory_pc2l.json", help="write the results as JSON here")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    # Internal: what one fresh process measures, printed as JSON.
    parser.add_argument("--measure", choices=["phases", *VARIANTS], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.measure == "phases":
        print(json.dumps(measure_phases(args.batch_size, args.gen_batch_size)))
        return
    if args.measure is not None:
        print(json.dumps(measure_variant(args.measure, args.batch_size)))
        return

    # Memory does not depend on the load: the run is never refused, and never noisy.
    environment = {**_env.environment(), "noisy": False}
    common = ["--batch-size", str(args.batch_size), "--gen-batch-size", str(args.gen_batch_size)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    report = {"batch_size": args.batch_size, "gen_batch_size": args.gen_batch_size}
    report["phases"] = run_fresh(["--measure", "phases", *common])
    report["variants"] = [run_fresh(["--measure", name, *common]) for name in args.variants]
    if "pc2l" in args.variants:
        fixed = run_fresh(["--measure", "pc2l", *common], FIXED_MMAP_THRESHOLD)
        report["pc2l_fixed_mmap_threshold"] = fixed
    print_report(report)
    if "pc2l_fixed_mmap_threshold" in report:
        fixed = report["pc2l_fixed_mmap_threshold"]
        print(f"pc2l with glibc's mmap threshold fixed at 1 MiB: step peak {fixed['step_peak_gib']:.2f} GiB, "
              f"allocator {fixed['allocator_gib']:.2f} GiB, RSS between steps {fixed['after_step_gib']:.2f} GiB")  # fmt: skip
    _env.finish(report, environment, args.output)


if __name__ == "__main__":
    main()
