"""The stand-in CLIP's quality measures (`metrics.clip_quality`) on hand-made features with known answers."""

from __future__ import annotations

import math
import random

import pytest
import torch

from gest_showcases.metrics.clip_quality import (
    ground_truth_explanations,
    subject_match,
    subject_probe,
    swap_subjects,
)
from gest_showcases.metrics.synth_truth import SynthTruth


def _truth() -> SynthTruth:
    subjects = {
        "pad thai": {"kind": "dish", "aliases": ["pad thai"]},
        "green curry": {"kind": "dish", "aliases": ["green curry", "curry"]},
        "mango sticky rice": {"kind": "dish", "aliases": ["mango sticky rice"]},
        "interior": {"kind": "aspect", "aliases": ["interior", "decor"]},
        "storefront": {"kind": "aspect", "aliases": ["storefront"]},
    }
    pics = {
        "p1": {"business_id": "b", "subject": "pad thai", "review_id": "u_b"},
        "p2": {"business_id": "b", "subject": "interior", "review_id": "u_b"},
        "p3": {"business_id": "b", "subject": None, "review_id": "u_b"},
    }
    return SynthTruth.from_dict(
        {
            "subjects": subjects,
            "businesses": {"b": {}},
            "pics": pics,
            "users": {"u": {"favourite_dishes": []}},
        }
    )


def test_subject_probe_by_hand():
    # Train: subject a at angles 0 and 60 degrees (centroid at 30), b at 90, c at 180 (majority: a).
    def unit(degrees):
        radians = torch.tensor(degrees) * torch.pi / 180
        return torch.stack([radians.cos(), radians.sin()], dim=-1)

    # Lengths differ on purpose: only directions may count.
    train = unit([0.0, 60.0, 90.0, 180.0]) * torch.tensor([[2.0], [1.0], [3.0], [1.0]])
    # Test at 64 degrees: nearest train photo is a's (60), nearest centroid is b's (90 vs 30).
    # At 10: a by both. At 170: c by both, but it shows d, which no train photo shows: a miss either way.
    test = unit([64.0, 10.0, 170.0])
    result = subject_probe(train, ["a", "a", "b", "c"], test, ["b", "a", "d"])
    assert result["nearest_centroid"] == pytest.approx(2 / 3)
    assert result["nearest_neighbour"] == pytest.approx(1 / 3)
    assert result["majority"] == pytest.approx(1 / 3)
    assert (result["train_photos"], result["test_photos"], result["subjects"]) == (4, 3, 3)


def test_swap_subjects_replaces_only_shown_subjects_by_the_same_kind():
    truth = _truth()
    keep = frozenset({"pad thai", "interior"})
    sentence = "The Pad  Thai was great, the pad thai again, and the decor cozy; try the curry."
    swapped = swap_subjects(sentence, truth, keep, random.Random(0))
    # Both mentions of the shown dish name one other dish, the shown aspect another aspect, the curry (not
    # shown) stays; the only aspect outside keep is the storefront.
    dish = "green curry" if swapped.startswith("The green curry") else "mango sticky rice"
    assert swapped == f"The {dish} was great, the {dish} again, and the storefront cozy; try the curry."


def test_ground_truth_explanations_and_subject_match_by_hand():
    truth = _truth()
    text = "Nice place. The pad thai was good. Loved the decor! The green curry was fine."
    explanations = ground_truth_explanations([(text, ["p1", "p2", "p3"])], truth, seed=0)
    # Only sentences naming a subject of the review's own photos; curry is shown in none.
    assert explanations.sentences == [["The pad thai was good.", "Loved the decor!"]]
    assert explanations.twins[0][1] == "Loved the storefront!"
    assert explanations.matches == [(0, 0, "p1"), (0, 1, "p2")]
    twin = explanations.twins[0][0]
    sentence_embeds = {
        "The pad thai was good.": torch.tensor([1.0, 0.0]),
        twin: torch.tensor([0.0, 1.0]),
        "Loved the decor!": torch.tensor([0.0, 1.0]),
        "Loved the storefront!": torch.tensor([0.0, 1.0]),
    }
    image_embeds = {"p1": torch.tensor([0.8, 0.6]), "p2": torch.tensor([0.6, 0.8])}
    # p1 prefers its true sentence (0.8 > 0.6); p2's two sentences tie: counted half.
    assert subject_match(explanations, image_embeds, sentence_embeds) == pytest.approx(0.75)
    image_embeds["p1"] = torch.tensor([0.6, 0.8])
    assert subject_match(explanations, image_embeds, sentence_embeds) == pytest.approx(0.25)


def test_reviews_without_a_grounded_sentence_are_left_out():
    explanations = ground_truth_explanations([("The green curry was fine.", ["p1"])], _truth())
    assert explanations.pics == [] and explanations.matches == []
    assert math.isnan(subject_match(explanations, {}, {}))  # nothing to match
