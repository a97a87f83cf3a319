"""CCL's hard negatives mined from the model being trained (a documented deviation, docs/experiments.md H8).

The paper makes each target's entity-swapped negative once, by drawing replacement entities at random
(`negatives.make_hard_negatives`). With a likelihood-scored CCL (H7) such negatives are separated from their
targets within a few epochs: a random dish is one the decoder already finds unlikely under these photos, so the
loss falls to ~0 and stops teaching. Mined negatives are instead the swap the current model finds likeliest, meant
to be the subject it would itself wrongly write in place of the right one. On Gest-Synth this option made the
generator less grounded and less varied than cross-entropy alone; what the mined swaps turned out to be and why it
hurts are in docs/experiments.md (H8). It stays as a documented option, off by default.

For each training example, with the model in eval mode and no gradients:

1. One teacher-forced pass over the target gives, at the first token of each of its entities (the same noun
   chunks `make_hard_negatives` swaps), the decoder's log-probability of every pool entity's first token. The
   `candidates` (span, entity) pairs with the highest such score, over all the target's entities, are shortlisted
   (the target's own entity excluded).
2. Each shortlisted one-entity swap is scored whole, `log p(Y_swap | V, R)` summed over its tokens (the score the
   likelihood CCL compares; with the embedding score the negatives are ranked the same way), and the likeliest
   becomes the example's negative. A swap longer than the collator's `max_length` is not scored: truncated, it
   would be summed over fewer tokens and look likelier than it is.

An example whose entities cannot be located in its tokens (an entity that starts inside a token, or past
`max_length`) keeps the negative it had. `NegativeMiningCallback` re-mines the training split at the start of
every epoch after the first (during the first the model is untrained and the random negatives stand), in place
in the `PC2LDataset` the Trainer's dataloader reads.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import TrainerCallback

from .collator import PC2LCollator, PC2LDataset
from .modeling_pc2l import sequence_log_likelihood
from .negatives import entity_pool, entity_spans

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntitySlot:
    """An entity of a target: its character span and the position of its first token in the collated ids."""

    start: int
    end: int
    position: int
    leading_space: bool


def entity_slots(
    texts: list[str], spans: list[list[tuple[int, int]]], tokenizer, max_length: int
) -> list[list[EntitySlot]]:
    """The entities of each text whose first token can be located in the collator's `BOS text EOS` ids.

    A byte-level BPE attaches a word's leading space to the word, so the entity's first token is at
    `1 + len(tokens(text[:start] without its last space))`; the slot is kept only if the text's token there is
    indeed the entity's first token (checked, not assumed) and lies within `max_length`.
    """
    slots = []
    for text, text_spans in zip(texts, spans, strict=True):
        body = tokenizer(text, add_special_tokens=False)["input_ids"][: max_length - 2]
        text_slots = []
        for start, end in text_spans:
            leading_space = start > 0 and text[start - 1] == " "
            prefix = text[: start - 1] if leading_space else text[:start]
            position = len(tokenizer(prefix, add_special_tokens=False)["input_ids"]) if prefix else 0
            first = tokenizer((" " if leading_space else "") + text[start:end], add_special_tokens=False)
            if position < len(body) and first["input_ids"] and body[position] == first["input_ids"][0]:
                text_slots.append(EntitySlot(start, end, 1 + position, leading_space))
        slots.append(text_slots)
    return slots


def _first_token_ids(pool: list[str], tokenizer) -> dict[bool, torch.Tensor]:
    """Each pool entity's first token id, with and without a leading space (keyed by `leading_space`)."""
    return {
        space: torch.tensor(
            [
                ids[0]
                for ids in tokenizer([(" " if space else "") + e for e in pool], add_special_tokens=False)[
                    "input_ids"
                ]
            ]
        )
        for space in (True, False)
    }


def _swap(text: str, slot: EntitySlot, entity: str) -> str:
    return text[: slot.start] + entity + text[slot.end :]


