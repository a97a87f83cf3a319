"""Gest-Synth ground-truth metrics against hand-computed tables, and the `synth_grounding` evaluate module."""

import json
import math
import os

import evaluate
import numpy as np
import pytest

from gest_showcases.errors import InputError
from gest_showcases.metrics import MODULES_DIR
from gest_showcases.metrics.generations import Generation
from gest_showcases.metrics.intervals import bootstrap_interval, resample_indices
from gest_showcases.metrics.synth_truth import (
    METRICS,
    REFERENCE_ROW,
    SynthTruth,
    random_subject_baseline,
    score_references,
    score_synth_generations,
    score_texts,
)
from gest_showcases.synth import SynthConfig, generate_world
from gest_showcases.synth.write import gest_filtered, ground_truth

# A hand-made world: overlapping aliases ("fried rice" / "rice" / "rice cakes"), an alias with a non-word character,
# a photo with no subject, a business without photos.
TRUTH = {
    "subjects": {
        "yangzhou fried rice": {"kind": "dish", "aliases": ["yangzhou fried rice", "fried rice"]},
        "steamed rice": {"kind": "dish", "aliases": ["steamed rice", "rice"]},
        "ramen": {"kind": "dish", "aliases": ["tonkotsu ramen", "ramen"]},
        "gyoza": {"kind": "dish", "aliases": ["gyoza", "potstickers"]},
        "hot and sour soup": {"kind": "dish", "aliases": ["hot and sour soup", "hot & sour soup"]},
        "tteokbokki": {"kind": "dish", "aliases": ["tteokbokki", "rice cakes"]},
        "interior": {"kind": "aspect", "aliases": ["interior", "decor"]},
    },
    "pics": {
        "p1": {"subject": "yangzhou fried rice", "business_id": "b1", "review_id": "u1_b1"},
        "p2": {"subject": "ramen", "business_id": "b1", "review_id": "u2_b1"},
        "p3": {"subject": "interior", "business_id": "b1", "review_id": "u2_b1"},
        "p4": {"subject": None, "business_id": "b1", "review_id": "u1_b1"},
        "p5": {"subject": "gyoza", "business_id": "b2", "review_id": "u1_b2"},
        "p6": {"subject": "steamed rice", "business_id": "b2", "review_id": "u3_b2"},
    },
    "users": {
        "u1": {"favourite_dishes": ["yangzhou fried rice", "gyoza"]},
        "u2": {"favourite_dishes": []},
        "u3": {"favourite_dishes": ["gyoza"]},
    },
    "businesses": {"b1": {}, "b2": {}, "b3": {}},
}
# (text, user, business, shown photos) and, per example, the hand-counted
# (|N|, |N∩S|, |S|, |N\B|, |D|, |D∩F|, p = |S∩B|/|B|).
EXAMPLES = [
    ("The Yangzhou FRIED  rice was great, and the fried rice again!", "u1", "b1", ["p1", "p4"]),
    ("Nice decor. The gyoza and rice were cold.", "u2", "b1", ["p2", "p3"]),
    ("Great service; the ricer was broken.", "u1", "b2", ["p5"]),
    ("Great service; the ricer was broken.", "u2", "b3", []),
    ("Hot & sour soup with potstickers", "u3", "b2", ["p5", "p6"]),
]
COUNTS = [
    (1, 1, 1, 0, 1, 1, 1 / 3),
    (3, 1, 2, 2, 2, 0, 2 / 3),
    (0, 0, 1, 0, 0, 0, 1 / 2),
    (0, 0, 0, 0, 0, 0, 0 / 1),  # no photo of b3: no random subject of it is grounded
    (2, 1, 2, 1, 2, 1, 2 / 2),
]
# Aggregates computed by hand from COUNTS (module docstring's definitions).
EXPECTED = {
    "mention_rate": 3 / 5,
    "grounded_precision": 3 / 6,
    "grounded_precision_macro": (1 / 1 + 1 / 3 + 1 / 2) / 3,
    "grounded_recall": 3 / 6,
    "grounded_recall_macro": (1 / 1 + 1 / 2 + 0 / 1 + 1 / 2) / 4,
    "hallucination": 3 / 6,
    "hallucination_macro": (0 / 1 + 2 / 3 + 1 / 2) / 3,
    "personal_share": 2 / 5,
    "personal_share_macro": (1 / 1 + 0 / 2 + 1 / 2) / 3,
    "grounded_precision_chance": (1 * 1 / 3 + 3 * 2 / 3 + 2 * 1) / 6,
    "distinct_outputs": 4,
    "num_examples": 5,
}


