"""Atomic file writes: a reader, or the next run after a crash, sees the old file or the new one, never half of one.

This module imports only the standard library, so every layer may use it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def writing_atomically(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write the whole file to; renamed over `path` when the block ends.

    The temporary name is unique (two processes writing the same file at once each rename a whole file; the last
    one wins) and starts with a dot; it is removed when the block fails.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through a temporary file beside it (`writing_atomically`). Returns `path`."""
    with writing_atomically(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


__all__ = ["write_text_atomically", "writing_atomically"]
