"""How fast Gest-Synth generates: the world, the photos (batched vs one at a time), and everything at scale.

Baseline in the same run: rendering the same photos one image per call (`render_batch` with B=1)
against the batched renderer (B=256), both including JPEG encoding. Then the full generation of
`--num_reviews` reviews with images (default 100,000) on `--num_workers` processes.

    PYTHONPATH=src python benchmarks/bench_synth.py --num_reviews 100000 --num_workers 2 --output synth.json

CPU only (numpy + Pillow); it needs no GPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import _env

from gest_showcases.synth.render import encode_jpeg, photo_params, render_batch
from gest_showcases.synth.world import SynthConfig, generate_world
from gest_showcases.synth.write import RENDER_BATCH, write_world


def _render_rate(params: dict, count: int, batch: int, size: int) -> float:
    """Images per second rendering and encoding the first `count` photos `batch` at a time."""
    start = time.perf_counter()
    for first in range(0, count, batch):
        rows = {k: v[first : min(first + batch, count)] for k, v in params.items()}
        for image in render_batch(rows, size, 0, first // batch):
            encode_jpeg(image)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_reviews", type=int, default=100_000)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--compare_images", type=int, default=2048, help="photos rendered by both renderers")
    parser.add_argument("--output", type=str, default="bench_synth.json", help="JSON file for the figures")
    _env.add_noisy_argument(parser)
    args = parser.parse_args()
    environment = _env.start(args.noisy)

    start = time.perf_counter()
    world = generate_world(SynthConfig(seed=0, num_reviews=args.num_reviews))
    world_s = time.perf_counter() - start

    params = photo_params(world, 0)
    count = min(args.compare_images, len(world.photos))
    single = _render_rate(params, count, 1, args.image_size)
    batched = _render_rate(params, count, RENDER_BATCH, args.image_size)

    folder = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        start = time.perf_counter()
        counts = write_world(world, folder, args.image_size, args.num_workers)
        write_s = time.perf_counter() - start
        files = [*os.scandir(folder), *os.scandir(folder / "images")]
        disk_mb = sum(entry.stat().st_size for entry in files if entry.is_file()) / 2**20
    finally:
        shutil.rmtree(folder)
    total_s = world_s + write_s
    result = {
        "num_reviews": counts["reviews"],
        "num_images": counts["images"],
        "image_size": args.image_size,
        "num_workers": args.num_workers,
        "world_s": round(world_s, 2),
        "write_s": round(write_s, 2),
        "total_s": round(total_s, 2),
        "reviews_per_s": round(counts["reviews"] / total_s, 1),
        "images_per_s": round(counts["images"] / write_s, 1),
        "render_single_images_per_s": round(single, 1),
        "render_batched_images_per_s": round(batched, 1),
        "batched_speedup": round(batched / single, 2),
        "disk_mb": round(disk_mb, 1),
    }
    print(
        f"| Gest-Synth, {result['num_reviews']:,} reviews, {result['num_images']:,} images {args.image_size}px | value |"
    )
    print("|---|---|")
    print(f"| world (users, businesses, texts) | {world_s:.1f} s |")
    print(
        f"| files + images, {args.num_workers} workers | {write_s:.1f} s ({result['images_per_s']:,.0f} images/s) |"
    )
    print(f"| total | {total_s:.1f} s ({result['reviews_per_s']:,.0f} reviews/s) |")
    print(f"| render+encode, one image per call (baseline) | {single:,.0f} images/s |")
    print(
        f"| render+encode, {RENDER_BATCH} per batch | {batched:,.0f} images/s ({result['batched_speedup']}x) |"
    )
    print(f"| disk | {disk_mb:,.0f} MB |")
    print(
        f"| load average at the start (1 min) | {environment['load_average_1m_start']} on "
        f"{environment['cores']} cores |"
    )
    _env.finish(result, environment, args.output)


if __name__ == "__main__":
    main()
