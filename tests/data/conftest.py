"""Generated Gest and Google Local files for the data tests (no real rows: ids and texts are made up)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from gest_showcases.testing.images import write_jpegs, write_truncated_jpeg


class GestFiles:
    """Writes files in the published formats, and image folders, under one temporary folder."""

    def __init__(self, root: Path):
        self.root = root
        self.images = root / "images"
        self.images.mkdir()

    @staticmethod
    def pic(i: int) -> str:
        """A pic id shaped like Gest's: `AF1Qip` + 38 URL-safe characters."""
        return "AF1Qip" + hashlib.sha256(str(i).encode()).hexdigest()[:36] + "-_"

    @staticmethod
    def user(i: int) -> str:
        return f"1{i:020d}"

    @staticmethod
    def business(i: int) -> str:
        return f"{i:024x}"

    @staticmethod
    def url(pic: str) -> str:
        return f"https://lh5.googleusercontent.com/p/{pic}=w150-h150-k-no-p"

    def image(self, pic: str, seed: int = 0) -> Path:
        """Write a small valid JPEG `<images>/<pic>.jpg`."""
        return write_jpegs(self.images, [pic], seed=seed, size=(16, 16), quality=75)[pic]

    def truncated_image(self, pic: str) -> Path:
        """A JPEG cut in half: its header reads, its pixels do not."""
        return write_truncated_jpeg(self.images / f"{pic}.jpg", size=(64, 64), seed=1, quality=75)

    def jsonl(self, name: str, records: list, gz: bool = False) -> Path:
        """JSON Lines: dicts are dumped, `bytes`/`str` items are written as they are (broken lines)."""
        lines = []
        for record in records:
            if isinstance(record, bytes):
                lines.append(record)
            elif isinstance(record, str):
                lines.append(record.encode("utf-8"))
            else:
                lines.append(json.dumps(record).encode("utf-8"))
        data = b"\n".join(lines) + b"\n"
        path = self.root / name
        path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
        return path

    def filtered(self, name: str, splits: dict[str, list[dict]], indent: int | None = None) -> Path:
        path = self.root / name
        path.write_text(json.dumps(splits, indent=indent), encoding="utf-8")
        return path

    def record(self, user: int, business: int, text: str, pics=(), rating: int = 5) -> dict:
        return {
            "business_id": self.business(business),
            "user_id": self.user(user),
            "rating": rating,
            "review_text": text,
            "pics": list(pics),
        }


@pytest.fixture
def gest_files(tmp_path) -> GestFiles:
    return GestFiles(tmp_path)


@pytest.fixture
def hf_cache(tmp_path) -> str:
    """A `cache_dir` for `datasets.load_dataset` inside the test's folder."""
    return str(tmp_path / "hf-cache")
