"""The one reader of a built dataset folder: its card, its configs and splits, their rows, its image paths.

A folder `gest-showcases build` wrote (or `push --dataset` staged) holds parquet files and a `README.md` whose
YAML front matter lists them, as the Hub does:

```yaml
configs:
- config_name: s1
  data_files:
  - split: train
    path: s1/train-*.parquet
```

`split_front_matter` is the one parser of that header; `dataset_configs` turns it into the files of every
config and split, and `read_rows` / `read_table` read them, each file checked against what `build` writes
(`schema.check_built_table`: a hand-edited file is one line, not a traceback downstream). `load_built`
(`datasets.load_dataset` of a built folder) and every command that reads one (features, stats, showcase, serve,
the demo) go through these.

Image paths. This module holds the path policy of the stored image paths: every command that reads a
dataset's photos gets its files from `dataset_image_paths` / `image_items`. A stored path must be relative
and lead, once resolved (`..` and symlinks followed), inside the dataset folder or the `--images` folder the
user named (`gest_showcases.data.images.resolve_image_path`); a dataset row holding `/etc/x.jpg`, `../../x`
or a photo that is a symlink out of both folders stops the command, so no dataset can make the package read
a file the user did not point at. The builder stores its photos relative to the dataset folder
(`../images/<pic_id>.jpg` when `--images` was beside it), so those commands need `--images` with the folder
the dataset was built with whenever the photos lie outside the dataset folder.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from gest_showcases.errors import InputError, one_line

from .images import EMBEDDED_IMAGES_COLUMN, resolve_image_path, resolve_image_paths
from .schema import check_built_table

logger = logging.getLogger(__name__)

CARD_NAME = "README.md"
# The columns `dataset_image_paths` reads: enough to resolve every photo rows mention.
IMAGE_COLUMNS = ["review_id", "pics", "pic_paths", "candidate_pics", "candidate_paths", "history_pics"]
# A card's YAML header: `---` alone on the first line, the YAML, `---` alone on a line.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)


def split_front_matter(card_text: str) -> tuple[dict, str]:
    """(YAML front matter as a dict, the body) of a card.

    Raises:
        `InputError`: when the card has no YAML front matter, one that is not valid YAML (or nested deeper than the
        parser's stack), or one that is not a mapping.
    """
    match = _FRONT_MATTER.match(card_text)
    if match is None:
        raise InputError("the card has no YAML front matter")
    try:
        front = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        raise InputError(f"the card's YAML front matter is not valid YAML ({one_line(error)})") from error
    except RecursionError as error:
        raise InputError("the card's YAML front matter is nested too deep to read") from error
    if not isinstance(front, dict):
        raise InputError("the card's YAML front matter is not a mapping")
    return front, card_text[match.end() :].strip()


def read_card(folder: str | Path) -> dict:
    """The YAML front matter of a built folder's `README.md`.

    Raises:
        `InputError`: when the folder has no `README.md` or the card no front matter.
    """
    card = Path(folder) / CARD_NAME
    if not Path(folder).is_dir():
        raise InputError(f"{folder}: no such folder; pass a folder `build` wrote")
    if not card.is_file():
        raise InputError(
            f"{folder} has no {CARD_NAME}: not a built dataset folder; pass a folder `build` wrote"
        )
    try:
        front, _ = split_front_matter(card.read_text(encoding="utf-8"))
    except InputError as error:
        raise InputError(f"{card}: {error}: not a built dataset's card; rebuild the folder") from error
    return front


def dataset_configs(folder: str | Path) -> dict[str, dict[str, list[Path]]]:
    """`{config: {split: [parquet files]}}` from the `configs:` of a built folder's card, in the card's order.

    A split's `path` is a glob (or a list of globs) relative to the folder; its files are each glob's
    matches, sorted, in the order of the globs. A card is data: one whose paths name `../other/*.parquet` or an
    absolute path is refused. Links inside the folder are followed: a Hub snapshot's files are links into the cache,
    and a user may keep a split on another disk.

    Raises:
        `InputError`: a `configs:` entry of the wrong shape, or a path that leads out of the folder.
    """
    folder = Path(folder)
    card = folder / CARD_NAME
    configs: dict[str, dict[str, list[Path]]] = {}
    entries = read_card(folder).get("configs", [])
    if not isinstance(entries, list) or not all(_is_config_entry(config) for config in entries):
        raise InputError(
            f"{card}: `configs:` is not a list of {{config_name, data_files: [{{split, path}}]}}; rebuild the folder"
        )
    for config in entries:
        splits = configs.setdefault(config["config_name"], {})
        for entry in config["data_files"]:
            patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            files = splits.setdefault(entry["split"], [])
            for pattern in patterns:
                if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
                    raise InputError(f"{card}: data file path {pattern!r} leads out of the folder; rebuild it")
                try:
                    files += sorted(path for path in folder.glob(pattern) if path.is_file())
                except (ValueError, IndexError) as error:  # pathlib: "Invalid pattern", or "." / "" (no name)
                    message = f"{card}: data file path {pattern!r} is not a glob of files ({error or 'empty'}); rebuild it"
                    raise InputError(message) from error
    return configs


def _is_config_entry(config) -> bool:
    """Whether a `configs:` item has the shape `build` writes (a card is data: anything may be there)."""
    if not isinstance(config, dict) or not isinstance(config.get("config_name"), str):
        return False
    data_files = config.get("data_files")
    if not isinstance(data_files, list):
        return False
    for entry in data_files:
        if not isinstance(entry, dict) or not isinstance(entry.get("split"), str):
            return False
        paths = entry.get("path")
        paths = paths if isinstance(paths, list) else [paths]
        if not paths or not all(isinstance(path, str) and path for path in paths):
            return False
    return True


def config_files(folder: str | Path, config: str) -> dict[str, list[Path]]:
    """`{split: [parquet files]}` of one config of a built folder.

    Raises:
        `InputError`: when the card lists no such config.
    """
    configs = dataset_configs(folder)
    if config not in configs:
        raise InputError(f"{folder} has no config {config!r}; it has {sorted(configs)}")
    return configs[config]


def _split_files(folder: str | Path, config: str, split: str | None) -> dict[str, list[Path]]:
    files = config_files(folder, config)
    if split is None:
        return files
    if split not in files:
        raise InputError(f"{folder} (config {config!r}) has no split {split!r}; it has {list(files)}")
    return {split: files[split]}


def _columns(path: Path, columns: list[str] | None, with_images: bool) -> list[str] | None:
    if columns is not None or with_images:
        return columns
    # The photo bytes of a `--copy_images` / `--embed_images` build: the package reads photos through their
    # paths, and the bytes of every photo would be gigabytes at Gest scale.
    with _parquet_file(path):
        names = pq.read_schema(path).names
    return [name for name in names if name != EMBEDDED_IMAGES_COLUMN]


def parquet_row_count(path: Path) -> int:
    """The rows of one of a built folder's Parquet files, from its footer; one line naming a file pyarrow cannot
    read."""
    with _parquet_file(path):
        return pq.ParquetFile(path).metadata.num_rows


@contextmanager
def _parquet_file(path: Path) -> Iterator[None]:
    """A Parquet file pyarrow cannot read (truncated, not Parquet, a column missing): one line naming it."""
    try:
        yield
    except pa.ArrowException as error:
        message = f"{path}: cannot be read as this dataset's Parquet ({one_line(error)}); rebuild it"
        raise InputError(message) from error


def _read_parquet(path: Path, config: str, columns: list[str] | None, with_images: bool) -> pa.Table:
    """One parquet file of `config`, checked against what `build` writes into it (`check_built_table`)."""
    selected = _columns(path, columns, with_images)
    with _parquet_file(path):
        table = pq.read_table(path, columns=selected)
    check_built_table(table, f"{path} ({config})", config, columns)
    return table


def read_rows(
    folder: str | Path,
    config: str = "s1",
    columns: list[str] | None = None,
    *,
    split: str | None = None,
    with_images: bool = False,
) -> list[dict]:
    """The rows of one config of a built folder (of one `split`, or all), as dicts with a `split` key.

    `columns=None` reads every column but the embedded photo bytes (`images`, of `--copy_images` /
    `--embed_images` builds) unless `with_images`.
    """
    rows: list[dict] = []
    for name, paths in _split_files(folder, config, split).items():
        for path in paths:
            for row in _read_parquet(path, config, columns, with_images).to_pylist():
                row["split"] = name
                rows.append(row)
    logger.info("read %d %s rows from %s", len(rows), config, folder)
    return rows


def read_table(
    paths: list[Path], config: str, columns: list[str] | None = None, *, with_images: bool = False
) -> pa.Table:
    """Parquet files of a built folder's `config` (one split's, from `dataset_configs`) as one Arrow table, columns
    as `read_rows`."""
    return pa.concat_tables([_read_parquet(path, config, columns, with_images) for path in paths])


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
    files = resolve_image_paths(dict.fromkeys(path for _, path in stored), roots)
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
