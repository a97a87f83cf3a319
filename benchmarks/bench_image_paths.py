"""The path policy on many photos: `data.images._inside` (the folder resolved once, one `lstat` per photo; build's
image check, distill and evaluate since session 27) against resolving each photo's whole path (`outside_before`,
their code before, verbatim), on the same files in the same run. The photos judged outside must be identical.

The folder holds `--photos` small files, a link inside it, a link out of it and a `../` id.

    PYTHONPATH=src python benchmarks/bench_image_paths.py --output image_paths.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _env

from gest_showcases.data.images import _inside, image_path, resolve_image_path
from gest_showcases.errors import InputError


def outside_before(images_dir: str, pic_id: str) -> bool:
    """`data.images._outside` before session 27 (commit 9679f47): one photo's whole path through the policy."""
    try:
        resolve_image_path(image_path(".", pic_id), [images_dir])
    except InputError:
        return True
    except OSError:
        return False
    return False


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20_000)
    parser.add_argument("--output", default="image_paths.json")
    _env.add_noisy_argument(parser)
    args = parser.parse_args(argv)
    environment = _env.start(args.noisy)
    with tempfile.TemporaryDirectory() as work:
        images = Path(work) / "a" / "deep" / "images" / "folder"  # resolving costs a stat per component
        images.mkdir(parents=True)
        pics = [f"pic{i:07d}" for i in range(args.photos)]
        for pic in pics:
            (images / f"{pic}.jpg").write_bytes(b"\xff\xd8")
        (Path(work) / "secret.jpg").write_bytes(b"\xff\xd8")
        (images / "out.jpg").symlink_to(Path(work) / "secret.jpg")
        (images / "in.jpg").symlink_to(images / f"{pics[0]}.jpg")
        pics += ["out", "in", "../../secret"]
        start = time.perf_counter()
        before = {pic for pic in pics if outside_before(str(images), pic)}
        before_seconds = time.perf_counter() - start
        start = time.perf_counter()
        inside = _inside(images, pics)
        after_seconds = time.perf_counter() - start
    after = set(pics) - inside
    report = {
        "photos": len(pics),
        "before_seconds": before_seconds,
        "after_seconds": after_seconds,
        "speedup": before_seconds / after_seconds,
        "identical_outside": before == after,
        "outside": sorted(after),
    }
    print(f"### path policy on {len(pics):,} photos\n")
    print("| each path resolved whole (before) | folder resolved once | speed-up | same photos outside |")
    print("|---:|---:|---:|---|")
    print(f"| {before_seconds:.3f} s | {after_seconds:.3f} s | {report['speedup']:.1f}x | {report['identical_outside']} |")
    return _env.finish(report, environment, args.output)


if __name__ == "__main__":
    main()
