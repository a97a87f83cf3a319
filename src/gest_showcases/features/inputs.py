"""Read a built dataset folder (parquet configs listed in its README card) into what extraction needs."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq
import yaml

logger = logging.getLogger(__name__)


def _card_configs(folder: Path) -> dict[str, list[dict]]:
    card = (folder / "README.md").read_text()
    if not card.startswith("---"):
        raise ValueError(f"{folder / 'README.md'} has no YAML front matter listing the dataset's configs")
    front = yaml.safe_load(card.split("---", 2)[1])
    return {entry["config_name"]: entry["data_files"] for entry in front["configs"]}


def read_config_rows(folder: str | Path, config: str = "s1", columns: list[str] | None = None) -> list[dict]:
    """Every row of one config of a built dataset folder, all splits, as dicts (with a `split` key)."""
    folder = Path(folder)
    configs = _card_configs(folder)
    if config not in configs:
        raise ValueError(f"{folder} has no config {config!r}; it has {sorted(configs)}")
    rows: list[dict] = []
    for entry in configs[config]:
        patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
        for pattern in patterns:
            for path in sorted(folder.glob(pattern)):
                for row in pq.read_table(path, columns=columns).to_pylist():
                    row["split"] = entry["split"]
                    rows.append(row)
    logger.info("read %d %s rows from %s", len(rows), config, folder)
    return rows


def image_items(folder: str | Path, rows: list[dict]) -> list[tuple[str, Path]]:
    """(pic_id, absolute path) for every image the rows mention: pics, candidate_pics and history_pics.

    `history_pics` carry no paths; every image lives in one folder as `<pic_id>.jpg`, taken from the
    paths the rows do carry.
    """
    folder = Path(folder)
    paths: dict[str, Path] = {}
    for row in rows:
        paths.update(zip(row["pics"], (folder / p for p in row["pic_paths"]), strict=True))
        paths.update(zip(row["candidate_pics"], (folder / p for p in row["candidate_paths"]), strict=True))
    if paths:
        image_dir = next(iter(paths.values())).parent
        for row in rows:
            for pic in row["history_pics"]:
                paths.setdefault(pic, image_dir / f"{pic}.jpg")
    return list(paths.items())


def review_texts(rows: list[dict]) -> list[tuple[str, str]]:
    """(review_id, text) for every target review and every history review of the rows, first text kept."""
    texts: dict[str, str] = {}
    for row in rows:
        texts.setdefault(row["review_id"], row["review_text"])
        for key, text in zip(row["history_review_ids"], row["history_texts"], strict=True):
            texts.setdefault(key, text)
    return list(texts.items())
