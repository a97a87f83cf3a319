"""The PC2L contrastive losses against direct computations of the paper's formulas (eq. 7-10)."""

import math

import pytest
import torch

from gest_showcases.generation.losses import (
    cross_modal_contrastive_loss,
    info_nce,
    personality_weights,
    personalized_contrastive_loss,
)


def _cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def _embeddings(seed, batch=4, dim=6):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, dim, generator=generator, dtype=torch.float64) for _ in range(4)]


def _reference(source, target, tau, hard=None, weight=lambda i, j: 1.0):
    """The paper's loss written out: mean_i -log e(i, i) / (e(i, i) + sum_{j != i} w(i, j) e(i, j) [+ hard_i])."""
    total = 0.0
    for i in range(len(source)):
        positive = math.exp(_cos(source[i], target[i]) / tau)
        negatives = sum(
            weight(i, j) * math.exp(_cos(source[i], target[j]) / tau) for j in range(len(source)) if j != i
        )
        if hard is not None:
            negatives += math.exp(_cos(source[i], hard[i]) / tau)  # only example i's own hard negative
        total -= math.log(positive / (positive + negatives))
    return torch.tensor(total / len(source))


@pytest.mark.parametrize("seed", [0, 1])
def test_info_nce_matches_eq7(seed):
    source, target, _, _ = _embeddings(seed)
    torch.testing.assert_close(info_nce(source, target, 0.1), _reference(source, target, 0.1))


@pytest.mark.parametrize("seed", [0, 1])
def test_ccl_matches_eq8_with_one_hard_negative_per_example(seed):
    image, target, negative, _ = _embeddings(seed)
    loss = cross_modal_contrastive_loss(image, target, negative, 0.1)
    torch.testing.assert_close(loss, _reference(image, target, 0.1, hard=negative))


def test_ccl_grows_when_the_hard_negative_looks_like_the_image():
    image, target, negative, _ = _embeddings(2)
    far = cross_modal_contrastive_loss(image, target, -image, 0.1)
    near = cross_modal_contrastive_loss(image, target, image, 0.1)
    assert near > far > info_nce(image, target, 0.1)


def test_personality_weights_match_eq10_by_hand():
    reviews = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    weights = personality_weights(reviews, math.e)
    expected = torch.tensor(
        [
            [1.0, math.e, math.exp(1 - 1 / math.sqrt(2))],
            [math.e, 1.0, math.exp(1 - 1 / math.sqrt(2))],
            [math.exp(1 - 1 / math.sqrt(2)), math.exp(1 - 1 / math.sqrt(2)), 1.0],
        ]
    )
    torch.testing.assert_close(weights, expected)


@pytest.mark.parametrize(("seed", "alpha"), [(0, math.e), (1, 5.0)])
def test_pcl_matches_eq9(seed, alpha):
    review, target, review_means, _ = _embeddings(seed)
    loss = personalized_contrastive_loss(review, target, review_means, alpha, 0.1)
    expected = _reference(
        review, target, 0.1, weight=lambda i, j: alpha ** (1 - _cos(review_means[i], review_means[j]))
    )
    torch.testing.assert_close(loss, expected)


def test_pcl_with_identical_histories_is_plain_info_nce():
    review, target, _, _ = _embeddings(3)
    same_history = torch.ones(4, 5)
    torch.testing.assert_close(
        personalized_contrastive_loss(review, target, same_history, math.e, 0.1),
        info_nce(review, target, 0.1),
    )


def test_losses_stay_finite_on_extreme_inputs():
    huge = torch.full((3, 4), 1e30)
    zeros = torch.zeros(3, 4)
    for source, target in [(huge, zeros), (zeros, zeros), (huge, -huge)]:
        assert torch.isfinite(info_nce(source, target, 0.01))
        assert torch.isfinite(cross_modal_contrastive_loss(source, target, target, 0.01))
        assert torch.isfinite(personalized_contrastive_loss(source, target, zeros, math.e, 0.01))


def test_losses_are_float32_under_bf16_inputs():
    source, target, negative, means = (tensor.bfloat16() for tensor in _embeddings(4))
    assert info_nce(source, target, 0.1).dtype == torch.float32
    assert cross_modal_contrastive_loss(source, target, negative, 0.1).dtype == torch.float32
    assert personalized_contrastive_loss(source, target, means, math.e, 0.1).dtype == torch.float32
