"""BLEU, NIST, METEOR and Distinct: hand-computed values, agreement with NLTK, bad input."""

import math
import random
import sys
import warnings

import pytest
from nltk.translate.bleu_score import corpus_bleu
from nltk.translate.meteor_score import meteor_score
from nltk.translate.nist_score import corpus_nist

from gest_showcases.metrics.assets import install_wordnet
from gest_showcases.metrics.text import (
    bleu,
    distinct,
    meteor,
    nist,
    split_sentences,
    text_metrics,
    tokenize,
    tokens_memoised,
)

PAIRS = (
    ("the cat sat on the mat", "the cat is on the mat"),
    ("we loved the spicy noodles", "we loved the spicy noodles here"),
)


@pytest.fixture(scope="module")
def wordnet():
    """METEOR's WordNet, installed by the project's own setup (a no-op once present)."""
    install_wordnet()


def _random_corpus(seed: int, size: int):
    rng = random.Random(seed)
    words = [
        "the",
        "a",
        "pizza",
        "was",
        "great",
        "good",
        "crust",
        "cheese",
        "sauce",
        "thin",
        "crispy",
        "tasty",
        "delicious",
        "place",
        "service",
        "friendly",
        "staff",
        "loved",
        "it",
        "and",
        "we",
        "ordered",
        "fries",
        "burger",
        "salad",
        "fresh",
        "nice",
        "dishes",
        "dish",
        "food",
        "tasted",
        "running",
        "runs",
        "ran",
        "happy",
        "happily",
        "quickly",
        "café",
        "crème",
        "brûlée",
        "!",
        ",",
        ".",
    ]

    def sentence(low, high):
        return " ".join(rng.choice(words) for _ in range(rng.randint(low, high)))

    hyps = [sentence(0, 25) for _ in range(size)]
    refs = [sentence(1, 30) for _ in range(size)]
    hyps[:3] = ["", "   ", "pizza"]
    refs[3] = ""
    return hyps, refs


def test_tokenize_lowercases_with_treebank():
    assert tokenize("The pizza wasn't GREAT.") == ["the", "pizza", "was", "n't", "great", "."]
    assert tokenize("   ") == []


def test_tokens_memoised_splits_each_text_once_and_forgets_on_exit(treebank_splits):
    splits = treebank_splits
    with tokens_memoised():
        first = tokenize("The pizza wasn't GREAT.")
        first.append("changed")  # a new list each call: the memo keeps its own
        with tokens_memoised():  # a nested block shares the outer memo
            assert tokenize("The pizza wasn't GREAT.") == ["the", "pizza", "was", "n't", "great", "."]
        assert tokenize("Good.") == tokenize("Good.") == ["good", "."]
        assert distinct(["Good.", "Good."]) == distinct(["Good."] * 2)
    assert splits == ["the pizza wasn't great.", "good."]
    assert tokenize("Good.") == ["good", "."]  # forgotten on exit
    assert splits[2:] == ["good."]


def test_split_sentences_rule():
    assert split_sentences("Great pizza! The crust was thin.  Loved it") == [
        "Great pizza!",
        "The crust was thin.",
        "Loved it",
    ]
    assert split_sentences("one\ntwo") == ["one", "two"]
    assert split_sentences("  ") == []


def test_bleu_hand_computed():
    # p1 = 10/11, p2 = 7/9, p3 = 4/7, p4 = 2/5; 11 hypothesis vs 12 reference tokens.
    brevity = math.exp(1 - 12 / 11)
    expected_4 = brevity * (10 / 11 * 7 / 9 * 4 / 7 * 2 / 5) ** 0.25
    scores = bleu([h for h, _ in PAIRS], [r for _, r in PAIRS])
    assert scores == {
        "bleu_1": pytest.approx(brevity * 10 / 11, rel=1e-12),
        "bleu_4": pytest.approx(expected_4),
    }


def test_bleu_clips_each_word_at_its_count_in_the_reference():
    # Papineni et al.'s example: "the" x 7 against a reference with "the" twice: modified unigram precision 2/7; the
    # hypothesis is longer than the reference (no brevity penalty) and has no matching bigram (BLEU-4 about 0: NLTK's
    # corpus_bleu, which these scores equal, puts the smallest float in place of a zero precision).
    scores = bleu(["the the the the the the the"], ["the cat is on the mat"])
    assert scores["bleu_1"] == pytest.approx(2 / 7, rel=1e-12) and 0 <= scores["bleu_4"] < 1e-100


def test_nist_hand_computed_with_hypotheses_shorter_than_n():
    # Unigram info = log2(3 / 1); bigram "a b" info = log2(1 / 1) = 0; no trigram or 4-gram in the
    # hypothesis (NLTK divides by zero there); H / R = 2/3 gives the length penalty 0.5.
    assert nist(["a b"], ["a b c"]) == {"nist_4": pytest.approx(0.5 * math.log2(3), rel=1e-12)}
    with pytest.raises(ZeroDivisionError):
        corpus_nist([[["a", "b", "c"]]], [["a", "b"]], n=4)


def test_distinct_hand_computed():
    scores = distinct(["the pizza was great", "the pizza was cold"])
    assert scores == {"distinct_1": 5 / 8, "distinct_2": 4 / 6}
    assert distinct(["a b"], orders=(3,)) == {"distinct_3": 0.0}


