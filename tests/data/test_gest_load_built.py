"""`load_built` reads a built folder's own rows, never a stale cache entry of a same-named folder."""

import shutil

from gest_showcases.data import load_built
from gest_showcases.testing.built_folder import write_built_folder


def _write_folder(folder, texts):
    write_built_folder(folder, {"s1": {"train": [{"review_text": text} for text in texts]}})


def test_same_named_folders_and_rebuilds_load_their_own_rows(tmp_path):
    first, second = tmp_path / "a" / "dataset", tmp_path / "b" / "dataset"
    _write_folder(first, ["one", "two", "three"])
    _write_folder(second, ["only"])
    assert load_built(first, "s1", split="train")["review_text"] == ["one", "two", "three"]
    assert load_built(second, "s1", split="train")["review_text"] == ["only"]
    # A rebuild in place with other rows.
    shutil.rmtree(first)
    _write_folder(first, ["new"] * 2)
    assert load_built(first, "s1", split="train")["review_text"] == ["new", "new"]


def test_a_split_without_rows_loads_empty(tmp_path):
    """datasets 5 fails on a parquet file of no rows (ArrowInvalid: BatchSize must be greater than 0), which
    failed finetune-lm and train-generator (session 25's audit)."""
    import pyarrow.parquet as pq

    from gest_showcases.data.build import dataset_features

    folder = tmp_path / "dataset"
    write_built_folder(folder, {"s1": {"train": [{"review_text": "one"}], "validation": [{"review_text": "two"}],
                                       "test": [{"review_text": "three"}]}})  # fmt: skip
    pq.write_table(dataset_features("s1").arrow_schema.empty_table(), folder / "s1" / "validation-00000-of-00001.parquet")
    splits = load_built(folder, "s1")
    assert list(splits) == ["train", "validation", "test"]  # the card's order
    assert [len(splits[name]) for name in splits] == [1, 0, 1]
    assert load_built(folder, "s1", split="validation").column_names == splits["train"].column_names
    assert load_built(folder, "s1", split="test")["review_text"] == ["three"]
