"""Streaming readers for the published Gest and Google Local files (see `docs/gest-data-formats.md`).

Each reader yields [`Review`] records one at a time and never holds a whole file: JSON Lines files
are read line by line, and `filter_all_t.json` (one 112 MB JSON object) is parsed one record at a
time out of a sliding text buffer. A record that cannot be read (malformed JSON, non-UTF-8 bytes,
nesting too deep for the parser, a line that is not an object, a missing, ill-typed or out-of-range
field, ...) is skipped and counted in the optional [`DropReport`] with its place (`file:line`), never
raised; a compressed file that ends early or is corrupt keeps the records read before the break and
counts the break once (`file:line`). Every reader goes through the same two steps: a record stream
(`iter_json_lines`, `iter_filtered_records`) turns what the file holds into parsed values, and
`_converted` turns each value into a record or a counted drop.

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
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal, TypeVar

from tqdm.auto import tqdm

from gest_showcases.errors import InputError

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
_HEAD_BYTES = 1 << 16
_FIRST_LINE_BYTES = 1 << 24  # how far `detect_format` reads for a first record
# A gzip stream cut short raises EOFError, a damaged one BadGzipFile (bad header, CRC or length) or
# zlib.error (bad deflate data): the file is unreadable from there on, the records before it are not.
_STREAM_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
# Parsing one record's text: ValueError for syntax (and integers past Python's digit limit),
# RecursionError for nesting deeper than the parser's stack.
_PARSE_ERRORS = (ValueError, RecursionError)
# Converting one parsed record: the field checks raise SkipRecord with a reason; these are the data
# errors a value of a surprising type or size could still raise in conversion (a backstop, so that
# one record never aborts a run of a million).
_RECORD_ERRORS = (TypeError, ValueError, OverflowError, RecursionError)
_INT64 = (-(2**63), 2**63 - 1)

T = TypeVar("T")


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


def _parse_error_reason(error: Exception) -> str:
    return "nested too deep" if isinstance(error, RecursionError) else "malformed JSON"


def _stream_error_reason(error: Exception) -> str:
    return "truncated file" if isinstance(error, EOFError) else "corrupt compressed file"


def _read_chunk(handle: BinaryIO, size: int) -> tuple[bytes, Exception | None]:
    """Up to `size` bytes (fewer only at the end), and the stream error that ended them early, if any.

    `read1` hands over what each step decompressed, so a compressed stream cut or damaged inside the
    chunk still gives the bytes before the break (`read(size)` would lose them with the error).
    """
    chunks, total = [], 0
    try:
        while total < size and (chunk := handle.read1(size - total)):
            chunks.append(chunk)
            total += len(chunk)
    except _STREAM_ERRORS as error:
        return b"".join(chunks), error
    return b"".join(chunks), None


def _head(path: str | Path) -> tuple[str, bool]:
    """The first `_HEAD_BYTES` of a file (decompressed) as text, to the end of its first line when that is longer
    (a JSON Lines record may be: a review of 70,000 characters), and whether the stream broke early. A UTF-8 byte
    order mark is dropped."""
    with open_binary(path) as handle:
        data, error = _read_chunk(handle, _HEAD_BYTES)
        if error is None and data and b"\n" not in data:
            try:
                data += handle.readline(_FIRST_LINE_BYTES)
            except _STREAM_ERRORS as stream_error:
                error = stream_error
    return data.decode("utf-8", errors="replace").removeprefix("\ufeff"), error is not None


def detect_format(path: str | Path) -> Format:
    """Tell which published format a file is in, from its first records.

    Raises:
        `InputError` (a ValueError): when the file is none of them.
    """
    head, broken = _head(path)
    if _FILTERED_HEAD.match(head.lstrip()):
        return "gest_filtered"
    for line in head.splitlines():
        try:
            obj = json.loads(line)
        except _PARSE_ERRORS:
            continue
        if not isinstance(obj, dict):
            continue
        if "gmap_id" in obj and "category" in obj:
            return "google_local_meta"
        if "gmap_id" in obj:
            return "google_local_review"
        if "business_id" in obj:
            return "gest_raw"
    cause = " (its compressed data is truncated or corrupt)" if broken else ""
    raise InputError(
        f"{path}: not a Gest or Google Local file{cause}; expected JSON Lines with business_id or gmap_id, "
        'or one object {"train": [...], "val": [...], "test": [...]}: pass image_review_all.json, '
        "filter_all_t.json or Google Local review-/meta-*.json(.gz) files"
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
    # Stored as int64 milliseconds: a larger integer (JSON has no limit) would fail the whole build
    # with an OverflowError where the rows are written, so it is one bad record here.
    if isinstance(value, bool) or not isinstance(value, int) or not _INT64[0] <= value <= _INT64[1]:
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
    """Raise SkipRecord when a string anywhere in `obj` cannot be encoded as UTF-8.

    A walk with an explicit stack: a record nested as deep as the parser allows must not overflow
    the interpreter's.
    """
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise SkipRecord("non-UTF-8 bytes") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


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


def google_local_restaurant(obj: object) -> str | None:
    """The `gmap_id` of one Google Local meta record when its `category` names a restaurant, else None."""
    if not isinstance(obj, dict) or not isinstance(obj.get("gmap_id"), str):
        raise SkipRecord("missing field")
    categories = obj.get("category") or []
    if isinstance(categories, str):
        categories = [categories]
    if not isinstance(categories, list):
        raise SkipRecord("invalid field")
    if any(isinstance(c, str) and "restaurant" in c.lower() for c in categories):
        return obj["gmap_id"]
    return None


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

    Blank lines are ignored; undecodable, malformed and too deeply nested lines are counted in
    `report`. A compressed file that ends early or is corrupt stops there: the lines before it are
    yielded, the break is counted once at the line it cut.
    """
    report = report if report is not None else DropReport()
    name = Path(path).name
    lineno = 0
    with open_binary(path) as handle:
        try:
            for lineno, raw in enumerate(
                tqdm(handle, desc=f"reading {name}", unit=" lines", unit_scale=True), 1
            ):
                place = f"{name}:{lineno}"
                try:
                    line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a byte order mark is no record
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
                except _PARSE_ERRORS as error:
                    report.add(_parse_error_reason(error), place)
                    continue
                yield place, obj
        except _STREAM_ERRORS as error:
            _count_stream_error(report, f"{name}:{lineno + 1}", error)


