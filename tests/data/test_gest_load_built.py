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
