"""The baselines' data path and collator: examples from a built s2 folder, id vocabularies with the unknown id 0,
reference texts, features as train-pc2l reads them, and batches of exactly the inputs a model reads."""

import pytest
import torch
from generator_fixtures import FEATURE_DIM, FakeFeatureTable, build_tokenizer, s2_rows, write_s2_dataset

from gest_showcases.baselines.collator import GeneratorCollator
from gest_showcases.baselines.data import (
    ConditioningContext,
    GeneratorDataArguments,
    IdVocabulary,
    build_examples,
    load_examples,
    read_rows,
)
from gest_showcases.generation.collator import PC2LCollator
from gest_showcases.generation.training_run import PC2LDataArguments, load_split

TABLES = {"image": FakeFeatureTable(), "review": FakeFeatureTable()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_s2_dataset(tmp_path_factory.mktemp("built") / "dataset")


@pytest.fixture(scope="module")
def train_rows(dataset):
    return read_rows(dataset, "train")


def _args(dataset, **overrides):
    return GeneratorDataArguments(dataset=str(dataset), features="unused", **overrides)


def test_vocabulary_indexes_train_ids_from_one_and_maps_unseen_ids_to_zero(train_rows):
    vocabulary = IdVocabulary.from_rows(train_rows)
    assert vocabulary.users == ("ua", "ub", "uc") and vocabulary.items == ("b1", "b2", "b3")
    assert (vocabulary.num_users, vocabulary.num_items) == (4, 4)
    assert [vocabulary.user_index(user) for user in ("ua", "ub", "uc", "ud")] == [1, 2, 3, 0]
    assert [vocabulary.item_index(item) for item in ("b1", "b3", "b9")] == [1, 3, 0]
    assert IdVocabulary.from_dict(vocabulary.to_dict()) == vocabulary


def test_cold_users_and_businesses_get_the_unknown_id_and_no_item_references(dataset, train_rows):
    context = ConditioningContext.from_train_rows(train_rows)
    examples = load_examples(_args(dataset), "test", ("ids", "references"), {}, context)
    by_id = {example["id"]: example for example in examples}
    assert set(by_id) == {"r8", "r9", "r10"}  # no features read: every row
    assert (by_id["r8"]["user_id"], by_id["r8"]["item_id"]) == (2, 2)
    assert (by_id["r9"]["user_id"], by_id["r9"]["item_id"]) == (
        0,
        0,
    )  # user ue and business b9 never in train
    assert by_id["r9"]["item_references"] == []


def test_references_are_the_history_and_the_business_other_train_explanations(dataset, train_rows):
    context = ConditioningContext.from_train_rows(train_rows)
    examples = {e["id"]: e for e in load_examples(_args(dataset), "train", ("references",), {}, context)}
    explanations = {row["review_id"]: row["explanation"] for rows in s2_rows().values() for row in rows}
    # b1 in train: r0, r1, r5; r0's own explanation is excluded.
    assert examples["r0"]["item_references"] == [explanations["r1"], explanations["r5"]]
    # ua's other reviews, all splits (the built row's history_texts).
    assert examples["r0"]["user_references"] == [explanations[r] for r in ("r3", "r6")]
    assert "user_id" not in examples["r0"] and "image_features" not in examples["r0"]


def test_image_examples_are_load_split_s_and_keep_their_own_ids(dataset, train_rows):
    context = ConditioningContext.from_train_rows(train_rows)
    args = _args(dataset, max_images=1)
    examples = load_examples(args, "train", ("image", "ids"), TABLES, context)
    # The oracle: train-pc2l's own loader on an image-only PC2L input.
    pc2l = PC2LDataArguments(dataset=str(dataset), features="unused", image_kind="image", max_images=1)
    config = type(
        "Inputs", (), {"uses_images": True, "uses_reviews": False, "max_images": 1, "max_reviews": 10}
    )
    columns = load_split(pc2l, "train", config, TABLES)
    assert [e["id"] for e in examples] == ["r0", "r1", "r2", "r4", "r5"]  # r3's photo has no feature
    assert [e["target"] for e in examples] == columns["target"]
    for example, features in zip(examples, columns["image_features"], strict=True):
        torch.testing.assert_close(example["image_features"], features)
        assert example["image_features"].shape == (1, FEATURE_DIM)
    vocabulary = context.vocabulary
    assert [e["user_id"] for e in examples] == [
        vocabulary.user_index(u) for u in ("ua", "ub", "uc", "ub", "uc")
    ]


def test_build_examples_reads_the_photos_it_is_shown(dataset, train_rows):
    rows = read_rows(dataset, "test")
    shown = [["p1a", "missing"], ["p2a", "p2b"], ["missing"]]
    examples = build_examples(rows, ("image",), None, TABLES, pic_ids=shown)
    features, _ = FakeFeatureTable().lookup(["p1a", "p2a", "p2b"])
    torch.testing.assert_close(examples[0]["image_features"], features[:1])
    torch.testing.assert_close(examples[1]["image_features"], features[1:])
    assert len(examples[2]["image_features"]) == 0
    assert [e["pic_ids"] for e in examples] == shown
    assert [e["target"] for e in examples] == [row["explanation"] for row in rows]


def _examples(dataset, train_rows, inputs):
    context = ConditioningContext.from_train_rows(train_rows)
    return load_examples(_args(dataset), "train", inputs, TABLES, context)


def test_image_and_review_batches_are_pc2l_s(dataset, train_rows):
    tokenizer = build_tokenizer()
    examples = _examples(dataset, train_rows, ("image", "review"))
    expected = PC2LCollator(tokenizer, max_images=1, max_reviews=1)(examples)
    batch = GeneratorCollator(
        tokenizer, conditioning_inputs=("image", "review"), max_images=1, max_reviews=1
    )(examples)
    assert set(batch) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(batch[key], value, msg=key)


def test_batches_hold_exactly_the_inputs_the_model_reads(dataset, train_rows):
    tokenizer = build_tokenizer()
    text = {"input_ids", "attention_mask", "labels"}
    expected_keys = {
        ("image",): text | {"image_features", "image_mask"},
        ("ids",): text | {"user_ids", "item_ids"},
        ("references",): text | {"user_reference_ids", "user_reference_mask", "item_reference_ids",
                                 "item_reference_mask"},
    }  # fmt: skip
    examples = _examples(dataset, train_rows, ("image", "ids", "references"))
    for inputs, keys in expected_keys.items():
        batch = GeneratorCollator(tokenizer, conditioning_inputs=inputs)(examples)
        assert set(batch) == keys, inputs
    batch = GeneratorCollator(tokenizer, conditioning_inputs=("ids",))(examples)
    assert batch["user_ids"].tolist() == [e["user_id"] for e in examples]
    assert batch["item_ids"].dtype == torch.long


def test_reference_tensors_hold_the_first_texts_and_tokens_and_mask_the_rest(dataset, train_rows):
    tokenizer = build_tokenizer()
    context = ConditioningContext.from_train_rows(train_rows)
    rows = read_rows(dataset, "test")
    examples = build_examples(rows, ("references",), context, {})
    assert [len(e["user_references"]) for e in examples] == [2, 0, 2]  # ue has no other review
    assert examples[1]["item_references"] == []
    collator = GeneratorCollator(
        tokenizer, conditioning_inputs=("references",), max_references=1, max_reference_length=4
    )
    batch = collator(examples)
    ids, mask = batch["user_reference_ids"], batch["user_reference_mask"]
    assert ids.shape == mask.shape and ids.shape == (3, 1, 4)
    for row, example in enumerate(examples):
        for slot in range(1):
            texts = example["user_references"]
            expected = (
                tokenizer(texts[slot], add_special_tokens=False)["input_ids"][:4] if slot < len(texts) else []
            )
            assert ids[row, slot][mask[row, slot].bool()].tolist() == expected
            assert mask[row, slot].tolist() == [1] * len(expected) + [0] * (ids.shape[2] - len(expected))
    # The user without other reviews and the cold business: all-zero mask rows.
    assert mask[1].sum() == 0 and batch["item_reference_mask"][1].sum() == 0


def test_an_image_model_refuses_an_example_without_any_photo_feature(dataset):
    rows = read_rows(dataset, "test")
    examples = build_examples(rows, ("image",), None, TABLES, pic_ids=[["p1a"], ["missing"], ["p2a"]])
    with pytest.raises(ValueError, match=r"examples \[1\]"):
        GeneratorCollator(build_tokenizer(), conditioning_inputs=("image",))(examples)
