"""Streaming readers for the published Gest and Google Local files (see `docs/gest-data-formats.md`).

Each reader yields [`Review`] records one at a time and never holds a whole file: JSON Lines files
are read line by line, and `filter_all_t.json` (one 112 MB JSON object) is parsed one record at a
time out of a sliding text buffer. A record that cannot be read (malformed JSON, non-UTF-8 bytes, a
missing or ill-typed field, ...) is skipped and counted in the optional [`DropReport`] with its
place (`file:line`), never raised.

Example:

```python
>>> from gest_showcases.data import DropReport, read_gest_raw
>>> report = DropReport()
>>> reviews = list(read_gest_raw("image_review_all.json", report))
>>> print(report.summary("read"))
```
"""

from __future__ import annotations

import codecs
import gzip
import json
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal

from tqdm.auto import tqdm

from .records import DropReport, Review, normalize_pic_id

logger = logging.getLogger(__name__)

Format = Literal["gest_raw", "gest_filtered", "google_local_review", "google_local_meta"]

# `filter_all_t.json` names its splits train/val/test.
FILTERED_SPLITS = {"train": "train", "val": "validation", "test": "test"}
_FILTERED_HEAD = re.compile(r'\{\s*"(?:train|val|test)"\s*:')
# Lone UTF-16 surrogates (from `\udXXX` escapes, or undecodable bytes kept by "surrogateescape")
# cannot be written as UTF-8: cheap pre-checks decide when a record's strings need a closer look.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_TEXT = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")
_CHUNK_BYTES = 1 << 20


class SkipRecord(Exception):
    """Raised while converting one record: the record is dropped and counted under `reason`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@contextmanager
def open_binary(path: str | Path) -> Iterator[BinaryIO]:
    """Open a file for binary reading, decompressing it when it is gzip (by magic bytes, not name)."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as handle:
        yield handle


def detect_format(path: str | Path) -> Format:
    """Tell which published format a file is in, from its first records.

    Raises:
        ValueError: when the file is none of them.
    """
    with open_binary(path) as handle:
        head = handle.read(1 << 16).decode("utf-8", errors="replace")
    if _FILTERED_HEAD.match(head.lstrip()):
        return "gest_filtered"
    for line in head.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        if "gmap_id" in obj and "category" in obj:
            return "google_local_meta"
        if "gmap_id" in obj:
            return "google_local_review"
        if "business_id" in obj:
            return "gest_raw"
    raise ValueError(
        f"{path}: not a Gest or Google Local file (expected JSON Lines with business_id or gmap_id, "
        'or one object {"train": [...], "val": [...], "test": [...]})'
    )


# ---------------------------------------------------------------------------------------------
# Field conversion: each raises SkipRecord naming why the record is unusable.


def _id_field(obj: dict, key: str) -> str:
    value = obj.get(key)
    if value is None or value == "":
        raise SkipRecord("missing field")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SkipRecord("invalid field")
    return str(value)


