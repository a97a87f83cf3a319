"""Batching of ragged rows: the one padding helper of the collators, the pipeline and the metrics.

A batch of examples with different numbers of images, reviews, candidates or tokens becomes one zero-padded
tensor and a mask of the real positions. This module imports only torch, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence


def pad_ragged(
    rows: Sequence[torch.Tensor], limit: int | None = None, padding_value: float = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ragged rows into one right-padded tensor and the mask of its real positions.

    Args:
        rows (`Sequence[torch.Tensor]`): one tensor per example, of shape `[n_i, *trailing]` (the same trailing
            shape and dtype for all; `n_i` may be 0).
        limit (`int`, *optional*): keep only the first `limit` positions of each row (all when `None`).
        padding_value (`float`, *optional*, defaults to 0): the value of the padded positions.

    Returns:
        `(padded, mask)`: `padded` of shape `[B, N, *trailing]` in the rows' dtype, where `N` is the longest kept
        row, and the bool `mask` `[B, N]`, True on the positions that hold a row's values.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be None or >= 0, got {limit}")
    kept = [row[:limit] for row in rows]
    lengths = torch.tensor([len(row) for row in kept], dtype=torch.long)
    padded = pad_sequence(kept, batch_first=True, padding_value=padding_value)  # [B, N, *trailing]
    mask = torch.arange(padded.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)  # [B, N]
    return padded, mask


__all__ = ["pad_ragged"]
