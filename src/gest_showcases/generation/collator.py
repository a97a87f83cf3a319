"""Training examples of PC2L and the collator that batches them.

An example is a dict with `target` (the explanation), `image_features` [n_images, Dv] (the user's ground-truth
images at training time, the selector's images at inference), `review_features` [n_reviews, Dr] (the user's
other reviews), for CCL `negative` (the entity-swapped target from `negatives.make_hard_negatives`) and, optionally,
`content_labels` (any hashable labels of what the example shows, e.g. dish categories: two examples whose labels
intersect are left out of each other's in-batch negatives, see `losses`).
"""

from collections.abc import Collection, Hashable
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from gest_showcases.tensors import pad_ragged


class PC2LDataset(Dataset):
    """PC2L examples from aligned lists (any of the feature lists or `negatives` may be None).

    Args:
        targets (`list[str]`): target explanations.
        image_features (`list[torch.Tensor]`, *optional*): per example a [n_images, Dv] tensor.
        review_features (`list[torch.Tensor]`, *optional*): per example a [n_reviews, Dr] tensor.
        negatives (`list[str]`, *optional*): per example its hard negative (for CCL).
        content_labels (`list[Collection[Hashable]]`, *optional*): per example the labels of what it shows.
    """

    def __init__(
        self,
        targets: list[str],
        image_features: list[torch.Tensor] | None = None,
        review_features: list[torch.Tensor] | None = None,
        negatives: list[str] | None = None,
        content_labels: list[Collection[Hashable]] | None = None,
    ):
        columns = {
            "image_features": image_features,
            "review_features": review_features,
            "negative": negatives,
            "content_labels": content_labels,
        }
        self.columns = {"target": list(targets)} | {
            name: list(v) for name, v in columns.items() if v is not None
        }
        lengths = {name: len(values) for name, values in self.columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"PC2LDataset columns differ in length: {lengths}")

    def __len__(self) -> int:
        return len(self.columns["target"])

    def __getitem__(self, index: int) -> dict:
        return {name: values[index] for name, values in self.columns.items()}


@dataclass
class PC2LCollator:
    """Pads variable numbers of images and reviews (with masks) and tokenises targets and hard negatives.

    Each text becomes `BOS text EOS`, truncated to `max_length` tokens, right-padded; the negatives are padded to
    the targets' length so the decoder runs on both in one call. `labels` are the target ids with -100 on padding.
    Examples with `content_labels` also give `shared_content` [B, B] (bool): True where two examples' labels intersect
    ([`PC2LTrainer`] passes it to the losses, not to the model).

    Args:
        tokenizer ([`PreTrainedTokenizerBase`]): a GPT-2 tokenizer (its BOS and EOS tokens are used; padding uses
            its pad token, else EOS).
        max_length (`int`, *optional*, defaults to 64): most tokens per text, BOS and EOS included.
        max_images (`int`, *optional*, defaults to 5): most images per example.
        max_reviews (`int`, *optional*, defaults to 10): most history reviews per example.
        with_negatives (`bool`, *optional*, defaults to `False`): batch the examples' `negative` texts (for CCL).
    """

    tokenizer: PreTrainedTokenizerBase
    max_length: int = 64
    max_images: int = 5
    max_reviews: int = 10
    with_negatives: bool = False

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        body = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        bos, eos = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        return [[bos, *ids[: self.max_length - 2], eos] for ids in body]

    @property
    def pad_token_id(self) -> int:
        """The id padding uses: the tokenizer's pad token, else EOS (GPT-2 has no pad token)."""
        tokenizer = self.tokenizer
        return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def _pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids `[B, T]` right-padded with `pad_token_id` to the longest, and the long attention mask."""
        rows = [torch.tensor(sequence, dtype=torch.long) for sequence in sequences]
        ids, mask = pad_ragged(rows, padding_value=self.pad_token_id)
        return ids, mask.long()

    def _features(self, examples: list[dict], column: str, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
        """float `[B, N, D]`: the first `limit` rows of each example's `column`, zeros-padded; and the mask."""
        return pad_ragged([example[column].float() for example in examples], limit=limit)

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = {}
        num_inputs = torch.zeros(len(examples), dtype=torch.long)
        if "image_features" in examples[0]:
            batch["image_features"], batch["image_mask"] = self._features(
                examples, "image_features", self.max_images
            )
            num_inputs += batch["image_mask"].sum(1)
        if "review_features" in examples[0]:
            batch["review_features"], batch["review_mask"] = self._features(
                examples, "review_features", self.max_reviews
            )
            num_inputs += batch["review_mask"].sum(1)
        if (num_inputs == 0).any():
            empty = torch.nonzero(num_inputs == 0).flatten().tolist()
            raise ValueError(f"examples {empty} of the batch have neither images nor history reviews")

        targets = self._tokenize([example["target"] for example in examples])
        negatives = (
            self._tokenize([example["negative"] for example in examples]) if self.with_negatives else []
        )
        # Padded together, so that the negatives have the targets' length and the decoder reads both in one call.
        ids, mask = self._pad(targets + negatives)
        size = len(targets)
        batch["input_ids"], batch["attention_mask"] = ids[:size], mask[:size]
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        if self.with_negatives:
            batch["negative_input_ids"], batch["negative_attention_mask"] = ids[size:], mask[size:]
        if "content_labels" in examples[0]:
            batch["shared_content"] = shared_content([example["content_labels"] for example in examples])
        return batch


def shared_content(labels: list[Collection[Hashable]]) -> torch.Tensor:
    """[B, B] bool: True where the label sets of examples `i` and `j` intersect (the diagonal too, when non-empty)."""
    vocabulary: dict[Hashable, int] = {}
    columns = [[vocabulary.setdefault(label, len(vocabulary)) for label in row] for row in labels]
    one_hot = torch.zeros(len(labels), max(len(vocabulary), 1))
    for row, row_columns in enumerate(columns):
        one_hot[row, row_columns] = 1.0
    return (one_hot @ one_hot.T) > 0


__all__ = ["PC2LCollator", "PC2LDataset", "shared_content"]
