"""`gest_showcases.data.folder`, the one reader of a built folder: the card header parsed once, by one function,
for every reader (`dataset_configs`, `read_config_rows` of features, `load_built`)."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import List

from gest_showcases.data.build import dataset_features, load_built
from gest_showcases.data.folder import dataset_configs, read_rows, split_front_matter
from gest_showcases.data.stats import dataset_stats
from gest_showcases.errors import InputError
from gest_showcases.features.inputs import read_config_rows

# A hand-written card as the Hub allows it: a split listed by two globs, and a YAML value holding `---`.
CARD = """---
pretty_name: cafés---and more
configs:
- config_name: s1
  default: true
  data_files:
  - split: train
    path:
    - s1/train-b-*.parquet
    - s1/train-a-*.parquet
  - split: test
    path: s1/test-*.parquet
- config_name: s2
  data_files:
  - split: train
    path: s2/train-*.parquet
---

# A dataset
"""


def _rows(ids: list[str], config: str) -> list[dict]:
    """Rows of every column `build` writes for `config` (load_built checks them), the text column filled in."""
    text = "explanation" if config == "s2" else "review_text"
    return [
        {name: [] if isinstance(feature, List) else None for name, feature in dataset_features(config).items()}
        | {"review_id": i, "user_id": f"u{i}", "business_id": "b", "pics": [f"p{i}"], "review_text": "",
           "explanation": "", text: f"words of {i}", "images": [b"\xff\xd8"]}
        for i in ids
    ]  # fmt: skip


def _folder(root: Path) -> Path:
    files = {
        "s1/train-a-00000.parquet": _rows(["a1", "a2"], "s1"),
        "s1/train-b-00000.parquet": _rows(["b1"], "s1"),
        "s1/test-00000.parquet": _rows(["t1"], "s1"),
        "s2/train-00000.parquet": _rows(["e1"], "s2"),
    }
    for name, rows in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        config = name.split("/")[0]
        schema = dataset_features(config).arrow_schema.append(pa.field("images", pa.list_(pa.binary())))
        pq.write_table(pa.Table.from_pylist([{key: row.get(key) for key in schema.names} for row in rows], schema), root / name)
    (root / "README.md").write_text(CARD, encoding="utf-8")
    return root


def test_front_matter_ends_at_a_line_of_dashes_only():
    front, body = split_front_matter(CARD)
    assert front["pretty_name"] == "cafés---and more"
    assert [config["config_name"] for config in front["configs"]] == ["s1", "s2"]
    assert body == "# A dataset"
    with pytest.raises(InputError, match="no YAML front matter"):
        split_front_matter("# A dataset\n---\nconfigs: []\n---\n")


def test_every_reader_lists_the_same_files_in_the_cards_order(tmp_path):
    folder = _folder(tmp_path)
    expected = {
        "s1": {
            "train": [folder / "s1/train-b-00000.parquet", folder / "s1/train-a-00000.parquet"],
            "test": [folder / "s1/test-00000.parquet"],
        },
        "s2": {"train": [folder / "s2/train-00000.parquet"]},
    }
    assert dataset_configs(folder) == expected
    # stats reads the same files: Table 1's counts of the s1 splits.
    counts = {(row["Config"], row["Split"]): row["#Review"] for row in dataset_stats(folder)}
    assert counts == {("s1", "train"): 3, ("s1", "test"): 1, ("s1", "all"): 4, ("s2", "train"): 1}
    # load_built too, without the photo bytes.
    train = load_built(folder, "s1", split="train")
    assert train["review_id"] == ["b1", "a1", "a2"] and "images" not in train.column_names
    assert list(load_built(folder, "s1")) == ["train", "test"]


def test_rows_of_a_config_or_split_without_the_photo_bytes_unless_asked(tmp_path):
    folder = _folder(tmp_path)
    rows = read_config_rows(folder, "s1")
    assert rows == read_rows(folder, "s1")
    assert [(row["review_id"], row["split"]) for row in rows] == [
        ("b1", "train"), ("a1", "train"), ("a2", "train"), ("t1", "test")
    ]  # fmt: skip
    assert all("images" not in row for row in rows)
    assert [row["images"] for row in read_rows(folder, "s1", split="test", with_images=True)] == [
        [b"\xff\xd8"]
    ]
    assert read_rows(folder, "s2", columns=["explanation"]) == [
        {"explanation": "words of e1", "split": "train"}
    ]
    with pytest.raises(InputError, match=r"has no split 'valid'; it has \['train', 'test'\]"):
        read_rows(folder, "s1", split="valid")


@pytest.mark.parametrize(
    "reader", [read_config_rows, dataset_configs, load_built], ids=lambda f: f.__name__
)
def test_every_reader_refuses_what_is_not_a_built_folder_with_one_message(tmp_path, reader):
    arguments = (tmp_path,) if reader is dataset_configs else (tmp_path, "s1")
    with pytest.raises(InputError, match=r"has no README\.md: not a built dataset folder"):
        reader(*arguments)
    (tmp_path / "README.md").write_text("# notes\n")
    with pytest.raises(InputError, match=r"README\.md: the card has no YAML front matter"):
        reader(*arguments)


@pytest.mark.parametrize("reader", [read_config_rows, load_built], ids=lambda f: f.__name__)
def test_an_unknown_config_is_named_with_the_ones_there_are(tmp_path, reader):
    with pytest.raises(InputError, match=r"has no config 's3'; it has \['s1', 's2'\]"):
        reader(_folder(tmp_path), "s3")
