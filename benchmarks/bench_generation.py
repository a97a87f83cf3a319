"""Benchmark of PC2L's static-cache generation (`cache_implementation="static"`, compiled decoding step) against
plain `generate` (issue 18).

GPT-2-small size (random weights, as `bench_pc2l.py`'s generation rows), batch 8, 2 beams, 64 new tokens forced,
the encoder included. Measured in one run, each against plain `generate` of the same model on the same inputs:
- `static_eager`: the static cache without compilation (CPU's default; the issue's target: at least 2x plain
  `generate` on CPU): on CPU in float32 its step multiplies by weights prepacked by oneDNN (`PackedWeights`);
- `static_eager_plain_weights`: the same with the model's own weights (`prepacks_weights` off: what the cache alone
  saves; left out where nothing is prepacked, e.g. on CUDA);
- `static_compiled`: the static cache with the compiled step (CUDA's default; on CPU it keeps the plain weights).
The compiled row's first call compiles; its time is reported as `warmup_s` and excluded from the timed calls, which
run in rounds of one call per row (a load change on a shared machine hits every row alike; `x_plain` is the median
of the per-round ratios). Each row says whether its tokens equal plain `generate`'s, and a call with batch size - 1
(the same bucket) says whether it compiled again. `--profile` adds where the time of one plain, one static eager and
one compiled call goes (torch profiler: matrix products and attention against everything else, and the time outside
any operator, i.e. Python).

    PYTHONPATH=src python benchmarks/bench_generation.py --device cpu --output generation_cpu.json
    PYTHONPATH=src python benchmarks/bench_generation.py --device cuda --output $OUT/generation.json
"""

import argparse
import platform
import statistics
import time

import _env
import torch
from bench_pc2l import TARGET_TOKENS, gpt2_small_config, synchronize, synthetic_batch
from torch._dynamo.utils import counters
from transformers import CompileConfig

from gest_showcases.generation import compiled_generation
from gest_showcases.generation.modeling_pc2l import PC2LForConditionalGeneration

ROWS = {
    "plain": {},
    "static_eager": {"cache_implementation": "static", "disable_compile": True},
    "static_eager_plain_weights": {"cache_implementation": "static", "disable_compile": True},
    # CPU compiles the step only when given a compile_config (CUDA by default); the same config on both.
    "static_compiled": {
        "cache_implementation": "static",
        "compile_config": CompileConfig(fullgraph=True, mode="default"),
    },
}
PLAIN_WEIGHTS = "static_eager_plain_weights"  # the row run with `prepacks_weights` off
MATRIX_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::linear", "aten::matmul", "mkldnn::_linear_pointwise")
ATTENTION_OPS = ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::scaled_dot_product_attention")