def _score(examples=EXAMPLES, truth=TRUTH):
    texts, users, businesses, pics = zip(*examples, strict=True)
    return score_texts(texts, users, businesses, pics, SynthTruth.load(truth))


def test_named_subjects_whole_words_longest_alias_first():
    truth = SynthTruth.load(TRUTH)
    assert truth.named_subjects("Yangzhou fried rice and steamed rice") == (
        "yangzhou fried rice",
        "steamed rice",
    )
    assert truth.named_subjects("the fried rice") == ("yangzhou fried rice",)  # not also "rice"
    assert truth.named_subjects("spicy rice cakes") == ("tteokbokki",)  # not "rice" then nothing
    assert truth.named_subjects("FRIED\n rice, rice!") == ("yangzhou fried rice", "steamed rice")
    assert truth.named_subjects("ricer, ramens, prerice, gyozas") == ()  # whole words only
    assert truth.named_subjects("hot & sour soup; Tonkotsu Ramen") == ("hot and sour soup", "ramen")
    assert truth.named_subjects("rice rice gyoza rice") == ("steamed rice", "gyoza")  # once each, in order
    assert truth.named_subjects("") == ()


def test_per_example_counts_match_hand_counts():
    scores = _score()
    counts = np.stack(
        [scores.named, scores.grounded, scores.shown, scores.hallucinated, scores.dishes, scores.personal]
    ).T
    assert counts.tolist() == [list(c[:6]) for c in COUNTS]
    np.testing.assert_allclose(scores.chance, [c[6] for c in COUNTS])
    assert scores.subjects[1] == ("interior", "gyoza", "steamed rice")
    per = scores.per_example()
    np.testing.assert_allclose(per["grounded_precision"], [1, 1 / 3, np.nan, np.nan, 1 / 2])
    np.testing.assert_allclose(per["grounded_recall"], [1, 1 / 2, 0, np.nan, 1 / 2])
    np.testing.assert_allclose(per["mention"], [1, 1, 0, 0, 1])


def test_aggregates_match_hand_computed_table():
    metrics = _score().metrics()
    assert list(metrics) == list(METRICS)
    assert metrics == pytest.approx(EXPECTED)


def test_random_subject_baseline_is_the_mean_chance():
    assert random_subject_baseline(_score()) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2 + 0 + 1) / 5)


def test_nothing_named_gives_nan_not_zero():
    metrics = _score([("Great service.", "u1", "b1", ["p1"]), ("Lovely staff.", "u2", "b3", [])]).metrics()
    assert metrics["mention_rate"] == 0
    for key in ("grounded_precision", "hallucination", "personal_share", "grounded_precision_chance"):
        assert math.isnan(metrics[key]), key
    assert metrics["grounded_recall"] == 0  # one shown subject, not named
    assert metrics["distinct_outputs"] == 2


def test_aggregate_on_resamples_equals_rescoring_the_resampled_examples():
    scores = _score()
    indices = np.random.default_rng(0).integers(0, len(EXAMPLES), size=(20, len(EXAMPLES)))
    batched = scores.aggregate(indices)
    for b, row in enumerate(indices):
        rescored = _score([EXAMPLES[i] for i in row]).metrics()
        for key in METRICS:
            if key == "distinct_outputs":  # resampled as a sum of per-example parts, see the docstring
                assert batched[key][b] == pytest.approx(scores.distinct_parts[row].sum())
            else:
                np.testing.assert_allclose(batched[key][b], rescored[key], err_msg=key)


