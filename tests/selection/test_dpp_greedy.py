"""greedy_map against the naive greedy rule (determinants recomputed from scratch) and exhaustive search."""

import itertools

import numpy as np
import pytest
import torch

from gest_showcases.selection.greedy import greedy_map

EPS = 1e-9


def naive_greedy(kernel: np.ndarray, k: int, eps: float) -> list[int]:
    """The definition: add argmax_j det(L[S + j]) (first index on ties) while the gain exceeds eps."""
    selected: list[int] = []
    det_selected = 1.0
    for _ in range(min(k, len(kernel))):
        best, best_det = -1, -np.inf
        for j in range(len(kernel)):
            if j in selected:
                continue
            subset = [*selected, j]
            det = np.linalg.det(kernel[np.ix_(subset, subset)])
            if det > best_det:
                best, best_det = j, det
        if best < 0 or best_det / det_selected <= eps:
            break
        selected.append(best)
        det_selected = best_det
    return selected


def random_psd(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    if kind == "full":
        factor = rng.normal(size=(size, size + 2))
    elif kind == "rank_deficient":
        factor = rng.normal(size=(size, int(rng.integers(1, size + 1))))
    else:  # duplicates: some items are exact copies of others
        factor = rng.normal(size=(size, size + 1))
        copies = rng.integers(0, size, size=size // 2)
        factor[rng.permutation(size)[: len(copies)]] = factor[copies]
    quality = np.exp(rng.normal(size=size))
    return (quality[:, None] * factor) @ (quality[:, None] * factor).T


def padded_batch(rng: np.random.Generator, count: int, max_size: int):
    kernels, padded, masks = [], [], []
    for index in range(count):
        size = int(rng.integers(1, max_size + 1))
        kernel = random_psd(rng, size, ("full", "rank_deficient", "duplicates")[index % 3])
        # Padding holds garbage (NaN): it must never leak into a real item's gain.
        block = np.full((max_size, max_size), np.nan)
        block[:size, :size] = kernel
        kernels.append(kernel)
        padded.append(block)
        masks.append(np.arange(max_size) < size)
    return kernels, torch.tensor(np.stack(padded)), torch.tensor(np.stack(masks))


def test_greedy_map_equals_naive_greedy_on_random_psd_kernels():
    rng = np.random.default_rng(0)
    kernels, batch, mask = padded_batch(rng, count=240, max_size=10)
    k = 12
    indices, counts = greedy_map(batch, k, mask=mask, eps=EPS)
    assert indices.shape == (240, k)
    for row, kernel in enumerate(kernels):
        expected = naive_greedy(kernel, k, EPS)
        assert indices[row].tolist() == expected + [-1] * (k - len(expected)), f"kernel {row}"
        assert counts[row].item() == len(expected)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_greedy_map_prefix_for_small_k(k):
    rng = np.random.default_rng(k)
    kernels, batch, mask = padded_batch(rng, count=60, max_size=8)
    indices, _ = greedy_map(batch, k, mask=mask, eps=EPS)
    for row, kernel in enumerate(kernels):
        expected = naive_greedy(kernel, k, EPS)
        assert indices[row].tolist() == expected + [-1] * (k - len(expected))


def test_greedy_map_k1_is_exhaustive_best_singleton():
    rng = np.random.default_rng(1)
    for _ in range(50):
        kernel = random_psd(rng, 7, "full")
        best = max(itertools.combinations(range(7), 1), key=lambda s: np.linalg.det(kernel[np.ix_(s, s)]))
        assert greedy_map(torch.tensor(kernel), 1).indices.tolist() == list(best)


def test_greedy_map_k2_attains_exhaustive_optimum_on_orthogonal_blocks():
    # Two clusters of near-identical items: the best pair takes one from each, never two twins.
    features = torch.tensor([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.1, 0.99]], dtype=torch.float64)
    kernel = features @ features.T
    best = max(itertools.combinations(range(4), 2), key=lambda s: torch.det(kernel[list(s)][:, list(s)]))
    assert sorted(greedy_map(kernel, 2).indices.tolist()) == sorted(best)


def test_mask_equals_unpadded_selection():
    rng = np.random.default_rng(2)
    kernel = torch.tensor(random_psd(rng, 6, "full"))
    padded = torch.full((9, 9), 1e6, dtype=torch.float64)
    padded[:6, :6] = kernel
    mask = torch.arange(9) < 6
    expected = greedy_map(kernel, 4).indices
    assert torch.equal(greedy_map(padded, 4, mask=mask).indices, expected)
    # without the mask, the huge padded entries would be picked first
    assert greedy_map(padded, 4).indices[0].item() >= 6


def test_pool_smaller_than_k_and_empty_pool():
    kernel = torch.eye(4, dtype=torch.float64).expand(3, 4, 4).clone()
    mask = torch.tensor([[True, True, False, False], [False] * 4, [True] * 4])
    indices, counts = greedy_map(kernel, 6, mask=mask)
    assert indices.tolist() == [[0, 1, -1, -1, -1, -1], [-1] * 6, [0, 1, 2, 3, -1, -1]]
    assert counts.tolist() == [2, 0, 4]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rank_deficient_kernel_stops_at_rank_with_default_tolerance(dtype):
    generator = torch.Generator().manual_seed(3)
    factor = torch.randn(8, 30, 3, generator=generator, dtype=torch.float64)  # rank 3
    kernel = (factor @ factor.transpose(1, 2)).to(dtype)
    indices, counts = greedy_map(kernel, 10)
    assert counts.tolist() == [3] * 8
    assert (indices[:, 3:] == -1).all()


def test_duplicates_are_never_picked_twice_and_round_off_is_clamped():
    # Exact duplicates in float32 leave gains of ~1e-7 or slightly negative after the first copy.
    features = torch.nn.functional.normalize(
        torch.randn(5, 16, generator=torch.Generator().manual_seed(4)), dim=-1
    )
    features = torch.cat([features, features])  # items i and i + 5 are identical
    indices, counts = greedy_map(features @ features.T, 10)
    assert counts.item() == 5
    assert sorted(index % 5 for index in indices[:5].tolist()) == [0, 1, 2, 3, 4]


def test_single_kernel_shapes_and_zero_k():
    kernel = torch.eye(3)
    indices, counts = greedy_map(kernel, 2)
    assert indices.shape == (2,) and counts.shape == ()
    indices, counts = greedy_map(kernel.expand(2, 3, 3), 0)
    assert indices.shape == (2, 0) and counts.tolist() == [0, 0]


@pytest.mark.parametrize(
    ("kernel", "k", "eps", "message"),
    [
        (torch.eye(3)[:2], 1, None, "kernel must have shape"),
        (torch.eye(3), -1, None, "k must be non-negative"),
        (torch.eye(3), 1, -1.0, "eps must be non-negative"),
    ],
)
def test_invalid_arguments(kernel, k, eps, message):
    with pytest.raises(ValueError, match=message):
        greedy_map(kernel, k, eps=eps)


def test_mask_shape_is_checked():
    with pytest.raises(ValueError, match="mask must have shape"):
        greedy_map(torch.eye(3).expand(2, 3, 3), 1, mask=torch.ones(2, 4, dtype=torch.bool))
