"""`ShowcasePipeline` reads the generator's input contracts from its config: which image features it was trained on
(`image_kind`, an explicit argument still overriding it) and the models that computed them."""

import pytest

from gest_showcases.errors import InputError
from gest_showcases.features import load_clip
from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.pipeline import ShowcasePipeline
from tiny_assets import (
    CLIP_DIM,
    few_threads,  # noqa: F401  (an autouse fixture: importing it applies it here)
    save_tiny_checkpoints,
    write_jpegs,
)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return save_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"))


def clip_generator(checkpoints, folder, **contracts) -> str:
    """The tiny generator retrained (here: resized) for CLIP image features, with `contracts` in its config."""
    model = PC2LForConditionalGeneration.from_pretrained(
        checkpoints["generator"], image_feature_dim=CLIP_DIM, ignore_mismatched_sizes=True, **contracts
    )
    model.save_pretrained(folder)
    return str(folder)


def test_the_pipeline_reads_image_kind_from_the_generator_config(checkpoints, tmp_path):
    generator = clip_generator(checkpoints, tmp_path / "generator", image_kind="image")
    photos = write_jpegs(tmp_path / "images", ["a", "b"])
    showcase = ShowcasePipeline.from_pretrained(
        selector=checkpoints["selector"], generator=generator, clip=checkpoints["clip"],
        tokenizer=checkpoints["generator"], max_new_tokens=4,
    )  # fmt: skip
    assert showcase.image_kind == "image" and showcase.vision is None
    result = showcase({"candidates": [photos["a"], photos["b"]], "history_texts": ["Great ramen!"]})
    assert result.explanation and len(result.photos) == 2


def test_an_explicit_image_kind_overrides_the_config(checkpoints, tmp_path, caplog):
    generator = clip_generator(checkpoints, tmp_path / "generator", image_kind="image")
    showcase = ShowcasePipeline.from_pretrained(
        selector=checkpoints["selector"], generator=generator, clip=checkpoints["clip"],
        tokenizer=checkpoints["generator"], image_kind="vision",
    )  # fmt: skip
    assert showcase.image_kind == "vision" and showcase.vision is not None
    assert "overrides the generator's config.image_kind='image'" in caplog.text


def test_generators_saved_before_image_kind_was_recorded_read_vision_features(checkpoints):
    showcase = ShowcasePipeline.from_pretrained(**checkpoints)
    assert PC2LForConditionalGeneration.from_pretrained(checkpoints["generator"]).config.image_kind is None
    assert showcase.image_kind == "vision" and showcase.vision is not None


def test_feature_models_other_than_the_generators_are_refused(checkpoints, tmp_path):
    clip_image, clip_text = load_clip(checkpoints["clip"])
    right = {"image_kind": "image", "image_feature_model": "clip", "image_feature_fingerprint": clip_image.fingerprint,
             "review_feature_model": "clip", "review_feature_fingerprint": clip_text.fingerprint}  # fmt: skip
    common = {
        "selector": checkpoints["selector"],
        "clip": checkpoints["clip"],
        "tokenizer": checkpoints["generator"],
    }
    generator = clip_generator(checkpoints, tmp_path / "right", **right)
    assert ShowcasePipeline.from_pretrained(generator=generator, **common).image_kind == "image"
    for name in ("image_feature_fingerprint", "review_feature_fingerprint"):
        generator = clip_generator(checkpoints, tmp_path / name, **(right | {name: "f" * 64}))
        with pytest.raises(
            InputError, match=r"trained on .* features of 'clip' \(fingerprint ffffffffffff\)"
        ):
            ShowcasePipeline.from_pretrained(generator=generator, **common)


def test_a_review_width_other_than_clips_is_refused_at_once(checkpoints, tmp_path):
    model = PC2LForConditionalGeneration.from_pretrained(
        checkpoints["generator"], review_feature_dim=CLIP_DIM + 1, ignore_mismatched_sizes=True
    )
    model.save_pretrained(tmp_path / "generator")
    with pytest.raises(
        InputError, match=f"reads {CLIP_DIM + 1}-d history-review features .* computes {CLIP_DIM}-d"
    ):
        ShowcasePipeline.from_pretrained(**(checkpoints | {"generator": str(tmp_path / "generator")}),
                                         tokenizer=checkpoints["generator"])  # fmt: skip
