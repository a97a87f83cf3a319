"""`ShowcasePipeline` reads the generator's input contracts from its config: which image features it was trained on
(`image_kind`, an explicit argument still overriding it), the models that computed them and their precision."""

import pytest
import torch

from gest_showcases.errors import InputError
from gest_showcases.features import extract_image_features, extract_text_features, load_clip, load_features
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


def test_the_pipeline_encodes_in_the_precision_the_training_features_were_computed_in(checkpoints, tmp_path):
    # Oracle: the features `extract_*_features` cached from a bf16 CLIP (what `features --dtype auto` does on a
    # GPU), read back as train-pc2l reads them. The pipeline must compute exactly those numbers.
    photos = write_jpegs(tmp_path / "images", ["a", "b", "c"])
    texts = ["Great ramen. The broth was rich!", "Crispy dumplings, slow service."]
    image_bf16, text_bf16 = load_clip(checkpoints["clip"], dtype=torch.bfloat16)
    extract_image_features(list(photos.items()), image_bf16, tmp_path / "features", num_workers=0)
    extract_text_features(list(zip(["r0", "r1"], texts, strict=True)), text_bf16, tmp_path / "features")
    cached_images, cached_reviews = load_features(tmp_path / "features", "image"), load_features(
        tmp_path / "features", "review"
    )
    assert (cached_images.dtype, cached_reviews.dtype) == ("bfloat16", "bfloat16")
    common = {"selector": checkpoints["selector"], "clip": checkpoints["clip"], "tokenizer": checkpoints["generator"]}
    generator = clip_generator(
        checkpoints, tmp_path / "bf16", image_kind="image", image_feature_dtype=cached_images.dtype,
        review_feature_dtype=cached_reviews.dtype,
    )  # fmt: skip
    showcase = ShowcasePipeline.from_pretrained(generator=generator, **common)
    assert (showcase.clip_image.dtype, showcase.clip_text.dtype) == (torch.bfloat16, torch.bfloat16)
    computed = torch.stack(showcase._clip_features(list(photos.values())))
    assert torch.equal(computed, cached_images.lookup(list(photos))[0])
    assert torch.equal(showcase.review_embeddings(texts), cached_reviews.lookup(["r0", "r1"])[0])

    # Without a recorded precision (generators saved before it was): float32, whose features differ from bf16's.
    unrecorded = ShowcasePipeline.from_pretrained(
        generator=clip_generator(checkpoints, tmp_path / "none", image_kind="image"), **common
    )
    assert (unrecorded.clip_image.dtype, unrecorded.clip_text.dtype) == (torch.float32, torch.float32)
    assert not torch.equal(torch.stack(unrecorded._clip_features(list(photos.values()))), computed)

    # Image and review features from two extraction runs in two precisions: each tower in its own.
    mixed = ShowcasePipeline.from_pretrained(
        generator=clip_generator(
            checkpoints, tmp_path / "mixed", image_kind="image", image_feature_dtype="bfloat16",
            review_feature_dtype="float32",
        ), **common,
    )  # fmt: skip
    assert (mixed.clip_image.dtype, mixed.clip_text.dtype) == (torch.bfloat16, torch.float32)
    assert torch.equal(torch.stack(mixed._clip_features(list(photos.values()))), computed)

    # A generator that reads the backbone's features: the backbone follows the recorded precision, CLIP stays float32.
    vision = ShowcasePipeline.from_pretrained(
        generator=clip_generator(checkpoints, tmp_path / "vision", image_kind="vision", image_feature_dtype="bfloat16"),
        **common,
    )
    assert (vision.vision.dtype, vision.clip_image.dtype, vision.clip_text.dtype) == (
        torch.bfloat16, torch.float32, torch.float32,
    )  # fmt: skip
