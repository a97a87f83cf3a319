"""Build the Gest dataset folder (configs `raw`, `s1`, `s2`) with the paper's processing.

```bash
gest-showcases build --input filter_all_t.json --images google-images --copy_images   # writes ./gest
python -c 'import datasets; print(datasets.load_dataset("gest", "s2"))'
gest-showcases build --input image_review_all.json --images google-images --output_dir gest-raw
```

The folder (`./gest` unless `--output_dir` says otherwise, so that `load_dataset("gest", "s2")` works
from the folder the command ran in) holds parquet files and a dataset card whose YAML `configs:` make
`datasets.load_dataset(folder, "s1")` (and `"raw"`, `"s2"`) work, plus `drop_report.json`: every
skipped record, by reason, with its first places.

Images (columns of `s1`/`s2`; `pics`, `candidate_pics`, `history_pics` are always the ids):

- By default they stay where they are: `pic_paths`/`candidate_paths` are paths relative to the dataset
  folder that lead to the `--images` folder (`../google-images/<pic_id>.jpg`), and there is no
  `datasets.Image()` column. `datasets` opens a path-only `Image()` value relative to the current
  directory, not to the dataset, so such a column would break on load (and in a published copy); the
  package's own commands read these paths with `--images <that folder>`.
- `--copy_images`: a self-contained folder. The images the rows use are hard-linked (copied across
  file systems) into `<output>/images/`, the path columns name `images/<pic_id>.jpg`, and the `images`
  column (`List(Image())`, one per `pics` entry) embeds their bytes, so `load_dataset(folder, "s2")`
  gives PIL images from any directory, and the folder can be moved or published whole.
- `--embed_images`: the `images` column alone; the path columns keep leading to `--images`.

Processing (Section 3 and Appendix A of the paper):

- `raw`: every readable review, once (split `train`).
- `s1`: reviews of at least `min_words` words and at most `max_images` images; image files that are
  missing or do not decode are removed, and a review whose images are all gone is dropped; users
  with a single review are dropped; users are split 8:1:1 (seeded) so that no user is in two splits.
  Each record carries the user's history (their other s1 reviews, never the target itself) and the
  business's candidate pool (every usable s1 image of the business, the target's own included: the
  paper's footnote 5).
- `s2`: reviews cut down to the sentences that describe their images. From `filter_all_t.json` it is
  taken as published (its splits and `history_reviews` kept); otherwise it is built from `s1` by an
  `explanation_filter` (the features' classifier) and is absent when none is given.

Memory stays bounded at the real scale (1.5M reviews): records are streamed into Arrow batches, and
the grouping (histories, pools, splits) is vectorised over Arrow/NumPy arrays, one chunk of users at a
time. The output is written to a temporary sibling folder and moved into place at the end, so an
interrupted build leaves the previous output (or nothing) behind, and a rebuild from the same inputs
writes the same bytes.

What the builder refuses (an `InputError` that says what to do, before anything is written): an
output folder that is, contains or lies inside an input file or the image folder (paths compared
once resolved, symlinks and `..` included), since replacing it would delete the inputs; and a
non-empty output folder that is not a built dataset. Each build holds an exclusive lock on its
temporary folders (`.NAME.tmp-*`, `.NAME.old-*` beside the output); the next build into the same
output removes the ones no live build holds, so a killed build leaves nothing behind for long.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from datasets import Features, Image, List
from tqdm.auto import tqdm

try:  # the stale-folder locks need flock (POSIX); elsewhere stale folders are left alone
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

from gest_showcases.errors import InputError, one_line

from .folder import config_files, parquet_row_count
from .images import (
    EMBEDDED_IMAGES_COLUMN,
    ImageStatus,
    check_images,
    image_path,
    link_or_copy,
    read_image_bytes,
)
from .readers import located_reviews
from .records import CONFIGS, SPLITS, DropReport, Review, split_sentences, write_drop_reports
from .schema import built_columns, check_built_table

logger = logging.getLogger(__name__)

ExplanationFilter = Callable[[list[str], list[str]], list[str]]
"""`(sentences, image_paths) -> kept sentences`: which sentences of a review describe its images."""

_READ_BATCH = 50_000
# Work units per chunk of users: one per output row, history entry and candidate image, and
# `_EMBED_COST` per embedded image (~50 KB each); about 1 GB of Arrow data at most per chunk.
_CHUNK_COST = 2_000_000
_EMBED_COST = 500
DEFAULT_OUTPUT_DIR = "gest"
COPIED_IMAGES = "images"  # the folder of a self-contained dataset's images (`--copy_images`)
BUILD_OPTIONS_FILE = "build_options.json"  # what `read_build_options` reads back for a rebuild
# The `build_dataset` options recorded there: those that decide the splits, the filters and the photo storage.
BUILD_OPTIONS = ("seed", "split_ratios", "min_words", "max_images", "max_history", "embed_images", "copy_images")

S2_ABSENT_NOTE = (
    "`s2` (the explanation subset) is absent: the input is not the published `filter_all_t.json`, "
    "and no explanation classifier was given to distil the `s1` reviews into the sentences that "
    "describe their images. Write it with `gest-showcases distill --dataset <this folder>` (or "
    "`build_dataset(..., explanation_filter=...)`)."
)


# ---------------------------------------------------------------------------------------------
# Schemas


def dataset_features(config: str, embed_images: bool = False) -> Features:
    """The `datasets.Features` of one config (`"raw"`, `"s1"` or `"s2"`): `schema.built_columns` in datasets' types."""
    features = Features.from_arrow_schema(pa.schema(list(built_columns(config).items())))
    if embed_images and config != "raw":
        features[EMBEDDED_IMAGES_COLUMN] = List(Image())
    return features


