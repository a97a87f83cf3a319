"""Fixtures of the showcase tests: tiny CLIP, DPP selector and PC2L checkpoints saved locally, JPEGs and a small
built dataset folder (builders in gest_showcases.testing)."""

from __future__ import annotations

import pytest

from gest_showcases.testing.built_folder import write_built_dataset
from gest_showcases.testing.images import write_jpegs, write_truncated_jpeg
from gest_showcases.testing.tiny_assets import save_tiny_checkpoints, save_tiny_generator
from tiny_assets import few_threads  # noqa: F401  (an autouse fixture: importing it applies it here)


@pytest.fixture(scope="session")
def make_tiny_generator():
    """`save_tiny_generator` for tests that need another generator."""
    return save_tiny_generator


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """{"clip", "selector", "generator"}: folders of tiny saved checkpoints."""
    return save_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture
def photos(tmp_path):
    """Eight readable JPEGs `pic0..pic7` plus `corrupt.jpg` (truncated bytes)."""
    paths = write_jpegs(tmp_path / "images", [f"pic{i}" for i in range(8)], size=(36, 48))
    paths["corrupt"] = write_truncated_jpeg(tmp_path / "images" / "corrupt.jpg", keep_bytes=60, size=(36, 48))
    return paths


REVIEWS = [
    # review_id, user, business, text, pics, split
    ("u1_b1", "u1", "b1", "Great ramen! The broth was rich.", ["pic0", "pic1"], "train"),
    ("u1_b2", "u1", "b2", "Tiny place with good dumplings.", ["pic2"], "train"),
    ("u2_b1", "u2", "b1", "Cozy room with candles & <b>jazz</b>.", ["pic3", "pic4"], "test"),
    ("u2_b2", "u2", "b2", "Noodles and tea. Friendly staff!", ["pic5"], "test"),
    ("u3_b1", "u3", "b1", "Best pizza in town.", ["pic6", "pic7"], "test"),
]


@pytest.fixture
def built_dataset(tmp_path, photos):
    """A dataset folder in the builder's layout (parquet + README `configs:`) with an s1 config."""
    return write_built_dataset(tmp_path / "dataset", tmp_path / "images", REVIEWS)
