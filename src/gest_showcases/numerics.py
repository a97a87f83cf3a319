"""Finite checks shared by the feature cache and every training loop: NaN never becomes a model.

A NaN or inf in a feature row, a loss or a gradient spreads to every weight after one optimizer
step, and the run then saves a model that only generates garbage while still exiting 0. These
checks stop the run at the first non-finite number with `NonFiniteError`, naming where it came from
(the ids of the bad rows, or the step), before anything is written. This module imports only torch
and `errors`, so every layer may use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch

from gest_showcases.errors import InputError

_SHOWN_IDS = 5


class NonFiniteError(InputError):
    """A NaN or inf in features, a loss or a gradient; the message says where and what to do."""


def format_ids(ids: Sequence, shown: int = _SHOWN_IDS) -> str:
    """The first `shown` ids and the count, e.g. `'a', 'b', 'c' and 4 more (7 in all)`."""
    head = ", ".join(repr(key) for key in ids[:shown])
    if len(ids) <= shown:
        return head
    return f"{head} and {len(ids) - shown} more ({len(ids)} in all)"


def nonfinite_rows(matrix: torch.Tensor) -> torch.Tensor:
    """Indices of the rows of `matrix` `[N, ...]` holding a NaN or an inf (one `isfinite` over the whole matrix)."""
    finite = torch.isfinite(matrix)
    if finite.ndim > 1:
        finite = finite.flatten(1).all(dim=1)  # [N, ...] -> [N]
    return (~finite).nonzero().flatten()


def check_finite_rows(matrix: torch.Tensor, ids: Sequence, what: str, remedy: str) -> None:
    """Refuse a matrix with non-finite rows, naming the ids of the first few of them and their count.

    Args:
        matrix (`torch.Tensor` of shape `(len(ids), ...)`): the rows to check.
        ids (`Sequence`): one id per row, used in the message.
        what (`str`): what the rows are, e.g. `"image features in FEATDIR/image"`.
        remedy (`str`): what the user should do, e.g. `"re-extract them"`.

    Raises:
        `NonFiniteError`: when any row holds a NaN or an inf.
    """
    bad = nonfinite_rows(matrix).tolist()
    if bad:
        raise NonFiniteError(
            f"{len(bad)} of {len(matrix)} {what} hold NaN or inf values: {format_ids([ids[row] for row in bad])}; "
            f"{remedy}"
        )


def check_finite_step(
    loss: torch.Tensor,
    step: int,
    parameters: Iterable[torch.nn.Parameter] | None = None,
    grad_norm: torch.Tensor | float | None = None,
    where: str = "",
) -> float:
    """Stop a training loop at a non-finite loss or gradient norm, before the optimizer step; returns the loss.

    Call it after `backward()` and before `optimizer.step()`: once an optimizer steps on a NaN gradient
    every weight is NaN. Loss and gradient norm cross to the host together, in the one sync the loop
    already pays to log its loss.

    Args:
        loss (`torch.Tensor`): the step's loss (a scalar).
        step (`int`): the step number (1-based), for the message.
        parameters (`Iterable[torch.nn.Parameter]`, *optional*): the trained parameters; the norm of
            their gradients is checked (skip it when `grad_norm` is given).
        grad_norm (`torch.Tensor` or `float`, *optional*): an already computed gradient norm (e.g. the
            return value of `clip_grad_norm_`).
        where (`str`, *optional*): more context for the message (the epoch, the batch's ids).

    Returns:
        `float`: the loss value.

    Raises:
        `NonFiniteError`: naming the step when the loss or the gradient norm is NaN or inf.
    """
    values = [loss.detach().float().reshape(())]
    if grad_norm is None and parameters is not None:
        gradients = [p.grad for p in parameters if p.grad is not None]
        if gradients:
            grad_norm = torch.nn.utils.get_total_norm(gradients)
    if grad_norm is not None:
        values.append(torch.as_tensor(grad_norm, dtype=torch.float32, device=values[0].device).reshape(()))
    numbers = torch.stack(values).tolist()
    if not all(map(math.isfinite, numbers)):
        names = ("loss", "gradient norm")
        found = ", ".join(f"{name} {value}" for name, value in zip(names, numbers, strict=False))
        context = f" ({where})" if where else ""
        raise NonFiniteError(
            f"training stopped at step {step}{context}: {found}, before the optimizer step (no model is saved); "
            "check the inputs for NaN/inf (re-extract features) or lower the learning rate"
        )
    return numbers[0]


_DIVERGED = "the training diverged at its last step and nothing is saved; lower the learning rate"


def check_finite_weights(
    model: torch.nn.Module | Mapping[str, torch.Tensor], what: str = "the model", remedy: str = _DIVERGED
) -> None:
    """Refuse a model (or a state dict: an adapter's own weights) with a NaN or inf weight: before saving, the last
    optimizer step of a diverging run (the default `remedy`); when loading, a model saved by something that did not
    check.

    [`check_finite_step`] sees the gradients before each step, not the weights after the last one (a finite
    gradient times a huge learning rate overflows them). One `isfinite` per tensor, one host sync.

    Raises:
        `NonFiniteError`: naming how many tensors are non-finite and the first few of them.
    """
    named = [
        (name, tensor)
        for name, tensor in (model.state_dict() if isinstance(model, torch.nn.Module) else model).items()
        if tensor.is_floating_point() and tensor.device.type != "meta"
    ]
    if not named:
        return
    device = named[0][1].device
    finite = torch.stack([torch.isfinite(tensor).all().to(device) for _, tensor in named]).tolist()
    bad = [name for (name, _), ok in zip(named, finite, strict=True) if not ok]
    if bad:
        raise NonFiniteError(
            f"{what}: {len(bad)} of {len(named)} weight tensors hold NaN or inf ({format_ids(bad, 3)}): {remedy}"
        )


__all__ = [
    "NonFiniteError",
    "check_finite_rows",
    "check_finite_step",
    "check_finite_weights",
    "format_ids",
    "nonfinite_rows",
]
