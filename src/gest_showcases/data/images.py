"""Image files of a Gest image folder: `<image_dir>/<pic_id>.jpg`, checked before they are used.

Many Gest image URLs have expired, so missing and broken files are normal. [`check_images`] sorts
each pic id into ok / missing / unreadable, once per id, on several processes when asked.
"""

from __future__ import annotations

import enum
import io
import logging
import os
import posixpath
import shutil
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from gest_showcases.errors import InputError

logger = logging.getLogger(__name__)

_BATCH = 256


# One pixel limit for every image the package decodes (builder, features, evaluate, pipeline, app).
# Gest photos are at most a few megapixels; 40 MP admits any real photo while an 11000x11000 PNG
# (121 MP, 1.3-2.8 GB once decoded) or a decompression bomb is refused before its pixels are read.
# The column of a built config holding the photos' bytes (`build --copy_images` / `--embed_images`, `push --dataset`).
EMBEDDED_IMAGES_COLUMN = "images"
MAX_IMAGE_PIXELS = 40_000_000
# Photos are resized by their short side: a 1 x 20000 strip passes the pixel limit but becomes a
# 224 x 4.5M image (10 GB, 80 s) once resized. No real photo is more than 50 times wider than tall.
MAX_ASPECT_RATIO = 50


# Our own check (below) refuses any image PIL would warn about, so its warning is only noise.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class UnreadableImageError(OSError):
    """An image file that is missing, empty, too large or does not decode."""


