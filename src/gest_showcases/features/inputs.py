"""What extraction needs of a built dataset folder: its rows, their photos, their review texts.

A built folder is read by `gest_showcases.data.folder` (its card, configs, splits, rows and the path
policy of its stored image paths); the names below that read it are kept here for the commands and tests
that import them from this module.
"""

from __future__ import annotations

from pathlib import Path

from gest_showcases.data.folder import IMAGE_COLUMNS, dataset_image_paths, image_items, image_roots, read_rows

__all__ = [
    "IMAGE_COLUMNS",
    "dataset_image_paths",
    "image_items",
    "image_roots",
    "read_config_rows",
    "review_texts",
]


def read_config_rows(folder: str | Path, config: str = "s1", columns: list[str] | None = None) -> list[dict]:
    """Every row of one config of a built dataset folder, all splits, as dicts (with a `split` key).

    An alias of `gest_showcases.data.folder.read_rows`, the one reader of built folders, kept for its callers.
    """
    return read_rows(folder, config, columns)


def review_texts(rows: list[dict]) -> list[tuple[str, str]]:
    """(review_id, text) for every target review and every history review of the rows, first text kept."""
    texts: dict[str, str] = {}
    for row in rows:
        texts.setdefault(row["review_id"], row["review_text"])
        for key, text in zip(row["history_review_ids"], row["history_texts"], strict=True):
            texts.setdefault(key, text)
    return list(texts.items())
