"""95% confidence intervals for the tables: paired bootstrap over test examples, t-interval over seeds.

Paired bootstrap (Efron & Tibshirani 1993; Koehn 2004 for MT metrics)
    One matrix of resampled example indices ``[B, n]`` (`resample_indices`: ``B`` rows of ``n`` indices
    drawn uniformly with replacement, fixed seed) is shared by every system and metric, so two systems
    are always compared on the same resampled test sets (paired). A metric is a *statistic*: a function
    ``indices [B, n] -> values [B]``; `bootstrap_interval` evaluates it on the identity indices (the
    estimate) and on every resample, and takes the percentile interval
    ``[q_{(1-c)/2}, q_{(1+c)/2}]`` of the ``B`` replicates (numpy's linear interpolation between order
    statistics). A 1-D array of per-example values stands for its mean (`mean_statistic`).

    Statistics must be functions of per-example quantities that resampling can repeat: a mean, a
    ratio of sums (`ratio_statistic`, e.g. micro precision or corpus BLEU's clipped counts over
    candidate counts), or any function of per-example sufficient statistics (`per_resample` loops a
    plain function over the rows). *Counts of distinct things* (Distinct-n, distinct outputs) are
    not: a resample repeats about 37% of the examples, and a repeated text adds n-grams but never new
    ones, so the bootstrap Distinct-2 of 49 distinct texts sits far below the estimate and its
    percentile interval may not even contain it. `distinct_share_parts` writes such a statistic as a
    ratio of per-example sums (each occurrence of an item counts ``1 / its number of occurrences``),
    which equals the corpus value on the full set and resamples without that bias.

    A replicate that is undefined (NaN: e.g. precision on a resample where nothing is named) is left
    out of the percentiles; the interval's ``note`` says how many were.

Paired difference (`paired_difference`): the same construction on ``A - B`` per resample, plus the
share of resamples where ``A > B`` (``1 -`` that share is roughly a one-sided p-value for "A is not better").

Across seeds (`seed_interval`): mean ± ``t_{(1+c)/2, s-1} * sd / sqrt(s)`` over ``s`` seeds (sample sd,
``ddof=1``); one seed gives no interval, and says so. To bootstrap over examples with several seeds,
pool first: `pool_seeds` averages each example over seeds (arrays) and `pool_statistics` averages
per-seed statistics on the same resamples; the interval then covers example sampling, with the seed
noise averaged out.

Cells (`Interval.format_cell`): ``"48.8 [46.1, 51.2]"`` (x100, one decimal by default).

Example (per-example scores of two systems on the same 8 test examples):
    >>> a = np.array([0.52, 0.61, 0.40, 0.75, 0.33, 0.58, 0.47, 0.66])
    >>> b = np.array([0.50, 0.55, 0.41, 0.60, 0.30, 0.52, 0.47, 0.61])
    >>> indices = resample_indices(len(a))  # one matrix for every system and metric
    >>> bootstrap_interval(a, indices).format_cell()
    '54.0 [44.4, 62.9]'
    >>> paired_difference(a, b, indices).format_cell()
    '+4.5 [1.6, 7.9] (A>B 100.0%)'
    >>> seed_interval([0.488, 0.452, 0.470]).format_cell()
    '47.0 [42.5, 51.5]'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from gest_showcases.errors import InputError

NUM_RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
# indices [B, n] (int) -> one value per resample [B]
Statistic = Callable[[np.ndarray], np.ndarray]
Metric = np.ndarray | Sequence[float] | Statistic


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval (``low``/``high`` NaN when there is none).

    Args:
        estimate (`float`): the statistic on the full set (or the mean over seeds).
        low, high (`float`): the interval's bounds; NaN when undefined (``note`` says why).
        confidence (`float`): e.g. 0.95.
        method (`str`): how it was computed, e.g. ``"paired bootstrap, 1000 resamples of 270 examples"``.
        note (`str`): what a reader must know, e.g. ``"1 seed: no interval"``; empty when nothing.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    note: str = ""

    @property
    def defined(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def format_cell(self, scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
        """``"48.8 [46.1, 51.2]"``; ``"48.8 (1 seed: no interval)"``; ``"-"`` for an undefined estimate."""
        if math.isnan(self.estimate):
            return "-"
        sign = "+" if signed else ""
        value = f"{scale * self.estimate:{sign}.{digits}f}"
        if not self.defined:
            return f"{value} ({self.note or 'no interval'})"
        return f"{value} [{scale * self.low:.{digits}f}, {scale * self.high:.{digits}f}]"

    def to_dict(self) -> dict:
        """JSON-ready: ``{"estimate", "ci95": [low, high] or None, "method", "note"}`` (key named by level)."""
        key = f"ci{round(100 * self.confidence)}"
        bounds = [self.low, self.high] if self.defined else None
        return {"estimate": self.estimate, key: bounds, "method": self.method, "note": self.note}


@dataclass(frozen=True)
class PairedDifference:
    """The interval of ``A - B`` over shared resamples and the share of resamples where ``A > B``."""

    difference: Interval
    share_a_greater: float

    def format_cell(self, scale: float = 100.0, digits: int = 1) -> str:
        """``"+3.6 [1.2, 6.0] (A>B 99.7%)"``."""
        share = "" if math.isnan(self.share_a_greater) else f" (A>B {100 * self.share_a_greater:.1f}%)"
        return self.difference.format_cell(scale, digits, signed=True) + share

    @property
    def significant(self) -> bool:
        """True when the interval of ``A - B`` excludes 0 (the two systems differ at this level)."""
        d = self.difference
        return d.defined and (d.low > 0 or d.high < 0)


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")


def _finite_values(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise InputError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise InputError(
            f"{name} holds {array[bad[0]]} at position {bad[0]} ({bad.size} non-finite value(s)); a "
            "per-example metric must be defined for every example (write a metric undefined on some "
            "examples as a ratio_statistic)"
        )
    return array


def resample_indices(num_examples: int, num_resamples: int = NUM_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """``[num_resamples, num_examples]`` int64 indices drawn uniformly with replacement; same seed, same matrix."""
    if num_examples < 1 or num_resamples < 1:
        raise InputError(
            f"bootstrap needs at least one example and one resample, got {num_examples} and {num_resamples}"
        )
    return np.random.default_rng(seed).integers(0, num_examples, size=(num_resamples, num_examples))


def mean_statistic(values: np.ndarray | Sequence[float]) -> Statistic:
    """The mean of per-example ``values`` (finite, one per example) over each resample."""
    array = _finite_values(values, "values")
    return lambda indices: array[indices].mean(-1)


def ratio_statistic(
    numerators: np.ndarray | Sequence[float], denominators: np.ndarray | Sequence[float]
) -> Statistic:
    """``sum(numerators) / sum(denominators)`` over each resample (NaN where the sum is 0): micro averages."""
    num = _finite_values(numerators, "numerators")
    den = _finite_values(denominators, "denominators")
    if num.shape != den.shape:
        raise InputError(f"numerators and denominators differ in length: {num.size} != {den.size}")

    def statistic(indices):
        top, bottom = num[indices].sum(-1), den[indices].sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(bottom != 0, top / np.where(bottom != 0, bottom, 1), np.nan)

    return statistic


def per_resample(function: Callable[[np.ndarray], float]) -> Statistic:
    """A batched statistic from ``function(indices [n]) -> float``, called once per resample (a loop)."""
    return lambda indices: np.array([function(row) for row in np.atleast_2d(indices)], dtype=np.float64)


def distinct_share_parts(items_per_example: Sequence[Sequence[Hashable]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-example ``(numerators, denominators)`` of a distinct-share statistic, for `ratio_statistic`.

    For items such as n-grams (Distinct-n: the example's n-grams) or whole texts (distinct outputs:
    ``[[text] for text in texts]``): ``numerator_i = sum over the example's items of 1 / (occurrences
    of that item in all examples)`` and ``denominator_i = number of the example's items``. On the full
    set ``sum(numerators) = |unique items|`` and ``sum(denominators) = |item occurrences|``, so the ratio
    is the corpus value (Distinct-n) and ``sum(numerators)`` the distinct count (see the module
    docstring for why resampling the corpus value itself is biased).
    """
    counts: dict[Hashable, int] = {}
    for items in items_per_example:
        for item in items:
            counts[item] = counts.get(item, 0) + 1
    numerators = np.array([sum(1.0 / counts[item] for item in items) for items in items_per_example])
    denominators = np.array([float(len(items)) for items in items_per_example])
    return numerators, denominators


