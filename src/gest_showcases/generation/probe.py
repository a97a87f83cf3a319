"""The input-reliance probe: how much a trained generator's target likelihood depends on each input.

For every example, the target's mean token cross-entropy is measured three times: with its own inputs, with
its photos replaced by another example's (reviews kept), and with its history reviews replaced by another
example's (photos kept). The "other example" is a fixed derangement of the split (no example keeps its own
inputs). A decoder that reads its photos loses likelihood when they are swapped (`delta_images > 0`); one that
ignores the user's history does not care when the reviews are swapped (`delta_reviews ~ 0`).

This is the measurement behind the method-quality issue's finding that PC2L's decoder ignored the history
entirely; `gest-showcases experiment` reports it for every system, with bootstrap intervals over examples.
"""

import numpy as np
import torch
import torch.nn.functional as F

from .collator import PC2LCollator, PC2LDataset


def derangement(num_examples: int, seed: int = 0) -> np.ndarray:
    """A random permutation of `range(num_examples)` with no fixed point (a cyclic shift of a shuffle)."""
    if num_examples < 2:
        raise ValueError("the probe needs at least two examples to swap inputs between")
    order = np.random.default_rng(seed).permutation(num_examples)
    # Example order[k] takes the inputs of order[k + 1]: a single cycle, so nobody keeps their own.
    mapping = np.empty(num_examples, dtype=np.int64)
    mapping[order] = np.roll(order, -1)
    return mapping


@torch.no_grad()
def per_example_loss(
    model,
    dataset: PC2LDataset,
    collator: PC2LCollator,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Mean target-token cross-entropy of each example of `dataset` (nats), in dataset order."""
    model.eval()
    losses = []
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        batch.pop("negative_input_ids", None)
        batch.pop("negative_attention_mask", None)
        labels = batch.pop("labels").to(device)
        inputs = {name: value.to(device) for name, value in batch.items()}
        logits = model(**inputs, return_dict=True).logits.float()  # [B, L, V]
        token_loss = F.cross_entropy(
            logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="none"
        )  # [B, L - 1]
        counts = (labels[:, 1:] != -100).sum(1).clamp(min=1)
        losses.append((token_loss.sum(1) / counts).cpu().numpy())
    return np.concatenate(losses) if losses else np.zeros(0)


def with_swapped_inputs(dataset: PC2LDataset, column: str, mapping: np.ndarray) -> PC2LDataset:
    """`dataset` with example `i`'s `column` (`"image_features"` or `"review_features"`) taken from example
    `mapping[i]` (e.g. a `derangement`); targets and negatives kept."""
    columns = dict(dataset.columns)
    columns[column] = [columns[column][j] for j in mapping]
    return PC2LDataset(
        columns["target"],
        columns.get("image_features"),
        columns.get("review_features"),
        columns.get("negative"),
    )


def input_reliance(
    model,
    dataset: PC2LDataset,
    collator: PC2LCollator,
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, np.ndarray]:
    """Per-example losses with own, swapped-photo and swapped-review inputs, and the two increases.

    Returns:
        `dict` of `np.ndarray` [len(dataset)]: `own`, and for each input the model reads (`images`,
        `reviews`) `swapped_<input>` and `delta_<input>` (swapped minus own, nats per token).
    """
    mapping = derangement(len(dataset), seed)
    result = {"own": per_example_loss(model, dataset, collator, batch_size, device)}
    for name, column in (("images", "image_features"), ("reviews", "review_features")):
        if column not in dataset.columns:
            continue
        swapped = per_example_loss(model, with_swapped_inputs(dataset, column, mapping), collator, batch_size, device)
        result[f"swapped_{name}"] = swapped
        result[f"delta_{name}"] = swapped - result["own"]
    return result


__all__ = ["derangement", "input_reliance", "per_example_loss"]
