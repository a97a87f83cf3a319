"""Fast greedy MAP inference for determinantal point processes.

Chen, Zhang and Zhou, "Fast Greedy MAP Inference for Determinantal Point Process to Improve
Recommendation Diversity" (NeurIPS 2018), Algorithm 1, batched over many kernels at once.

The naive greedy rule adds, at each step, the item `j` that maximises `det(L[S + j, S + j])`.
Since `det(L[S + j]) = det(L[S]) * d_j^2` with `d_j^2` the squared Schur complement of `j` given
`S`, the same pick is the argmax of `d_j^2`, which an incremental Cholesky factor updates in
O(N) per selected item: O(N k^2) time and O(N k) memory instead of O(N k^4).

This module imports torch only, so the benchmark and `trust_remote_code` checkpoints can use it
without the rest of the package.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class GreedyMapOutput(NamedTuple):
    """Result of `greedy_map`.

    Args:
        indices (`torch.LongTensor` of shape `(batch_size, k)`, or `(k,)` for a single kernel):
            Selected item indices in pick order, padded with `-1` after the last pick.
        counts (`torch.LongTensor` of shape `(batch_size,)`, or `()` for a single kernel):
            Number of items selected per kernel (at most `k`).
    """

    indices: torch.LongTensor
    counts: torch.LongTensor


def default_gain_tolerance(kernel: torch.Tensor, mask: torch.BoolTensor | None = None) -> torch.Tensor:
    """The stopping tolerance used when `greedy_map` gets no `eps`: a numerical-rank threshold.

    `tol = N * finfo(dtype).eps * max_i L_ii`, per kernel, as in `numpy.linalg.matrix_rank`:
    below it a gain `d_j^2` is indistinguishable from round-off, so the kernel's rank is spent.

    Args:
        kernel (`torch.Tensor` of shape `(batch_size, N, N)`): the PSD kernels.
        mask (`torch.BoolTensor` of shape `(batch_size, N)`, *optional*): valid items.

    Returns:
        `torch.Tensor` of shape `(batch_size,)`.
    """
    diagonal = kernel.diagonal(dim1=-2, dim2=-1)  # [B, N]
    if mask is not None:
        diagonal = diagonal.masked_fill(~mask, 0.0)
    return diagonal.amax(dim=-1).clamp(min=0.0) * kernel.shape[-1] * torch.finfo(kernel.dtype).eps


def greedy_map(
    kernel: torch.Tensor,
    k: int,
    mask: torch.BoolTensor | None = None,
    eps: float | None = None,
) -> GreedyMapOutput:
    """Greedy MAP selection of up to `k` items under the DPP with L-ensemble `kernel`.

    At each step picks `argmax_j det(L[S + j, S + j])` (ties go to the lowest index), exactly the
    naive greedy rule, through the incremental Cholesky updates of Chen et al. (2018):

        e_j = (L[i, j] - <c_i, c_j>) / d_i        (i the item just picked, c_j the Cholesky row of j)
        d_j^2 <- d_j^2 - e_j^2

    A kernel stops (and its remaining slots stay `-1`) when its best gain `d_j^2` is not above
    `eps`: the pool is exhausted (fewer than `k` valid items) or the kernel's rank is spent.
    Gains that round-off pushes below zero are clamped to zero.

    Args:
        kernel (`torch.Tensor` of shape `(batch_size, N, N)` or `(N, N)`):
            Symmetric PSD L-ensemble kernels, float32 or float64, on any device. Entries in rows
            and columns of masked items are never read into a valid item's gain.
        k (`int`):
            Maximum number of items to select per kernel.
        mask (`torch.BoolTensor` of shape `(batch_size, N)` or `(N,)`, *optional*):
            `True` for real items, `False` for padding of pools shorter than `N`.
        eps (`float`, *optional*):
            Stop when the best gain is `<= eps`. Defaults to `default_gain_tolerance(kernel)`,
            a per-kernel numerical-rank threshold that suits both float32 and float64.

    Returns:
        `GreedyMapOutput` with `indices` (`(batch_size, k)`, `-1`-padded) and `counts`
        (`(batch_size,)`); without the batch dimension for a 2-D `kernel`.

    Example:

    ```python
    >>> features = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    >>> greedy_map(features @ features.T, k=2).indices.shape
    torch.Size([2])
    ```
    """
    if kernel.dim() not in (2, 3) or kernel.shape[-1] != kernel.shape[-2]:
        raise ValueError(f"kernel must have shape (N, N) or (batch_size, N, N), got {tuple(kernel.shape)}")
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    if eps is not None and eps < 0:
        raise ValueError(f"eps must be non-negative, got {eps}")
    single = kernel.dim() == 2
    if single:
        kernel = kernel.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(0)
    batch_size, num_items, _ = kernel.shape
    if mask is not None and mask.shape != (batch_size, num_items):
        raise ValueError(f"mask must have shape {(batch_size, num_items)}, got {tuple(mask.shape)}")

    device = kernel.device
    blocked = (
        torch.zeros(batch_size, num_items, dtype=torch.bool, device=device) if mask is None else ~mask
    )  # padding and items already chosen
    tolerance = (
        default_gain_tolerance(kernel, mask)
        if eps is None
        else torch.full((batch_size,), eps, dtype=kernel.dtype, device=device)
    )
    gains = kernel.diagonal(dim1=-2, dim2=-1).clamp(min=0.0)  # [B, N], d_j^2 with S empty
    steps = min(k, num_items)
    cholesky_rows = kernel.new_zeros(batch_size, steps, num_items)  # [B, k, N], row t = e of pick t
    indices = torch.full((batch_size, k), -1, dtype=torch.long, device=device)
    active = torch.ones(batch_size, dtype=torch.bool, device=device)

    for step in range(steps):
        # Blocked items get gain -1, below any tolerance: never picked, and NaN padding is never compared.
        best_gain, best = gains.masked_fill(blocked, -1.0).max(dim=-1)  # [B], [B]
        # A kernel that stops stays stopped: its later gains are never read again.
        active &= best_gain > tolerance
        if not bool(active.any()):
            break
        indices[:, step] = best.masked_fill(~active, -1)
        best_column = best.view(batch_size, 1, 1)
        blocked.scatter_(1, best.unsqueeze(1), True)

        row = kernel.gather(1, best_column.expand(-1, 1, num_items)).squeeze(1)  # [B, N], L[best, :]
        if step > 0:
            picked_rows = cholesky_rows[:, :step, :]  # [B, step, N]
            coefficients = picked_rows.gather(2, best_column.expand(-1, step, 1))  # [B, step, 1], c_best
            row = row - torch.bmm(coefficients.transpose(1, 2), picked_rows).squeeze(1)  # - <c_best, c_j>
        update = row / best_gain.clamp(min=torch.finfo(kernel.dtype).tiny).sqrt().unsqueeze(-1)  # [B, N]
        cholesky_rows[:, step, :] = update
        # Round-off (or a slightly non-PSD kernel) can push gains below zero: clamp them.
        gains = (gains - update.square()).clamp_(min=0.0)

    counts = (indices >= 0).sum(dim=-1)
    if single:
        return GreedyMapOutput(indices[0], counts[0])
    return GreedyMapOutput(indices, counts)
