"""Fixtures of the features tests: a tiny CLIP saved locally, JPEG files, a small built dataset folder."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from gest_showcases.features.tiny import save_tiny_clip


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    return str(save_tiny_clip(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="session")
def other_tiny_clip(tmp_path_factory):
    return str(save_tiny_clip(tmp_path_factory.mktemp("other-clip"), seed=1))


def write_jpegs(folder, names, seed=0, size=(40, 56)):
    """Random-colour JPEGs `<name>.jpg` of varied sizes; returns {name: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = {}
    for i, name in enumerate(names):
        height, width = size[0] + 3 * i, size[1] - 2 * i
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        path = folder / f"{name}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths[name] = path
    return paths


@pytest.fixture
def image_dir(tmp_path):
    """Eight readable JPEGs plus `corrupt.jpg` (truncated bytes); `missing` has no file."""
    folder = tmp_path / "images"
    paths = write_jpegs(folder, [f"pic{i}" for i in range(8)])
    (folder / "corrupt.jpg").write_bytes(paths["pic0"].read_bytes()[:60])
    return folder


REVIEWS = [
    # review_id, user, business, text, pics, split
    ("u1_b1", "u1", "b1", "Great ramen! The broth was rich.\nWill come back", ["pic0", "pic1"], "train"),
    ("u1_b2", "u1", "b2", "Tiny place. " + "Very " * 60 + "good dumplings.", ["pic2"], "train"),
    ("u2_b1", "u2", "b1", "Cozy room with candles.", ["pic3", "pic4"], "validation"),
    ("u2_b2", "u2", "b2", "Noodles and tea. Friendly staff!", ["pic5"], "test"),
    ("u3_b1", "u3", "b1", "Best pizza in town.", ["pic6", "pic7"], "test"),
]


def write_built_dataset(folder, image_dir):
    """A dataset folder in the builder's layout (parquet + README `configs:`) with an s1 config."""
    folder.mkdir(parents=True, exist_ok=True)
    by_business: dict[str, list[str]] = {}
    for _, _, business, _, pics, _ in REVIEWS:
        by_business.setdefault(business, []).extend(pics)
    rel = f"../{image_dir.name}"
    splits: dict[str, list[dict]] = {}
    for rid, user, business, text, pics, split in REVIEWS:
        others = [r for r in REVIEWS if r[1] == user and r[0] != rid]
        splits.setdefault(split, []).append(
            {
                "review_id": rid,
                "user_id": user,
                "business_id": business,
                "rating": 5,
                "review_text": text,
                "pics": pics,
                "time": None,
                "pic_paths": [f"{rel}/{p}.jpg" for p in pics],
                "history_review_ids": [r[0] for r in others],
                "history_texts": [r[3] for r in others],
                "history_pics": [p for r in others for p in r[4]],
                "candidate_pics": by_business[business],
                "candidate_paths": [f"{rel}/{p}.jpg" for p in by_business[business]],
            }
        )
    (folder / "s1").mkdir()
    data_files = []
    for split, rows in splits.items():
        pq.write_table(pa.Table.from_pylist(rows), folder / "s1" / f"{split}.parquet")
        data_files.append({"split": split, "path": f"s1/{split}.parquet"})
    card = {"configs": [{"config_name": "s1", "data_files": data_files}]}
    (folder / "README.md").write_text("---\n" + json.dumps(card) + "\n---\n# test dataset\n")
    return folder


@pytest.fixture
def built_dataset(tmp_path, image_dir):
    return write_built_dataset(tmp_path / "dataset", image_dir)


@pytest.fixture(autouse=True)
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
