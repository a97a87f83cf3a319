"""Fixtures of the features tests: a tiny CLIP saved locally, JPEG files, a small built dataset folder (builders
in gest_showcases.testing)."""

from __future__ import annotations

import pytest

from gest_showcases.data.build import build_dataset
from gest_showcases.features.tiny import save_tiny_clip
from gest_showcases.testing.built_folder import write_built_dataset
from gest_showcases.testing.images import write_jpegs, write_truncated_jpeg
from tiny_assets import few_threads  # noqa: F401  (an autouse fixture: importing it applies it here)


def built_synth_world(root, seed: int, num_reviews: int):
    """A Gest-Synth world of 32-px photos under `root/synth`, built into `root/dataset`; returns `root`."""
    synth = pytest.importorskip("gest_showcases.synth")
    synth.write_world(
        synth.generate_world(synth.SynthConfig(seed=seed, num_reviews=num_reviews)),
        root / "synth",
        image_size=32,
    )
    build_dataset([root / "synth" / "image_review_all.json"], root / "synth" / "images", root / "dataset")
    return root


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory):
    """A 150-review Gest-Synth world built into a dataset folder (`synth/` beside it: photos, ground truth)."""
    return built_synth_world(tmp_path_factory.mktemp("clip-world"), seed=0, num_reviews=150) / "dataset"


@pytest.fixture(scope="session")
def other_world(tmp_path_factory):
    """A second, smaller Gest-Synth world (another seed: other users, businesses and photos), built."""
    return built_synth_world(tmp_path_factory.mktemp("other-world"), seed=1, num_reviews=80)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    return str(save_tiny_clip(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="session")
def other_tiny_clip(tmp_path_factory):
    return str(save_tiny_clip(tmp_path_factory.mktemp("other-clip"), seed=1))


@pytest.fixture
def image_dir(tmp_path):
    """Eight readable JPEGs plus `corrupt.jpg` (truncated bytes); `missing` has no file."""
    folder = tmp_path / "images"
    write_jpegs(folder, [f"pic{i}" for i in range(8)])
    write_truncated_jpeg(folder / "corrupt.jpg", keep_bytes=60)  # no image header: unreadable
    return folder


REVIEWS = [
    # review_id, user, business, text, pics, split
    ("u1_b1", "u1", "b1", "Great ramen! The broth was rich.\nWill come back", ["pic0", "pic1"], "train"),
    ("u1_b2", "u1", "b2", "Tiny place. " + "Very " * 60 + "good dumplings.", ["pic2"], "train"),
    ("u2_b1", "u2", "b1", "Cozy room with candles.", ["pic3", "pic4"], "validation"),
    ("u2_b2", "u2", "b2", "Noodles and tea. Friendly staff!", ["pic5"], "test"),
    ("u3_b1", "u3", "b1", "Best pizza in town.", ["pic6", "pic7"], "test"),
]


@pytest.fixture
def built_dataset(tmp_path, image_dir):
    return write_built_dataset(tmp_path / "dataset", image_dir, REVIEWS)
