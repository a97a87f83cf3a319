"""The test folders' door to `gest_showcases.testing`, imported by name (`conftest` is ambiguous across folders):
its tiny assets under the names the tests import, and the `few_threads` fixture (pytest stays out of the package).
"""

from __future__ import annotations

import pytest
import torch

from gest_showcases.testing.built_folder import rewrite_s1_rows, write_built_dataset
from gest_showcases.testing.images import write_jpegs
from gest_showcases.testing.tiny_assets import (
    CLIP_DIM,
    CORPUS,
    VISION_DIM,
    build_gpt2_tokenizer,
    save_tiny_checkpoints,
    save_tiny_clip,
    save_tiny_generator,
    save_tiny_selector,
)

__all__ = [
    "CLIP_DIM",
    "CORPUS",
    "VISION_DIM",
    "assert_same_tuple",
    "build_gpt2_tokenizer",
    "few_threads",
    "rewrite_s1_rows",
    "save_tiny_checkpoints",
    "save_tiny_clip",
    "save_tiny_generator",
    "save_tiny_selector",
    "write_built_dataset",
    "write_jpegs",
]


@pytest.fixture(autouse=True)
def few_threads():
    """One torch thread per test where a conftest imports this: on tiny tensors extra threads only add contention
    on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_same_tuple(output, expected: tuple) -> None:
    """`output` is a tuple of `expected`'s values, exactly: a `return_dict=False` call against the output's own
    `to_tuple()`, the oracle."""
    assert isinstance(output, tuple) and len(output) == len(expected)
    for got, want in zip(output, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