def as_statistic(metric: Metric) -> Statistic:
    """A statistic as is; per-example values (array or list) as their mean (`mean_statistic`)."""
    return metric if callable(metric) else mean_statistic(metric)


def _replicates(metric: Metric, indices: np.ndarray) -> tuple[float, np.ndarray]:
    if indices.ndim != 2 or indices.shape[1] == 0:
        raise InputError(f"indices must be a [num_resamples, num_examples] matrix, got shape {indices.shape}")
    if not callable(metric) and len(metric) != indices.shape[1]:
        raise InputError(
            f"{len(metric)} per-example values for indices over {indices.shape[1]} examples; use one index "
            "matrix per test set"
        )
    statistic = as_statistic(metric)
    estimate = float(
        np.asarray(statistic(np.arange(indices.shape[1])[None]), dtype=np.float64).reshape(-1)[0]
    )
    values = np.asarray(statistic(indices), dtype=np.float64).reshape(-1)
    if values.shape != (indices.shape[0],):
        raise InputError(f"a statistic must return one value per resample, got shape {values.shape}")
    return estimate, values


def _percentile_interval(estimate: float, values: np.ndarray, confidence: float, method: str) -> Interval:
    defined = values[~np.isnan(values)]
    note = (
        f"{values.size - defined.size} of {values.size} resamples undefined"
        if defined.size < values.size
        else ""
    )
    if math.isnan(estimate) or defined.size == 0:
        return Interval(estimate, math.nan, math.nan, confidence, method, note or "undefined")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(defined, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high), confidence, method, note)


