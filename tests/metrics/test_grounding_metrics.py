"""CLIP-Align and CLIP-Score with a tiny CLIP and a tiny linear scorer, against direct computation."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gest_showcases.features.tiny import save_tiny_clip
from gest_showcases.metrics.grounding import (
    CLIP_SCORE_PREFIX,
    clip_align,
    clip_align_from_embeddings,
    clip_score,
    clip_score_from_embeddings,
    embed_image_files,
    embed_texts,
    load_clip_checkpoint,
)
from gest_showcases.metrics.text import split_sentences


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return str(save_tiny_clip(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="module")
def clip(clip_path):
    return load_clip_checkpoint(clip_path)


class LinearScorer(torch.nn.Module):
    """The explanation classifier's shape: [text ; image] -> one linear layer -> sigmoid."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = torch.nn.Linear(2 * dim, 1)

    def forward(self, text_embeds, image_embeds):
        return torch.sigmoid(self.linear(torch.cat([text_embeds, image_embeds], -1))).squeeze(-1)


def _images(seed: int, count: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)) for _ in range(count)]


def _direct_embedding(model, processor, text: str) -> torch.Tensor:
    ids = processor.tokenizer(text, truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        return torch.nn.functional.normalize(model.get_text_features(**ids).pooler_output[0], dim=-1)


def _direct_image(model, processor, image) -> torch.Tensor:
    pixels = processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return torch.nn.functional.normalize(
            model.get_image_features(pixel_values=pixels).pooler_output[0], dim=-1
        )


def test_clip_align_matches_direct_computation(clip):
    model, processor = clip
    torch.manual_seed(1)
    scorer = LinearScorer(model.config.projection_dim).eval()
    texts = ["the pho was great. the rolls were crispy!", "nice burger", "", "one. two. three."]
    images = [_images(0, 2), _images(1, 1), _images(2, 3), []]
    result = clip_align(images, texts, model, processor, scorer)
    per_example = []
    for ims, text in zip(images, texts, strict=True):
        if not ims:
            continue
        sentences = [_direct_embedding(model, processor, s) for s in split_sentences(text)]
        best = []
        for image in ims:
            v = _direct_image(model, processor, image)
            with torch.no_grad():
                best.append(max((float(scorer(s[None], v[None])[0]) for s in sentences), default=0.0))
        per_example.append(sum(best) / len(best))
    assert result["clip_align_examples"] == 3
    assert result["clip_align"] == pytest.approx(sum(per_example) / len(per_example), abs=1e-5)


def test_clip_score_matches_direct_computation(clip):
    model, processor = clip
    texts = ["the pho was great.", "nice burger with crispy fries"]
    images = [_images(3, 2), _images(4, 1)]
    result = clip_score(images, texts, model, processor)
    cosines = []
    for ims, text in zip(images, texts, strict=True):
        t = _direct_embedding(model, processor, CLIP_SCORE_PREFIX + text)
        cosines.append([float(_direct_image(model, processor, im) @ t) for im in ims])
    raw = sum(sum(c) / len(c) for c in cosines) / len(cosines)
    hessel = sum(sum(2.5 * max(x, 0.0) for x in c) / len(c) for c in cosines) / len(cosines)
    assert result["clip_score_cosine"] == pytest.approx(raw, abs=1e-5)
    assert result["clip_score"] == pytest.approx(hessel, abs=1e-5)
    assert result["clip_score_examples"] == 2


def test_long_text_truncation_keeps_end_of_text(clip):
    model, processor = clip
    long_text = "the crust was thin and crispy " * 40
    ids = processor.tokenizer([long_text], truncation=True, max_length=77)["input_ids"][0]
    assert len(ids) == 77 and ids[-1] == processor.tokenizer.eos_token_id
    embedded = embed_texts([long_text, "short"], model, processor)
    assert torch.allclose(embedded[0], _direct_embedding(model, processor, long_text), atol=1e-5)
    assert torch.isfinite(embedded).all()


def test_embeddings_level_hand_computed():
    scorer = lambda text_embeds, image_embeds: torch.sigmoid((text_embeds * image_embeds).sum(-1))  # noqa: E731
    images = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(0, 2)]
    sentences = [torch.tensor([[2.0, 0.0], [0.0, 0.0]]), torch.tensor([[1.0, 1.0]])]
    # image 1: max(sigmoid(2), sigmoid(0)); image 2: max(sigmoid(0), sigmoid(0)); example 2 has no image.
    expected = (1 / (1 + math.exp(-2)) + 0.5) / 2
    result = clip_align_from_embeddings(images, sentences, scorer, batch_size=1)
    assert result == {"clip_align": pytest.approx(expected), "clip_align_examples": 1}
    score = clip_score_from_embeddings([torch.tensor([[1.0, 0.0], [-1.0, 0.0]])], torch.tensor([[3.0, 0.0]]))
    assert score == {
        "clip_score": pytest.approx(1.25),
        "clip_score_cosine": pytest.approx(0.0),
        "clip_score_examples": 1,
    }


