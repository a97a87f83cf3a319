"""Byte-level fuzzing of the readers (issue 13): thousands of mutated Gest and Google Local lines, a
fixed seed. No exception may escape, every line must be kept or counted as a drop, and every kept
review must be one the builder can write."""

from __future__ import annotations

import gzip
import json
import random
import re

import pytest

from gest_showcases.data import DropReport, build_dataset, detect_format
from gest_showcases.data.readers import (
    located_gest_filtered,
    located_gest_raw,
    located_google_local,
    restaurant_ids,
)

PIC = "AF1QipN" + "a" * 36 + "_-"
URL = f"https://lh5.googleusercontent.com/p/{PIC}=w150-h150-k-no-p"
RESTAURANT = "0x80c2c1f9a0000001:0x1a2b3c4d5e6f7081"
# Real-format lines (made-up ids and texts), as in docs/gest-data-formats.md.
GEST_LINES = [
    {"business_id": "604a5d09d863393130a413fa", "user_id": "110922565534353024196", "rating": 5,
     "review_text": "The pho was great, rich broth and fresh herbs. Café crème ☕ too!", "pics": [PIC, URL]},
    {"business_id": "604a5d09d863393130a413fb", "user_id": "110922565534353024197", "rating": 1,
     "review_text": "", "pics": [{"id": PIC}, {"url": [URL]}]},
    {"business_id": "604a5d09d863393130a413fc", "user_id": "110922565534353024198", "rating": None,
     "review_text": None, "pics": [],
     "history_reviews": [["110922565534353024198_604a5d09d863393130a413fa", "older review"]]},
]  # fmt: skip
GOOGLE_LINES = [
    {"user_id": "110922565534353024196", "name": "Jane Doe", "time": 1_600_000_000_123, "rating": 4,
     "text": "Rich broth", "pics": [{"url": [URL, URL + "-s"]}], "resp": {"time": 1_600_000_100_000, "text": "Thx"},
     "gmap_id": RESTAURANT},
    {"user_id": "110922565534353024197", "name": "Joe", "time": 1, "rating": 5, "text": None,
     "pics": [{"url": [URL]}], "resp": None, "gmap_id": RESTAURANT},
]  # fmt: skip
META_LINES = [
    {"name": "Pho House", "address": "1 Main St", "gmap_id": RESTAURANT, "description": None, "latitude": 34.1,
     "longitude": -118.2, "category": ["Vietnamese restaurant", "Soup"], "avg_rating": 4.5, "num_of_reviews": 12,
     "price": "$$", "hours": [["Monday", "11AM–10PM"]], "MISC": {"Service options": ["Dine-in"]},
     "state": "Open ⋅ Closes 10PM", "relative_results": [RESTAURANT], "url": "https://www.google.com/maps/place//"},
]  # fmt: skip
TOKENS = [b"5", b'"x"', b"null", b"true", b"[", b"]", b"{", b"}", b",", b":", b'"', b"\\", b"1e999", b"NaN",
          b"-0", b"99999999999999999999999", b"\\ud800", b"\\u0000", b"\xe9", b"\xff", b"\xc3", b"\x00", b"\n",
          b"\r", b" ", b"\x1f\x8b", "é".encode(), b"\\n"]  # fmt: skip
_NUMBER = re.compile(rb"-?\d+")


def mutate(line: bytes, rng: random.Random) -> bytes:
    """One to four byte-level edits: flip, insert, delete, duplicate, truncate, a JSON token, a number."""
    data = bytearray(line)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(8)
        at = rng.randrange(len(data) + 1)
        if kind == 0 and data:
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data[at:at] = bytes([rng.randrange(256)])
        elif kind == 2 and data:
            del data[at : at + rng.randint(1, 8)]
        elif kind == 3:
            end = min(len(data), at + rng.randint(1, 40))
            data[at:at] = data[at:end]
        elif kind == 4:
            del data[at:]
        elif kind == 5:
            data[at:at] = rng.choice(TOKENS)
        elif kind == 6 and (numbers := list(_NUMBER.finditer(data))):
            number = rng.choice(numbers)  # a number far outside every field's range (or just another one)
            digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 3, 19, 22, 40])))
            data[number.start() : number.end()] = rng.choice(["", "-"]).encode() + digits.encode()
        elif kind == 7:
            depth = rng.choice([2, 50, 5_000])  # nesting: shallow, deep, deeper than the parser's stack
            data[at:at] = b"[" * depth + b"1" + b"]" * depth * rng.randint(0, 1)
    return bytes(data)