def _method(indices: np.ndarray) -> str:
    return f"paired bootstrap, {indices.shape[0]} resamples of {indices.shape[1]} examples"


def bootstrap_interval(metric: Metric, indices: np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """Percentile bootstrap interval of ``metric`` (per-example values or a statistic) on ``indices``.

    Args:
        metric: finite per-example values (their mean is the metric), or a statistic
            ``indices [B, n] -> [B]`` (`mean_statistic`, `ratio_statistic`, `per_resample`, or e.g.
            ``SynthTruthScores.statistic("grounded_precision")``).
        indices: `resample_indices` of the test set, the same matrix for every system (paired).
        confidence: the interval's level.
    """
    _check_confidence(confidence)
    indices = np.asarray(indices)
    estimate, values = _replicates(metric, indices)
    return _percentile_interval(estimate, values, confidence, _method(indices))


def paired_difference(
    metric_a: Metric, metric_b: Metric, indices: np.ndarray, confidence: float = CONFIDENCE
) -> PairedDifference:
    """Interval of ``A - B`` over the shared resamples, and the share of resamples where ``A > B``.

    Resamples where either system's statistic is undefined are left out of both.
    """
    _check_confidence(confidence)
    indices = np.asarray(indices)
    estimate_a, values_a = _replicates(metric_a, indices)
    estimate_b, values_b = _replicates(metric_b, indices)
    difference = values_a - values_b
    interval = _percentile_interval(estimate_a - estimate_b, difference, confidence, _method(indices))
    defined = ~np.isnan(difference)
    share = float((difference[defined] > 0).mean()) if defined.any() else math.nan
    return PairedDifference(interval, share)


def seed_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean over seeds ± Student-t interval with ``s - 1`` degrees of freedom (``s`` = number of seeds).

    One seed: the value, no interval (``note`` says so); zero seeds or a non-finite value: InputError.
    """
    _check_confidence(confidence)
    array = _finite_values(values, "per-seed values")
    s, mean = array.size, float(array.mean())
    if s == 1:
        return Interval(mean, math.nan, math.nan, confidence, "1 seed", "1 seed: no interval")
    method = f"mean over {s} seeds, t-interval ({s - 1} dof)"
    from scipy.special import stdtrit  # the t quantile; scipy.stats takes seconds to import

    half = float(stdtrit(s - 1, (1 + confidence) / 2)) * float(array.std(ddof=1)) / math.sqrt(s)
    return Interval(mean, mean - half, mean + half, confidence, method)


def pool_seeds(per_seed_values: Sequence[np.ndarray | Sequence[float]]) -> np.ndarray:
    """Each example's mean over seeds (seeds x the same examples, in the same order) -> ``[n]``."""
    if len(per_seed_values) == 0:
        raise InputError("pool_seeds needs the values of at least one seed")
    arrays = [_finite_values(v, f"values of seed {k}") for k, v in enumerate(per_seed_values)]
    if len({a.size for a in arrays}) != 1:
        raise InputError(
            f"seeds scored different numbers of examples {[a.size for a in arrays]}; pool the same test set"
        )
    return np.mean(arrays, axis=0)


def pool_statistics(statistics: Sequence[Statistic]) -> Statistic:
    """The mean over seeds of per-seed statistics, each evaluated on the same resampled indices."""
    if len(statistics) == 0:
        raise InputError("pool_statistics needs the statistic of at least one seed")
    return lambda indices: np.mean([np.asarray(s(indices), dtype=np.float64) for s in statistics], axis=0)
