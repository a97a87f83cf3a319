"""Bootstrap and across-seed intervals against brute-force loops, coverage, determinism, bad input."""

import math

import numpy as np
import pytest

from gest_showcases.errors import InputError
from gest_showcases.metrics.intervals import (
    Interval,
    bootstrap_interval,
    distinct_share_parts,
    mean_statistic,
    paired_difference,
    per_resample,
    pool_seeds,
    pool_statistics,
    ratio_statistic,
    resample_indices,
    seed_interval,
)
from gest_showcases.metrics.text import distinct, tokenize


def _percentile(values, q):
    """Linear interpolation between order statistics, written out (numpy's default method)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])


def _loop_interval(function, indices):
    replicates = [function(list(row)) for row in indices]
    return _percentile(replicates, 0.025), _percentile(replicates, 0.975)


def test_resample_indices_shape_range_and_seed():
    indices = resample_indices(7, 50, seed=3)
    assert indices.shape == (50, 7) and indices.min() >= 0 and indices.max() <= 6
    np.testing.assert_array_equal(indices, resample_indices(7, 50, seed=3))
    assert not np.array_equal(indices, resample_indices(7, 50, seed=4))
    # Every example is drawn, each about 1/7 of the time (14,000 draws: 1/7 +- 0.02 is about 7 standard deviations).
    shares = np.bincount(resample_indices(7, 2000, seed=0).ravel(), minlength=7) / 14000
    assert shares.shape == (7,) and np.all(np.abs(shares - 1 / 7) < 0.02)


def test_mean_interval_equals_a_loop_over_resamples():
    values = np.array([0.1, 0.9, 0.4, 0.4, 0.75, 0.0, 0.3])
    indices = resample_indices(len(values), 50, seed=1)
    interval = bootstrap_interval(values, indices)
    low, high = _loop_interval(lambda row: sum(values[i] for i in row) / len(row), indices)
    assert interval.estimate == pytest.approx(values.mean())
    assert (interval.low, interval.high) == pytest.approx((low, high))
    assert interval.method == "paired bootstrap, 50 resamples of 7 examples"


def test_ratio_and_per_resample_statistics_equal_a_loop():
    hits = np.array([1.0, 0, 2, 3, 0, 1])
    totals = np.array([2.0, 0, 2, 4, 1, 3])
    indices = resample_indices(len(hits), 40, seed=2)

    def micro(row):
        return sum(hits[i] for i in row) / sum(totals[i] for i in row)

    low, high = _loop_interval(micro, indices)
    for statistic in (ratio_statistic(hits, totals), per_resample(lambda row: micro(list(row)))):
        interval = bootstrap_interval(statistic, indices)
        assert interval.estimate == pytest.approx(7 / 12)
        assert (interval.low, interval.high) == pytest.approx((low, high))


def test_paired_difference_equals_a_loop_and_pairs_the_resamples():
    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 0.2, 30)
    b = a - 0.05 + rng.normal(0, 0.02, 30)
    indices = resample_indices(30, 200, seed=5)
    result = paired_difference(a, b, indices)
    differences = [np.mean(a[row]) - np.mean(b[row]) for row in indices]
    assert result.difference.estimate == pytest.approx(a.mean() - b.mean())
    assert (result.difference.low, result.difference.high) == pytest.approx(
        (_percentile(differences, 0.025), _percentile(differences, 0.975))
    )
    assert result.share_a_greater == pytest.approx(np.mean([d > 0 for d in differences]))
    assert result.significant
    # Pairing: a constant shift has no paired uncertainty, although each system's own interval is wide.
    shifted = paired_difference(a + 0.1, a, indices).difference
    assert shifted.low == pytest.approx(0.1) and shifted.high == pytest.approx(0.1)
    assert bootstrap_interval(a, indices).high - bootstrap_interval(a, indices).low > 0.1


def test_undefined_resamples_are_left_out_and_counted():
    hits, totals = np.array([1.0, 0.0]), np.array([1.0, 0.0])  # example 1 names nothing
    indices = np.array([[0, 1], [1, 1], [0, 0]])
    interval = bootstrap_interval(ratio_statistic(hits, totals), indices)
    assert (interval.estimate, interval.low, interval.high) == (1.0, 1.0, 1.0)
    assert interval.note == "1 of 3 resamples undefined"
    nothing = bootstrap_interval(ratio_statistic([0.0], [0.0]), np.zeros((4, 1), dtype=int))
    assert math.isnan(nothing.estimate) and not nothing.defined and nothing.format_cell() == "-"


def test_95_percent_interval_of_a_mean_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(123)
    data = rng.normal(2.0, 1.0, size=(200, 40))
    indices = resample_indices(40, 1000, seed=0)
    covered = [(lambda i: i.low <= 2.0 <= i.high)(bootstrap_interval(row, indices)) for row in data]
    assert 0.88 <= np.mean(covered) <= 0.99


def test_same_seed_same_interval():
    values = np.random.default_rng(9).random(25)
    first = bootstrap_interval(values, resample_indices(25, seed=11))
    assert first == bootstrap_interval(values, resample_indices(25, seed=11))
    assert first != bootstrap_interval(values, resample_indices(25, seed=12))


def test_degenerate_inputs():
    one = bootstrap_interval([0.7], resample_indices(1, 100))
    assert (one.estimate, one.low, one.high) == pytest.approx((0.7, 0.7, 0.7))
    constant = bootstrap_interval(np.full(9, 0.25), resample_indices(9, 100))
    assert (constant.low, constant.high) == pytest.approx((0.25, 0.25))
    with pytest.raises(InputError, match=r"values holds nan at position 2 \(1 non-finite value\(s\)\)"):
        bootstrap_interval([0.1, 0.2, float("nan")], resample_indices(3, 10))
    with pytest.raises(InputError, match="3 per-example values for indices over 4 examples"):
        bootstrap_interval([0.1, 0.2, 0.3], resample_indices(4, 10))
    with pytest.raises(InputError, match="at least one example"):
        resample_indices(0)
    with pytest.raises(InputError, match=r"confidence must be in \(0, 1\)"):
        bootstrap_interval([0.1], resample_indices(1, 10), confidence=95)
    with pytest.raises(InputError, match="one value per resample"):
        bootstrap_interval(lambda indices: np.zeros(3), resample_indices(2, 10))


def test_seed_interval_is_a_t_interval():
    interval = seed_interval([0.40, 0.45, 0.50])
    half = 4.302652729911275 * 0.05 / math.sqrt(3)  # t_{0.975, 2 dof} x sd / sqrt(3)
    assert (interval.estimate, interval.low, interval.high) == pytest.approx((0.45, 0.45 - half, 0.45 + half))
    assert interval.method == "mean over 3 seeds, t-interval (2 dof)"
    single = seed_interval([0.4])
    assert single.estimate == 0.4 and not single.defined and single.note == "1 seed: no interval"
    assert single.format_cell() == "40.0 (1 seed: no interval)"
    assert single.to_dict() == {
        "estimate": 0.4,
        "ci95": None,
        "method": "1 seed",
        "note": "1 seed: no interval",
    }
    with pytest.raises(InputError, match="non-empty"):
        seed_interval([])
    with pytest.raises(InputError, match="per-seed values holds inf"):
        seed_interval([0.1, float("inf")])


def test_pooling_seeds():
    a, b = np.array([0.1, 0.5, 0.9]), np.array([0.3, 0.5, 0.7])
    np.testing.assert_allclose(pool_seeds([a, b]), [0.2, 0.5, 0.8])
    indices = resample_indices(3, 30)
    pooled = pool_statistics([mean_statistic(a), mean_statistic(b)])(indices)
    np.testing.assert_allclose(pooled, mean_statistic(pool_seeds([a, b]))(indices))
    with pytest.raises(InputError, match=r"different numbers of examples \[3, 2\]"):
        pool_seeds([a, b[:2]])


def test_distinct_share_parts_sum_to_the_corpus_value_and_resample_without_bias():
    dishes = ("ramen", "pizza", "gyoza", "pho", "naan", "tacos", "mochi", "udon")
    moods = ("good", "cold", "hot", "fine", "great", "warm", "rich", "ok")
    texts = [f"the {d} was {m} at {p}" for d, m, p in zip(dishes, moods, "abcdefgh", strict=True)]
    bigrams = [list(zip(tokens[:-1], tokens[1:], strict=False)) for tokens in map(tokenize, texts)]
    numerators, denominators = distinct_share_parts(bigrams)
    assert numerators.sum() / denominators.sum() == pytest.approx(distinct(texts, orders=(2,))["distinct_2"])
    indices = resample_indices(len(texts), 100)
    parts = bootstrap_interval(ratio_statistic(numerators, denominators), indices)
    assert parts.low <= parts.estimate <= parts.high
    # Recomputing Distinct-2 on each resample counts repeated texts' bigrams as repeats: biased low.
    naive = bootstrap_interval(
        per_resample(lambda row: distinct([texts[i] for i in row], orders=(2,))["distinct_2"]), indices
    )
    assert naive.high < naive.estimate
    outputs, _ = distinct_share_parts([[t] for t in ["a", "b", "a", "a"]])
    assert outputs.tolist() == pytest.approx([1 / 3, 1, 1 / 3, 1 / 3]) and outputs.sum() == pytest.approx(2)


def test_format_cell():
    interval = Interval(0.48834, 0.4612, 0.5121, 0.95, "paired bootstrap")
    assert interval.format_cell() == "48.8 [46.1, 51.2]"
    assert interval.format_cell(digits=2) == "48.83 [46.12, 51.21]"
    assert interval.to_dict()["ci95"] == [0.4612, 0.5121]
    a, b = np.array([0.6, 0.7, 0.8]), np.array([0.5, 0.5, 0.5])
    cell = paired_difference(a, b, resample_indices(3, 100)).format_cell()
    assert cell.startswith("+20.0 [") and cell.endswith("(A>B 100.0%)")