def fuzzed_lines(templates: list[dict], count: int, rng: random.Random) -> bytes:
    """A valid first line (so the format is detected), then `count` mutated lines."""
    encoded = [json.dumps(t, ensure_ascii=rng.random() < 0.5).encode() for t in templates]
    rows = [encoded[0]] + [mutate(rng.choice(encoded), rng) for _ in range(count)]
    return b"\n".join(rows) + b"\n"


def counted_lines(data: bytes) -> int:
    """Lines a reader must account for: every line except the blank ones (which are not records)."""
    total = 0
    for raw in data.split(b"\n")[:-1]:
        try:
            total += bool(raw.decode("utf-8").strip())
        except UnicodeDecodeError:
            total += 1
    return total


def assert_writable(review) -> None:
    """What the builder needs of a review: typed fields, in range, UTF-8, safe pic ids."""
    assert isinstance(review.user_id, str) and review.user_id and isinstance(review.business_id, str)
    assert review.rating is None or (type(review.rating) is int and 1 <= review.rating <= 5)
    assert review.time is None or (type(review.time) is int and -(2**63) <= review.time < 2**63)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", pic) for pic in review.pics)
    for text in [review.user_id, review.business_id, review.review_text, *(t for pair in review.history_reviews
                                                                            for t in pair)]:  # fmt: skip
        text.encode("utf-8")


@pytest.mark.parametrize("gz", [False, True])
def test_fuzzed_gest_lines_are_each_kept_or_counted(tmp_path, gz):
    rng = random.Random(0)
    data = fuzzed_lines(GEST_LINES, 10_000, rng)
    path = tmp_path / ("image_review_all.json.gz" if gz else "image_review_all.json")
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    assert detect_format(path) == "gest_raw"
    report = DropReport()
    kept = [review for _, review in located_gest_raw(path, report)]
    for review in kept:
        assert_writable(review)
    assert len(kept) + report.total == counted_lines(data)
    assert len(kept) > 100 and report.total > 3_000  # the mutations both break and spare lines


def test_fuzzed_gest_file_builds(tmp_path):
    """The builder takes whatever the reader kept: no exception escapes the whole build either."""
    rng = random.Random(0)
    data = fuzzed_lines(GEST_LINES, 2_000, rng)
    path = tmp_path / "image_review_all.json"
    path.write_bytes(data)
    (tmp_path / "images").mkdir()
    result = build_dataset([path], tmp_path / "images", tmp_path / "out")
    report = result.reports["raw"]
    assert result.num_rows["raw"]["train"] + report.total == counted_lines(data)


def test_fuzzed_google_local_lines_are_each_kept_or_counted(tmp_path):
    rng = random.Random(0)
    meta = tmp_path / "meta-Test.json"
    meta.write_bytes(fuzzed_lines(META_LINES, 1_000, rng))
    report = DropReport()
    restaurants = restaurant_ids([meta], report)
    assert RESTAURANT in restaurants and all(isinstance(gmap_id, str) for gmap_id in restaurants)
    assert 0 < report.total <= 1_000

    data = fuzzed_lines(GOOGLE_LINES, 3_000, rng)
    reviews = tmp_path / "review-Test.json"
    reviews.write_bytes(data)
    clean_meta = tmp_path / "meta-Clean.json"
    clean_meta.write_text(json.dumps(META_LINES[0]) + "\n")
    report = DropReport()
    kept = [review for _, review in located_google_local([reviews], [clean_meta], report)]
    for review in kept:
        assert_writable(review)
    assert len(kept) + report.total == counted_lines(data)
    assert len(kept) > 100


def _filtered_bytes() -> bytes:
    records = [{k: v for k, v in line.items()} | {"history_reviews": line.get("history_reviews", [])}
               for line in GEST_LINES]  # fmt: skip
    return json.dumps({"train": records, "val": records[:1], "test": records[1:]}).encode()


@pytest.mark.parametrize("gz", [False, True])
def test_fuzzed_filtered_files_never_raise(tmp_path, gz):
    """One JSON object: a syntax error ends the file (counted), so only "no exception, at most all records"."""
    rng = random.Random(0)
    source = _filtered_bytes()
    packed = gzip.compress(source, mtime=0)
    path = tmp_path / ("filter_all_t.json.gz" if gz else "filter_all_t.json")
    outcomes = set()
    for _ in range(300):
        if gz:  # damage the compressed stream itself (the gzip header is kept, so it is still gzip)
            path.write_bytes(packed[:10] + mutate(packed[10:], rng))
        else:
            path.write_bytes(mutate(source, rng))
        report = DropReport()
        kept = [review for _, review in located_gest_filtered(path, report)]
        for review in kept:
            assert_writable(review)
        assert len(kept) <= 6
        outcomes.add((len(kept), bool(report.total)))
    assert len(outcomes) > 3  # the mutations reach several different outcomes, not one early failure
