"""Training examples of PC2L and the collator that batches them.

An example is a dict with `target` (the explanation), `image_features` [n_images, Dv] (the user's ground-truth
images at training time, the selector's images at inference), `review_features` [n_reviews, Dr] (the user's
other reviews) and, for CCL, `negative` (the entity-swapped target from `negatives.make_hard_negatives`).
"""

from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase


class PC2LDataset(Dataset):
    """PC2L examples from aligned lists (any of the feature lists or `negatives` may be None).

    Args:
        targets (`list[str]`): target explanations.
        image_features (`list[torch.Tensor]`, *optional*): per example a [n_images, Dv] tensor.
        review_features (`list[torch.Tensor]`, *optional*): per example a [n_reviews, Dr] tensor.
        negatives (`list[str]`, *optional*): per example its hard negative (for CCL).
    """

    def __init__(
        self,
        targets: list[str],
        image_features: list[torch.Tensor] | None = None,
        review_features: list[torch.Tensor] | None = None,
        negatives: list[str] | None = None,
    ):
        columns = {
            "image_features": image_features,
            "review_features": review_features,
            "negative": negatives,
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


def _pad_features(features: list[torch.Tensor], limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack [n_i, D] tensors (first `limit` rows each) into [B, max n_i, D] zeros-padded, and a [B, max n_i] mask."""
    kept = [feature[:limit].float() for feature in features]
    lengths = torch.tensor([len(feature) for feature in kept])
    padded = pad_sequence(kept, batch_first=True)  # [B, N, D]
    mask = torch.arange(padded.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)  # [B, N]
    return padded, mask


@dataclass
class PC2LCollator:
    """Pads variable numbers of images and reviews (with masks) and tokenises targets and hard negatives.

    Each text becomes `BOS text EOS`, truncated to `max_length` tokens, right-padded; the negatives are padded to
    the targets' length so the decoder runs on both in one call. `labels` are the target ids with -100 on padding.

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

    def _pad(self, sequences: list[list[int]], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        pad = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        ids = torch.full((len(sequences), length), pad, dtype=torch.long)
        mask = torch.zeros((len(sequences), length), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        return ids, mask

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = {}
        num_inputs = torch.zeros(len(examples), dtype=torch.long)
        if "image_features" in examples[0]:
            batch["image_features"], batch["image_mask"] = _pad_features(
                [example["image_features"] for example in examples], self.max_images
            )
            num_inputs += batch["image_mask"].sum(1)
        if "review_features" in examples[0]:
            batch["review_features"], batch["review_mask"] = _pad_features(
                [example["review_features"] for example in examples], self.max_reviews
            )
            num_inputs += batch["review_mask"].sum(1)
        if (num_inputs == 0).any():
            empty = torch.nonzero(num_inputs == 0).flatten().tolist()
            raise ValueError(f"examples {empty} of the batch have neither images nor history reviews")

        targets = self._tokenize([example["target"] for example in examples])
        negatives = (
            self._tokenize([example["negative"] for example in examples]) if self.with_negatives else []
        )
        length = max(len(sequence) for sequence in targets + negatives)
        batch["input_ids"], batch["attention_mask"] = self._pad(targets, length)
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        if self.with_negatives:
            batch["negative_input_ids"], batch["negative_attention_mask"] = self._pad(negatives, length)
        return batch


__all__ = ["PC2LCollator", "PC2LDataset"]
