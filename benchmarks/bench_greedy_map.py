"""Benchmark `greedy_map` (fast greedy MAP, Chen et al. 2018) against the naive greedy rule.

1. One kernel, N = 1,000 items, k = 50: `greedy_map` vs the naive greedy rule, which recomputes
   `det(L[S + j])` for every remaining candidate at every step (batched `slogdet`, O(N k^4)). The picks
   must be identical; target: at least 20x faster.
2. Batched selection throughput at the paper's average pool size (N = 36, padded pools of 10 to 36
   images with masks), k = 3, in selections per second; target: 50,000/s on 2 CPU cores.

Imports only torch and `gest_showcases.selection` (which needs torch + transformers), so it runs on the GPU machine:

    PYTHONPATH=src python benchmarks/bench_greedy_map.py --device cuda --output $OUT/greedy_map.json
"""

from __future__ import annotations

import argparse
import statistics
import time

import _env
import torch

from gest_showcases.selection.greedy import greedy_map


def random_kernels(
    batch_size: int, num_items: int, dtype: torch.dtype, device: str, seed: int
) -> torch.Tensor:
    """DPP kernels shaped like the selector's: diag(q) (V V^T + eps I) diag(q), V unit rows of size 128."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.nn.functional.normalize(
        torch.randn(batch_size, num_items, 128, generator=generator), dim=-1
    )
    quality = torch.exp(torch.randn(batch_size, num_items, generator=generator))
    similarity = features @ features.transpose(1, 2) + 1e-3 * torch.eye(num_items)
    kernel = quality.unsqueeze(-1) * similarity * quality.unsqueeze(-2)
    return kernel.to(device=device, dtype=dtype)


def naive_greedy_map(kernel: torch.Tensor, k: int) -> list[int]:
    """The greedy rule by definition: at each step, `slogdet` of `L[S + j]` for every remaining `j`."""
    num_items = kernel.shape[0]
    selected: list[int] = []
    for _ in range(k):
        remaining = torch.ones(num_items, dtype=torch.bool, device=kernel.device)
        remaining[selected] = False
        candidates = remaining.nonzero().squeeze(1)  # [M]
        chosen = torch.tensor(selected, dtype=torch.long, device=kernel.device).expand(len(candidates), -1)
        subsets = torch.cat([chosen, candidates.unsqueeze(1)], dim=1)  # [M, |S| + 1]
        blocks = kernel[subsets.unsqueeze(2), subsets.unsqueeze(1)]  # [M, |S| + 1, |S| + 1]
        sign, logdet = torch.linalg.slogdet(blocks)
        score = torch.where(sign > 0, logdet, float("-inf"))
        selected.append(int(candidates[score.argmax()]))
    return selected


def timed(function, device: str, repeats: int) -> tuple[float, object]:
    """Median wall time of `repeats` calls (after one warm-up) and the last result."""
    result = function()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = function()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--threads", type=int, default=2, help="torch CPU threads (the target is for 2 cores)"
    )
    parser.add_argument("--batch_size", type=int, default=16384, help="pools per call in the throughput part")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default="greedy_map.json")
    _env.add_noisy_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    environment = _env.start(args.noisy)
    device = args.device

    # 1. fast vs naive, one large kernel
    kernel = random_kernels(1, 1000, torch.float64, device, seed=0)[0]
    naive_time, naive_picks = timed(lambda: naive_greedy_map(kernel, 50), device, repeats=1)
    fast_time, fast = timed(lambda: greedy_map(kernel, 50), device, args.repeats)
    identical = fast.indices.tolist() == naive_picks

    # 2. batched throughput at the paper's pool size, variable pools with masks
    rows = []
    lengths = torch.randint(10, 37, (args.batch_size,), generator=torch.Generator().manual_seed(1)).to(device)
    mask = torch.arange(36, device=device).unsqueeze(0) < lengths.unsqueeze(1)
    for dtype in (torch.float32, torch.float64):
        pools = random_kernels(args.batch_size, 36, dtype, device, seed=2)
        seconds, _ = timed(lambda pools=pools: greedy_map(pools, 3, mask=mask), device, args.repeats)
        rows.append(
            {
                "dtype": str(dtype).removeprefix("torch."),
                "seconds": seconds,
                "selections_per_s": args.batch_size / seconds,
            }
        )

    device_name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({args.threads} threads)"
    report = {
        "device": device_name,
        "torch": torch.__version__,
        "fast_vs_naive": {
            "num_items": 1000,
            "k": 50,
            "naive_seconds": naive_time,
            "greedy_map_seconds": fast_time,
            "speedup": naive_time / fast_time,
            "identical_picks": identical,
            "target_speedup": 20,
        },
        "throughput": {
            "num_items": 36,
            "k": 3,
            "batch_size": args.batch_size,
            "target_per_s": 50000,
            "results": rows,
        },
    }
    print(f"### greedy_map on {device_name}, torch {torch.__version__}\n")
    print("| case | naive greedy | greedy_map | speedup | identical picks |")
    print("|---|---:|---:|---:|---|")
    print(
        f"| N=1000, k=50, float64 | {naive_time * 1e3:.1f} ms | {fast_time * 1e3:.2f} ms | "
        f"{naive_time / fast_time:.0f}x (target 20x) | {identical} |\n"
    )
    print(f"| batched N<=36, k=3 ({args.batch_size} pools) | time per call | selections/s (target 50,000) |")
    print("|---|---:|---:|")
    for row in rows:
        print(f"| {row['dtype']} | {row['seconds'] * 1e3:.1f} ms | {row['selections_per_s']:,.0f} |")
    _env.finish(report, environment, args.output)


if __name__ == "__main__":
    main()
