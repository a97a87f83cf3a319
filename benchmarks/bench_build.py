"""Build time and peak memory of `gest-showcases build` on a generated Gest-raw file.

Generates `image_review_all.json`-shaped JSON Lines (realistic ids, review lengths, ratings and
reviews per user; text-only: `pics` are empty, so no image files are needed) and runs, each in its
own process while sampling the resident memory of the process and its children:

- baseline: one pass of `json.loads` over the file (the least any reader must do);
- build: `gest-showcases build` (raw + s1 parquet, histories, splits, drop report).

Targets (issue 2): 1.5M reviews in under 10 minutes and 4 GB on 2 cores.

```bash
python benchmarks/bench_build.py --output bench_build.json             # 1.5M reviews
python benchmarks/bench_build.py --reviews 100000 --output small.json
```
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _env
import numpy as np
import psutil
import pyarrow.parquet as pq

# Published Gest-raw shape: 1,487,747 reviews, 868,937 users, 64,527 businesses.
_USERS_PER_REVIEW = 868_937 / 1_487_747
_BUSINESSES_PER_REVIEW = 64_527 / 1_487_747
_RATINGS = ([5, 4, 3, 2, 1], [0.681, 0.194, 0.0595, 0.0255, 0.0394])
_VOCAB_TEXT = (
    "the food was great and service friendly we ordered pizza pasta salad soup burger fries chicken "
    "tacos sushi ramen noodles rice curry steak fish dessert cake coffee tea wine beer place staff "
    "nice good amazing delicious fresh hot cold slow fast price cheap expensive portion big small "
    "table wait minutes again would recommend love best ever really very little bit too not"
)
_VOCAB = _VOCAB_TEXT.split()


def generate_reviews(path: Path, num_reviews: int, seed: int = 0) -> None:
    """Write `num_reviews` text-only Gest-raw records to `path`."""
    rng = np.random.default_rng(seed)
    num_users = max(1, round(num_reviews * _USERS_PER_REVIEW))
    num_businesses = max(1, round(num_reviews * _BUSINESSES_PER_REVIEW))
    # Reviews per user: Zipf(2.6) has mean ~1.77 (Gest: 1.71) and a long tail of power users.
    per_user = np.minimum(rng.zipf(2.6, size=num_users), min(5_000, max(1, num_businesses // 4)))
    users = np.repeat(np.arange(num_users), per_user)[:num_reviews]
    users = rng.permutation(np.concatenate([users, rng.integers(0, num_users, num_reviews - len(users))]))
    businesses = np.minimum(rng.zipf(1.3, size=num_reviews) - 1, num_businesses - 1)
    businesses = rng.permutation(num_businesses)[businesses]
    # A user reviews a business once: redraw repeated pairs uniformly (a few exact repeats remain,
    # and are dropped by the build as duplicate reviews).
    for _ in range(5):
        _, first = np.unique(users.astype(np.int64) * num_businesses + businesses, return_index=True)
        repeated = np.setdiff1d(np.arange(num_reviews), first)
        businesses[repeated] = rng.integers(0, num_businesses, size=len(repeated))
    # 21-digit user ids and 24-hex business ids, each from two halves (too wide for one int64).
    user_ids = [f"1{a:010d}{b:010d}" for a, b in rng.integers(0, 10**10, size=(num_users, 2)).tolist()]
    business_ids = [
        f"{a:012x}{b:012x}" for a, b in rng.integers(0, 16**12, size=(num_businesses, 2)).tolist()
    ]
    shares = np.asarray(_RATINGS[1]) / sum(_RATINGS[1])  # published shares, rounded
    ratings = rng.choice(_RATINGS[0], size=num_reviews, p=shares)
    # Review length in words: log-normal, mean ~40; about 3% of Gest reviews are empty.
    lengths = np.clip(rng.lognormal(3.3, 0.9, size=num_reviews), 1, 1_000).astype(np.int64)
    lengths[rng.random(num_reviews) < 0.03] = 0
    words = rng.choice(_VOCAB, size=200_000)
    text = " ".join(words)
    word_starts = np.concatenate([[0], np.cumsum([len(word) + 1 for word in words])])
    starts = rng.integers(0, len(words) - 1_001, size=num_reviews)
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(num_reviews):
            begin, end = word_starts[starts[i]], word_starts[starts[i] + lengths[i]] - 1
            review = text[begin:end] if lengths[i] else ""
            handle.write(
                f'{{"business_id": "{business_ids[businesses[i]]}", "user_id": "{user_ids[users[i]]}", '
                f'"rating": {ratings[i]}, "review_text": {json.dumps(review)}, "pics": []}}\n'
            )


def run_measured(command: list[str], sample_s: float = 0.2) -> dict:
    """Run `command`; wall time and peak resident memory of it and its children together.

    Output goes to temporary files, not pipes: progress bars would fill a pipe nobody reads yet.
    """
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True)
        watched = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            try:
                members = [watched, *watched.children(recursive=True)]
                peak = max(peak, sum(member.memory_info().rss for member in members))
            except psutil.NoSuchProcess:
                pass
            time.sleep(sample_s)
        seconds = time.perf_counter() - start
        stdout.seek(0)
        stderr.seek(0)
        if process.returncode:
            raise RuntimeError(f"{command[:3]} failed ({process.returncode}):\n{stderr.read()[-3000:]}")
        return {"seconds": seconds, "peak_rss_gb": peak / 1e9, "stdout": stdout.read()}


_BASELINE = """
import json, sys
n = 0
with open(sys.argv[1], "rb") as handle:
    for line in handle:
        json.loads(line)
        n += 1
