"""Read a built dataset folder (parquet configs listed in its README card) into what extraction needs.

This is the one layer that reads built folders, so it holds the path policy of their stored image paths:
every command that reads a dataset's photos (`features`, `train-clip`, `distill`, `showcase`, `serve`, the
demo) gets its files from `dataset_image_paths` / `image_items`. A stored path must be relative and lead,
once resolved (`..` and symlinks followed), inside the dataset folder or the `--images` folder the user
named (`gest_showcases.data.images.resolve_image_path`); a dataset row holding `/etc/x.jpg`, `../../x` or
a photo that is a symlink out of both folders stops the command, so no dataset can make the package read
a file the user did not point at. The builder stores its photos relative to the dataset folder
(`../images/<pic_id>.jpg` when `--images` was beside it), so those commands need `--images` with the
folder the dataset was built with whenever the photos lie outside the dataset folder.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from gest_showcases.data.images import EMBEDDED_IMAGES_COLUMN, resolve_image_path
from gest_showcases.errors import InputError

logger = logging.getLogger(__name__)

# The columns `dataset_image_paths` reads: enough to resolve every photo rows mention.
IMAGE_COLUMNS = ["review_id", "pics", "pic_paths", "candidate_pics", "candidate_paths", "history_pics"]


def _card_configs(folder: Path) -> dict[str, list[dict]]:
    card = (folder / "README.md").read_text()
    if not card.startswith("---"):
        raise ValueError(f"{folder / 'README.md'} has no YAML front matter listing the dataset's configs")
    front = yaml.safe_load(card.split("---", 2)[1])
    return {entry["config_name"]: entry["data_files"] for entry in front["configs"]}


def read_config_rows(folder: str | Path, config: str = "s1", columns: list[str] | None = None) -> list[dict]:
    """Every row of one config of a built dataset folder, all splits, as dicts (with a `split` key).

    `columns=None` reads every column but the embedded photo bytes (`--copy_images` / `--embed_images` builds):
    the package reads photos through their paths, and the bytes of every photo would be gigabytes at Gest scale.
    """
    folder = Path(folder)
    configs = _card_configs(folder)
    if config not in configs:
        raise ValueError(f"{folder} has no config {config!r}; it has {sorted(configs)}")
    rows: list[dict] = []
    for entry in configs[config]:
        patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
        for pattern in patterns:
            for path in sorted(folder.glob(pattern)):
                names = columns
                if names is None:
                    names = [n for n in pq.read_schema(path).names if n != EMBEDDED_IMAGES_COLUMN]
                for row in pq.read_table(path, columns=names).to_pylist():
                    row["split"] = entry["split"]
                    rows.append(row)
    logger.info("read %d %s rows from %s", len(rows), config, folder)
    return rows


def image_items(
    folder: str | Path, rows: list[dict], images: str | Path | None = None, *, option: str = "--images"
) -> list[tuple[str, Path]]:
    """(pic_id, resolved path) for every image the rows mention: pics, candidate_pics and history_pics.

    Every stored path goes through the path policy (`dataset_image_paths`): it must be relative and lead
    inside `folder` or `images` (the folder the dataset was built with, when its photos lie outside the
    dataset folder). `option` names that folder's command-line option in the messages.

    Raises:
        `InputError`: for the first row holding an absolute path or one that leads outside both folders.
    """
    return list(dataset_image_paths(folder, rows, images, option=option).items())


def image_roots(folder: str | Path, images: str | Path | None = None, option: str = "--images") -> list[Path]:
    """The folders stored image paths may lead into: the dataset folder, then `images` when given."""
    roots = [Path(folder)]
    if images is not None:
        if not Path(images).is_dir():
            raise InputError(f"{option} {images}: no such folder; give the folder the dataset was built with")
        roots.append(Path(images))
    return roots


def dataset_image_paths(
    folder: str | Path, rows: list[dict], images: str | Path | None = None, *, option: str = "--images"
) -> dict[str, Path]:
    """pic_id -> its file, for every image `rows` mention, each stored path checked by `resolve_image_path`.

    `pics`/`pic_paths` and `candidate_pics`/`candidate_paths` carry their paths; `history_pics` carry ids
    only and name `<pic_id>.jpg` beside the stored photos (the builder's one image folder). The ids stay
    in the stored form until they are resolved, so a history id cannot escape the policy either. `option`
    is the command-line option that gave `images`, named in the messages.

    Raises:
        `InputError`: naming the review and the path, for the first path that is absolute or leads
            outside the dataset folder and `images` (a dataset that does so is refused whole: one hostile
            row is reason enough not to trust the others).
    """
    roots = image_roots(folder, images, option)
    stored: dict[tuple[str, str], str] = {}  # (pic_id, stored path) -> the first review naming it
    for row in rows:
        for pics, paths in ((row["pics"], row["pic_paths"]), (row["candidate_pics"], row["candidate_paths"])):
            if len(pics) != len(paths):
                raise InputError(
                    f"{folder}: review {row['review_id']!r} lists {len(pics)} photos but {len(paths)} "
                    "paths; rebuild the dataset"
                )
            for pic, path in zip(pics, paths, strict=True):
                stored.setdefault((pic, path), row["review_id"])
    if stored:
        image_dir = posixpath.dirname(next(iter(stored))[1])
        for row in rows:
            for pic in row["history_pics"]:
                stored.setdefault((pic, posixpath.join(image_dir, f"{pic}.jpg")), row["review_id"])
    # Every stored path is checked, not only the first of each photo: a row is refused for any path it holds.
    files = _resolve_image_paths(dict.fromkeys(path for _, path in stored), roots)
    resolved: dict[str, Path] = {}
    for (pic, path), review in stored.items():
        file = files.get(path)
        if file is None:  # refused: the policy's own message says what is wrong with the path
            try:
                file = resolve_image_path(path, roots, option)
            except InputError as error:
                raise InputError(f"{folder}: review {review!r}: {error}") from error
        if resolved.setdefault(pic, file) != file:
            raise InputError(
                f"{folder}: review {review!r}: photo {pic!r} is stored as {file} and as {resolved[pic]}; "
                "rebuild the dataset"
            )
    return resolved


def _resolve_image_paths(paths: Iterable[str], roots: list[Path]) -> dict[str, Path]:
    """`resolve_image_path` of many stored paths; the ones it refuses are left out.

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


def review_texts(rows: list[dict]) -> list[tuple[str, str]]:
    """(review_id, text) for every target review and every history review of the rows, first text kept."""
    texts: dict[str, str] = {}
    for row in rows:
        texts.setdefault(row["review_id"], row["review_text"])
        for key, text in zip(row["history_review_ids"], row["history_texts"], strict=True):
            texts.setdefault(key, text)
    return list(texts.items())