def test_distinct_orders_beyond_every_text_cost_nothing_and_bad_orders_are_refused():
    """Session 25's audit: `orders=[10**9]` built a billion empty n-gram tables (22 GB before it was killed)."""
    assert distinct(["a b c", "a b d"], orders=(1, 3, 10**9)) == {"distinct_1": 4 / 6, "distinct_3": 1.0,
                                                                  f"distinct_{10**9}": 0.0}  # fmt: skip
    for orders in (2, "12", [1.5], [0], [], [True]):
        with pytest.raises(ValueError, match="orders must be a list of whole numbers >= 1"):
            distinct(["a b"], orders=orders)
    with pytest.raises(ValueError, match="texts must be a list of strings, got NoneType"):
        distinct(["a b", None])


def test_meteor_hand_computed(wordnet):
    # Same order: 3 matches in 1 chunk; swapped: 3 matches in 2 chunks. F = 1 in both.
    same = 1 - 0.5 * (1 / 3) ** 3
    swapped = 1 - 0.5 * (2 / 3) ** 3
    scores = meteor(["the cat sat", "sat the cat"], ["the cat sat", "the cat sat"])
    assert scores == {"meteor": pytest.approx((same + swapped) / 2, rel=1e-12)}


@pytest.mark.slow  # loading WordNet and NLTK's own METEOR take ~15 s on 2 busy cores
def test_agreement_with_nltk(wordnet):
    hyps, refs = _random_corpus(seed=0, size=200)
    ours = text_metrics(hyps, refs)
    hyp_tokens = [tokenize(h) for h in hyps]
    ref_lists = [[tokenize(r)] for r in refs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ours["bleu_1"] == pytest.approx(
            corpus_bleu(ref_lists, hyp_tokens, weights=(1, 0, 0, 0)), rel=1e-12
        )
        assert ours["bleu_4"] == pytest.approx(corpus_bleu(ref_lists, hyp_tokens), rel=1e-12)
    assert ours["nist_4"] == pytest.approx(corpus_nist(ref_lists, hyp_tokens, n=4), rel=1e-9)
    expected_meteor = math.fsum(meteor_score(r, h) for r, h in zip(ref_lists, hyp_tokens, strict=True)) / len(
        hyps
    )
    assert ours["meteor"] == pytest.approx(expected_meteor, rel=1e-12)
    assert ours == {
        **bleu(hyps, refs),
        **meteor(hyps, refs),
        **nist(hyps, refs),
        **distinct(hyps),
    }


def test_bleu_4_without_4gram_matches_equals_nltk_tiny_value():
    hyps, refs = ["a b c d"], ["a b c x"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = corpus_bleu([[tokenize(refs[0])]], [tokenize(hyps[0])])
    assert 0 < bleu(hyps, refs)["bleu_4"] == expected < sys.float_info.epsilon


@pytest.mark.parametrize("hypothesis", ["", "   ", "\n\t"])
def test_empty_hypotheses_score_zero(wordnet, hypothesis):
    scores = text_metrics([hypothesis], ["the pizza was great"])
    assert scores == {
        "bleu_1": 0.0,
        "bleu_4": 0.0,
        "meteor": 0.0,
        "nist_4": 0.0,
        "distinct_1": 0.0,
        "distinct_2": 0.0,
    }


def test_empty_corpus_and_empty_references_are_defined(wordnet):
    assert text_metrics([], []) == dict.fromkeys(
        ("bleu_1", "bleu_4", "meteor", "nist_4", "distinct_1", "distinct_2"), 0.0
    )
    scores = text_metrics(["the pizza"], [""])
    assert all(math.isfinite(v) for v in scores.values())
    assert scores["nist_4"] == 0.0 and scores["meteor"] == 0.0


def test_hypotheses_shorter_than_n(wordnet):
    scores = text_metrics(["pizza", "good"], ["pizza was good", "good food"])
    assert scores["bleu_1"] > 0
    assert scores["distinct_2"] == 0.0  # no bigram at all
    assert all(math.isfinite(v) for v in scores.values())


def test_non_ascii_text(wordnet):
    text = "Crème brûlée was très bon 😋 — naïve café!"
    scores = text_metrics([text], [text])
    assert scores["bleu_1"] == pytest.approx(1.0)
    assert scores["bleu_4"] == pytest.approx(1.0)
    assert scores["meteor"] > 0.9
    assert all(math.isfinite(v) for v in scores.values())


@pytest.mark.parametrize("function", [bleu, nist, meteor, text_metrics])
def test_mismatched_lengths_raise(function):
    with pytest.raises(ValueError, match="differ in length: 2 != 1"):
        function(["a", "b"], ["a"])


@pytest.mark.parametrize("function", [bleu, nist, meteor, text_metrics])
def test_single_string_instead_of_list_raises(function):
    with pytest.raises(ValueError, match="single string"):
        function("a b", "a b")
    with pytest.raises(ValueError, match="single string"):
        distinct("a b")


def test_invalid_orders_raise():
    with pytest.raises(ValueError, match="orders must be a list of whole numbers >= 1"):
        distinct(["a b"], orders=(0,))
    with pytest.raises(ValueError, match="order must be >= 1"):
        nist(["a"], ["a"], order=0)
