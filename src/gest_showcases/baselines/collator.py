"""`GeneratorCollator`: the batches of every Table 2 generator, the inputs each model reads and nothing else.

The text part (`input_ids`, `attention_mask`, `labels`) and the feature part are `PC2LCollator`'s own (this class
extends it), so a model reading images and reviews gets exactly PC2L's batch. Examples come from
`baselines.data` (`load_examples`, `build_examples`).
"""

from dataclasses import dataclass

import torch

from gest_showcases.generation.collator import PC2LCollator
from gest_showcases.tensors import pad_ragged

from .data import check_conditioning_inputs


@dataclass
class GeneratorCollator(PC2LCollator):
    """Batches examples for a model whose class attribute `conditioning_inputs` names the inputs it reads.

    Always `input_ids` [B, T] (`BOS text EOS`, right-padded), `attention_mask` [B, T] and `labels` [B, T] (-100 on
    padding), then per input:

    - `"image"`: `image_features` [B, N, Dv] (the first `max_images` per example, zeros-padded), `image_mask` [B, N];
    - `"review"`: `review_features` [B, M, Dr], `review_mask` [B, M];
    - `"ids"`: `user_ids` [B], `item_ids` [B] (long; 0 is the unknown id);
    - `"references"`: `user_reference_ids` [B, R, L] and `user_reference_mask` [B, R, L] (the first
      `max_references` texts, each its first `max_reference_length` tokens, no BOS/EOS, padded with the pad token),
      `item_reference_ids`, `item_reference_mask` likewise. An example without references has an all-zero mask.

    Args:
        tokenizer ([`PreTrainedTokenizerBase`]): the GPT-2 tokenizer every Table 2 model shares.
        conditioning_inputs (`tuple[str, ...]`): the inputs to batch, e.g. `model.conditioning_inputs`.
        max_length, max_images, max_reviews: as [`PC2LCollator`].
        max_references (`int`, *optional*, defaults to 5): most reference texts per example and side.
        max_reference_length (`int`, *optional*, defaults to 20): most tokens per reference text.
    """

    conditioning_inputs: tuple[str, ...] = ()
    max_references: int = 5
    max_reference_length: int = 20

    def __post_init__(self):
        check_conditioning_inputs(self.conditioning_inputs)

    def _references(self, texts_per_example: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, R, L] token ids and mask of each example's first `max_references` texts (R, L: the batch's longest)."""
        kept = [list(texts)[: self.max_references] for texts in texts_per_example]
        flat = [text for texts in kept for text in texts]
        body = self.tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
        sequences = [torch.tensor(ids[: self.max_reference_length], dtype=torch.long) for ids in body]
        num_texts = max(1, max(len(texts) for texts in kept))
        length = max([1, *(len(ids) for ids in sequences)])
        pad = self.pad_token_id
        ids = torch.full((len(kept), num_texts, length), pad, dtype=torch.long)
        mask = torch.zeros((len(kept), num_texts, length), dtype=torch.long)
        if sequences:
            # [n_texts, L'] padded, then scattered to (example, slot) positions.
            padded, present = pad_ragged(sequences, padding_value=pad)
            example = torch.repeat_interleave(torch.arange(len(kept)), torch.tensor([len(t) for t in kept]))
            slot = torch.cat([torch.arange(len(texts)) for texts in kept])
            ids[example, slot, : padded.shape[1]] = padded
            mask[example, slot, : padded.shape[1]] = present.long()
        return ids, mask

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = {}
        if "image" in self.conditioning_inputs:
            batch["image_features"], batch["image_mask"] = self._features(
                examples, "image_features", self.max_images
            )
        if "review" in self.conditioning_inputs:
            batch["review_features"], batch["review_mask"] = self._features(
                examples, "review_features", self.max_reviews
            )
        if "ids" in self.conditioning_inputs:
            batch["user_ids"] = torch.tensor([example["user_id"] for example in examples], dtype=torch.long)
            batch["item_ids"] = torch.tensor([example["item_id"] for example in examples], dtype=torch.long)
        if "references" in self.conditioning_inputs:
            for side in ("user", "item"):
                batch[f"{side}_reference_ids"], batch[f"{side}_reference_mask"] = self._references(
                    [example[f"{side}_references"] for example in examples]
                )
        if not {"ids", "references"} & set(self.conditioning_inputs):
            # A model that reads only features would condition an example without any on nothing (PC2L's rule).
            num_inputs = sum(batch[name].sum(1) for name in ("image_mask", "review_mask") if name in batch)
            if (num_inputs == 0).any():
                empty = torch.nonzero(num_inputs == 0).flatten().tolist()
                raise ValueError(f"examples {empty} of the batch have none of the features the model reads")
        targets = self._tokenize([example["target"] for example in examples])
        batch["input_ids"], batch["attention_mask"] = self._pad(targets)
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return batch


__all__ = ["GeneratorCollator"]