def _rating(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise SkipRecord("invalid field")
    return value


def _text(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SkipRecord("invalid field")
    return value


def _time(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SkipRecord("invalid field")
    return value


def _pics(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SkipRecord("invalid field")
    try:
        # dict.fromkeys: a pic listed twice in one review counts once, order kept.
        return tuple(dict.fromkeys(normalize_pic_id(item) for item in value))
    except ValueError:
        raise SkipRecord("invalid field") from None


def _history(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SkipRecord("invalid field")
    pairs = []
    for pair in value:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not isinstance(pair[0], str):
            raise SkipRecord("invalid field")
        pairs.append((pair[0], _text(pair[1])))
    return tuple(pairs)


def _check_unicode(obj: object) -> None:
    """Raise SkipRecord when a string anywhere in `obj` cannot be encoded as UTF-8."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            raise SkipRecord("non-UTF-8 bytes") from None
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _check_unicode(key)
            _check_unicode(value)
    elif isinstance(obj, list):
        for value in obj:
            _check_unicode(value)


def gest_review(obj: object, split: str | None = None) -> Review:
    """Convert one Gest record (`image_review_all.json` or `filter_all_t.json`) into a Review."""
    if not isinstance(obj, dict):
        raise SkipRecord("malformed JSON")
    return Review(
        user_id=_id_field(obj, "user_id"),
        business_id=_id_field(obj, "business_id"),
        rating=_rating(obj.get("rating")),
        review_text=_text(obj.get("review_text")),
        pics=_pics(obj.get("pics")),
        history_reviews=_history(obj.get("history_reviews")),
        split=split,
    )


def google_local_review(obj: object, restaurants: set[str]) -> Review:
    """Convert one Google Local review into a Review (the reviewer's `name` is not carried).

    Gest is the restaurant reviews with photos, so other businesses and text-only reviews are skipped.
    """
    if not isinstance(obj, dict):
        raise SkipRecord("malformed JSON")
    review = Review(
        user_id=_id_field(obj, "user_id"),
        business_id=_id_field(obj, "gmap_id"),
        rating=_rating(obj.get("rating")),
        review_text=_text(obj.get("text")),
        pics=_pics(obj.get("pics")),
        time=_time(obj.get("time")),
    )
    if review.business_id not in restaurants:
        raise SkipRecord("not a restaurant")
    if not review.pics:
        raise SkipRecord("no image")
    return review


# ---------------------------------------------------------------------------------------------
# Raw record streams: (place, parsed JSON value), with unreadable records counted.


def iter_json_lines(path: str | Path, report: DropReport | None = None) -> Iterator[tuple[str, object]]:
    """Yield `("file:line", value)` for every line of a JSON Lines file (plain or gzip) that parses.

    Blank lines are ignored; undecodable and malformed lines are counted in `report`.
    """
    report = report if report is not None else DropReport()
    name = Path(path).name
    with open_binary(path) as handle:
        for lineno, raw in enumerate(tqdm(handle, desc=f"reading {name}", unit=" lines", unit_scale=True), 1):
            place = f"{name}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                report.add("non-UTF-8 bytes", place)
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if _SURROGATE_ESCAPE.search(raw):
                    _check_unicode(obj)
            except SkipRecord as skip:
                report.add(skip.reason, place)
                continue
            except ValueError:
                report.add("malformed JSON", place)
                continue
            yield place, obj


class _TextStream:
    """A growing window over a file's text, for parsing one JSON value at a time."""

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        # Undecodable bytes become lone surrogates, caught per record instead of failing the file.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self._json = json.JSONDecoder()
        self.buf = ""
        self.pos = 0
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self._handle.read(_CHUNK_BYTES)
        self.eof = not data
        # Drop the consumed prefix so the window stays about one chunk long.
        self.buf = self.buf[self.pos :] + self._decoder.decode(data, final=self.eof)
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-space character ("" at end of file), without consuming it."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos].isspace():
                self.pos += 1
            if self.pos < len(self.buf) or not self._fill():
                return self.buf[self.pos : self.pos + 1]

    def expect(self, chars: str) -> str:
        char = self.peek()
        if not char or char not in chars:
            raise ValueError(f"expected one of {chars!r} at character {self.pos}, found {char!r}")
        self.pos += 1
        return char

    def value(self) -> tuple[object, str]:
        """Parse the next JSON value; returns it and its source text."""
        self.peek()
        while True:
            try:
                obj, end = self._json.raw_decode(self.buf, self.pos)
            except ValueError:
                # Most failures are a value cut by the window's end: read more and retry.
                if self._fill():
                    continue
                raise
            text = self.buf[self.pos : end]
            self.pos = end
            return obj, text


def iter_filtered_records(
    path: str | Path, report: DropReport | None = None
) -> Iterator[tuple[str, str, object]]:
    """Yield `(split, "file:split[i]", record)` from `filter_all_t.json`, one record at a time.

    `"val"` is renamed `"validation"`. A syntax error cannot be stepped over inside one JSON object:
    the rest of that file is counted as one "malformed JSON" drop and reading stops there.
    """
    report = report if report is not None else DropReport()
    name = Path(path).name
    with open_binary(path) as handle:
        stream = _TextStream(handle)
        key, index = "top level", 0
        try:
            stream.expect("{")
            if stream.peek() == "}":
                return
            while True:
                key, _ = stream.value()
                stream.expect(":")
                if key not in FILTERED_SPLITS:
                    logger.warning("%s: ignoring unknown top-level key %r", name, key)
                    stream.value()
                else:
                    stream.expect("[")
                    index = 0
                    with tqdm(desc=f"reading {name} [{key}]", unit=" rec", unit_scale=True) as progress:
                        while stream.peek() != "]":
                            obj, text = stream.value()
                            place = f"{name}:{key}[{index}]"
                            try:
                                if _SURROGATE_TEXT.search(text):
                                    _check_unicode(obj)
                            except SkipRecord as skip:
                                report.add(skip.reason, place)
                            else:
                                yield FILTERED_SPLITS[key], place, obj
                            index += 1
                            progress.update()
                            if stream.expect(",]") == "]":
                                break
                        else:
                            stream.expect("]")
                if stream.expect(",}") == "}":
                    return
        except ValueError as err:
            logger.error(
                "%s: malformed JSON near %s[%d] (%s); the rest of the file is skipped", name, key, index, err
            )
            report.add("malformed JSON", f"{name}:{key}[{index}]")


# ---------------------------------------------------------------------------------------------
# Public readers: Review records, and the same with their places for the builder.


def located_gest_raw(path: str | Path, report: DropReport | None = None) -> Iterator[tuple[str, Review]]:
    """[`read_gest_raw`], yielding `(place, review)`."""
    report = report if report is not None else DropReport()
    for place, obj in iter_json_lines(path, report):
        try:
            yield place, gest_review(obj)
        except SkipRecord as skip:
            report.add(skip.reason, place)


def located_gest_filtered(path: str | Path, report: DropReport | None = None) -> Iterator[tuple[str, Review]]:
    """[`read_gest_filtered`], yielding `(place, review)`."""
    report = report if report is not None else DropReport()
    for split, place, obj in iter_filtered_records(path, report):
        try:
            yield place, gest_review(obj, split=split)
        except SkipRecord as skip:
            report.add(skip.reason, place)


def restaurant_ids(meta_paths: Iterable[str | Path], report: DropReport | None = None) -> set[str]:
    """The `gmap_id`s whose Google Local meta `category` names a restaurant."""
    report = report if report is not None else DropReport()
    meta_paths = list(meta_paths)
    restaurants = set()
    for path in meta_paths:
        for place, obj in iter_json_lines(path, report):
            if not isinstance(obj, dict) or not isinstance(obj.get("gmap_id"), str):
                report.add("missing field", place)
                continue
            categories = obj.get("category") or []
            if isinstance(categories, str):
                categories = [categories]
            if any(isinstance(c, str) and "restaurant" in c.lower() for c in categories):
                restaurants.add(obj["gmap_id"])
    logger.info("%d restaurants in %d meta file(s)", len(restaurants), len(meta_paths))
    return restaurants


def located_google_local(
    review_paths: Iterable[str | Path],
    meta_paths: Iterable[str | Path],
    report: DropReport | None = None,
) -> Iterator[tuple[str, Review]]:
    """[`read_google_local`], yielding `(place, review)`."""
    report = report if report is not None else DropReport()
    meta_paths = list(meta_paths)
    if not meta_paths:
        raise ValueError("Google Local reviews need their meta-*.json(.gz) files to find the restaurants")
    restaurants = restaurant_ids(meta_paths, report)
    for path in review_paths:
        yield from _located_google_file(path, restaurants, report)


def _located_google_file(
    path: Path, restaurants: set[str], report: DropReport
) -> Iterator[tuple[str, Review]]:
    for place, obj in iter_json_lines(path, report):
        try:
            yield place, google_local_review(obj, restaurants)
        except SkipRecord as skip:
            report.add(skip.reason, place)


def read_gest_raw(path: str | Path, report: DropReport | None = None) -> Iterator[Review]:
    """Stream `image_review_all.json` (Gest-raw, JSON Lines, plain or gzip).

    Args:
        path (`str` or `Path`): the file.
        report ([`DropReport`], *optional*): counts the records skipped, by reason.
    """
    return (review for _, review in located_gest_raw(path, report))


def read_gest_filtered(path: str | Path, report: DropReport | None = None) -> Iterator[Review]:
    """Stream `filter_all_t.json` (Gest-s2: one object of train/val/test record lists).

    Each review carries its `split` (`"val"` becomes `"validation"`) and its `history_reviews`.
    """
    return (review for _, review in located_gest_filtered(path, report))


def read_google_local(
    review_paths: Iterable[str | Path],
    meta_paths: Iterable[str | Path],
    report: DropReport | None = None,
) -> Iterator[Review]:
    """Stream Google Local 2021 `review-*.json(.gz)` files, keeping restaurant reviews with photos.

    Args:
        review_paths: the review dumps (JSON Lines, plain or gzip).
        meta_paths: the matching `meta-*.json(.gz)` files; a business is a restaurant when one of its
            `category` entries contains "restaurant".
        report ([`DropReport`], *optional*): counts the records skipped, by reason.
    """
    return (review for _, review in located_google_local(review_paths, meta_paths, report))


def located_reviews(
    paths: Iterable[str | Path],
    meta_paths: Iterable[str | Path] = (),
    report: DropReport | None = None,
) -> Iterator[tuple[str, Review]]:
    """[`read_reviews`], yielding `(place, review)`."""
    report = report if report is not None else DropReport()
    paths = [Path(path) for path in paths]
    formats = {path: detect_format(path) for path in paths}
    meta_paths = [Path(path) for path in meta_paths]
    meta_paths += [path for path in paths if formats[path] == "google_local_meta"]
    review_paths = [path for path in paths if formats[path] != "google_local_meta"]
    if not review_paths:
        raise ValueError("no review file among the inputs (only Google Local meta files)")
    kinds = {formats[path] for path in review_paths}
    if "gest_filtered" in kinds and len(kinds) > 1:
        raise ValueError(
            "filter_all_t.json carries its own train/validation/test split and cannot be mixed with "
            f"unsplit inputs ({', '.join(sorted(kinds - {'gest_filtered'}))})"
        )
    restaurants = None
    for path in review_paths:
        if formats[path] == "gest_raw":
            yield from located_gest_raw(path, report)
        elif formats[path] == "gest_filtered":
            yield from located_gest_filtered(path, report)
        else:
            if restaurants is None:
                if not meta_paths:
                    raise ValueError(
                        f"{path.name}: Google Local reviews need their meta-*.json(.gz) files (--meta)"
                    )
                restaurants = restaurant_ids(meta_paths, report)
            yield from _located_google_file(path, restaurants, report)


def read_reviews(
    paths: Iterable[str | Path],
    meta_paths: Iterable[str | Path] = (),
    report: DropReport | None = None,
) -> Iterator[Review]:
    """Stream several files of any published format, each detected from its content.

    Google Local meta files may be given in `paths` or `meta_paths`. `filter_all_t.json` cannot be
    mixed with other review files (its split would not cover them).
    """
    return (review for _, review in located_reviews(paths, meta_paths, report))
