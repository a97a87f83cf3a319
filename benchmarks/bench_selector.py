"""Benchmark of the DPP selector's training step at the paper's sizes: distinct images once vs once per slot.

One training step (fetching the examples, collation, forward, DPP log-likelihood, backward, Adam step) on
the same batches three ways, timed in one run with their steps interleaved:
- `before` (the baseline: the step as it was before issue 18, kept here): `collate_selection` pads every
  example's pool into `candidate_features` `[B, N, 512]`, the image MLP runs on every slot, padding
  included, and autograd differentiates through both Cholesky factorisations;
- `per_slot`: today's model fed the same padded `candidate_features` (its log-det backward is the
  inverse from the Cholesky factor): the share of the gain that is not the distinct images';
- `distinct_images`: today's training step, `collate_selection(..., distinct_images=True)` sends each
  distinct image of the batch once and the model embeds those and gathers.
Target: `distinct_images` at least 2.5x faster than `before`, with the same loss and gradients (checked
on the first batch, from the same weights).

The data has Gest-Synth's shape (a `gest-synth` training split: 2,089 examples over 172 businesses, pools
of 10 to 57 images, 6.7x fewer distinct images than padded slots in a batch of 512): `--examples`
examples over `--businesses` businesses, each example's business drawn uniformly, pools of `--min-pool`
to `--max-pool` random 512-d unit features, 1 to 3 targets; the paper's selector (MLPs
1024/512 -> 512 -> 512 -> 256 -> 128, Adam, batch 512).

Imports torch, transformers and `gest_showcases.selection` only, so it runs on the GPU machine:

    PYTHONPATH=src python benchmarks/bench_selector.py --output selector.json
    PYTHONPATH=src python benchmarks/bench_selector.py --device cuda --output $OUT/selector.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from unittest import mock

import _env
import torch

from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig, modeling_dpp
from gest_showcases.selection.dataset import SelectionDataset, collate_selection

FEATURE_DIM = 512
PATHS = ("before", "per_slot", "distinct_images")


def autograd_cholesky_logdet(matrix: torch.Tensor, jitter: float) -> torch.Tensor:
    """`modeling_dpp.cholesky_logdet` before issue 18: autograd through `torch.linalg.cholesky`."""
    eye = torch.eye(matrix.shape[-1], dtype=torch.float64, device=matrix.device)
    factor = torch.linalg.cholesky(matrix.double() + jitter * eye)
    return (2.0 * factor.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)).to(matrix.dtype)


def synthetic_dataset(args) -> SelectionDataset:
    """`args.examples` examples over `args.businesses` pools of random unit features (Gest-Synth's shape)."""
    generator = torch.Generator().manual_seed(args.seed)
    sizes = torch.randint(args.min_pool, args.max_pool + 1, (args.businesses,), generator=generator)
    starts = torch.cumsum(sizes, 0) - sizes
    features = torch.randn(int(sizes.sum()), FEATURE_DIM, generator=generator)
    candidates, targets = [], []
    for business in torch.randint(args.businesses, (args.examples,), generator=generator).tolist():
        size = int(sizes[business])
        candidates.append(torch.arange(size) + starts[business])
        count = int(torch.randint(1, 4, (), generator=generator))
        targets.append(torch.randperm(size, generator=generator)[:count])
    profiles = torch.randn(args.examples, 2, FEATURE_DIM, generator=generator)
    normalize = torch.nn.functional.normalize
    return SelectionDataset(
        normalize(features, dim=-1), normalize(profiles[:, 0], dim=-1), normalize(profiles[:, 1], dim=-1),
        candidates, targets,
    )  # fmt: skip


def training_step(model, optimizer, items: list[dict], path: str, device: torch.device) -> torch.Tensor:
    """One step of `path` on the examples `items` (a list of dataset items, fetched by the caller as the
    DataLoader would); returns the loss (gradients stay until the next step's zero_grad)."""
    distinct = path == "distinct_images"
    batch = {name: tensor.to(device) for name, tensor in collate_selection(items, distinct).items()}
    images = (
        {"image_features": batch["image_features"], "candidate_image_index": batch["candidate_image_index"]}
        if distinct
        else {"candidate_features": batch["candidate_features"]}
    )
    old_logdet = (
        mock.patch.object(modeling_dpp, "cholesky_logdet", autograd_cholesky_logdet)
        if path == "before"
        else contextlib.nullcontext()
    )
    optimizer.zero_grad(set_to_none=True)
    with old_logdet:
        output = model(batch["profile_text"], batch["profile_image"], candidate_mask=batch["candidate_mask"],
                       target_mask=batch["target_mask"], **images)  # fmt: skip
        output.loss.backward()
    optimizer.step()
    return output.loss.detach()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def largest_relative_difference(model: torch.nn.Module, reference: torch.nn.Module) -> float:
    """Largest gradient difference over parameters, each relative to the reference gradient's largest entry."""
    return max(
        ((a.grad - b.grad).abs().max() / b.grad.abs().max().clamp(min=1e-30)).item()
        for a, b in zip(model.parameters(), reference.parameters(), strict=True)
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--threads", type=int, default=2, help="torch CPU threads (the target is for 2 cores)"
    )
    parser.add_argument("--batch-size", type=int, default=512, help="examples per step (the paper's 512)")
    parser.add_argument("--examples", type=int, default=2048)
    parser.add_argument("--businesses", type=int, default=172)
    parser.add_argument("--min-pool", type=int, default=10)
    parser.add_argument("--max-pool", type=int, default=57)
    parser.add_argument("--steps", type=int, default=5, help="timed steps of each path (interleaved)")
    parser.add_argument(
        "--warmup", type=int, default=0, help="untimed steps of each path after the first (agreement) step"
    )
    parser.add_argument(
        "--config", default=None, help="JSON of DPPSelectorConfig overrides (default: the paper's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="bench_selector.json")
    _env.add_noisy_argument(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    environment = _env.start(args.noisy)
    device = torch.device(args.device)

    dataset = synthetic_dataset(args)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed + 1)).tolist()
    batches = [order[start : start + args.batch_size]
               for start in range(0, len(order) - args.batch_size + 1, args.batch_size)]  # fmt: skip
    if not batches:
        parser.error(f"--examples {args.examples} is fewer than one batch of {args.batch_size}")
    config = DPPSelectorConfig(**(json.loads(args.config) if args.config else {}))
    models, optimizers = {}, {}
    for path in PATHS:
        torch.manual_seed(args.seed)
        models[path] = DPPImageSelector(config).to(device).train()
        optimizers[path] = torch.optim.Adam(models[path].parameters(), lr=1e-3)

    # Same weights, same batch: the paths must agree before any is timed (after which all step alike).
    first = [dataset[i] for i in batches[0]]
    losses = {path: training_step(models[path], optimizers[path], first, path, device) for path in PATHS}
    agreement = {
        path: {"loss_abs_difference": (losses[path] - losses["before"]).abs().item(),
               "gradient_max_relative_difference": largest_relative_difference(models[path], models["before"])}
        for path in PATHS[1:]
    }  # fmt: skip

    durations = {path: [] for path in PATHS}
    for round_index in range(args.warmup + args.steps):
        indices = batches[(round_index + 1) % len(batches)]
        for path in PATHS:
            synchronize(device)
            start = time.perf_counter()
            items = [dataset[i] for i in indices]  # the DataLoader's fetch, part of a step
            training_step(models[path], optimizers[path], items, path, device)
            synchronize(device)
            if round_index >= args.warmup:
                durations[path].append(time.perf_counter() - start)

    # The fetch and collation alone (distinct images), as the DataLoader does it: items one at a time, each with a
    # copy of its pool's features (before session 27), against `__getitems__` and one gather per batch (today).
    fetch = {"items_one_at_a_time": [], "getitems": []}
    same_batches = True
    for indices in batches:
        start = time.perf_counter()
        copied = collate_selection([dataset[i] for i in indices], True)
        fetch["items_one_at_a_time"].append(time.perf_counter() - start)
        start = time.perf_counter()
        gathered = collate_selection(dataset.__getitems__(indices), True)
        fetch["getitems"].append(time.perf_counter() - start)
        same_batches &= all(torch.equal(copied[key], gathered[key]) for key in copied)
    fetch_s = {path: statistics.median(values) for path, values in fetch.items()}

    batch_items = [[dataset[i] for i in indices] for indices in batches]
    slots = statistics.mean(collate_selection(items)["candidate_mask"].numel() for items in batch_items)
    distinct = statistics.mean(len(collate_selection(items, True)["image_features"]) for items in batch_items)
    seconds = {path: statistics.median(values) for path, values in durations.items()}
    results = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({args.threads} threads)",
        "batch_size": args.batch_size,
        "examples": args.examples,
        "businesses": args.businesses,
        "pool_sizes": [args.min_pool, args.max_pool],
        "image_mlp_rows_per_step": {"before": slots, "per_slot": slots, "distinct_images": distinct},
        "step_s": seconds,
        "speedup_over_before": {path: seconds["before"] / seconds[path] for path in PATHS[1:]},
        "target_speedup": 2.5,
        "first_step_agreement_with_before": agreement,
        "fetch_and_collate_s": fetch_s,
        "fetch_speedup": fetch_s["items_one_at_a_time"] / fetch_s["getitems"],
        "fetch_same_batches": same_batches,
    }
    print(f"\nDPP selector training step on {results['device']}, batch {args.batch_size}, {args.examples} "
          f"examples over {args.businesses} businesses, pools of {args.min_pool}-{args.max_pool} images\n")  # fmt: skip
    print(
        "| path | image MLP rows per step | step s (median) | x before | loss diff | max rel. gradient diff |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for path in PATHS:
        same = agreement.get(path, {"loss_abs_difference": 0.0, "gradient_max_relative_difference": 0.0})
        print(f"| {path} | {results['image_mlp_rows_per_step'][path]:,.0f} | {seconds[path]:.3f} | "
              f"{seconds['before'] / seconds[path]:.2f} | {same['loss_abs_difference']:.1e} | "
              f"{same['gradient_max_relative_difference']:.1e} |")  # fmt: skip
    print(f"\ndistinct_images: {results['speedup_over_before']['distinct_images']:.2f}x the step before issue 18 "
          "(target 2.5x)")  # fmt: skip
    print(f"fetch and collation of a batch (median): {fetch_s['items_one_at_a_time']:.3f} s items one at a time, "
          f"{fetch_s['getitems']:.3f} s with __getitems__ ({results['fetch_speedup']:.2f}x), same batches: "
          f"{same_batches}")  # fmt: skip
    return _env.finish(results, environment, args.output)


if __name__ == "__main__":
    main()
