"""Examples of the Table 2 generators, from a built dataset folder's `s2` config and a feature folder.

An example is a dict with `id` (the review id), `user` and `business` (its user and business ids), `target` (the
explanation), `pic_ids` (the photos it is shown) and what the model's `conditioning_inputs` name (see
`baselines.collator.GeneratorCollator` for the batch):

- `"image"`: `image_features` [n_images, Dv], the cached CLIP image embeddings (`image_kind`) of the found photos;
- `"review"`: `review_features` [n_reviews, Dr], the CLIP text embeddings of the user's history reviews;
- `"ids"`: `user_id`, `item_id` (`int`), indices in the [`IdVocabulary`] of the train split;
- `"references"`: `user_references` (the row's `history_texts`: the user's other reviews) and `item_references`
  (other users' explanations of the business in the train split, the example's own excluded), lists of `str`.

Training examples read the image and review features exactly as `train-pc2l` does (`training_run.load_split`:
the first `max_images` photos and `max_reviews` history reviews, only found features, no example without any), so
a baseline reading photos trains on the examples PC2L's image input reads; a baseline that reads no features trains
on every row of the split. Generation examples (`build_examples`) take the photos to show from the caller: the
user's own photos (`train-generator`'s test generations) or a selector's choice (`gest-showcases experiment`).

Cold start: users and businesses absent from the train split, and so never seen in training, get index 0, the
unknown id, which the id-based models (PETER, PEPLER) embed like any other id; a business absent from the train
split has no item references (an all-masked reference row in the batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from gest_showcases.errors import check_at_least
from gest_showcases.generation.training_run import (
    PC2LDataArguments,
    feature_kinds_read,
    load_split,
    require_test_inputs,
)

CONDITIONING_INPUTS = ("image", "review", "ids", "references")
# The s2 columns an example is made of (the image column of a folder built with --embed_images is never decoded).
_ROW_COLUMNS = (
    "review_id",
    "user_id",
    "business_id",
    "explanation",
    "pics",
    "history_review_ids",
    "history_texts",
)


@dataclass
class GeneratorDataArguments:
    """Where the examples come from and how much of each input a batch keeps."""

    dataset: str = field(
        metadata={"help": "Built dataset folder (gest-showcases build); its s2 config is read."}
    )
    features: str = field(metadata={"help": "Feature folder (gest-showcases features)."})
    image_kind: str = field(
        default="image",
        metadata={
            "help": "Image feature kind: image (CLIP, what the paper fed every image model) or vision.",
            "choices": ["image", "vision"],
        },
    )
    max_length: int = field(default=64, metadata={"help": "Most target tokens, BOS and EOS included."})
    max_images: int = 5
    max_reviews: int = 10
    max_references: int = field(
        default=5, metadata={"help": "Most user (and item) reference texts per example."}
    )
    max_reference_length: int = field(default=20, metadata={"help": "Most tokens per reference text."})

    def __post_init__(self):
        # BOS, a token, EOS; a negative count would slice from the end instead of keeping nothing.
        check_at_least(
            self, max_length=3, max_images=1, max_reviews=1, max_references=1, max_reference_length=1
        )


@dataclass(frozen=True)
class IdVocabulary:
    """User and business ids of a train split, indexed from 1 in sorted order; index 0 is the unknown id.

    Args:
        users (`tuple[str, ...]`): the known user ids; `users[i]` has index `i + 1`.
        items (`tuple[str, ...]`): the known business ids, likewise.
    """

    users: tuple[str, ...]
    items: tuple[str, ...]

    @classmethod
    def from_rows(cls, rows: list[dict]) -> IdVocabulary:
        return cls(
            tuple(sorted({row["user_id"] for row in rows})),
            tuple(sorted({row["business_id"] for row in rows})),
        )

    @property
    def num_users(self) -> int:
        """Size of the user embedding table, the unknown id included."""
        return len(self.users) + 1

    @property
    def num_items(self) -> int:
        return len(self.items) + 1

    @cached_property
    def _index(self) -> dict[str, dict[str, int]]:
        return {
            "user": {key: index + 1 for index, key in enumerate(self.users)},
            "item": {key: index + 1 for index, key in enumerate(self.items)},
        }

    def user_index(self, user_id: str) -> int:
        return self._index["user"].get(user_id, 0)

    def item_index(self, business_id: str) -> int:
        return self._index["item"].get(business_id, 0)

    def to_dict(self) -> dict[str, list[str]]:
        return {"users": list(self.users), "items": list(self.items)}

    @classmethod
    def from_dict(cls, content: dict) -> IdVocabulary:
        return cls(tuple(content["users"]), tuple(content["items"]))


@dataclass
class ConditioningContext:
    """What the id and reference inputs are read against: the train split's ids and explanations per business.

    Args:
        vocabulary ([`IdVocabulary`]): the train split's user and business ids.
        item_texts (`dict[str, list[tuple[str, str]]]`): per business, its train examples' (review id, explanation)
            in split order.
    """

    vocabulary: IdVocabulary
    item_texts: dict[str, list[tuple[str, str]]]

    @classmethod
    def from_train_rows(cls, rows: list[dict], vocabulary: IdVocabulary | None = None) -> ConditioningContext:
        """The context of a train split; `vocabulary` (a trained model's) replaces the split's own ids."""
        item_texts: dict[str, list[tuple[str, str]]] = {}
        for row in rows:
            item_texts.setdefault(row["business_id"], []).append((row["review_id"], row["explanation"]))
        return cls(vocabulary or IdVocabulary.from_rows(rows), item_texts)

    def columns(self, row: dict, conditioning_inputs: tuple[str, ...]) -> dict:
        """The id and reference entries of one example (none for a model reading neither)."""
        out = {}
        if "ids" in conditioning_inputs:
            out["user_id"] = self.vocabulary.user_index(row["user_id"])
            out["item_id"] = self.vocabulary.item_index(row["business_id"])
        if "references" in conditioning_inputs:
            out["user_references"] = list(row["history_texts"])
            out["item_references"] = [
                text
                for review_id, text in self.item_texts.get(row["business_id"], [])
                if review_id != row["review_id"]
            ]
        return out


def check_conditioning_inputs(conditioning_inputs: tuple[str, ...]) -> None:
    unknown = set(conditioning_inputs) - set(CONDITIONING_INPUTS)
    if unknown or not conditioning_inputs:
        raise ValueError(
            f"conditioning_inputs must be a non-empty subset of {CONDITIONING_INPUTS}, got {conditioning_inputs}"
        )


def read_rows(dataset: str | Path, split: str) -> list[dict]:
    """The `s2` rows of one split, as dicts of the columns examples are made of."""
    from gest_showcases.data.build import load_built

    return load_built(dataset, "s2", split=split).select_columns(list(_ROW_COLUMNS)).to_list()


@dataclass(frozen=True)
class _FeatureInputs:
    """The part of a `PC2LConfig` that `load_split` reads: which features, and how many of each."""

    uses_images: bool
    uses_reviews: bool
    max_images: int
    max_reviews: int


def feature_kinds(conditioning_inputs: tuple[str, ...], image_kind: str) -> list[str]:
    """The feature-table kinds a baseline with these conditioning inputs reads (`feature_kinds_read`)."""
    return feature_kinds_read("image" in conditioning_inputs, "review" in conditioning_inputs, image_kind)


def _row_example(row: dict) -> dict:
    """The entries every example has: its ids (for the generations file), reference and photos."""
    return {"id": row["review_id"], "user": row["user_id"], "business": row["business_id"],
            "target": row["explanation"], "pic_ids": list(row["pics"])}  # fmt: skip


def _as_pc2l_inputs(
    data_args: GeneratorDataArguments, conditioning_inputs: tuple[str, ...]
) -> tuple[PC2LDataArguments, _FeatureInputs]:
    """The data arguments and feature inputs `load_split` (PC2L's reader of features) takes, for a baseline."""
    pc2l_args = PC2LDataArguments(
        dataset=data_args.dataset, features=data_args.features, image_kind=data_args.image_kind,
        max_length=data_args.max_length, max_images=data_args.max_images, max_reviews=data_args.max_reviews,
    )  # fmt: skip
    inputs = _FeatureInputs(
        "image" in conditioning_inputs, "review" in conditioning_inputs, data_args.max_images, data_args.max_reviews
    )
    return pc2l_args, inputs


def require_test_examples(data_args: GeneratorDataArguments, conditioning_inputs: tuple[str, ...], tables: dict):
    """`generation.training_run.require_test_inputs` for a baseline reading `conditioning_inputs`."""
    require_test_inputs(*_as_pc2l_inputs(data_args, conditioning_inputs), tables)


def load_examples(
    data_args: GeneratorDataArguments,
    split: str,
    conditioning_inputs: tuple[str, ...],
    tables: dict,
    context: ConditioningContext,
    rows: list[dict] | None = None,
) -> list[dict]:
    """The training (or evaluation) examples of one `s2` split for a model reading `conditioning_inputs`.

    Args:
        tables (`dict`): feature kind -> table (`gest_showcases.features.load_features`), for the kinds of
            `feature_kinds`.
        rows (`list[dict]`, *optional*): the split's rows when the caller has read them (`read_rows`).
    """
    check_conditioning_inputs(conditioning_inputs)
    rows = read_rows(data_args.dataset, split) if rows is None else rows
    examples = [_row_example(row) | context.columns(row, conditioning_inputs) for row in rows]
    pc2l_args, inputs = _as_pc2l_inputs(data_args, conditioning_inputs)
    if not (inputs.uses_images or inputs.uses_reviews):
        return examples
    columns = load_split(pc2l_args, split, inputs, tables)
    # load_split keeps the rows with any found feature and says which by their review ids.
    position = {review_id: index for index, review_id in enumerate(columns["review_id"])}
    names = [name for name in ("image_features", "review_features") if name in columns]
    return [
        example | {name: columns[name][position[row["review_id"]]] for name in names}
        for example, row in zip(examples, rows, strict=True)
        if row["review_id"] in position
    ]


def build_examples(
    rows: list[dict],
    conditioning_inputs: tuple[str, ...],
    context: ConditioningContext | None,
    tables: dict,
    image_kind: str = "image",
    pic_ids: list[list[str]] | None = None,
) -> list[dict]:
    """Generation examples of `rows`, shown `pic_ids[i]` (default: each row's own photos); `target` is the reference.

    `context` is needed when the inputs hold ids or references. The features are the found ones of the given
    photos and of the row's history reviews, as in training. An example whose inputs are all features and none is
    found cannot be generated for: the caller filters them out (`has_input`).
    """
    check_conditioning_inputs(conditioning_inputs)
    pic_ids = [list(row["pics"]) for row in rows] if pic_ids is None else pic_ids
    examples = [_row_example(row) | {"pic_ids": list(pics)} for row, pics in zip(rows, pic_ids, strict=True)]
    if {"ids", "references"} & set(conditioning_inputs):
        for example, row in zip(examples, rows, strict=True):
            example |= context.columns(row, conditioning_inputs)
    for used, kind, name, ids_per_row in (
        ("image" in conditioning_inputs, image_kind, "image_features", pic_ids),
        (
            "review" in conditioning_inputs,
            "review",
            "review_features",
            [row["history_review_ids"] for row in rows],
        ),
    ):
        if used:
            counts = [len(ids) for ids in ids_per_row]
            # One lookup for all rows, then split back per example.
            features, found = tables[kind].lookup([i for ids in ids_per_row for i in ids])
            for example, part, mask in zip(
                examples, features.split(counts), found.split(counts), strict=True
            ):
                example[name] = part[mask]
    return examples


def has_input(example: dict) -> bool:
    """Whether an example holds anything to condition on: an id or reference input, or a found feature."""
    if "user_id" in example or "user_references" in example:
        return True
    return any(len(example[name]) for name in ("image_features", "review_features") if name in example)


__all__ = [
    "CONDITIONING_INPUTS",
    "ConditioningContext",
    "GeneratorDataArguments",
    "IdVocabulary",
    "build_examples",
    "feature_kinds",
    "has_input",
    "load_examples",
    "read_rows",
]
