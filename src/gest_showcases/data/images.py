"""Image files of a Gest image folder: `<image_dir>/<pic_id>.jpg`, checked before they are used.

Many Gest image URLs have expired, so missing and broken files are normal. [`check_images`] sorts
each pic id into ok / missing / unreadable, once per id, on several processes when asked.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

_BATCH = 256


class ImageStatus(enum.IntEnum):
    OK = 0
    MISSING = 1
    UNREADABLE = 2


def image_path(images_dir: str | Path, pic_id: str) -> Path:
    """The file of one image: `<images_dir>/<pic_id>.jpg`."""
    return Path(images_dir) / f"{pic_id}.jpg"


def probe_image(path: str | Path) -> ImageStatus:
    """Whether an image file exists and decodes.

    `Image.verify()` alone passes a JPEG cut short (it only reads headers), so the image is decoded
    in draft mode: libjpeg still walks the whole entropy-coded stream, at a fraction of the cost of a
    full decode.
    """
    try:
        if os.stat(path).st_size == 0:
            return ImageStatus.UNREADABLE
    except FileNotFoundError:
        return ImageStatus.MISSING
    try:
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))
            image.load()
    # A user-uploaded file may break PIL in many ways (OSError, SyntaxError, DecompressionBombError,
    # struct.error, ...): any of them means the file is unusable.
    except Exception:
        return ImageStatus.UNREADABLE
    return ImageStatus.OK


def _probe_batch(job: tuple[str, list[str]]) -> list[int]:
    images_dir, pic_ids = job
    return [probe_image(image_path(images_dir, pic_id)) for pic_id in pic_ids]


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


def read_image_bytes(images_dir: str | Path, pic_ids: Sequence[str]) -> list[bytes]:
    """The file bytes of each image, for embedding as `datasets.Image()` values."""
    return [image_path(images_dir, pic_id).read_bytes() for pic_id in pic_ids]
