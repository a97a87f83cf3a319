"""Every shipped `evaluate` module loads offline by path and equals the plain function."""

import os

import evaluate
import pytest
import torch

from gest_showcases.metrics import EVALUATE_MODULES, module_path
from gest_showcases.metrics.grounding import clip_align_from_embeddings, clip_score_from_embeddings
from gest_showcases.metrics.selection import diversity_at_k
from gest_showcases.metrics.text import distinct


def _load(name):
    assert os.environ["HF_EVALUATE_OFFLINE"] == "1"
    return evaluate.load(module_path(name))


def test_module_path_points_at_the_script():
    for name in EVALUATE_MODULES:
        assert os.path.isfile(os.path.join(module_path(name), f"{name}.py"))
        assert os.path.isfile(os.path.join(module_path(name), "README.md"))
    with pytest.raises(ValueError, match="unknown evaluate module 'bleu'"):
        module_path("bleu")


def test_distinct_module():
    texts = ["the pizza was great", "the pizza was cold", "", "ok"]
    assert _load("distinct").compute(predictions=texts) == distinct(texts)
    assert _load("distinct").compute(predictions=texts, orders=[3]) == distinct(texts, orders=(3,))


def test_clip_align_module():
    generator = torch.Generator().manual_seed(0)
    images = [torch.randn(n, 8, generator=generator) for n in (2, 1, 0)]
    sentences = [torch.randn(m, 8, generator=generator) for m in (3, 0, 1)]
    linear = torch.nn.Linear(16, 1)

    def scorer(text_embeds, image_embeds):
        return torch.sigmoid(linear(torch.cat([text_embeds, image_embeds], -1))).squeeze(-1)

    result = _load("clip_align").compute(
        image_embeds=[e.tolist() for e in images],
        sentence_embeds=[e.tolist() for e in sentences],
        scorer=scorer,
    )
    expected = clip_align_from_embeddings(images, sentences, scorer)
    assert result["clip_align_examples"] == expected["clip_align_examples"] == 2
    assert result["clip_align"] == pytest.approx(expected["clip_align"], abs=1e-6)


def test_clip_score_module():
    generator = torch.Generator().manual_seed(1)
    images = [torch.randn(n, 8, generator=generator) for n in (2, 3)]
    texts = torch.randn(2, 8, generator=generator)
    result = _load("clip_score").compute(
        image_embeds=[e.tolist() for e in images], text_embeds=texts.tolist()
    )
    expected = clip_score_from_embeddings(images, texts)
    assert result == {key: pytest.approx(value, abs=1e-6) for key, value in expected.items()}


def test_div_at_k_module():
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(3, 5, 8, generator=generator)
    selected = [[0, 3, 1], [4], [2, 0]]
    padded = torch.tensor([[0, 3, 1], [4, -1, -1], [2, 0, -1]])
    result = _load("div_at_k").compute(selected=selected, features=features.tolist(), k=3)
    assert result == {"div@3": pytest.approx(float(diversity_at_k(padded, features, 3).mean()), abs=1e-6)}