@torch.no_grad()
def mine_hard_negatives(
    model,
    dataset: PC2LDataset,
    collator: PC2LCollator,
    slots: list[list[EntitySlot]],
    pool: list[str],
    candidates: int = 4,
    batch_size: int = 32,
    keep: Callable[[str, str], bool] | None = None,
) -> tuple[list[str], dict[str, float]]:
    """Each example's likeliest one-entity swap under `model` (module docstring), and a summary of the mining.

    Args:
        model: a PC2L model (any module whose forward takes the collator's batch and returns `logits`).
        dataset ([`PC2LDataset`]): the examples; their current `negative` is kept where nothing can be mined.
        collator ([`PC2LCollator`]): batches the examples as training does.
        slots (`list[list[EntitySlot]]`): per example its entities (`entity_slots`).
        pool (`list[str]`): the replacement entities (lower case, distinct).
        candidates (`int`, *optional*, defaults to 4): swaps shortlisted by first-token score and scored whole.
        batch_size (`int`, *optional*, defaults to 32): examples per forward pass (the second stage scores
            `batch_size` swaps per pass).
        keep (`Callable[[str, str], bool]`, *optional*): a test `keep(target, swap)` every shortlisted swap must
            pass (the shortlist then holds the `candidates` likeliest swaps that pass; an example none of whose
            swaps passes keeps its negative), e.g. a research probe that refuses swaps naming the same thing.

    Returns:
        `(negatives, summary)`: `negatives[i]` is example i's negative; `summary` has `mined` (examples given a
        mined negative) and `margin` (their mean `log p(Y) - log p(Y_neg)`, nats: near 0, the negatives are as
        likely as the targets).
    """
    if candidates < 1:
        raise ValueError(f"candidates must be at least 1, got {candidates}")
    if "negative" not in dataset.columns:
        raise ValueError("negative mining needs a dataset with CCL's `negative` column")
    was_training = model.training
    model.eval()
    try:
        return _mine(model, dataset, collator, slots, pool, candidates, batch_size, keep)
    finally:
        model.train(was_training)