def test_statistic_plugs_into_the_bootstrap():
    scores = _score()
    interval = bootstrap_interval(scores.statistic("grounded_precision"), resample_indices(len(scores), 200))
    assert interval.estimate == pytest.approx(0.5)
    assert 0 <= interval.low <= 0.5 <= interval.high <= 1
    with pytest.raises(InputError, match="unknown synth-truth metric 'bleu'"):
        scores.statistic("bleu")
    with pytest.raises(InputError, match="resamples of 4 examples for scores of 5"):
        bootstrap_interval(scores.statistic("hallucination"), resample_indices(4, 10))


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ([("x", "u9", "b1", [])], "user 'u9' or business 'b1' is not in"),
        ([("x", "u1", "b9", [])], "user 'u1' or business 'b9' is not in"),
        ([("x", "u1", "b1", ["p9"])], r"photos \['p9'\] are not in"),
        ([], "no texts to score"),
    ],
)
def test_examples_outside_the_world_are_refused(examples, message):
    with pytest.raises(InputError, match=message):
        _score(examples) if examples else score_texts([], [], [], [], SynthTruth.load(TRUTH))


def test_lists_of_different_lengths_are_refused():
    with pytest.raises(InputError, match="differ in length: 2, 1, 1, 1"):
        score_texts(["a", "b"], ["u1"], ["b1"], [[]], SynthTruth.load(TRUTH))


def test_malformed_truth_is_refused(tmp_path):
    clash = json.loads(json.dumps(TRUTH))
    clash["subjects"]["gyoza"]["aliases"].append("Tonkotsu  Ramen")
    with pytest.raises(InputError, match="alias 'Tonkotsu  Ramen' names both 'ramen' and 'gyoza'"):
        SynthTruth.load(clash)
    unknown = json.loads(json.dumps(TRUTH))
    unknown["pics"]["p1"]["subject"] = "pizza"
    with pytest.raises(InputError, match="photo 'p1' shows unknown subject 'pizza'"):
        SynthTruth.load(unknown)
    with pytest.raises(InputError, match="no subjects"):  # an empty pattern would match everywhere
        SynthTruth.load({**TRUTH, "subjects": {}})
    with pytest.raises(InputError, match="no 'pics' object"):
        SynthTruth.load({key: value for key, value in TRUTH.items() if key != "pics"})
    with pytest.raises(InputError, match="cannot read the Gest-Synth ground truth"):
        SynthTruth.load(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(InputError, match="not a Gest-Synth ground_truth.json"):
        SynthTruth.load(tmp_path / "list.json")
    with pytest.raises(InputError, match="give the path of a ground_truth.json or its parsed dict, got list"):
        SynthTruth.load([1])  # the evaluate module's `ground_truth=[1]`: a pathlib TypeError before


def _changed(change):
    truth = json.loads(json.dumps(TRUTH))
    change(truth)
    return truth


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["subjects"]["ramen"].update(aliases=5), "subject 'ramen' needs .* a list of aliases"),
        (lambda t: t["subjects"]["ramen"].update(aliases=[5]), "a list of aliases"),
        (lambda t: t["subjects"]["ramen"].update(aliases="ramen"), "a list of aliases"),  # not one per letter
        (lambda t: t["pics"]["p1"].update(subject=["ramen"]), "photo 'p1': subject and review_id must be text"),
        (lambda t: t["pics"]["p1"].update(review_id=["x"]), "subject and review_id must be text"),
        (lambda t: next(iter(t["users"].values())).update(favourite_dishes="ramen"), "must be a list of dish"),
        (lambda t: next(iter(t["users"].values())).update(favourite_dishes=None), "must be a list of dish"),
    ],
)
def test_truth_of_the_wrong_shape_is_one_clear_error(change, message):
    """Session 24's audit: these were TypeErrors and AttributeErrors, and a string of aliases was read letter by
    letter."""
    with pytest.raises(InputError, match=message):
        SynthTruth.load(_changed(change))


