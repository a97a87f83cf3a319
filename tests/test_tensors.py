"""`pad_ragged`, the one padding helper of the collators, the pipeline and BERTScore, on hand-made ragged rows."""

import pytest
import torch

from gest_showcases.tensors import pad_ragged


def test_rows_of_vectors_are_right_padded_with_zeros_and_masked():
    rows = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]), torch.zeros(0, 2)]
    padded, mask = pad_ragged(rows)
    expected = torch.tensor(
        [
            [[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]],
            [[3.0, 4.0], [5.0, 6.0], [7.0, 8.0]],
            [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]],
        ]
    )
    assert torch.equal(padded, expected)
    assert torch.equal(mask, torch.tensor([[True, False, False], [True, True, True], [False, False, False]]))
    assert mask.dtype == torch.bool


def test_limit_keeps_the_first_positions_of_each_row():
    rows = [torch.tensor([10, 11, 12, 13]), torch.tensor([20]), torch.tensor([30, 31, 32])]
    padded, mask = pad_ragged(rows, limit=2)
    assert torch.equal(padded, torch.tensor([[10, 11], [20, 0], [30, 31]]))
    assert torch.equal(mask, torch.tensor([[True, True], [True, False], [True, True]]))


def test_limit_longer_than_every_row_pads_to_the_longest_row_only():
    padded, mask = pad_ragged([torch.tensor([1, 2]), torch.tensor([3])], limit=5)
    assert padded.shape == (2, 2) and mask.shape == (2, 2)
    assert torch.equal(padded, torch.tensor([[1, 2], [3, 0]]))


def test_padding_value_fills_padding_only_and_dtypes_are_kept():
    rows = [torch.tensor([5, 6, 7], dtype=torch.long), torch.tensor([8], dtype=torch.long)]
    padded, mask = pad_ragged(rows, padding_value=-1)
    assert padded.dtype == torch.long
    assert torch.equal(padded, torch.tensor([[5, 6, 7], [8, -1, -1]]))
    assert torch.equal(mask, torch.tensor([[True, True, True], [True, False, False]]))
    half, _ = pad_ragged([torch.ones(2, 3, dtype=torch.float16), torch.ones(1, 3, dtype=torch.float16)])
    assert half.dtype == torch.float16


def test_zero_limit_and_all_empty_rows_give_an_empty_batch_of_the_trailing_shape():
    padded, mask = pad_ragged([torch.ones(3, 4), torch.ones(1, 4)], limit=0)
    assert padded.shape == (2, 0, 4) and mask.shape == (2, 0)


def test_negative_limit_is_refused():
    with pytest.raises(ValueError, match="limit"):
        pad_ragged([torch.ones(3, 4)], limit=-1)
