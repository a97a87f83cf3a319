"""Image-set selection metrics: Precision@K, Recall@K, F1@K and div@K (paper Section 5.1, eq. 13).

All functions are vectorised over a batch of (user, business) pairs. A selection is a `LongTensor`
`[B, K]` of candidate positions padded with `-1` (the output of `greedy_map`), the ground truth a
`BoolTensor` `[B, N]` over the same padded candidate pool. Higher is better for every metric.

Example:

```python
>>> selected = torch.tensor([[0, 2, -1]])
>>> relevant = torch.tensor([[True, True, False, False]])
>>> selection_metrics(selected, relevant, torch.eye(4).unsqueeze(0), k=3)
{'precision@3': 0.333..., 'recall@3': 0.5, 'f1@3': 0.4, 'div@3': 1.0}
```
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _hits(selected: torch.LongTensor, relevant: torch.BoolTensor) -> torch.Tensor:
    """`|S n G|` per example, `[B]` float."""
    valid = selected >= 0
    hit = relevant.gather(1, selected.clamp(min=0)) & valid  # [B, K]
    return hit.sum(dim=-1).to(torch.float32)


def precision_at_k(selected: torch.LongTensor, relevant: torch.BoolTensor, k: int) -> torch.Tensor:
    """Precision@K = |S n G| / K, with `S` the selected set and `G` the relevant (ground-truth) set.

    The denominator is `K` even when fewer than `K` items were selected (a pool smaller than `K`).

    Args:
        selected (`torch.LongTensor` of shape `(B, K')`): selected positions, `-1`-padded; `K' <= k`
            of them count.
        relevant (`torch.BoolTensor` of shape `(B, N)`): ground-truth membership of each candidate.
        k (`int`): the K of the metric.

    Returns:
        `torch.Tensor` of shape `(B,)` in `[0, 1]`.
    """
    return _hits(selected[:, :k], relevant) / k


def recall_at_k(selected: torch.LongTensor, relevant: torch.BoolTensor, k: int) -> torch.Tensor:
    """Recall@K = |S n G| / |G|, defined as 0 when `G` is empty. Arguments as in `precision_at_k`."""
    num_relevant = relevant.sum(dim=-1).to(torch.float32)
    return _hits(selected[:, :k], relevant) / num_relevant.clamp(min=1.0)


def f1_score(precision: float, recall: float) -> float:
    """F1 = 2 P R / (P + R), defined as 0 when P + R = 0."""
    total = precision + recall
    return 2 * precision * recall / total if total > 0 else 0.0


def diversity_at_k(selected: torch.LongTensor, features: torch.Tensor, k: int) -> torch.Tensor:
    """div@K = mean over selected pairs m < n of dis(i_m, i_n) = 1 - cos(f_m, f_n) (paper eq. 13).

    The mean runs over the pairs actually selected (`|S| (|S| - 1) / 2` of them, which is eq. 13's
    `K (K - 1) / 2` when `K` items were chosen); it is 0 when fewer than two items were selected.

    Args:
        selected (`torch.LongTensor` of shape `(B, K')`): selected positions, `-1`-padded.
        features (`torch.Tensor` of shape `(B, N, D)`): the candidates' CLIP image features.
        k (`int`): the K of the metric.

    Returns:
        `torch.Tensor` of shape `(B,)` in `[0, 2]`.
    """
    selected = selected[:, :k]
    valid = selected >= 0  # [B, K]
    index = selected.clamp(min=0).unsqueeze(-1).expand(-1, -1, features.shape[-1])  # [B, K, D]
    unit = F.normalize(features.gather(1, index).to(torch.float32), dim=-1)  # [B, K, D]
    dissimilarity = 1.0 - unit @ unit.transpose(-1, -2)  # [B, K, K]
    upper = torch.ones(valid.shape[1], valid.shape[1], dtype=torch.bool, device=valid.device).triu(1)
    pairs = valid.unsqueeze(-1) & valid.unsqueeze(-2) & upper  # [B, K, K], each unordered pair once
    num_pairs = pairs.sum(dim=(-1, -2)).to(torch.float32)
    total = dissimilarity.masked_fill(~pairs, 0.0).sum(dim=(-1, -2))
    return torch.where(num_pairs > 0, total / num_pairs.clamp(min=1.0), 0.0)


def summarize_selection(
    precision: torch.Tensor, recall: torch.Tensor, diversity: torch.Tensor, k: int
) -> dict[str, float]:
    """Averages per-example metrics over all examples, as fractions (x100 for the paper's %).

    F1@K is the harmonic mean of the averaged Precision@K and Recall@K, the paper's Table 3
    convention (e.g. 2 * 25.21 * 34.05 / (25.21 + 34.05) = 28.97 for its `img` row), not the mean
    of per-example F1 scores.

    Args:
        precision, recall, diversity (`torch.Tensor` of shape `(M,)`): per-example values from
            `precision_at_k`, `recall_at_k` and `diversity_at_k`, concatenated over batches.
        k (`int`): the K of the metrics, used in the keys.

    Returns:
        `dict` with keys `precision@{k}`, `recall@{k}`, `f1@{k}`, `div@{k}`.
    """
    mean_precision = precision.mean().item()
    mean_recall = recall.mean().item()
    return {
        f"precision@{k}": mean_precision,
        f"recall@{k}": mean_recall,
        f"f1@{k}": f1_score(mean_precision, mean_recall),
        f"div@{k}": diversity.mean().item(),
    }


def selection_metrics(
    selected: torch.LongTensor, relevant: torch.BoolTensor, features: torch.Tensor, k: int
) -> dict[str, float]:
    """Precision@K, Recall@K, F1@K and div@K of one batch, averaged as in `summarize_selection`.

    Args:
        selected (`torch.LongTensor` of shape `(B, K')`): selected positions, `-1`-padded.
        relevant (`torch.BoolTensor` of shape `(B, N)`): ground truth.
        features (`torch.Tensor` of shape `(B, N, D)`): candidate features for div@K.
        k (`int`): the K of the metrics.

    Returns:
        `dict` with keys `precision@{k}`, `recall@{k}`, `f1@{k}`, `div@{k}`.
    """
    return summarize_selection(
        precision_at_k(selected, relevant, k),
        recall_at_k(selected, relevant, k),
        diversity_at_k(selected, features, k),
        k,
    )


__all__ = [
    "diversity_at_k",
    "f1_score",
    "precision_at_k",
    "recall_at_k",
    "selection_metrics",
    "summarize_selection",
]
