"""Selection metrics against values computed by hand."""

import math

import pytest
import torch

from gest_showcases.metrics.selection import (
    diversity_at_k,
    f1_score,
    precision_at_k,
    recall_at_k,
    selection_metrics,
    summarize_selection,
)

# Three pools of 5 candidates. Example 0: picks 0, 1, 2; relevant {1, 2, 4} -> 2 hits.
# Example 1: picks 3 only (its pool ran out); relevant {3} -> 1 hit.
# Example 2: picks 0, 4, 1; relevant {} -> 0 hits, recall undefined -> 0.
SELECTED = torch.tensor([[0, 1, 2], [3, -1, -1], [0, 4, 1]])
RELEVANT = torch.tensor(
    [
        [False, True, True, False, True],
        [False, False, False, True, False],
        [False, False, False, False, False],
    ]
)


def test_precision_recall_by_hand():
    torch.testing.assert_close(precision_at_k(SELECTED, RELEVANT, 3), torch.tensor([2 / 3, 1 / 3, 0.0]))
    torch.testing.assert_close(recall_at_k(SELECTED, RELEVANT, 3), torch.tensor([2 / 3, 1.0, 0.0]))


def test_padding_is_never_a_pick_even_where_candidate_0_is_relevant():
    # One pick (2) and two padding slots; candidates 0 and 2 are relevant: 1 hit of K = 3, 1 of 2 relevant.
    selected, relevant = torch.tensor([[2, -1, -1]]), torch.tensor([[True, False, True, False]])
    torch.testing.assert_close(precision_at_k(selected, relevant, 3), torch.tensor([1 / 3]))
    torch.testing.assert_close(recall_at_k(selected, relevant, 3), torch.tensor([1 / 2]))


def test_k_truncates_the_selection():
    # Only the first pick counts at K = 1: example 0 picked 0 (not relevant), example 1 picked 3 (relevant).
    torch.testing.assert_close(precision_at_k(SELECTED, RELEVANT, 1), torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(recall_at_k(SELECTED, RELEVANT, 1), torch.tensor([0.0, 1.0, 0.0]))


def test_f1_score():
    assert f1_score(0.5, 0.25) == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert f1_score(0.0, 0.0) == 0.0
    # The paper's Table 3 img row: F1 is the harmonic mean of the reported P and R.
    assert 100 * f1_score(0.2521, 0.3405) == pytest.approx(28.97, abs=0.005)


def test_diversity_by_hand():
    features = torch.tensor(
        [
            [[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [5.0, 5.0], [-1.0, 0.0]],
            [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 0.0], [0.0, 1.0]],
            [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-3.0, 0.0]],
        ]
    )
    cos45 = 1 / math.sqrt(2)
    # ex 0: pairs (0,1): 1 - 0; (0,2): 1 - cos45; (1,2): 1 - cos45.
    # ex 1: one pick -> no pair -> 0.  ex 2: picks 0, 4, 1: (0,4): 2; (0,1): 0; (4,1): 2.
    expected = torch.tensor([(1 + 2 * (1 - cos45)) / 3, 0.0, 4 / 3])
    torch.testing.assert_close(diversity_at_k(SELECTED, features, 3), expected)
    # At K = 2 only the first two picks pair up.
    torch.testing.assert_close(diversity_at_k(SELECTED, features, 2), torch.tensor([1.0, 0.0, 2.0]))


def test_selection_metrics_keys_and_means():
    features = torch.eye(5).expand(3, 5, 5)
    metrics = selection_metrics(SELECTED, RELEVANT, features, k=3)
    assert list(metrics) == ["precision@3", "recall@3", "f1@3", "div@3"]
    precision, recall = (2 / 3 + 1 / 3) / 3, (2 / 3 + 1) / 3
    assert metrics["precision@3"] == pytest.approx(precision)
    assert metrics["recall@3"] == pytest.approx(recall)
    assert metrics["f1@3"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert metrics["div@3"] == pytest.approx((1 + 0 + 1) / 3)  # orthogonal features: every pair dis = 1


def test_summarize_concatenated_batches_equals_one_batch():
    features = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(0))
    whole = selection_metrics(SELECTED, RELEVANT, features, k=3)
    parts = [slice(0, 1), slice(1, 3)]
    merged = summarize_selection(
        torch.cat([precision_at_k(SELECTED[p], RELEVANT[p], 3) for p in parts]),
        torch.cat([recall_at_k(SELECTED[p], RELEVANT[p], 3) for p in parts]),
        torch.cat([diversity_at_k(SELECTED[p], features[p], 3) for p in parts]),
        3,
    )
    assert merged == pytest.approx(whole)
