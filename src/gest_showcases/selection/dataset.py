"""Examples for the DPP selector: (user profile, business candidate pool, posted images) as tensors.

Each example is one Gest-s1 review: the profile is the mean CLIP feature of the user's OTHER reviews
(text) and of their images; the pool is the business's candidate images; the targets are the images
of this review found in the pool. Pools share one image-feature matrix and are stored as row indices
into it, so a business's features are held once however many users reviewed it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Protocol

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from gest_showcases.errors import InputError

logger = logging.getLogger(__name__)


class FeatureTableLike(Protocol):
    """What `build_selection_dataset` reads of `gest_showcases.features.FeatureTable`."""

    ids: list[str]
    embeddings: torch.Tensor


class SelectionDataset(Dataset):
    """(user, business) examples over a shared image-feature matrix.

    Args:
        image_features (`torch.FloatTensor` of shape `(num_images, image_dim)`): features of every image.
        profile_text (`torch.FloatTensor` of shape `(num_examples, text_dim)`): text half of each profile.
        profile_image (`torch.FloatTensor` of shape `(num_examples, image_dim)`): image half of each profile.
        candidates (`list[torch.LongTensor]`): per example, the pool as rows of `image_features`.
        targets (`list[torch.LongTensor]`): per example, positions in its pool of the images the user posted.
        image_ids (`list[str]`, *optional*): id of each row of `image_features`.
    """

    def __init__(
        self,
        image_features: torch.Tensor,
        profile_text: torch.Tensor,
        profile_image: torch.Tensor,
        candidates: list[torch.Tensor],
        targets: list[torch.Tensor],
        image_ids: list[str] | None = None,
    ):
        num_examples = profile_text.shape[0]
        if not (profile_image.shape[0] == len(candidates) == len(targets) == num_examples):
            raise ValueError(
                f"profile_text has {num_examples} rows, profile_image {profile_image.shape[0]}, "
                f"candidates {len(candidates)}, targets {len(targets)}: they must match"
            )
        if image_ids is not None and len(image_ids) != image_features.shape[0]:
            raise ValueError(f"{len(image_ids)} image_ids for {image_features.shape[0]} image features")
        self.image_features = image_features
        self.profile_text = profile_text
        self.profile_image = profile_image
        self.candidates = candidates
        self.targets = targets
        self.image_ids = image_ids

    def __len__(self) -> int:
        return len(self.candidates)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self._item(index)
        item["candidate_features"] = self.image_features[item["candidate_index"]]  # a copy of the pool's rows
        return item

    def __getitems__(self, indices: list[int]) -> list[dict[str, torch.Tensor]]:
        """A batch's items as `DataLoader` fetches them: like `__getitem__`, but each item names its pool's rows and
        the shared feature matrix (`image_features`, no copy) instead of a copy of its pool's features, which
        `collate_selection` gathers once for the batch (pools of one business repeat across a batch)."""
        return [self._item(index) | {"image_features": self.image_features} for index in indices]

    def _item(self, index: int) -> dict[str, torch.Tensor]:
        pool = self.candidates[index]
        target_mask = torch.zeros(len(pool), dtype=torch.bool)
        target_mask[self.targets[index]] = True
        return {
            "profile_text": self.profile_text[index],
            "profile_image": self.profile_image[index],
            "candidate_index": pool,
            "target_mask": target_mask,
        }

    def candidate_ids(self, indices: torch.Tensor) -> list[list[str]]:
        """Image ids of the pools of the examples `indices` (requires `image_ids`)."""
        if self.image_ids is None:
            raise ValueError("this SelectionDataset was built without image_ids")
        return [[self.image_ids[row] for row in self.candidates[i].tolist()] for i in indices.tolist()]


def collate_selection(
    examples: list[dict[str, torch.Tensor]], distinct_images: bool = False
) -> dict[str, torch.Tensor]:
    """Pads a list of `SelectionDataset` items to the longest pool.

    Args:
        examples (`list[dict]`): `SelectionDataset` items (`__getitem__`'s, or `__getitems__`' with the shared
            feature matrix; the same batch either way).
        distinct_images (`bool`, *optional*, defaults to `False`):
            Return each distinct image of the batch once, `image_features`, and each candidate's row in it,
            `candidate_image_index`, instead of the padded `candidate_features`: the training loop's view.
            Examples of one business share its pool, and pools are padded to the longest, so the padded
            tensor holds each image many times over (6.7x on a Gest-Synth training split at batch 512), and
            running the image MLP on it was most of a training step.

    Returns:
        `dict` with `profile_text` `[B, Dt]`, `profile_image` `[B, Di]`, `candidate_mask` `[B, N]`,
        `target_mask` `[B, N]`, `candidate_index` `[B, N]` (rows of the dataset's image features, `-1` on
        padding) and either `candidate_features` `[B, N, Di]` (zeros on padding) or, with `distinct_images`,
        `image_features` `[U, Di]` (the distinct rows, in increasing `candidate_index` order) and
        `candidate_image_index` `[B, N]` (`-1` on padding).
    """
    pools = [example["candidate_index"] for example in examples]
    lengths = torch.tensor([len(pool) for pool in pools])
    candidate_mask = torch.arange(int(lengths.max())).unsqueeze(0) < lengths.unsqueeze(1)  # [B, N]
    candidate_index = pad_sequence(pools, batch_first=True, padding_value=-1)  # [B, N]
    batch = {
        "profile_text": torch.stack([example["profile_text"] for example in examples]),
        "profile_image": torch.stack([example["profile_image"] for example in examples]),
        "candidate_mask": candidate_mask,
        "target_mask": pad_sequence([example["target_mask"] for example in examples], batch_first=True),
        "candidate_index": candidate_index,
    }
    # Items from `SelectionDataset.__getitems__` carry the shared matrix: the batch's rows are gathered once from it.
    shared = examples[0].get("image_features")
    if not distinct_images:
        if shared is not None:
            padded = shared[candidate_index.clamp_min(0)]  # [B, N, Di]
            batch["candidate_features"] = padded.masked_fill(~candidate_mask.unsqueeze(-1), 0.0)
        else:
            batch["candidate_features"] = pad_sequence([e["candidate_features"] for e in examples], batch_first=True)
        return batch
    rows, inverse = torch.unique(candidate_index[candidate_mask], return_inverse=True)  # [U], [T]
    if shared is not None:
        batch["image_features"] = shared[rows]
    else:
        # Real slots in row-major order: the order of the examples' features concatenated.
        slots = torch.arange(len(inverse))
        first_slot = torch.full((len(rows),), len(inverse)).scatter_reduce_(0, inverse, slots, "amin")  # [U]
        batch["image_features"] = torch.cat([e["candidate_features"] for e in examples])[first_slot]
    batch["candidate_image_index"] = torch.full_like(candidate_index, -1).masked_scatter_(
        candidate_mask, inverse
    )
    return batch


def _mean_rows(features: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """Mean of `features[rows]` for each list of rows in `groups`, zeros for an empty list: `[len(groups), D]`."""
    owner = torch.repeat_interleave(torch.tensor([len(rows) for rows in groups], dtype=torch.long))  # [total]
    rows = torch.tensor([row for group in groups for row in group], dtype=torch.long)  # [total]
    sums = features.new_zeros(len(groups), features.shape[1]).index_add_(0, owner, features[rows])
    counts = torch.bincount(owner, minlength=len(groups)).clamp(min=1).unsqueeze(1)
    return sums / counts


def build_selection_dataset(
    rows: Iterable[Mapping],
    image_table: FeatureTableLike,
    review_table: FeatureTableLike,
    pool_pics: Collection[str] | None = None,
) -> SelectionDataset:
    """Builds examples from Gest-s1 rows and CLIP feature tables.

    Images or reviews without features are left out of pools and profiles. A row whose pool has none
    of its own images left (no target) or no candidate at all is skipped: it can neither teach the
    model nor be scored. Skipped counts are logged.

    Args:
        rows (iterable of `dict`): s1 rows with `pics`, `candidate_pics`, `history_pics` and
            `history_review_ids` (e.g. a `datasets.Dataset` split).
        image_table: `load_features(FEATDIR, "image")` (keys: pic ids).
        review_table: `load_features(FEATDIR, "review")` (keys: review ids).
        pool_pics (`Collection[str]`, *optional*):
            When given, pools keep only these images. For training, pass the images of the training
            split's reviews (`training_pool_pics`): s1's pools span every split, and an image posted
            in a held-out review would otherwise only ever be a training negative, which teaches the
            selector to avoid exactly the images its evaluation asks for.

    Returns:
        `SelectionDataset` whose `image_features` is the whole image table.
    """
    image_row = {key: row for row, key in enumerate(image_table.ids)}
    review_row = {key: row for row, key in enumerate(review_table.ids)}
    candidates, targets, history_images, history_reviews = [], [], [], []
    skipped_no_pool = skipped_no_target = 0
    for row in rows:
        pool = [
            image_row[pic]
            for pic in row["candidate_pics"]
            if pic in image_row and (pool_pics is None or pic in pool_pics)
        ]
        posted = {image_row[pic] for pic in row["pics"] if pic in image_row}
        target = [position for position, image in enumerate(pool) if image in posted]
        if not pool:
            skipped_no_pool += 1
            continue
        if not target:
            skipped_no_target += 1
            continue
        candidates.append(torch.tensor(pool, dtype=torch.long))
        targets.append(torch.tensor(target, dtype=torch.long))
        history_images.append([image_row[pic] for pic in row["history_pics"] if pic in image_row])
        history_reviews.append([review_row[key] for key in row["history_review_ids"] if key in review_row])
    if skipped_no_pool or skipped_no_target:
        logger.info(
            "skipped %d rows with no candidate features and %d with none of their images in the pool",
            skipped_no_pool,
            skipped_no_target,
        )
    if not candidates:
        raise InputError(
            "no usable rows: every row lacks candidate features or target images in its pool; are the "
            "features this dataset's (gest-showcases features on it)?"
        )
    return SelectionDataset(
        image_features=image_table.embeddings,
        profile_text=_mean_rows(review_table.embeddings, history_reviews),
        profile_image=_mean_rows(image_table.embeddings, history_images),
        candidates=candidates,
        targets=targets,
        image_ids=list(image_table.ids),
    )


def training_pool_pics(rows: Iterable[Mapping]) -> set[str]:
    """The images posted in `rows` (a training split): the `pool_pics` of `build_selection_dataset`."""
    return {pic for row in rows for pic in row["pics"]}


__all__ = ["SelectionDataset", "build_selection_dataset", "collate_selection", "training_pool_pics"]
