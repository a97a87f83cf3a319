"""`TextFeatureModel.encode_reviews`, the one definition of a review's CLIP features, and the cache writing them."""

from __future__ import annotations

import torch

from gest_showcases.features import clip
from gest_showcases.features.cache import load_features
from gest_showcases.features.clip import ReviewEmbeddings, extract_text_features, load_clip

TEXTS = ["Great ramen! The broth was rich.\nWill come back", "   ", "One sentence", ""]


def test_reviews_are_the_renormalised_means_of_their_sentences_one_at_a_time(tiny_clip):
    _, text_model = load_clip(tiny_clip)
    encoded = text_model.encode_reviews(TEXTS, batch_size=2)
    assert encoded.sentence_counts == [3, 0, 1, 0]
    # Oracle: each sentence encoded alone, then averaged and renormalised by hand.
    sentences = ["Great ramen!", "The broth was rich.", "Will come back", "One sentence"]
    alone = torch.cat([text_model.encode([sentence]) for sentence in sentences])  # [4, D]
    torch.testing.assert_close(encoded.sentences, alone)
    first = alone[:3].mean(0) / alone[:3].mean(0).norm()
    torch.testing.assert_close(encoded.reviews, torch.stack([first, alone[3]]))
    assert encoded.reviews.dtype == torch.float32


def test_texts_without_a_sentence_give_empty_tensors_of_the_embedding_width(tiny_clip):
    _, text_model = load_clip(tiny_clip)
    width = text_model.encoder.projection.out_features
    for texts in ([], ["", "  \n "]):
        encoded = text_model.encode_reviews(texts)
        assert encoded.reviews.shape == encoded.sentences.shape == (0, width)
        assert encoded.sentence_counts == [0] * len(texts)


def test_the_cache_holds_what_encode_reviews_returns(tiny_clip, tmp_path, monkeypatch):
    """`extract_text_features` writes `encode_reviews`' rows under the review and sentence ids, nothing else."""
    _, text_model = load_clip(tiny_clip)
    width = text_model.encoder.projection.out_features
    # Rows no CLIP computes, so that only `encode_reviews` can have put them in the cache.
    marked = ReviewEmbeddings(
        reviews=torch.nn.functional.normalize(torch.arange(2.0 * width).reshape(2, width), dim=-1),
        sentences=torch.nn.functional.normalize(torch.ones(4, width).cumsum(0) ** 2, dim=-1),
        sentence_counts=[3, 0, 1, 0],
    )
    calls = []

    def encode_reviews(self, texts, batch_size=256):
        calls.append(list(texts))
        return marked

    monkeypatch.setattr(clip.TextFeatureModel, "encode_reviews", encode_reviews)
    reviews = [(f"r{i}", text) for i, text in enumerate(TEXTS)]
    review_report, sentence_report = extract_text_features(reviews, text_model, tmp_path, batch_size=2)
    assert calls == [TEXTS]
    assert (review_report.written, review_report.failed, sentence_report.written) == (2, 2, 4)
    cached, found = load_features(tmp_path, "review").lookup(["r0", "r2", "r1"])
    assert found.tolist() == [True, True, False]
    torch.testing.assert_close(cached[:2], marked.reviews)
    sentences, _ = load_features(tmp_path, "sentence").lookup(["r0#0", "r0#1", "r0#2", "r2#0"])
    torch.testing.assert_close(sentences, marked.sentences)
