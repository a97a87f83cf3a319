"""`PC2LCollator` on hand-made ragged examples: the first `max_images` / `max_reviews` feature rows, zeros-padded
and masked; `BOS text EOS` ids padded with the pad token (else EOS), targets and negatives to one length."""

import torch
from pc2l_fixtures import build_tokenizer

from gest_showcases.generation.collator import PC2LCollator


def _rows(start: float, count: int, dim: int = 2, dtype=torch.float64) -> torch.Tensor:
    return torch.arange(start, start + count * dim, dtype=dtype).reshape(count, dim)


def _examples() -> list[dict]:
    return [
        {"target": "a b c d e f", "negative": "a", "image_features": _rows(1, 3),
         "review_features": _rows(100, 0)},
        {"target": "a", "negative": "a b c d e f g h", "image_features": _rows(10, 1),
         "review_features": _rows(200, 2)},
    ]  # fmt: skip


def test_features_keep_the_first_rows_padded_with_zeros_as_float32_with_bool_masks(tokenizer):
    batch = PC2LCollator(tokenizer, max_images=2, max_reviews=10)(_examples())
    assert batch["image_features"].dtype == torch.float32 and batch["image_mask"].dtype == torch.bool
    expected_images = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[10.0, 11.0], [0.0, 0.0]]])
    assert torch.equal(batch["image_features"], expected_images)
    assert batch["image_mask"].tolist() == [[True, True], [True, False]]
    expected_reviews = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[200.0, 201.0], [202.0, 203.0]]])
    assert torch.equal(batch["review_features"], expected_reviews)
    assert batch["review_mask"].tolist() == [[False, False], [True, True]]


def test_targets_and_negatives_are_padded_to_the_longest_of_both_with_the_pad_token():
    tokenizer = build_tokenizer()
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    pad, bos, eos = tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id
    assert pad not in (bos, eos)
    examples = _examples()
    batch = PC2LCollator(tokenizer, with_negatives=True)(examples)

    def sequence(text):
        return [bos, *tokenizer(text, add_special_tokens=False)["input_ids"], eos]

    targets = [sequence(example["target"]) for example in examples]
    negatives = [sequence(example["negative"]) for example in examples]
    length = max(map(len, targets + negatives))
    assert length == len(negatives[1]) > max(map(len, targets))  # a negative sets the batch's length
    for name, mask_name, sequences in (
        ("input_ids", "attention_mask", targets),
        ("negative_input_ids", "negative_attention_mask", negatives),
    ):
        assert batch[name].dtype == batch[mask_name].dtype == torch.long
        assert batch[name].tolist() == [ids + [pad] * (length - len(ids)) for ids in sequences], name
        assert batch[mask_name].tolist() == [[1] * len(ids) + [0] * (length - len(ids)) for ids in sequences]
    assert batch["labels"].tolist() == [ids + [-100] * (length - len(ids)) for ids in targets]


def test_without_a_pad_token_padding_is_eos_and_max_length_truncates_the_text(tokenizer):
    assert tokenizer.pad_token_id is None
    batch = PC2LCollator(tokenizer, max_length=4)(_examples())
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    first = tokenizer("a b c d e f", add_special_tokens=False)["input_ids"][:2]
    second = tokenizer("a", add_special_tokens=False)["input_ids"]
    assert len(second) == 1
    assert batch["input_ids"].tolist() == [[bos, *first, eos], [bos, *second, eos, eos]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["labels"].tolist() == [[bos, *first, eos], [bos, *second, eos, -100]]
