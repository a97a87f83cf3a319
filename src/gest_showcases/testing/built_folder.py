"""The one writer of a built dataset folder in the builder's layout (`gest_showcases.data.folder`): parquet files
`<config>/<split>-00000-of-00001.parquet` and a `README.md` whose YAML `configs:` lists them, as the Hub reads it.

`write_built_folder` writes any rows; `write_built_dataset` writes the s1 rows `gest-showcases build` would for a
few made-up reviews, their photos in a sibling image folder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from datasets import List

from gest_showcases.data.build import dataset_features
from gest_showcases.data.records import CONFIGS
from gest_showcases.data.schema import NULLABLE_COLUMNS

# (review_id, user, business, text, pics, split): one review of `write_built_dataset`.
Review = tuple[str, str, str, str, Sequence[str], str]


def write_built_folder(
    folder: str | Path,
    configs: Mapping[str, Mapping[str, Sequence[Mapping]]],
    default_config: str | None = None,
    card_body: str = "",
) -> Path:
    """Write `configs[config][split]` (rows as dicts) as a built dataset folder; returns `folder`.

    Args:
        folder (`str` or `Path`): the dataset folder; its config folders must not exist yet.
        configs (`Mapping`): {config: {split: rows}}, listed in the card in this order. A `raw`, `s1` or `s2`
            config is written in the builder's schema (`dataset_features`), which `load_built` checks: a column the
            rows leave out is written empty (`""`, `[]`, or null where the builder allows it); other configs and
            other columns are inferred from the rows (`pyarrow.Table.from_pylist`).
        default_config (`str`, *optional*): the config marked `default: true`; defaults to the first one.
        card_body (`str`, *optional*, defaults to `""`): the card's Markdown after its YAML header.
    """
    folder = Path(folder)
    default_config = default_config if default_config is not None else next(iter(configs))
    card = []
    for config, splits in configs.items():
        (folder / config).mkdir(parents=True)
        data_files = []
        for split, rows in splits.items():
            path = folder / config / f"{split}-00000-of-00001.parquet"
            pq.write_table(_table(config, list(rows)), path)
            data_files.append({"split": split, "path": f"{config}/{split}-*.parquet"})
        entry = {"config_name": config, "data_files": data_files}
        card.append(entry | ({"default": True} if config == default_config else {}))
    front_matter = yaml.safe_dump({"configs": card}, sort_keys=False)
    (folder / "README.md").write_text(f"---\n{front_matter}---\n{card_body}", encoding="utf-8")
    return folder


def _table(config: str, rows: list[dict]) -> pa.Table:
    """`rows` as a parquet table, in the builder's schema for a built config (see `write_built_folder`)."""
    if config not in CONFIGS:
        return pa.Table.from_pylist(rows)
    features = dataset_features(config)
    empty = {name: [] if isinstance(feature, List) else (None if name in NULLABLE_COLUMNS else "")
             for name, feature in features.items()}  # fmt: skip
    table = pa.Table.from_pylist([empty | row for row in rows], schema=features.arrow_schema)
    others = pa.Table.from_pylist([{key: value for key, value in row.items() if key not in features} for row in rows])
    for name in others.column_names:
        table = table.append_column(others.schema.field(name), others.column(name))
    return table


def s1_rows(reviews: Sequence[Review], image_dir_name: str) -> dict[str, list[dict]]:
    """{split: s1 rows} of `reviews`: a review's history is its user's other reviews, its candidates every picture
    of its business, and its photos `../<image_dir_name>/<pic>.jpg` (an image folder beside the dataset's)."""
    by_business: dict[str, list[str]] = {}
    for _, _, business, _, pics, _ in reviews:
        by_business.setdefault(business, []).extend(pics)
    relative = f"../{image_dir_name}"
    splits: dict[str, list[dict]] = {}
    for review_id, user, business, text, pics, split in reviews:
        others = [review for review in reviews if review[1] == user and review[0] != review_id]
        splits.setdefault(split, []).append(
            {
                "review_id": review_id,
                "user_id": user,
                "business_id": business,
                "rating": 5,
                "review_text": text,
                "pics": list(pics),
                "time": None,
                "pic_paths": [f"{relative}/{pic}.jpg" for pic in pics],
                "history_review_ids": [other[0] for other in others],
                "history_texts": [other[3] for other in others],
                "history_pics": [pic for other in others for pic in other[4]],
                "candidate_pics": by_business[business],
                "candidate_paths": [f"{relative}/{pic}.jpg" for pic in by_business[business]],
            }
        )
    return splits


def write_built_dataset(folder: str | Path, image_dir: str | Path, reviews: Sequence[Review]) -> Path:
    """A built dataset folder with one config, s1, of `reviews` (`s1_rows`); `image_dir` is a sibling of `folder`.

    `reviews` holds (review_id, user, business, text, pics, split) tuples; returns `folder`.
    """
    rows = s1_rows(reviews, Path(image_dir).name)
    return write_built_folder(folder, {"s1": rows}, card_body="# test dataset\n")


def rewrite_s1_rows(dataset: str | Path, change: Callable[[dict], dict]) -> None:
    """Apply `change` to every row of the s1 parquet files (as a hostile or hand-made file would)."""
    for path in (Path(dataset) / "s1").glob("*.parquet"):
        table = pq.read_table(path)
        rows = [change(row) for row in table.to_pylist()]
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
