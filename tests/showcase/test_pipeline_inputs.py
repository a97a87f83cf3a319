"""What `ShowcasePipeline` feeds its models: the features layer's review embeddings (the ones training read from
the cache), and a batch's generator inputs padded and masked as the PC2L collator pads them."""

import pytest
import torch

from gest_showcases.features import clip
from gest_showcases.features.cache import load_features
from gest_showcases.features.clip import extract_text_features
from gest_showcases.pipeline import ShowcaseInput, ShowcasePipeline, read_pixels

HISTORY = ["Great ramen! The broth was rich.", "", "Tiny place.\nGood dumplings", "Loud. Slow service."]


@pytest.fixture(scope="module")
def pipeline(checkpoints):
    return ShowcasePipeline.from_pretrained(**checkpoints, device="cpu", max_new_tokens=4)


def test_review_embeddings_are_the_features_layer_s_and_the_cached_ones(pipeline, tmp_path):
    reviews = pipeline.review_embeddings(HISTORY)
    assert torch.equal(reviews, pipeline.clip_text.encode_reviews(HISTORY).reviews)
    extract_text_features([(str(i), text) for i, text in enumerate(HISTORY)], pipeline.clip_text, tmp_path)
    cached, found = load_features(tmp_path, "review").lookup(["0", "2", "3"])
    assert found.all()
    assert torch.equal(reviews, cached)


def test_review_embeddings_come_from_encode_reviews(pipeline, monkeypatch):
    """One definition: whatever `TextFeatureModel.encode_reviews` returns is what the pipeline reads."""
    width = pipeline.clip_text.encoder.projection.out_features
    marked = torch.nn.functional.normalize(torch.arange(3.0 * width).reshape(3, width), dim=-1)
    calls = []

    def encode_reviews(self, texts, batch_size=256):
        calls.append(list(texts))
        return clip.ReviewEmbeddings(marked, sentences=torch.zeros(5, width), sentence_counts=[1, 0, 2, 2])

    monkeypatch.setattr(clip.TextFeatureModel, "encode_reviews", encode_reviews)
    assert torch.equal(pipeline.review_embeddings(HISTORY), marked)
    assert calls == [HISTORY]


def test_generator_reads_the_first_max_reviews_and_the_picks_padded_and_masked(pipeline, photos, monkeypatch):
    monkeypatch.setattr(pipeline.generator.config, "max_reviews", 2)
    received = []
    generate = pipeline.generator.generate
    monkeypatch.setattr(
        pipeline.generator, "generate", lambda **kwargs: received.append(kwargs) or generate(**kwargs)
    )
    many = ShowcaseInput(candidates={f"pic{i}": photos[f"pic{i}"] for i in range(6)}, history_texts=HISTORY)
    few = ShowcaseInput(
        candidates={"pic6": photos["pic6"], "pic7": photos["pic7"]}, history_texts=["Best pizza."]
    )
    results = pipeline([many, few], k=3)
    (inputs,) = received

    # Each request's picked photos in pick order (the second has 2 < k), then zeros, as the collator pads.
    assert inputs["image_mask"].tolist() == [[True, True, True], [True, True, False]]
    for row, (request, result) in enumerate(zip((many, few), results, strict=True)):
        picked = [request.candidates[photo.id] for photo in result.photos]
        expected = pipeline.vision.encode(torch.stack(read_pixels(picked, pipeline.vision.preprocessing)))
        torch.testing.assert_close(
            inputs["image_features"][row, : len(picked)], expected, atol=1e-5, rtol=1e-4
        )
        assert not inputs["image_features"][row, len(picked) :].any()
    # The first max_reviews (2) of the three reviews with text, then zeros.
    assert inputs["review_mask"].tolist() == [[True, True], [True, False]]
    torch.testing.assert_close(
        inputs["review_features"][0], pipeline.review_embeddings(HISTORY)[:2], atol=1e-5, rtol=1e-4
    )
    torch.testing.assert_close(
        inputs["review_features"][1, :1], pipeline.review_embeddings(["Best pizza."]), atol=1e-5, rtol=1e-4
    )
    assert not inputs["review_features"][1, 1:].any()
    assert inputs["review_features"].dtype == inputs["image_features"].dtype == torch.float32