def _count_stream_error(report: DropReport, place: str, error: Exception) -> None:
    reason = _stream_error_reason(error)
    logger.warning("%s: %s (%s); the records before it are kept", place, reason, error)
    report.add(reason, place)


class _TextStream:
    """A growing window over a file's text, for parsing one JSON value at a time."""

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        # Undecodable bytes become lone surrogates, caught per record instead of failing the file.
        # "utf-8-sig": a byte order mark at the start is dropped.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
        self._json = json.JSONDecoder()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._error: Exception | None = None

    def _fill(self) -> bool:
        if self.eof:
            return False
        if self._error is not None:
            # The bytes before a break were parsed first; needing more than them ends the file here.
            raise self._error
        data, self._error = _read_chunk(self._handle, _CHUNK_BYTES)
        self.eof = not data and self._error is None
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

    `"val"` is renamed `"validation"`. A syntax error (or a record nested too deep to parse) cannot
    be stepped over inside one JSON object: the rest of that file is counted as one drop and reading
    stops there, as it does where a compressed file ends early or is corrupt.
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
                if not isinstance(key, str):
                    raise ValueError(f"expected a string key, found {type(key).__name__}")
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
        except _PARSE_ERRORS as err:
            reason = _parse_error_reason(err)
            logger.error(
                "%s: %s near %s[%d] (%s); the rest of the file is skipped", name, reason, key, index, err
            )
            report.add(reason, f"{name}:{key}[{index}]")
        except _STREAM_ERRORS as err:
            _count_stream_error(report, f"{name}:{key}[{index}]", err)


# ---------------------------------------------------------------------------------------------
# Public readers: Review records, and the same with their places for the builder.


def _converted(
    records: Iterable[tuple[str, object]], convert: Callable[[object], T], report: DropReport
) -> Iterator[tuple[str, T]]:
    """`(place, convert(value))` for each parsed record; a record `convert` refuses is counted at its place.

    The one place where a parsed record becomes a value or a drop, for every reader.
    """
    for place, obj in records:
        try:
            value = convert(obj)
        except SkipRecord as skip:
            report.add(skip.reason, place)
            continue
        except _RECORD_ERRORS as error:
            logger.debug("%s: %s: %s", place, type(error).__name__, error)
            report.add("invalid field", place)
            continue
        yield place, value


def located_gest_raw(path: str | Path, report: DropReport | None = None) -> Iterator[tuple[str, Review]]:
    """[`read_gest_raw`], yielding `(place, review)`."""
    report = report if report is not None else DropReport()
    return _converted(iter_json_lines(path, report), gest_review, report)


def located_gest_filtered(path: str | Path, report: DropReport | None = None) -> Iterator[tuple[str, Review]]:
    """[`read_gest_filtered`], yielding `(place, review)`."""
    report = report if report is not None else DropReport()
    records = ((place, (obj, split)) for split, place, obj in iter_filtered_records(path, report))
    return _converted(records, lambda pair: gest_review(*pair), report)


def restaurant_ids(meta_paths: Iterable[str | Path], report: DropReport | None = None) -> set[str]:
    """The `gmap_id`s whose Google Local meta `category` names a restaurant."""
    report = report if report is not None else DropReport()
    meta_paths = list(meta_paths)
    restaurants = set()
    for path in meta_paths:
        for _, gmap_id in _converted(iter_json_lines(path, report), google_local_restaurant, report):
            if gmap_id is not None:
                restaurants.add(gmap_id)
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
        raise InputError(
            "Google Local reviews need their meta-*.json(.gz) files to find the restaurants: pass them"
        )
    restaurants = restaurant_ids(meta_paths, report)
    for path in review_paths:
        yield from _located_google_file(path, restaurants, report)


def _located_google_file(
    path: Path, restaurants: set[str], report: DropReport
) -> Iterator[tuple[str, Review]]:
    return _converted(
        iter_json_lines(path, report), lambda obj: google_local_review(obj, restaurants), report
    )


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
        raise InputError(
            "no review file among the inputs (only Google Local meta files): add the review files"
        )
    kinds = {formats[path] for path in review_paths}
    if "gest_filtered" in kinds and len(kinds) > 1:
        raise InputError(
            "filter_all_t.json carries its own train/validation/test split and cannot be mixed with "
            f"unsplit inputs ({', '.join(sorted(kinds - {'gest_filtered'}))}): build them into separate folders"
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
                    raise InputError(
                        f"{path.name}: Google Local reviews need their meta-*.json(.gz) files: pass them with --meta"
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
