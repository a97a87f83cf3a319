"""`load_built` reads a built folder's own rows, never a stale cache entry of a same-named folder."""

import datasets

from gest_showcases.data import load_built

CARD = """---
configs:
- config_name: s1
  data_files:
  - split: train
    path: s1/train-*.parquet
  default: true
---
"""


def _write_folder(folder, texts):
    (folder / "s1").mkdir(parents=True)
    datasets.Dataset.from_dict({"review_text": texts}).to_parquet(
        str(folder / "s1" / "train-00000-of-00001.parquet")
    )
    (folder / "README.md").write_text(CARD)


def test_same_named_folders_and_rebuilds_load_their_own_rows(tmp_path):
    first, second = tmp_path / "a" / "dataset", tmp_path / "b" / "dataset"
    _write_folder(first, ["one", "two", "three"])
    _write_folder(second, ["only"])
    assert load_built(first, "s1", split="train")["review_text"] == ["one", "two", "three"]
    assert load_built(second, "s1", split="train")["review_text"] == ["only"]
    # A rebuild in place with other rows.
    datasets.Dataset.from_dict({"review_text": ["new"] * 2}).to_parquet(
        str(first / "s1" / "train-00000-of-00001.parquet")
    )
    assert load_built(first, "s1", split="train")["review_text"] == ["new", "new"]