def _mine(model, dataset, collator, slots, pool, candidates, batch_size, keep):
    device = next(model.parameters()).device
    without_negatives = replace(collator, with_negatives=False)
    first_ids = {
        space: ids.to(device) for space, ids in _first_token_ids(pool, tokenizer=collator.tokenizer).items()
    }
    pool_index = {entity: index for index, entity in enumerate(pool)}

    def log_likelihoods(examples: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = {name: value.to(device) for name, value in without_negatives(examples).items()}
        labels = batch.pop("labels")
        logits = model(**batch, return_dict=True).logits
        return logits, sequence_log_likelihood(logits, batch["input_ids"], labels != -100)

    negatives = list(dataset.columns["negative"])

    def fits(text: str) -> bool:
        return len(collator.tokenizer(text, add_special_tokens=False)["input_ids"]) <= collator.max_length - 2

    swaps = []  # (example index, candidate text)
    target_scores = {}
    for start in tqdm(range(0, len(dataset), batch_size), desc="mining negatives", leave=False):
        indices = [i for i in range(start, min(start + batch_size, len(dataset))) if slots[i]]
        if not indices:
            continue
        logits, scores = log_likelihoods([dataset[i] for i in indices])
        for row, index in enumerate(indices):
            target_scores[index] = scores[row].item()
            text = dataset.columns["target"][index]
            # Logits at position p - 1 predict the token at p, the entity's first.
            positions = torch.tensor([slot.position - 1 for slot in slots[index]], device=device)
            log_probs = logits[row, positions].float().log_softmax(-1)  # [n_slots, V]
            spaced = torch.tensor([slot.leading_space for slot in slots[index]], device=device)
            per_slot = torch.where(
                spaced[:, None], log_probs[:, first_ids[True]], log_probs[:, first_ids[False]]
            )  # [n_slots, len(pool)]
            for k, slot in enumerate(slots[index]):
                own = pool_index.get(text[slot.start : slot.end].lower())
                if own is not None:
                    per_slot[k, own] = -torch.inf
            flat = per_slot.flatten()
            kept = 0
            # Entities sharing a first token tie in this score: stable, ties go to the earlier (slot, pool entity).
            for j in torch.argsort(flat, descending=True, stable=True)[
                : int(torch.isfinite(flat).sum())
            ].tolist():
                swapped = _swap(text, slots[index][j // len(pool)], pool[j % len(pool)])
                if fits(swapped) and (keep is None or keep(text, swapped)):
                    swaps.append((index, swapped))
                    kept += 1
                    if kept == candidates:
                        break

    best: dict[int, tuple[float, str]] = {}
    for start in range(0, len(swaps), batch_size):
        chunk = swaps[start : start + batch_size]
        _, scores = log_likelihoods([dataset[index] | {"target": text} for index, text in chunk])
        for (index, text), score in zip(chunk, scores.tolist(), strict=True):
            if index not in best or score > best[index][0]:
                best[index] = (score, text)
    for index, (_, text) in best.items():
        negatives[index] = text
    margins = [target_scores[index] - score for index, (score, _) in best.items()]
    return negatives, {"mined": len(best), "margin": float(np.mean(margins)) if margins else float("nan")}


class NegativeMiningCallback(TrainerCallback):
    """Re-mines CCL's negatives of `dataset` with the model being trained at the start of every epoch but the first.

    The dataset is changed in place (`dataset.columns["negative"]`), before the epoch's dataloader iterator is made,
    so the epoch's batches read the new negatives; persistent dataloader workers would keep a stale copy, which
    `train-pc2l` refuses. No random numbers are drawn, so the training's shuffling is the same with or without it.
    Under several processes each one mines the whole split (the same negatives: the weights are the same). After a
    resume from a checkpoint, the epoch it resumes in is mined with the checkpoint's weights and `history` starts
    anew.

    Args:
        dataset ([`PC2LDataset`]): the training split, with a `negative` column.
        collator ([`PC2LCollator`]): the training collator (its tokenizer and `max_length` locate the entities).
        candidates (`int`): see `mine_hard_negatives`.
        spans (`list[list[tuple[int, int]]]`, *optional*): the targets' entities, `negatives.entity_spans` with the
            parser `make_hard_negatives` used (default: the fallback chunker's).
        batch_size (`int`, *optional*, defaults to 32): examples per mining pass.
        keep (`Callable[[str, str], bool]`, *optional*): see `mine_hard_negatives`.
    """

    def __init__(
        self,
        dataset: PC2LDataset,
        collator: PC2LCollator,
        candidates: int,
        spans: list[list[tuple[int, int]]] | None = None,
        batch_size: int = 32,
        keep: Callable[[str, str], bool] | None = None,
    ):
        if "negative" not in dataset.columns:
            raise ValueError("negative mining needs a dataset with CCL's `negative` column")
        self.dataset, self.collator = dataset, collator
        self.candidates, self.batch_size, self.keep = candidates, batch_size, keep
        targets = dataset.columns["target"]
        if spans is None:
            spans = entity_spans(targets)
        self.pool = entity_pool(targets, spans)
        self.slots = entity_slots(targets, spans, collator.tokenizer, collator.max_length)
        located = sum(1 for row in self.slots if row)
        if located < len(targets) / 2:
            # E.g. a tokenizer that does not attach a word's leading space to it: most entities cannot be located.
            logger.warning(
                "negative mining: only %d of %d training targets have an entity located in their tokens; the others "
                "keep their random negatives", located, len(targets),
            )  # fmt: skip
        self.history: list[dict[str, float]] = []

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        # Not during the first epoch, whose model is untrained (`int`: a resume inside it starts at a fraction), nor
        # with a single entity, which has nothing to be swapped for.
        if int(state.epoch or 0) < 1 or len(self.pool) < 2:
            return
        negatives, summary = mine_hard_negatives(
            model,
            self.dataset,
            self.collator,
            self.slots,
            self.pool,
            self.candidates,
            self.batch_size,
            self.keep,
        )
        self.dataset.columns["negative"] = negatives
        self.history.append({"epoch": float(state.epoch), **summary})
        logger.info(
            "epoch %.0f: mined %d of %d negatives, mean log p(target) - log p(negative) %.3f nats",
            state.epoch, summary["mined"], len(negatives), summary["margin"],
        )  # fmt: skip


__all__ = ["EntitySlot", "NegativeMiningCallback", "entity_slots", "mine_hard_negatives"]