def test_degenerate_inputs_are_defined():
    scorer = lambda text_embeds, image_embeds: torch.ones(len(text_embeds))  # noqa: E731
    no_sentences = clip_align_from_embeddings([torch.ones(2, 4)], [torch.zeros(0, 4)], scorer)
    assert no_sentences == {"clip_align": 0.0, "clip_align_examples": 1}
    # Nothing scored is undefined (NaN: tables print "-", JSON null), not a score of 0.
    no_images = clip_align_from_embeddings([torch.zeros(0, 4)], [torch.ones(1, 4)], scorer)
    assert math.isnan(no_images["clip_align"]) and no_images["clip_align_examples"] == 0
    no_examples = clip_score_from_embeddings([], torch.zeros(0, 4))
    assert math.isnan(no_examples["clip_score"]) and math.isnan(no_examples["clip_score_cosine"])
    assert no_examples["clip_score_examples"] == 0
    zero_vectors = clip_score_from_embeddings([torch.zeros(1, 4)], torch.zeros(1, 4))
    assert all(math.isfinite(v) for v in zero_vectors.values())


def test_mismatched_lengths_raise(clip):
    model, processor = clip
    scorer = LinearScorer(model.config.projection_dim)
    with pytest.raises(ValueError, match="differ in length"):
        clip_align([_images(0, 1)], ["a", "b"], model, processor, scorer)
    with pytest.raises(ValueError, match="differ in length"):
        clip_score_from_embeddings([torch.ones(1, 4)], torch.ones(2, 4))


def test_embed_image_files_skips_unreadable(clip, tmp_path):
    model, processor = clip
    _images(5, 1)[0].save(tmp_path / "good.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    paths = {
        "good": tmp_path / "good.jpg",
        "broken": tmp_path / "broken.jpg",
        "missing": tmp_path / "nope.jpg",
    }
    found, failed = embed_image_files(paths, model, processor)
    assert list(found) == ["good"] and sorted(failed) == ["broken", "missing"]
    with Image.open(tmp_path / "good.jpg") as image:
        assert torch.allclose(found["good"], _direct_image(model, processor, image.convert("RGB")), atol=1e-5)


def test_a_model_computing_nan_is_an_error_not_an_undefined_score():
    """Session 28's audit: a NaN CLIP made CLIP-Score and CLIP-Align NaN over 3 scored examples, which tables print as
    "-", the mark of nothing scored."""
    from gest_showcases.numerics import NonFiniteError

    images = [torch.tensor([[1.0, 0.0], [float("nan"), 0.0]])]
    with pytest.raises(NonFiniteError, match="1 of 2 per-image scores are NaN or inf"):
        clip_score_from_embeddings(images, torch.tensor([[3.0, 0.0]]))
    with pytest.raises(NonFiniteError, match="2 of 2 per-image scores are NaN or inf"):
        clip_align_from_embeddings(
            [torch.ones(2, 2)], [torch.ones(1, 2)], lambda **kw: torch.full((len(kw["text_embeds"]),), float("nan"))
        )