_STAGE_SCHEMA = pa.schema(
    [
        *dataset_features("raw").arrow_schema.remove_metadata(),
        pa.field("split", pa.string()),
        pa.field("history_review_ids", pa.list_(pa.string())),
        pa.field("history_texts", pa.list_(pa.string())),
        pa.field("_place", pa.string()),
        pa.field("_keep", pa.bool_()),
    ]
)


class _ConfigWriter:
    """One parquet file per split of a config, written chunk by chunk.

    A split's file is created with its first row: `datasets` cannot load a declared split that has
    no rows, so empty splits are left out of the folder and of the card.
    """

    def __init__(self, folder: Path, config: str, splits: Sequence[str], features: Features):
        self.folder = folder / config
        self.splits = list(splits)
        self.schema = features.arrow_schema
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = {}

    def write(self, table: pa.Table) -> None:
        """Write the rows of `table` to their split (its `split` column, or the only split)."""
        for split in self.splits:
            part = table if len(self.splits) == 1 else table.filter(pc.equal(table["split"], split))
            if not part.num_rows:
                continue
            if split not in self.writers:
                self.folder.mkdir(parents=True, exist_ok=True)
                path = self.folder / f"{split}-00000-of-00001.parquet"
                self.writers[split] = pq.ParquetWriter(path, self.schema, compression="zstd")
                self.rows[split] = 0
            self.writers[split].write_table(
                pa.Table.from_arrays([part[name] for name in self.schema.names], schema=self.schema)
            )
            self.rows[split] += part.num_rows

    def close(self) -> dict[str, int]:
        """Rows written per split, in split order (empty splits absent)."""
        for writer in self.writers.values():
            writer.close()
        return {split: self.rows[split] for split in self.splits if split in self.rows}


# ---------------------------------------------------------------------------------------------
# Arrow helpers


def _array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _offsets(lists: pa.Array) -> np.ndarray:
    """List offsets starting at 0 (a sliced array's own offsets may not)."""
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy()
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])


def _lists(offsets: np.ndarray, values: pa.Array) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), _array(values))


def _sorted_unique(values: pa.Array) -> pa.Array:
    unique = pc.unique(values)
    return unique.take(pc.sort_indices(unique))


def stored_image_paths(pics: pa.Array, prefix: str) -> pa.ListArray:
    """`pics` (list<str>) -> `prefix + pic + ".jpg"`, list by list: the `pic_paths`/`candidate_paths` values."""
    flat = pc.list_flatten(pics)
    return _lists(_offsets(pics), pc.binary_join_element_wise(prefix, flat, ".jpg", ""))


