"""trainer_utils.kept_global_random_state: every global generator the Trainer re-seeds is restored on exit."""

import random

import numpy as np
import torch

from gest_showcases.trainer_utils import kept_global_random_state


def test_python_numpy_and_torch_generators_are_restored():
    states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
    expected = (random.random(), np.random.rand(), torch.rand(1))  # the next draws
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.random.set_rng_state(states[2])
    with kept_global_random_state():
        random.seed(1), np.random.seed(1), torch.manual_seed(1)  # what Trainer.__init__ does
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(1), expected[2])


def test_cuda_generators_are_restored_even_when_cuda_starts_inside(monkeypatch):
    """On a GPU, CUDA is often first initialised by the Trainer inside the block; its re-seeded CUDA generators must
    be restored too (the block used to read them only when CUDA was already initialised)."""
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: ["state before"])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    with kept_global_random_state():
        pass
    assert restored == [["state before"]]
