"""The user and item id embeddings of the id-based baselines (PETER, PEPLER), with id 0 as the unknown id.

The collator numbers the users and businesses of the train split from 1 and maps every other id (a cold user, a
business never reviewed in training) to 0. So that row 0 means something at test time, training replaces each id
by 0 with probability `unknown_id_probability` (like word dropout): row 0 learns the embedding of "some user" /
"some business", and the model learns to explain without knowing who is asking. With probability 0, row 0 keeps
its random initialisation and cold examples are conditioned on noise.

This file imports only torch, so a modeling file can import it relatively and `save_pretrained` ships it.
"""

import torch
from torch import nn

UNKNOWN_ID = 0


class UserItemEmbeddings(nn.Module):
    """`[user embedding; item embedding]` [B, 2, width] of `user_ids` [B] and `item_ids` [B].

    Args:
        num_users (`int`), num_items (`int`): id vocabulary sizes, the unknown id 0 included.
        width (`int`): embedding width.
        unknown_id_probability (`float`): in training, the probability that an id is replaced by the unknown id.
    """

    def __init__(self, num_users: int, num_items: int, width: int, unknown_id_probability: float):
        super().__init__()
        self.users = nn.Embedding(num_users, width)
        self.items = nn.Embedding(num_items, width)
        self.unknown_id_probability = unknown_id_probability

    def forward(self, user_ids: torch.LongTensor, item_ids: torch.LongTensor) -> torch.Tensor:
        if user_ids is None or item_ids is None:
            raise ValueError("the id-based baselines need user_ids and item_ids (0 for an unknown id)")
        for name, ids, table in (("user_ids", user_ids, self.users), ("item_ids", item_ids, self.items)):
            _check_ids(name, ids, table.num_embeddings)
        if user_ids.shape != item_ids.shape:
            raise ValueError(f"user_ids {tuple(user_ids.shape)} and item_ids {tuple(item_ids.shape)}: give one of each "
                             "per example")  # fmt: skip
        if self.training and self.unknown_id_probability > 0:
            user_ids = _forget(user_ids, self.unknown_id_probability)
            item_ids = _forget(item_ids, self.unknown_id_probability)
        return torch.stack([self.users(user_ids), self.items(item_ids)], dim=1)


def _check_ids(name: str, ids: torch.Tensor, vocabulary_size: int) -> None:
    """A plain error for ids an embedding cannot look up (torch's is an IndexError, or a device-side assert)."""
    if not isinstance(ids, torch.Tensor) or ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.ndim != 1:
        what = f"a {ids.dtype} tensor of shape {tuple(ids.shape)}" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"{name} must be a 1-D integer tensor (one id per example), got {what}")
    if not ids.numel():
        return
    low, high = torch.stack(torch.aminmax(ids)).tolist()  # one device sync per batch, not two
    if low < 0 or high >= vocabulary_size:
        raise ValueError(f"{name} must lie in [0, {vocabulary_size}) (0 for an unknown id; the config's vocabulary), "
                         f"got {low}..{high}")  # fmt: skip


def _forget(ids: torch.LongTensor, probability: float) -> torch.LongTensor:
    """`ids` with each entry replaced by `UNKNOWN_ID` with `probability` (torch's global generator)."""
    return ids.masked_fill(torch.rand(ids.shape, device=ids.device) < probability, UNKNOWN_ID)


__all__ = ["UNKNOWN_ID", "UserItemEmbeddings"]
