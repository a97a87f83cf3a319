"""`gest_showcases.testing`'s photo and built-folder writers (checked through the package's own readers), and its
light import."""

import subprocess
import sys

import pytest
from PIL import Image

from gest_showcases.data.folder import dataset_configs, read_card, read_rows
from gest_showcases.data.images import ImageStatus, probe_image
from gest_showcases.testing.built_folder import write_built_dataset, write_built_folder
from gest_showcases.testing.images import jpeg_bytes, write_jpegs, write_truncated_jpeg


def test_the_tokenizers_alone_import_no_model():
    # experiments/world.py reads only the tokenizers: the tiny CLIP, selector and PC2L load when first named.
    code = (
        "import sys; from gest_showcases.testing import gpt2_tokenizer; "
        "print([m for m in sys.modules if m.startswith(('gest_showcases.generation', 'gest_showcases.selection', "
        "'gest_showcases.features', 'gest_showcases.testing.tiny_assets'))])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_write_jpegs_draws_each_size_from_one_seed(tmp_path):
    paths = write_jpegs(tmp_path / "a", ["x", "y", "z"], seed=3, size=(20, 30), quality=80)
    sizes = []
    for path in paths.values():
        with Image.open(path) as image:
            sizes.append(image.size)
    assert sizes == [(30, 20), (28, 23), (26, 26)]  # (width, height): the i-th is (height + 3i, width - 2i)
    assert paths["x"].read_bytes() == jpeg_bytes((20, 30), seed=3, quality=80)
    again = write_jpegs(tmp_path / "b", ["x", "y", "z"], seed=3, size=(20, 30), quality=80)
    assert [path.read_bytes() for path in again.values()] == [path.read_bytes() for path in paths.values()]
    other_seed = write_jpegs(tmp_path / "c", ["x"], seed=4, size=(20, 30), quality=80)
    assert other_seed["x"].read_bytes() != paths["x"].read_bytes()


def test_truncated_jpegs_do_not_decode(tmp_path):
    half = write_truncated_jpeg(tmp_path / "half.jpg", size=(64, 64), seed=1)
    assert half.read_bytes() == jpeg_bytes((64, 64), seed=1)[: len(jpeg_bytes((64, 64), seed=1)) // 2]
    with Image.open(half) as image:
        assert image.size == (64, 64)  # the header reads
    assert probe_image(half) == ImageStatus.UNREADABLE  # the pixels do not
    head = write_truncated_jpeg(tmp_path / "head.jpg", keep_bytes=60)
    assert head.read_bytes() == jpeg_bytes()[:60]
    assert probe_image(head) == ImageStatus.UNREADABLE


def test_built_dataset_reads_back_through_the_packages_reader(tmp_path):
    reviews = [
        ("r1", "u1", "b1", "Rich broth.", ["p1", "p2"], "train"),
        ("r2", "u1", "b2", "Crisp fries.", ["p3"], "test"),
        ("r3", "u2", "b1", "Good tea.", ["p4"], "train"),
    ]
    folder = write_built_dataset(tmp_path / "dataset", tmp_path / "photos", reviews)
    assert [(config["config_name"], config.get("default")) for config in read_card(folder)["configs"]] == [
        ("s1", True)
    ]
    assert {config: list(files) for config, files in dataset_configs(folder).items()} == {
        "s1": ["train", "test"]
    }
    rows = {row["review_id"]: row for row in read_rows(folder)}
    assert [rows[key]["split"] for key in ("r1", "r2", "r3")] == ["train", "test", "train"]
    assert rows["r1"]["history_review_ids"] == ["r2"] and rows["r3"]["history_review_ids"] == []
    assert rows["r1"]["history_texts"] == ["Crisp fries."] and rows["r1"]["history_pics"] == ["p3"]
    assert rows["r1"]["candidate_pics"] == rows["r3"]["candidate_pics"] == ["p1", "p2", "p4"]
    assert rows["r1"]["pic_paths"] == ["../photos/p1.jpg", "../photos/p2.jpg"]
    assert rows["r3"]["candidate_paths"] == ["../photos/p1.jpg", "../photos/p2.jpg", "../photos/p4.jpg"]


def test_write_built_folder_lists_every_config_and_split_in_order(tmp_path):
    rows = [{"review_id": f"r{i}", "pics": [f"p{i}"]} for i in range(4)]
    splits = {"s2": {"train": rows[:3], "validation": rows[3:]}, "s1": {"train": rows}}
    folder = write_built_folder(tmp_path / "dataset", splits, default_config="s1", card_body="# body\n")
    configs = read_card(folder)["configs"]
    assert [(config["config_name"], config.get("default", False)) for config in configs] == [
        ("s2", False), ("s1", True),
    ]  # fmt: skip
    assert {config: list(files) for config, files in dataset_configs(folder).items()} == {
        "s2": ["train", "validation"], "s1": ["train"],
    }  # fmt: skip
    assert [row["review_id"] for row in read_rows(folder, "s2", split="validation")] == ["r3"]
    assert [row["review_id"] for row in read_rows(folder, "s1")] == ["r0", "r1", "r2", "r3"]
    assert (folder / "README.md").read_text().endswith("---\n# body\n")
    with pytest.raises(FileExistsError):  # never mixes its files with an earlier folder's
        write_built_folder(tmp_path / "dataset", splits)
