"""The one writer of the tests' photos: random-colour JPEGs of a given size and seed, and JPEGs cut short (files
named as photos whose pixels do not decode)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def _random_pixels(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)  # [H, W, 3]


def jpeg_bytes(size: tuple[int, int] = (40, 56), seed: int = 0, quality: int = 90) -> bytes:
    """A random-colour JPEG of `size` (height, width) pixels drawn from `seed`, encoded at `quality`: the bytes of
    the first photo `write_jpegs` writes with the same arguments."""
    buffer = io.BytesIO()
    Image.fromarray(_random_pixels(np.random.default_rng(seed), *size)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def write_jpegs(
    folder: str | Path,
    names: Sequence[str],
    seed: int = 0,
    size: tuple[int, int] = (40, 56),
    quality: int = 90,
) -> dict[str, Path]:
    """Random-colour JPEGs `<folder>/<name>.jpg`, the i-th of `size` (height, width) plus (3i, -2i) pixels, all
    drawn in turn from one generator seeded with `seed`, encoded at `quality`; returns {name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = {}
    for i, name in enumerate(names):
        pixels = _random_pixels(rng, size[0] + 3 * i, size[1] - 2 * i)
        paths[name] = folder / f"{name}.jpg"
        Image.fromarray(pixels).save(paths[name], "JPEG", quality=quality)
    return paths


def write_truncated_jpeg(
    path: str | Path,
    keep_bytes: int | None = None,
    size: tuple[int, int] = (40, 56),
    seed: int = 0,
    quality: int = 90,
) -> Path:
    """The first `keep_bytes` bytes (defaults to half) of `jpeg_bytes(size, seed, quality)`, written to `path`.

    Half a JPEG has a header that reads (its size is known) and pixels that do not; its first 60 bytes (the JFIF
    header and part of the quantisation table, which only `quality` decides) are not even an image header.
    """
    data = jpeg_bytes(size, seed, quality)
    path = Path(path)
    path.write_bytes(data[: len(data) // 2 if keep_bytes is None else keep_bytes])
    return path