def profile_call(run) -> dict:
    """Seconds of one call: wall, in matrix products, in attention, in other operators, and outside operators."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
    events = prof.key_averages()
    self_s = {event.key: event.self_cpu_time_total / 1e6 for event in events}
    matrix = sum(self_s.get(name, 0.0) for name in MATRIX_OPS)
    attention = sum(self_s.get(name, 0.0) for name in ATTENTION_OPS)
    operators = sum(self_s.values())
    return {"wall_s": wall, "matrix_products_s": matrix, "attention_s": attention,
            "other_operators_s": operators - matrix - attention,
            "outside_operators_s": max(wall - operators, 0.0)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="at least 2: a batch one smaller checks that the compiled step does not recompile",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed rounds, one call per row each (default: 5 cuda, 3 cpu)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument(
        "--profile", action="store_true", help="add where one plain, one static eager and one compiled call spend time"
    )
    parser.add_argument("--output", default="bench_generation.json", help="write the results as JSON here")
    _env.add_noisy_argument(parser)
    args = parser.parse_args()
    if args.batch_size < 2:  # else the smaller batch is empty and the compiled step fails on it, after the timings
        parser.error(f"--batch-size {args.batch_size}: give at least 2")
    cuda = args.device == "cuda"
    args.repeats = args.repeats or (5 if cuda else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    environment = _env.start(args.noisy)
    device = torch.device(args.device)

    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(gpt2_small_config("none", "none")).to(device).eval()
    if cuda:  # bf16 weights, for plain `generate` and the static cache alike
        model = model.to(torch.bfloat16)
    batch = synthetic_batch(args.batch_size, model.config.decoder.vocab_size, device)
    inputs = {key: batch[key] for key in ("image_features", "image_mask", "review_features", "review_mask")}
    inputs = {
        key: value.to(model.dtype) if value.is_floating_point() else value for key, value in inputs.items()
    }
    generate_kwargs = {"num_beams": 2, "max_new_tokens": TARGET_TOKENS, "min_new_tokens": TARGET_TOKENS,
                       "do_sample": False}  # fmt: skip

    prepacks = compiled_generation.prepacks_weights

    def call(options: dict, batch_inputs: dict = inputs, plain_weights: bool = False):
        compiled_generation.prepacks_weights = (lambda device, dtype: False) if plain_weights else prepacks
        try:
            ids = model.generate(**batch_inputs, **generate_kwargs, **options)
        finally:
            compiled_generation.prepacks_weights = prepacks
        synchronize(device)
        return ids

    # Without prepacking (CUDA, bf16) the plain-weights row is `static_eager` again: left out.
    rows = {name: options for name, options in ROWS.items() if name != PLAIN_WEIGHTS or prepacks(device, model.dtype)}
    results = {}
    reference = None
    for name, options in rows.items():
        start = time.perf_counter()
        ids = call(options, plain_weights=name == PLAIN_WEIGHTS)  # warm-up (the compiled row compiles here)
        warmup = time.perf_counter() - start
        reference = ids if reference is None else reference
        results[name] = {"warmup_s": warmup, "tokens_equal_plain": bool(torch.equal(ids, reference)),
                         "rows_equal_plain": int((ids == reference).all(1).sum()), "times_s": []}  # fmt: skip
        print(f"{name}: warm-up {warmup:.1f} s", flush=True)
    # Rounds of one call per row, so a load change on a shared machine hits every row alike; each ratio is the
    # median of the per-round ratios.
    for _ in range(args.repeats):
        for name, options in rows.items():
            start = time.perf_counter()
            call(options, plain_weights=name == PLAIN_WEIGHTS)
            results[name]["times_s"].append(time.perf_counter() - start)
    for row in results.values():
        seconds = statistics.median(row["times_s"])
        row.update({"call_s": seconds, "explanations_per_s": args.batch_size / seconds,
                    "new_tokens_per_s": args.batch_size * TARGET_TOKENS / seconds,
                    "x_plain": statistics.median(plain / own for plain, own in zip(results["plain"]["times_s"],
                                                                                    row["times_s"], strict=True))})  # fmt: skip
    graphs = counters["stats"]["unique_graphs"]
    smaller = {key: value[: args.batch_size - 1] for key, value in inputs.items()}
    call(ROWS["static_compiled"], smaller)
    results["static_compiled"]["recompiled_for_batch_minus_1"] = counters["stats"]["unique_graphs"] > graphs

    report = {
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": "bf16 weights" if cuda else "fp32",
        "batch_size": args.batch_size,
        "num_beams": 2,
        "new_tokens": TARGET_TOKENS,
        "rows": results,
        "prepacked_weights": prepacks(device, model.dtype),
        "static_eager_over_plain": results["static_eager"]["x_plain"],
        "static_compiled_over_plain": results["static_compiled"]["x_plain"],
    }
    if args.profile:
        report["profile"] = {name: profile_call(lambda options=ROWS[name]: call(options))
                             for name in ("plain", "static_eager", "static_compiled")}  # fmt: skip

    print(f"\nPC2L generation on {report['device']} ({report['precision']}, torch {report['torch']}, "
          f"{report['threads']} threads), batch {args.batch_size}, 2 beams, {TARGET_TOKENS} new tokens\n")  # fmt: skip
    print("| row | s per call | explanations/s | x plain | warm-up s | tokens = plain |")
    print("|---|---|---|---|---|---|")
    for name, row in results.items():
        print(f"| {name} | {row['call_s']:.2f} | {row['explanations_per_s']:.2f} | {row['x_plain']:.2f} | "
              f"{row['warmup_s']:.1f} | {row['rows_equal_plain']}/{args.batch_size} |")  # fmt: skip
    print(f"\nbatch {args.batch_size - 1} after batch {args.batch_size} compiled again: "
          f"{results['static_compiled']['recompiled_for_batch_minus_1']}")  # fmt: skip
    for name, row in report.get("profile", {}).items():
        print(f"profile {name}: " + ", ".join(f"{key} {value:.2f}" for key, value in row.items()))
    _env.finish(report, environment, args.output)


if __name__ == "__main__":
    main()