def _group_starts(sorted_keys: pa.Array) -> np.ndarray:
    """Start of each run of equal keys in a sorted array, then its length: `[0, ..., n]`."""
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    change = pc.not_equal(sorted_keys.slice(1), sorted_keys.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    return np.concatenate([[0], np.flatnonzero(change) + 1, [n]]).astype(np.int64)


def history_index(starts: np.ndarray, max_history: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of each row's history: the other rows of its group, never itself.

    Args:
        starts (`np.ndarray` [G + 1]): group boundaries of rows sorted by user (`_group_starts`).
        max_history (`int`): most history entries per row; the first ones of the group are kept
            (the builder sorts a user's reviews most recent first).

    Returns:
        `(offsets [n + 1], index [offsets[-1]])`: row `r`'s history is `index[offsets[r]:offsets[r + 1]]`.
    """
    sizes = np.diff(starts)
    group_start = np.repeat(starts[:-1], sizes)  # [n]
    position = np.arange(starts[-1]) - group_start  # [n] rank of the row in its group
    count = np.minimum(np.repeat(sizes, sizes) - 1, max_history)  # [n]
    offsets = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    row = np.repeat(np.arange(len(count)), count)  # [H] owning row of each entry
    rank = np.arange(offsets[-1]) - offsets[row]  # [H] 0..count-1
    # Skip the row itself: ranks at or past its own position shift by one.
    return offsets, group_start[row] + rank + (rank >= position[row])


def assign_splits(num_users: int, seed: int, ratios: Sequence[float]) -> np.ndarray:
    """Seeded user split: `int8` codes 0/1/2 (train/validation/test) for `num_users` users.

    Validation and test get `floor(n * ratio)` users, train the rest (the paper's 95,270/11,908/11,908).
    """
    permutation = np.random.default_rng(seed).permutation(num_users)
    num_val, num_test = (math.floor(num_users * ratio + 1e-9) for ratio in ratios[1:])
    num_train = num_users - num_val - num_test
    codes = np.empty(num_users, dtype=np.int8)
    codes[permutation[:num_train]] = 0
    codes[permutation[num_train : num_train + num_val]] = 1
    codes[permutation[num_train + num_val :]] = 2
    return codes


def business_pools(business_ids: pa.Array, pics: pa.Array) -> tuple[np.ndarray, pa.ListArray]:
    """Each business's candidate pool: the distinct images of all its rows, sorted.

    Returns:
        `(code [n], pools [B])`: row `r`'s pool is `pools[code[r]]`.
    """
    businesses = _sorted_unique(business_ids)
    code = pc.index_in(business_ids, value_set=businesses).to_numpy().astype(np.int64)
    flat = pc.list_flatten(pics)
    uniq = _sorted_unique(flat)
    owner = code[pc.list_parent_indices(pics).to_numpy()]  # [P] business of each listed image
    # One int64 key per (business, image) pair: np.unique both dedupes and sorts by business.
    keys = np.unique(
        owner * max(len(uniq), 1) + pc.index_in(flat, value_set=uniq).to_numpy().astype(np.int64)
    )
    pool_owner, pool_pic = np.divmod(keys, max(len(uniq), 1))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(pool_owner, minlength=len(businesses)))])
    return code, _lists(offsets, uniq.take(pa.array(pool_pic)))


# ---------------------------------------------------------------------------------------------
# Stage 1: stream the inputs once, deduplicate, write raw, flag the paper's review filters.


def _stage_reviews(
    records: Iterable[tuple[str, Review]],
    raw: _ConfigWriter,
    read_report: DropReport,
    s1_report: DropReport,
    min_words: int,
    max_images: int,
) -> pa.Table:
    seen: set[str] = set()
    columns: dict[str, list] = {name: [] for name in _STAGE_SCHEMA.names}
    batches = []

    def flush() -> None:
        batch = pa.Table.from_pydict(columns, schema=_STAGE_SCHEMA)
        raw.write(batch)
        batches.append(batch)
        for values in columns.values():
            values.clear()

    for place, review in records:
        review_id = review.review_id
        if review_id in seen:
            read_report.add("duplicate review", place)
            continue
        seen.add(review_id)
        keep = True
        if len(review.review_text.split()) < min_words:
            s1_report.add("too short", place)
            keep = False
        elif len(review.pics) > max_images:
            s1_report.add("too many images", place)
            keep = False
        columns["review_id"].append(review_id)
        columns["user_id"].append(review.user_id)
        columns["business_id"].append(review.business_id)
        columns["rating"].append(review.rating)
        columns["review_text"].append(review.review_text)
        columns["pics"].append(review.pics)
        columns["time"].append(review.time)
        columns["split"].append(review.split)
        columns["history_review_ids"].append([rid for rid, _ in review.history_reviews])
        columns["history_texts"].append([text for _, text in review.history_reviews])
        columns["_place"].append(place)
        columns["_keep"].append(keep)
        if len(columns["review_id"]) >= _READ_BATCH:
            flush()
    if columns["review_id"] or not batches:
        flush()
    return pa.concat_tables(batches)


# ---------------------------------------------------------------------------------------------
# Stage 2: the paper's filters on whole columns.


def _drop_single_review_users(table: pa.Table, report: DropReport) -> pa.Table:
    counts = pc.value_counts(table["user_id"])
    repeat_users = counts.field("values").filter(pc.greater_equal(counts.field("counts"), 2))
    keep = pc.is_in(table["user_id"], value_set=repeat_users)
    dropped = table.filter(pc.invert(keep))
    report.add_many(
        "single-review user", dropped["_place"].slice(0, report.max_examples).to_pylist(), dropped.num_rows
    )
    return table.filter(keep)


class _ImageCheck:
    """Image status per pic id, each file probed once per build."""

    def __init__(self, images_dir: Path, num_proc: int):
        self.images_dir = images_dir
        self.num_proc = num_proc
        self.ids = pa.array([], pa.string())
        self.status = np.empty(0, dtype=np.int8)

    def __call__(self, pic_ids: pa.Array) -> np.ndarray:
        """`ImageStatus` codes [len(pic_ids)] of distinct `pic_ids`."""
        new = pic_ids.filter(pc.is_null(pc.index_in(pic_ids, value_set=self.ids)))
        if len(new):
            status = check_images(self.images_dir, new.to_pylist(), self.num_proc)
            self.ids = pa.concat_arrays([self.ids, new])
            self.status = np.concatenate([self.status, status])
        return self.status[pc.index_in(pic_ids, value_set=self.ids).to_numpy().astype(np.int64)]


def _drop_unusable_images(table: pa.Table, check: _ImageCheck, report: DropReport) -> pa.Table:
    """Remove missing or unreadable images from `pics`; drop reviews that had images and lost all."""
    pics = _array(table["pics"])
    flat = pc.list_flatten(pics)
    uniq = _sorted_unique(flat)
    status = check(uniq)
    for reason, code in (
        ("missing image", ImageStatus.MISSING),
        ("unreadable image", ImageStatus.UNREADABLE),
        ("image linking out of the images folder", ImageStatus.OUTSIDE),
    ):
        bad = uniq.filter(pa.array(status == code))
        report.add_many(
            reason, [f"{pic}.jpg" for pic in bad.slice(0, report.max_examples).to_pylist()], len(bad)
        )
    usable = pc.is_in(flat, value_set=uniq.filter(pa.array(status == ImageStatus.OK)))
    parents = pc.list_parent_indices(pics).to_numpy()[usable.to_numpy(zero_copy_only=False)]
    kept_counts = np.bincount(parents, minlength=len(pics))
    table = table.set_column(
        table.schema.get_field_index("pics"),
        "pics",
        _lists(np.concatenate([[0], np.cumsum(kept_counts)]), flat.filter(usable)),
    )
    lost_all = (pc.list_value_length(pics).to_numpy() > 0) & (kept_counts == 0)
    places = table["_place"].filter(pa.array(lost_all))
    report.add_many("no usable image", places.slice(0, report.max_examples).to_pylist(), len(places))
    return table.filter(pa.array(~lost_all))


# ---------------------------------------------------------------------------------------------
# Stage 3: histories, pools and splits, one chunk of users at a time.


@dataclass
class _Layout:
    images_dir: Path
    image_prefix: str  # the image folder relative to the dataset folder, with a trailing "/"
    max_history: int
    seed: int
    split_ratios: tuple[float, float, float]
    embed_images: bool  # write the `images` column (bytes)
    # `--copy_images`: the built folder's images/ (then image_prefix is "images/")
    copy_to: Path | None = None
    copied: set[str] = field(default_factory=set)

    def copy(self, pic_ids: pa.Array) -> None:
        """Link (or copy) the files of `pic_ids` into `copy_to`, each once."""
        self.copy_to.mkdir(exist_ok=True)
        for pic in pc.unique(pic_ids).to_pylist():
            if pic not in self.copied:
                link_or_copy(image_path(self.images_dir, pic), self.copy_to / f"{pic}.jpg")
                self.copied.add(pic)


def _enriched_chunks(table: pa.Table, layout: _Layout, published_history: bool) -> Iterator[pa.Table]:
    """Yield the rows of `table` with the s1 columns (and `split`), chunks of whole users.

    Args:
        table: staged rows (one config's reviews, already filtered).
        layout: where the images are and how histories and splits are made.
        published_history: keep the `history_review_ids`/`history_texts` the file published (for
            `filter_all_t.json`) instead of rebuilding them from the user's other rows.
    """
    # A user's reviews most recent first (time unknown: by review id), so capped histories keep the latest.
    # Unknown times sort last by standing in as the smallest int64.
    keys = pa.table(
        {
            "user_id": table["user_id"],
            "time": pc.fill_null(table["time"], pa.scalar(np.iinfo(np.int64).min, pa.int64())),
            "review_id": table["review_id"],
        }
    )
    order = pc.sort_indices(
        keys, sort_keys=[("user_id", "ascending"), ("time", "descending"), ("review_id", "ascending")]
    )
    table = table.take(order)
    starts = _group_starts(_array(table["user_id"]))
    sizes = np.diff(starts)
    pics = _array(table["pics"])
    if table["split"].null_count == table.num_rows:
        split_codes = np.repeat(assign_splits(len(sizes), layout.seed, layout.split_ratios), sizes)
        split_names = pa.DictionaryArray.from_arrays(pa.array(split_codes), pa.array(SPLITS)).cast(
            pa.string()
        )
        table = table.set_column(table.schema.get_field_index("split"), "split", split_names)
    business_code, pools = business_pools(_array(table["business_id"]), pics)
    pool_paths = stored_image_paths(pools, layout.image_prefix)
    if layout.copy_to is not None:  # a pool holds every usable image of its business: all the table's images
        layout.copy(pc.list_flatten(pools))
    hist_offsets, hist_index = history_index(starts, layout.max_history)

    # Chunk boundaries at user boundaries, so each chunk owns every history row it needs.
    cost = 1 + np.diff(hist_offsets) + np.diff(_offsets(pools))[business_code]
    if layout.embed_images:
        cost += _EMBED_COST * np.diff(_offsets(pics))
    cumulative = np.concatenate([[0], np.cumsum(cost)])[starts]  # [G + 1] cost before each group
    bounds = [0]
    while bounds[-1] < len(sizes):
        target = np.searchsorted(cumulative, cumulative[bounds[-1]] + _CHUNK_COST, side="right") - 1
        bounds.append(min(max(target, bounds[-1] + 1), len(sizes)))

    with tqdm(total=table.num_rows, desc="histories and pools", unit=" rev", unit_scale=True) as progress:
        for first, last in zip(bounds[:-1], bounds[1:], strict=True):
            lo, hi = int(starts[first]), int(starts[last])
            chunk = table.slice(lo, hi - lo).combine_chunks()
            chunk_pics = _array(chunk["pics"])
            offsets = hist_offsets[lo : hi + 1]
            index = pa.array(hist_index[offsets[0] : offsets[-1]] - lo)
            offsets = offsets - offsets[0]
            history_pics = chunk_pics.take(index)
            columns = {
                "pic_paths": stored_image_paths(chunk_pics, layout.image_prefix),
                "history_pics": _lists(_offsets(history_pics)[offsets], pc.list_flatten(history_pics)),
                "candidate_pics": pools.take(pa.array(business_code[lo:hi])),
                "candidate_paths": pool_paths.take(pa.array(business_code[lo:hi])),
            }
            if not published_history:
                columns["history_review_ids"] = _lists(offsets, _array(chunk["review_id"]).take(index))
                columns["history_texts"] = _lists(offsets, _array(chunk["review_text"]).take(index))
            if layout.embed_images:
                columns[EMBEDDED_IMAGES_COLUMN] = embedded_images(chunk_pics, layout.images_dir)
            for name, values in columns.items():
                if name in chunk.column_names:
                    chunk = chunk.set_column(chunk.schema.get_field_index(name), name, values)
                else:
                    chunk = chunk.append_column(name, values)
            yield chunk
            progress.update(hi - lo)


def embedded_images(pics: pa.Array, images_dir: Path) -> pa.ListArray:
    """`List(Image())` storage of `pics` (list<str>): per row, `{"bytes", "path": "<pic_id>.jpg"}` of each image,
    the bytes read from `images_dir/<pic_id>.jpg`."""
    flat = pc.list_flatten(pics).to_pylist()
    images = pa.StructArray.from_arrays(
        [
            pa.array(read_image_bytes(images_dir, flat), pa.binary()),
            pa.array([f"{pic}.jpg" for pic in flat], pa.string()),
        ],
        names=["bytes", "path"],
    )
    return _lists(_offsets(pics), images)


def _explain(
    chunk: pa.Table,
    explanation_filter: ExplanationFilter,
    images_dir: Path,
    report: DropReport,
    progress: tqdm,
) -> pa.Table:
    """The s2 rows of an s1 chunk: its reviews cut to the sentences the filter keeps. A filter with a `filter_many`
    method (`features.distill.ExplanationFilter`) scores the whole chunk in one call; any other is called per review."""
    review_sentences = [split_sentences(text) for text in chunk["review_text"].to_pylist()]
    review_images = [[str(image_path(images_dir, pic)) for pic in pics] for pics in chunk["pics"].to_pylist()]
    filter_many = getattr(explanation_filter, "filter_many", None)
    if filter_many is not None:
        kept_lists = filter_many(review_sentences, review_images)
    else:
        kept_lists = [
            list(explanation_filter(sentences, images)) if sentences else []
            for sentences, images in zip(review_sentences, review_images, strict=True)
        ]
    explanations, sentence_lists, keep = [], [], []
    for sentences, kept, place in zip(review_sentences, kept_lists, chunk["_place"].to_pylist(), strict=True):
        if not set(kept) <= set(sentences):
            raise ValueError(f"explanation_filter returned sentences that are not in the review: {kept!r}")
        keep.append(bool(kept))
        if kept:
            explanations.append(" ".join(kept))
            sentence_lists.append(kept)
        else:
            report.add("no explanation", place)
    progress.update(len(review_sentences))
    chunk = chunk.filter(pa.array(keep, pa.bool_()))
    chunk = chunk.append_column("explanation", pa.array(explanations, pa.string()))
    return chunk.append_column("explanation_sentences", pa.array(sentence_lists, pa.list_(pa.string())))


def _published_explanations(chunk: pa.Table) -> pa.Table:
    """`filter_all_t.json` reviews already are explanations: their text is kept as published."""
    texts = chunk["review_text"].to_pylist()
    chunk = chunk.append_column("explanation", chunk["review_text"])
    return chunk.append_column(
        "explanation_sentences", pa.array([split_sentences(text) for text in texts], pa.list_(pa.string()))
    )


# ---------------------------------------------------------------------------------------------
# The card and the whole build


IMAGES_HEADING = "## Images"  # the card section on where the images are (`cards.dataset_card` replaces it)


def _images_note(layout: _Layout) -> str:
    where = (
        f"`pic_paths` and `candidate_paths` name `{COPIED_IMAGES}/<pic_id>.jpg` in this folder (the images the "
        "rows use, linked or copied here on build), and a `history_pics` id names the file of the same name there."
        if layout.copy_to is not None
        else f"Stored by reference: `pic_paths` and `candidate_paths` lead to `{layout.image_prefix}<pic_id>.jpg` "
        "(relative to this folder: the image folder it was built with, outside it), and a `history_pics` id names "
        "the file of the same name there. Commands that read the photos need `--images <that folder>`."
    )
    if layout.embed_images:
        return where + (
            "\n\n`images` (`List(Image())`): the bytes of the review's own images (`pics`), decoded to PIL images "
            "by `load_dataset`."
        )
    return where + (
        "\n\nThere is no `datasets.Image()` column: `datasets` opens an image path relative to the current "
        "directory, so one stored by path would break on load. Rebuild with `--copy_images` (a self-contained "
        "folder) or `--embed_images` for an `images` column that decodes to PIL images."
    )


def _dataset_card(
    rows: dict[str, dict[str, int]],
    inputs: Sequence[Path],
    layout: _Layout,
    min_words: int,
    max_images: int,
    s2_source: str | None,
    reports: dict[str, DropReport],
) -> str:
    order = [name for name in ("s2", "s1", "raw") if rows.get(name)]
    configs = []
    for name in order:
        config = {"config_name": name}
        if name == order[0]:
            config["default"] = True
        config["data_files"] = [{"split": split, "path": f"{name}/{split}-*.parquet"} for split in rows[name]]
        configs.append(config)
    header = yaml.safe_dump({"configs": configs}, sort_keys=False)
    ratios = ":".join(f"{ratio:g}" for ratio in layout.split_ratios)
    table = ["| config | split | reviews |", "|---|---|---:|"]
    table += [f"| {name} | {split} | {count:,} |" for name in order for split, count in rows[name].items()]
    s2_line = {
        None: S2_ABSENT_NOTE,
        "published": "`s2`: taken as published in `filter_all_t.json`: its splits, its `history_reviews`, its "
        "review texts as explanations (split into `explanation_sentences`); missing or unreadable images removed.",
        "filter": "`s2`: the `s1` reviews cut by the explanation classifier to the sentences that describe their "
        "images (`explanation`); reviews with no such sentence dropped.",
    }[s2_source]
    if s2_source is not None and not rows.get("s2"):
        s2_line += " No review is left in `s2`: see the dropped records below."
    s1_line = "" if rows.get("s1") else "\n- No review is left in `s1`: see the dropped records below."
    drops = "\n".join(
        f"    {line}" for stage in reports for line in reports[stage].summary(stage).splitlines()
    )
    return f"""---
{header}---

# Gest: personalized showcases (built by gest-showcases)

Reviews with photos of restaurants from Google Local, processed as in Yan et al., "Personalized
Showcases: Generating Multi-Modal Explanations for Recommendations" (SIGIR 2023).

```python
from datasets import load_dataset
s1 = load_dataset("path/to/this/folder", "s1")
```

Built from: {", ".join(f"`{path.name}`" for path in inputs)}.

{chr(10).join(table)}

{IMAGES_HEADING}
{_images_note(layout)}

## Processing
- `raw`: every readable review once (reviewer names are never kept). `review_id` is
  `<user_id>_<business_id>` with any `%` or `_` inside an id written `%25` or `%5F`, so it names one
  (user, business) pair (Gest's own ids hold neither, so theirs read as published).
- `s1`: reviews with at least {min_words} words and at most {max_images} images; missing or unreadable
  image files removed and reviews left without any image dropped; users with a single review dropped;
  users split {ratios} (seed {layout.seed}; kept as published for `filter_all_t.json`), so no user is in
  two splits. `history_*`: the user's other `s1` reviews (at most {layout.max_history}, most recent
  first), never the review itself. `candidate_*`: every usable `s1` image of the business, the
  review's own included.
- {s2_line}{s1_line}

## Dropped records
See `drop_report.json` (counts by reason with the first places, `file:line`).

{drops}
"""


@dataclass
class BuildResult:
    """What [`build_dataset`] wrote.

    Args:
        output_dir (`Path`): the dataset folder.
        num_rows (`dict[str, dict[str, int]]`): rows per config and split.
        reports (`dict[str, DropReport]`): drops while reading (`"raw"`), and on the way to `"s1"`, `"s2"`.
    """

    output_dir: Path
    num_rows: dict[str, dict[str, int]]
    reports: dict[str, DropReport] = field(default_factory=dict)

    def summary(self) -> str:
        """One block per stage; a config that was not written (`s2` without `filter_all_t.json` or a filter) says so
        instead of "nothing dropped"."""
        return "\n".join(
            report.summary(stage) if stage == "raw" or stage in self.num_rows else f"{stage}: not written"
            for stage, report in self.reports.items()
        )


def _check_output_apart_from_inputs(output_dir: Path, inputs: Sequence[Path], images_dir: Path) -> None:
    """Refuse an output folder that is, holds or lies inside an input: replacing it would delete inputs.

    Paths are compared resolved (symlinks, `..`), in both directions: an input file or the image folder
    inside (or equal to) the output, and the output inside the image folder.
    """
    output = output_dir.resolve()
    for kind, path in [*(("input file", path) for path in inputs), ("image folder", images_dir)]:
        resolved = path.resolve()
        if resolved.is_relative_to(output) or output.is_relative_to(resolved):
            where = (
                "is" if resolved == output else "is inside" if resolved.is_relative_to(output) else "holds"
            )
            raise InputError(
                f"the {kind} {path} {where} the output folder {output_dir}: a build replaces its output "
                "folder and would delete its own inputs; choose an --output_dir folder apart from the inputs"
            )


def _check_arguments(
    output_dir: Path, images_dir: Path, split_ratios: Sequence[float], max_history: int
) -> None:
    if not images_dir.is_dir():
        raise InputError(f"image folder {images_dir} does not exist: pass the folder of <pic_id>.jpg files")
    if len(split_ratios) != 3 or min(split_ratios) < 0 or not math.isclose(sum(split_ratios), 1.0):
        raise InputError(
            f"split_ratios must be 3 non-negative numbers summing to 1, got {list(split_ratios)}"
        )
    if max_history < 0:
        raise InputError(f"max_history must be >= 0, got {max_history}")
    if output_dir.is_file():
        raise InputError(f"output {output_dir} is a file: choose a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (output_dir / "drop_report.json").is_file():
        raise InputError(
            f"output {output_dir} is a non-empty folder that is not a built dataset: refusing to replace it; "
            "choose a new or empty folder"
        )
    foreign = _files_no_build_wrote(output_dir)
    if foreign:  # the rebuild replaces the whole folder: they would be deleted with it
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise InputError(
            f"output {output_dir} is a built dataset that also holds what no build wrote ({shown}): a rebuild "
            "replaces the whole folder; move them out or choose another folder"
        )


def _files_no_build_wrote(output_dir: Path) -> list[str]:
    """What a previous build's folder holds beyond a build's own files: README.md, drop_report.json,
    build_options.json, the config folders of Parquet files and the copied images."""
    if not (output_dir / "drop_report.json").is_file():
        return []
    foreign = []
    for entry in sorted(output_dir.iterdir()):
        if entry.name in ("README.md", "drop_report.json", BUILD_OPTIONS_FILE):
            continue
        if entry.name in (*CONFIGS, COPIED_IMAGES) and entry.is_dir():
            suffix = ".jpg" if entry.name == COPIED_IMAGES else ".parquet"
            foreign += [f"{entry.name}/{path.name}" for path in sorted(entry.iterdir()) if path.suffix != suffix]
        else:
            foreign.append(entry.name)
    return foreign


class _FolderLock:
    """An exclusive `flock` on a folder, held while its file descriptor is open.

    The kernel drops it when the holder exits however it ends (killed included), so "nobody holds
    it" means "no live build uses this folder". Without `fcntl` (Windows) nothing is locked and no
    folder is ever found stale.
    """

    def __init__(self, folder: Path, blocking: bool = True):
        self.fd = os.open(folder, os.O_RDONLY)
        if fcntl is None:
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError:
            os.close(self.fd)
            raise

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = -1


def _temporary_folder(output_dir: Path, kind: str) -> tuple[Path, _FolderLock]:
    """A new `.NAME.<kind>-XXXXXXXX` folder beside the output, locked for this build's lifetime."""
    folder = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.{kind}-", dir=output_dir.parent))
    return folder, _FolderLock(folder)


def _remove_stale_folders(output_dir: Path) -> None:
    """Remove the `.NAME.tmp-*` / `.NAME.old-*` folders that killed builds of this output left.

    Only this output's names (mkdtemp's 8-character suffix), and only folders whose lock no live
    build holds: a concurrent build of the same output keeps its own.
    """
    if fcntl is None or not output_dir.parent.is_dir():
        return
    pattern = re.compile(rf"\.{re.escape(output_dir.name)}\.(?:tmp|old)-[a-z0-9_]{{8}}")
    for entry in os.scandir(output_dir.parent):
        if not (pattern.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)):
            continue
        try:
            lock = _FolderLock(Path(entry.path), blocking=False)
        except OSError:  # held by a live build (or gone meanwhile): not ours to remove
            continue
        try:
            previous = Path(entry.path) / output_dir.name
            if ".old-" in entry.name and previous.is_dir() and not output_dir.exists():
                # Killed between `_replace_folder`'s two renames: this is the previous build, and no new one
                # took its place. Put it back rather than lose it.
                logger.warning("restoring %s from %s, left by an interrupted build", output_dir, entry.path)
                os.rename(previous, output_dir)
            logger.info("removing %s, left by an interrupted build", entry.path)
            shutil.rmtree(entry.path, ignore_errors=True)
        finally:
            lock.release()


def _replace_folder(built: Path, output_dir: Path) -> None:
    """Move `built` to `output_dir`, replacing a previous build with two renames."""
    if output_dir.exists():
        old, lock = _temporary_folder(output_dir, "old")
        try:
            os.rename(output_dir, old / output_dir.name)
            os.rename(built, output_dir)
            shutil.rmtree(old)
        finally:
            lock.release()
    else:
        os.rename(built, output_dir)


def build_dataset(
    inputs: Sequence[str | Path],
    images_dir: str | Path,
    output_dir: str | Path,
    meta: Sequence[str | Path] = (),
    *,
    seed: int = 0,
    split_ratios: Sequence[float] = (0.8, 0.1, 0.1),
    min_words: int = 5,
    max_images: int = 10,
    max_history: int = 50,
    embed_images: bool = False,
    copy_images: bool = False,
    num_proc: int = 1,
    explanation_filter: ExplanationFilter | None = None,
) -> BuildResult:
    """Build the `raw`/`s1`/`s2` dataset folder from published Gest or Google Local files.

    Args:
        inputs (`Sequence[str | Path]`):
            `image_review_all.json`, `filter_all_t.json` or Google Local `review-*.json(.gz)` files
            (detected from their content); Google Local meta files may be listed here too.
        images_dir (`str` or `Path`):
            The image folder (`<pic_id>.jpg`).
        output_dir (`str` or `Path`):
            The dataset folder to write; a previous build there is replaced.
        meta (`Sequence[str | Path]`, *optional*):
            Google Local `meta-*.json(.gz)` files (restaurants are found by their `category`).
        seed (`int`, *optional*, defaults to `0`):
            Seed of the user split.
        split_ratios (`Sequence[float]`, *optional*, defaults to `(0.8, 0.1, 0.1)`):
            Train/validation/test shares of the users.
        min_words (`int`, *optional*, defaults to `5`):
            Reviews with fewer words are dropped from `s1`.
        max_images (`int`, *optional*, defaults to `10`):
            Reviews with more images are dropped from `s1`.
        max_history (`int`, *optional*, defaults to `50`):
            Most history reviews per record (the user's most recent first); bounds memory for users
            with thousands of reviews.
        embed_images (`bool`, *optional*, defaults to `False`):
            Also store the bytes of `pics` as an `images` column of `List(Image())`.
        copy_images (`bool`, *optional*, defaults to `False`):
            Make the folder self-contained: hard-link (or copy) the images the rows use into
            `<output_dir>/images/`, store paths to them, and embed their bytes (`embed_images`), since a
            `datasets.Image()` stored by path is opened relative to the current directory.
        num_proc (`int`, *optional*, defaults to `1`):
            Processes for checking the image files.
        explanation_filter (`Callable[[list[str], list[str]], list[str]]`, *optional*):
            `(sentences, image_paths) -> kept sentences`; builds `s2` from `s1` when the input is not
            `filter_all_t.json`.

    Returns:
        [`BuildResult`]
    """
    inputs = [Path(path) for path in inputs]
    if not inputs:
        raise InputError(
            "no input file given: pass image_review_all.json, filter_all_t.json or review-*.json(.gz)"
        )
    meta = [Path(path) for path in meta]
    for path in [*inputs, *meta]:
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise InputError(f"input file {path} {what}; pass the JSON Lines file(s) themselves")
    images_dir, output_dir = Path(images_dir).absolute(), Path(output_dir).absolute()
    # Inputs first: "not a built dataset" would be true of a folder of inputs but say the wrong thing.
    _check_output_apart_from_inputs(output_dir, [*inputs, *meta], images_dir)
    _check_arguments(output_dir, images_dir, split_ratios, max_history)
    reports = {"raw": DropReport(), "s1": DropReport(), "s2": DropReport()}
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_folders(output_dir)
    work, work_lock = _temporary_folder(output_dir, "tmp")
    work.chmod(0o755)  # mkdtemp makes it private; the dataset is not
    layout = _Layout(
        images_dir=images_dir,
        image_prefix=f"{COPIED_IMAGES}/"
        if copy_images
        else os.path.relpath(images_dir, output_dir).replace(os.sep, "/") + "/",
        max_history=max_history,
        seed=seed,
        split_ratios=tuple(split_ratios),
        embed_images=embed_images or copy_images,  # a path-only Image() would not decode: see the docstring
        copy_to=work / COPIED_IMAGES if copy_images else None,
    )
    try:
        raw = _ConfigWriter(work, "raw", ["train"], dataset_features("raw"))
        records = located_reviews(inputs, meta, reports["raw"])
        stage = _stage_reviews(records, raw, reports["raw"], reports["s1"], min_words, max_images)
        rows = {"raw": raw.close()}
        if not rows["raw"]:
            drops = ", ".join(
                f"{reason} {count:,}" for reason, count in sorted(reports["raw"].counts.items())
            )
            raise InputError(
                f"no readable review in the inputs (dropped: {drops or 'nothing'}); check that they are "
                "the published Gest or Google Local files"
            )
        published = stage["split"].null_count < stage.num_rows
        s2_source = "published" if published else "filter" if explanation_filter is not None else None
        check = _ImageCheck(images_dir, num_proc)

        s1_table = stage.filter(stage["_keep"])
        s1_table = _drop_single_review_users(s1_table, reports["s1"])
        s1_table = _drop_unusable_images(s1_table, check, reports["s1"])
        s1_table = _drop_single_review_users(s1_table, reports["s1"])
        s2_table = _drop_unusable_images(stage, check, reports["s2"]) if published else None
        del stage
        s1 = _ConfigWriter(work, "s1", SPLITS, dataset_features("s1", layout.embed_images))
        s2 = (
            _ConfigWriter(work, "s2", SPLITS, dataset_features("s2", layout.embed_images))
            if s2_source
            else None
        )
        num_s1 = s1_table.num_rows
        # The generator holds the only reference, so the unsorted table is freed once it is sorted.
        s1_chunks = _enriched_chunks(s1_table, layout, published_history=False)
        del s1_table
        with tqdm(total=num_s1, desc="explanations", disable=s2_source != "filter") as progress:
            for chunk in s1_chunks:
                s1.write(chunk)
                if s2_source == "filter":
                    s2.write(_explain(chunk, explanation_filter, images_dir, reports["s2"], progress))
        rows["s1"] = s1.close()
        if s2_source == "published":
            for chunk in _enriched_chunks(s2_table, layout, published_history=True):
                s2.write(_published_explanations(chunk))
        if s2 is not None:
            rows["s2"] = s2.close()

        # A raw-only build of reviews whose photos are not here is allowed, but not in place of a previous build:
        # a wrong --images would replace a dataset's s1 and s2 with nothing (or with its few photo-less reviews).
        no_photo = len(check.status) and not (check.status == ImageStatus.OK).any()
        if no_photo and output_dir.exists():
            raise InputError(
                f"none of the reviews' {len(check.status):,} photos is usable in {images_dir} "
                f"({reports['s1'].counts.get('no usable image', 0):,} reviews dropped for 'no usable image'): "
                f"check --images; {output_dir} was left as it was"
            )
        if no_photo:  # allowed (a raw-only build), but every later command would find no s1
            logger.warning("none of the reviews' %s photos is usable in %s: s1 is empty; check --images (are the "
                           "photos in a subfolder?)", f"{len(check.status):,}", images_dir)  # fmt: skip
        card = _dataset_card(rows, inputs, layout, min_words, max_images, s2_source, reports)
        (work / "README.md").write_text(card, encoding="utf-8")
        write_drop_reports(work / "drop_report.json", reports)
        values = (seed, list(split_ratios), min_words, max_images, max_history, embed_images, copy_images)
        options = dict(zip(BUILD_OPTIONS, values, strict=True))
        (work / BUILD_OPTIONS_FILE).write_text(json.dumps(options, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _replace_folder(work, output_dir)
    finally:
        if work.exists():
            shutil.rmtree(work)
        work_lock.release()
    result = BuildResult(output_dir=output_dir, num_rows=rows, reports=reports)
    for line in result.summary().splitlines():
        logger.info(line)
    return result


def read_build_options(folder: str | Path) -> dict:
    """The options `build_dataset` built `folder` with (`build_options.json`), for a rebuild that must make the same
    splits and filters (`distill` rebuilds the folder with `s2`). `{}` (the defaults) for a folder built before they
    were recorded, with a warning.

    Raises:
        `InputError`: when the file is not a JSON object of `build_dataset`'s options.
    """
    path = Path(folder) / BUILD_OPTIONS_FILE
    if not path.is_file():
        logger.warning("%s has no %s (built by an older version): rebuilding it with the default build options "
                       "(seed 0, 8:1:1, ...)", folder, BUILD_OPTIONS_FILE)  # fmt: skip
        return {}
    try:
        options = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: unreadable ({one_line(error)}); rebuild the dataset") from error
    if not isinstance(options, dict) or not set(options) <= set(BUILD_OPTIONS):
        raise InputError(f"{path}: not the options of a build ({', '.join(BUILD_OPTIONS)}); rebuild the dataset")
    return options


def check_built_split(split, where: str, config: str) -> None:
    """`schema.check_built_table` of a built split loaded by `datasets` (a `datasets.Dataset`).

    Raises:
        `InputError`: "WHERE: column 'explanation' ...; rebuild it with `gest-showcases build`".
    """
    check_built_table(split.data.table, where, config)


def load_built(folder: str | Path, config: str, split: str | None = None, with_images: bool = False):
    """`datasets.load_dataset(folder, config, split=split)` for a built folder, read afresh.

    The config's parquet files are the ones its card lists (`gest_showcases.data.folder.config_files`, the one
    reader of built folders), loaded by `datasets`' parquet builder. datasets 5 can hand back an earlier
    folder's cached rows for a folder with the same name and card (seen after a rebuild in place, and between
    same-named folders), so the cache is always rebuilt from the parquet files, which costs one conversion pass.

    The embedded photos column (`--copy_images` / `--embed_images`) is left out unless `with_images`: the
    package reads photos through their paths, and iterating rows would decode every photo of every row.

    Raises:
        `InputError`: when `folder` is not a built folder or has no such config.
    """
    import datasets

    files = config_files(folder, config)
    # datasets 5 fails on a parquet file without rows (ArrowInvalid: "BatchSize must be greater than 0"): such files
    # are left out, and a split of nothing else is read by pyarrow itself, an empty table of the files' schema.
    data_files = {name: [str(path) for path in paths if parquet_row_count(path)]
                  for name, paths in files.items()}  # fmt: skip
    empty = {
        name: datasets.Dataset(datasets.table.InMemoryTable(pq.read_table(files[name][0])))
        for name, kept in data_files.items()
        if not kept and files[name]
    }
    data_files = {name: kept for name, kept in data_files.items() if kept}
    if split is not None and split in empty:
        loaded = empty[split]
    else:
        # The split sizes such a stale entry records are checked too: skip that check, the files are the truth.
        loaded = datasets.load_dataset(
            "parquet", data_files=data_files, split=split, download_mode="force_redownload",
            verification_mode="no_checks",
        ) if data_files else datasets.DatasetDict()  # fmt: skip
        if split is None:  # in the card's order
            loaded = datasets.DatasetDict({name: empty[name] if name in empty else loaded[name] for name in files})
    for name, part in ({split: loaded} if split is not None else loaded).items():
        check_built_split(part, f"{folder} ({config}, {name})", config)
    names = loaded.column_names
    has_images = EMBEDDED_IMAGES_COLUMN in (names if split is not None else next(iter(names.values()), []))
    return loaded.remove_columns(EMBEDDED_IMAGES_COLUMN) if has_images and not with_images else loaded