def check_image_size(path: str | Path, image: Image.Image, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """The one size check, on the header (before any pixel is decoded): pixel count and aspect ratio.

    Raises:
        `UnreadableImageError`: a 0-pixel image, more than `max_pixels` pixels, or a side more than
            `MAX_ASPECT_RATIO` times the other.
    """
    width, height = image.size
    if width * height > max_pixels:
        raise UnreadableImageError(f"{path}: {width}x{height} pixels is over the limit of {max_pixels:,}")
    if width == 0 or height == 0:
        raise UnreadableImageError(f"{path}: the image has no pixels ({width}x{height})")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise UnreadableImageError(
            f"{path}: {width}x{height} is more than {MAX_ASPECT_RATIO} times wider than tall (or taller than wide)"
        )


def open_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open, size-check and decode one image file as RGB: the package's only way to read a photo.

    The pixel count is checked on the header before any pixel is decoded, and a 0-pixel image is
    refused, so a hostile file costs neither memory nor a division by zero downstream.

    Raises:
        `UnreadableImageError`: naming the file, for every failure (PIL raises OSError, SyntaxError,
            DecompressionBombError, struct.error, ValueError, ... on broken files).
    """
    try:
        with Image.open(path) as image:
            check_image_size(path, image, max_pixels)
            return image.convert("RGB")
    except UnreadableImageError:
        raise
    except Exception as error:  # noqa: BLE001 - any decoder failure means the file is unusable
        raise UnreadableImageError(
            f"{path}: not a readable image ({type(error).__name__}: {error})"
        ) from error


def open_image_value(value: dict, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """A `datasets.Image(decode=False)` value (`{"bytes", "path"}`) as an RGB image through `open_image`: in-memory
    images arrive as bytes, others as the path the caller's data names."""
    return open_image(io.BytesIO(value["bytes"]) if value["bytes"] is not None else value["path"], max_pixels)


def resolve_image_path(stored: str | Path, roots: Sequence[str | Path], option: str = "--images") -> Path:
    """The one path policy for stored image paths: relative, and inside one of `roots` once resolved.

    A built dataset stores image paths relative to its folder; `roots` are the folders the user
    pointed at (the dataset folder, an `--images` folder). The first root is the base the relative
    path is joined to. Absolute paths, and `..` or symlinks that lead outside every root, are refused,
    so no dataset row can make the package read or serve a file the user did not point at. `option` is
    the command-line option that names the other roots (`--images`), for the messages.

    Raises:
        `InputError`: when the path is absolute or escapes the roots.
    """
    stored_path = Path(stored)
    if stored_path.is_absolute() or stored_path.drive:
        raise InputError(
            f"image path {str(stored)!r} is absolute; stored image paths must be relative to the dataset"
        )
    resolved_roots = [Path(root).resolve() for root in roots]
    resolved = (resolved_roots[0] / stored_path).resolve()
    if not any(resolved.is_relative_to(root) for root in resolved_roots):
        if len(resolved_roots) == 1:
            raise InputError(
                f"image path {str(stored)!r} leads outside the dataset folder {resolved_roots[0]}; "
                f"pass {option} <the folder the dataset was built with>"
            )
        raise InputError(
            f"image path {str(stored)!r} leads outside the dataset folder and the {option} folder "
            f"({', '.join(map(str, resolved_roots))}); pass {option} <the folder the dataset was built with>, "
            "or rebuild the dataset"
        )
    return resolved


class ImageStatus(enum.IntEnum):
    OK = 0
    MISSING = 1
    UNREADABLE = 2
    OUTSIDE = 3  # a link out of the images folder, which `resolve_image_path` refuses (a copy would publish it)


def resolve_image_paths(paths: Iterable[str], roots: list[Path]) -> dict[str, Path]:
    """`resolve_image_path` of many stored paths (`{path: resolved file}`); the ones it refuses are left out.

    A dataset stores a million photos in a handful of folders, and resolving each path costs a `stat` per
    component (minutes for Gest-s1). So each folder is resolved once by the policy, and a file in it is that
    folder joined with its name, which is what resolving the whole path gives unless the name is itself a
    symlink (one `lstat` per file tells) or `.`/`..`: those, and every path of a folder the policy refuses,
    go through `resolve_image_path` whole.
    """
    folders: dict[str, Path | None] = {}
    files: dict[str, Path] = {}
    for path in paths:
        folder, name = posixpath.split(path)
        if folder not in folders:
            try:
                folders[folder] = resolve_image_path(folder or ".", roots)
            except InputError:
                folders[folder] = None
        base = folders[folder]
        if base is not None and name not in ("", ".", ".."):
            file = base / name
            if not os.path.islink(file):
                files[path] = file
                continue
        try:
            files[path] = resolve_image_path(path, roots)
        except InputError:
            continue
    return files


def image_path(images_dir: str | Path, pic_id: str) -> Path:
    """The file of one image: `<images_dir>/<pic_id>.jpg`."""
    return Path(images_dir) / f"{pic_id}.jpg"


def probe_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> ImageStatus:
    """Whether an image file exists and decodes, within the pixel limit `open_image` applies.

    `Image.verify()` alone passes a JPEG cut short (it only reads headers), so the image is decoded
    in draft mode: libjpeg still walks the whole entropy-coded stream, at a fraction of the cost of a
    full decode. The builder's image check is this function, so every image it keeps is one that
    `open_image` will open later.
    """
    try:
        if os.stat(path).st_size == 0:
            return ImageStatus.UNREADABLE
    # Not only FileNotFoundError: a pic id too long for a file name (ENAMETOOLONG) names no file either.
    except OSError:
        return ImageStatus.MISSING
    try:
        with Image.open(path) as image:
            check_image_size(path, image, max_pixels)
            image.draft("RGB", (64, 64))
            image.load()
    # A user-uploaded file may break PIL in many ways (OSError, SyntaxError, DecompressionBombError,
    # struct.error, ...): any of them means the file is unusable.
    except Exception:
        return ImageStatus.UNREADABLE
    return ImageStatus.OK


def _probe_batch(job: tuple[str, list[str]]) -> list[int]:
    images_dir, pic_ids = job
    inside = _inside(images_dir, pic_ids)
    return [
        probe_image(image_path(images_dir, pic_id)) if pic_id in inside else ImageStatus.OUTSIDE
        for pic_id in pic_ids
    ]


def _inside(images_dir: str | Path, pic_ids: Sequence[str]) -> set[str]:
    """The ids whose file stays inside `images_dir` once resolved (not a link out of it): the one path policy
    decides, the folder resolved once (`resolve_image_paths`). A file that does not exist stays in: its readers
    count it as missing."""
    names = {str(image_path("", pic_id)): pic_id for pic_id in pic_ids}
    return {names[name] for name in resolve_image_paths(names, [Path(images_dir)])}


def photo_files(images_dir: str | Path, pic_ids: Sequence[str]) -> dict[str, Path]:
    """`{pic_id: <images_dir>/<pic_id>.jpg}` for the photos whose file stays inside `images_dir` once resolved (the
    path policy); one whose file is a link out of the folder is left out, never read, with one warning for all.
    Missing files are kept: their readers count them as missing."""
    inside = _inside(images_dir, pic_ids)
    files = {pic: image_path(images_dir, pic) for pic in pic_ids if pic in inside}
    outside = [pic for pic in pic_ids if pic not in inside]
    if outside:
        logger.warning(
            "%d photo file(s) in %s link outside it and are not read: %s",
            len(outside),
            images_dir,
            ", ".join(outside[:5]) + (", ..." if len(outside) > 5 else ""),
        )
    return files


def check_images(images_dir: str | Path, pic_ids: Sequence[str], num_proc: int = 1) -> np.ndarray:
    """Probe the files of `pic_ids` (ids assumed distinct).

    Args:
        images_dir (`str` or `Path`): the image folder.
        pic_ids (`Sequence[str]`): the ids to check.
        num_proc (`int`, *optional*, defaults to `1`): worker processes.

    Returns:
        `np.ndarray` of `int8` [len(pic_ids)]: an [`ImageStatus`] per id.
    """
    images_dir = str(images_dir)
    jobs = [(images_dir, list(pic_ids[i : i + _BATCH])) for i in range(0, len(pic_ids), _BATCH)]
    progress = tqdm(total=len(pic_ids), desc="checking images", unit=" img", unit_scale=True)
    statuses: list[int] = []
    with progress:
        if num_proc > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=num_proc) as pool:
                for result in pool.map(_probe_batch, jobs):
                    statuses.extend(result)
                    progress.update(len(result))
        else:
            for job in jobs:
                result = _probe_batch(job)
                statuses.extend(result)
                progress.update(len(result))
    return np.asarray(statuses, dtype=np.int8)


def link_or_copy(source: str | Path, destination: str | Path) -> None:
    """Put a file at `destination` as a hard link to `source` (no extra disk: image files are never rewritten in
    place), or as a copy where a link cannot be made (another file system, a file system without links).

    An existing `destination` is an error, never overwritten: it may be a link to some source, which a copy
    over it would rewrite.
    """
    try:
        os.link(source, destination)
    except FileExistsError:
        raise
    except OSError:
        shutil.copy2(source, destination)


def read_image_bytes(images_dir: str | Path, pic_ids: Sequence[str]) -> list[bytes]:
    """The file bytes of each image, for embedding as `datasets.Image()` values."""
    return [image_path(images_dir, pic_id).read_bytes() for pic_id in pic_ids]
