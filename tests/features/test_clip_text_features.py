"""Sentence split, 77-token truncation keeping end-of-text, review = mean of its sentences."""

from __future__ import annotations

import pytest
import torch

from gest_showcases.data.records import split_sentences
from gest_showcases.features.cache import load_features
from gest_showcases.features.clip import CLIP_MAX_TOKENS, extract_text_features, load_clip


def test_truncation_keeps_end_of_text(tiny_clip):
    _, text_model = load_clip(tiny_clip)
    tokenizer = text_model.tokenizer
    long_sentence = "delicious " * 40  # 400 characters: 400 tokens with the character-level vocabulary
    ids = tokenizer([long_sentence], truncation=True, max_length=CLIP_MAX_TOKENS)["input_ids"][0]
    assert len(ids) == CLIP_MAX_TOKENS
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    # Oracle: the projected final hidden state at the last position (the end-of-text token).
    encoder = text_model.encoder
    with torch.no_grad():
        hidden = encoder.text_model(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
        expected = torch.nn.functional.normalize(encoder.projection(hidden), dim=-1)
        # Cutting the raw sequence at 77 instead drops end-of-text, and the embedding changes.
        untruncated = tokenizer([long_sentence])["input_ids"][0][:CLIP_MAX_TOKENS]
        cut = encoder.text_model(input_ids=torch.tensor([untruncated])).last_hidden_state[0, -1]
        cut = torch.nn.functional.normalize(encoder.projection(cut), dim=-1)
    got = text_model.encode([long_sentence])[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(got, cut, atol=1e-3)


def test_encode_is_independent_of_batching(tiny_clip):
    _, text_model = load_clip(tiny_clip)
    texts = ["a", "longer sentence here.", "mid one", "x" * 90]
    torch.testing.assert_close(text_model.encode(texts, batch_size=1), text_model.encode(texts, batch_size=3))


def test_sentence_and_review_features(tmp_path, tiny_clip):
    _, text_model = load_clip(tiny_clip)
    reviews = [
        ("r1", "Great ramen! The broth was rich.\nWill come back"),
        ("r2", "One sentence"),
        ("r3", "  "),
    ]
    review_report, sentence_report = extract_text_features(reviews, text_model, tmp_path / "f", batch_size=2)
    assert (review_report.written, review_report.failed, sentence_report.written) == (2, 1, 4)
    sentences = load_features(tmp_path / "f", "sentence")
    assert sorted(sentences.ids) == ["r1#0", "r1#1", "r1#2", "r2#0"]
    expected = text_model.encode(split_sentences(reviews[0][1]))
    got, _ = sentences.lookup(["r1#0", "r1#1", "r1#2"])
    torch.testing.assert_close(got, expected)
    review, found = load_features(tmp_path / "f", "review").lookup(["r1", "r3"])
    assert found.tolist() == [True, False]
    torch.testing.assert_close(review[0], torch.nn.functional.normalize(expected.mean(0), dim=0))
    # Resumed: nothing recomputed.
    again, _ = extract_text_features(reviews, text_model, tmp_path / "f")
    assert (again.cached, again.written) == (2, 0)


def test_features_embed_s1_and_s2_by_default(tmp_path, tiny_clip):
    """Session 28's formats audit: a build of the published filter_all_t.json holds its test users (new users, one
    review each) in s2 only; features read s1 alone by default, and the generators then had no test example to
    explain (exit 0, 0 generations)."""
    from gest_showcases.errors import InputError
    from gest_showcases.features.extract import extract_features
    from gest_showcases.testing.built_folder import write_built_folder

    def row(review_id, text):
        return {"review_id": review_id, "review_text": text, "history_review_ids": [], "history_texts": []}

    write_built_folder(tmp_path / "data", {"s1": {"train": [row("a", "Rich broth.")]},
                                           "s2": {"test": [row("b", "Crispy fries."), row("a", "Rich broth.")]}})  # fmt: skip
    extract_features(str(tmp_path / "data"), str(tmp_path / "f"), model=tiny_clip, kinds=["text"], device="cpu")
    assert sorted(load_features(tmp_path / "f", "review").ids) == ["a", "b"]
    extract_features(str(tmp_path / "data"), str(tmp_path / "s1"), model=tiny_clip, kinds=["text"], device="cpu",
                     config="s1")  # fmt: skip
    assert load_features(tmp_path / "s1", "review").ids == ["a"]
    write_built_folder(tmp_path / "raw-only", {"raw": {"train": [row("c", "Slow service.")]}})
    with pytest.raises(InputError, match="holds neither s1 nor s2 \\(configs: raw\\)"):
        extract_features(str(tmp_path / "raw-only"), str(tmp_path / "g"), model=tiny_clip, kinds=["text"])
