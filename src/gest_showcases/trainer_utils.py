"""What the package's small `Trainer`s share: the selector's, the explanation classifier's and the stand-in CLIP's.

- [`EpochPermutationSampler`]: the epoch order of a loop over `torch.randperm(n, generator=generator)`, which the
  classifier and the stand-in CLIP were trained with before they moved onto `Trainer`; their results stay the same.
- [`LoggingProgressCallback`]: `Trainer`'s progress bar, with the logs (losses, evaluation metrics) sent to
  `logging` instead of printed to stdout, which carries each command's results (Table 3, the classifier's metrics,
  the CLIP summary) only.
- [`kept_global_random_state`]: `Trainer` re-seeds the process's global random generators and its data loaders draw
  from torch's; these trainings take their randomness from their own generators, and a caller (the demo, which runs
  every command in one process) draws next what it would have drawn before they moved onto `Trainer`.
- [`drop_use_cache`]: `Trainer` sets `config.use_cache` on every model; the selector and the classifier cache
  nothing, and their saved `config.json` stays as it was.

This module imports only torch, NumPy and transformers, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler
from transformers import PreTrainedConfig, ProgressCallback, Trainer


class EpochPermutationSampler(Sampler[int]):
    """One permutation of `range(num_samples)` per epoch, drawn from a generator seeded once.

    Batched by the `DataLoader` (`drop_last=False`), an epoch is `torch.randperm(num_samples, generator).split(
    batch_size)`. `RandomSampler` with a generator is not the same order: it draws a second permutation at the end
    of every epoch (to fill `num_samples % n`, which is 0), so its later epochs differ.

    Args:
        num_samples (`int`): size of the dataset.
        seed (`int`): seed of the generator, set once: each epoch continues its sequence.
    """

    def __init__(self, num_samples: int, seed: int):
        self.num_samples = num_samples
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        yield from torch.randperm(self.num_samples, generator=self.generator).tolist()


class LoggingProgressCallback(ProgressCallback):
    """`ProgressCallback` (the training and evaluation bars) whose logs go to `logger` at `level`, not to stdout.

    Args:
        logger (`logging.Logger`): where the logs go (the training module's logger).
        level (`int`, *optional*, defaults to `logging.INFO`): their level (`logging.DEBUG` for a run that
            evaluates every one of hundreds of epochs).
    """

    def __init__(self, logger: logging.Logger, level: int = logging.INFO):
        super().__init__()
        self.logger = logger
        self.level = level

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            shown = {key: value for key, value in logs.items() if key != "total_flos"}
            self.logger.log(self.level, "step %d: %s", state.global_step, shown)


def log_to_logger(trainer: Trainer, logger: logging.Logger, level: int = logging.INFO) -> None:
    """Replace `trainer`'s `ProgressCallback` (absent with `disable_tqdm`) by a [`LoggingProgressCallback`]."""
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(LoggingProgressCallback(logger, level))


@contextlib.contextmanager
def kept_global_random_state(python: bool = True) -> Iterator[None]:
    """Restores the global random generators on exit: torch's (CPU, and CUDA where available), NumPy's and, with
    `python`, Python's `random`.

    `Trainer.__init__` re-seeds them all (`set_seed(args.seed)`), and its data loaders draw a worker seed from
    torch's every time they are iterated.

    Args:
        python (`bool`, *optional*, defaults to `True`): restore Python's `random` too; `False` when the training
            draws from it on purpose and the caller sees those draws.
    """
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch_state = torch.random.get_rng_state()
    # `is_available`, not `is_initialized`: the Trainer inside often initialises CUDA itself, and its re-seeded CUDA
    # generators must be restored too (reading the states initialises CUDA here, which a GPU run does anyway).
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        if python:
            random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def drop_use_cache(config: PreTrainedConfig) -> None:
    """Undo `Trainer.__init__`'s `config.use_cache = args.use_cache` on a config without that field."""
    vars(config).pop("use_cache", None)


__all__ = [
    "EpochPermutationSampler",
    "LoggingProgressCallback",
    "drop_use_cache",
    "kept_global_random_state",
    "log_to_logger",
]