print(n)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1_500_000, help="reviews to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-proc", type=int, default=2, help="build processes (image checks)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where to write (default: a temporary folder)"
    )
    parser.add_argument("--output", type=Path, default=Path("bench_build.json"), help="JSON results file")
    _env.add_noisy_argument(parser)
    args = parser.parse_args()
    environment = _env.start(args.noisy)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_build-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        source = workdir / "image_review_all.json"
        started = time.perf_counter()
        generate_reviews(source, args.reviews, args.seed)
        generate_s = time.perf_counter() - started
        (workdir / "images").mkdir(exist_ok=True)
        baseline = run_measured([sys.executable, "-c", _BASELINE, str(source)])
        build = run_measured(
            [
                sys.executable,
                "-m",
                "gest_showcases.cli",
                "build",
                "--input",
                str(source),
                "--images",
                str(workdir / "images"),
                "--output",
                str(workdir / "gest"),
                "--num_proc",
                str(args.num_proc),
            ]
        )
        rows = count_rows(workdir / "gest")
        input_mb = source.stat().st_size / 1e6
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    result = {
        "reviews": args.reviews,
        "input_mb": round(input_mb, 1),
        "generate_seconds": round(generate_s, 1),
        "baseline_json_pass": {k: round(v, 2) for k, v in baseline.items() if k != "stdout"},
        "build": {k: round(v, 2) for k, v in build.items() if k != "stdout"},
        "rows": rows,
    }
    result["time_ratio_build_over_baseline"] = round(build["seconds"] / baseline["seconds"], 2)
    result["targets_met"] = build["seconds"] < 600 and build["peak_rss_gb"] < 4
    print("| step | seconds | peak RSS (GB) |")
    print("|---|---:|---:|")
    print(f"| json.loads pass (baseline) | {baseline['seconds']:.1f} | {baseline['peak_rss_gb']:.2f} |")
    print(f"| gest-showcases build | {build['seconds']:.1f} | {build['peak_rss_gb']:.2f} |")
    print(
        f"\n{args.reviews:,} reviews; build / baseline time: {result['time_ratio_build_over_baseline']}x; "
        f"targets (< 600 s, < 4 GB) met: {result['targets_met']}; rows: {rows}"
    )
    _env.finish(result, environment, args.output)
    return 0


def count_rows(folder: Path) -> dict[str, dict[str, int]]:
    """Rows per config and split of a built dataset folder, from the parquet footers."""
    return {
        config.name: {
            path.name.split("-")[0]: pq.ParquetFile(path).metadata.num_rows
            for path in sorted(config.glob("*.parquet"))
        }
        for config in sorted(folder.iterdir())
        if config.is_dir()
    }


if __name__ == "__main__":
    sys.exit(main())