def _records(system, texts):
    return [
        Generation(f"{user}_{business}", system, text, EXAMPLES[i][0], tuple(pics))
        for i, (text, (_, user, business, pics)) in enumerate(zip(texts, EXAMPLES, strict=True))
    ]


def test_generations_file_rows_and_reference_ceiling():
    texts = ["The ramen."] * len(EXAMPLES)
    # CE's lines in another order: every row is aligned on the first system's example order.
    records = _records("PC2L", [e[0] for e in EXAMPLES]) + _records("CE", texts)[::-1]
    truth = SynthTruth.load(TRUTH)
    rows = score_synth_generations(records, truth)
    assert list(rows) == ["PC2L", "CE", REFERENCE_ROW]
    assert rows["PC2L"].metrics() == pytest.approx(EXPECTED)
    assert rows[REFERENCE_ROW].metrics() == pytest.approx(EXPECTED)  # the references are EXAMPLES' texts
    assert rows["CE"].metrics()["distinct_outputs"] == 1
    assert rows["CE"].shown.tolist() == rows["PC2L"].shown.tolist() == [c[2] for c in COUNTS]
    # "ramen" is shown only in example 1, and photographed only at b1 (examples 0 and 1).
    assert rows["CE"].metrics()["grounded_precision"] == pytest.approx(1 / 5)
    assert rows["CE"].metrics()["hallucination"] == pytest.approx(3 / 5)
    # Against their own review's photos: u1_b1 has p1 and p4 (no subject), u2_b3 none, u3_b2 only p6.
    own = score_references(records, truth, own_photos=True)
    assert own.shown.tolist() == [1, 2, 1, 0, 1]
    assert own.grounded.tolist() == [1, 1, 0, 0, 0]
    with pytest.raises(InputError, match="'u7_b1' is not <user_id>_<business_id>"):
        score_synth_generations([Generation("u7_b1", "PC2L", "x", "x")], truth)


@pytest.fixture(scope="module")
def tiny_world():
    world = generate_world(SynthConfig(seed=0, num_reviews=200))
    return ground_truth(world), gest_filtered(world)


def test_references_of_a_generated_world_are_fully_grounded(tiny_world):
    """Gest-s2 texts keep only sentences that name their photos' subjects: precision 1, no hallucination."""
    truth_dict, splits = tiny_world
    records = [
        Generation(
            f"{r['user_id']}_{r['business_id']}", "copy", r["review_text"], r["review_text"], tuple(r["pics"])
        )
        for split in splits.values()
        for r in split
    ]
    metrics = score_synth_generations(records, SynthTruth.load(truth_dict))["copy"].metrics()
    assert metrics["num_examples"] == len(records) > 50
    assert metrics["mention_rate"] == metrics["grounded_precision"] == 1.0
    assert metrics["hallucination"] == 0.0
    assert metrics["grounded_recall"] > 0.9
    assert metrics["grounded_precision_chance"] < 0.5


def test_synth_grounding_module_equals_the_plain_function(tmp_path):
    assert os.environ["HF_EVALUATE_OFFLINE"] == "1"
    path = tmp_path / "ground_truth.json"
    path.write_text(json.dumps(TRUTH))
    texts, users, businesses, pics = (list(column) for column in zip(*EXAMPLES, strict=True))
    module = evaluate.load(str(MODULES_DIR / "synth_grounding"))
    for truth in (TRUTH, str(path)):
        result = module.compute(
            predictions=texts, user_ids=users, business_ids=businesses, pic_ids=pics, ground_truth=truth
        )
        assert result == pytest.approx(_score().metrics())
