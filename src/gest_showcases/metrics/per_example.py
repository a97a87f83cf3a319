"""Per-example parts of the experiment's metrics, so every table cell gets a paired bootstrap interval.

Corpus metrics (BLEU-1, Distinct-n, distinct outputs) are ratios of sums over examples; written as per-example
numerators and denominators they resample exactly (`intervals.ratio_statistic`), and on the whole test set they
equal the corpus values of `gest_showcases.metrics.text` (the tests check it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from gest_showcases.metrics import intervals
from gest_showcases.metrics.text import tokenize


def bleu1_parts(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
    """Per example: clipped unigram matches, hypothesis unigrams (at least 1), hypothesis and reference length."""
    matches, totals, hyp_lengths, ref_lengths = [], [], [], []
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        hyp, ref = tokenize(hypothesis), tokenize(reference)
        ref_counts = Counter(ref)
        matches.append(sum(min(count, ref_counts[token]) for token, count in Counter(hyp).items()))
        totals.append(max(1, len(hyp)))
        hyp_lengths.append(len(hyp))
        ref_lengths.append(len(ref))
    return {
        name: np.asarray(values, dtype=np.float64)
        for name, values in (
            ("matches", matches),
            ("totals", totals),
            ("hyp", hyp_lengths),
            ("ref", ref_lengths),
        )
    }


def bleu1_statistic(parts: dict[str, np.ndarray]) -> intervals.Statistic:
    """Corpus BLEU-1 (`metrics.text.bleu`'s definition, brevity penalty included) over each resample."""

    def statistic(indices: np.ndarray) -> np.ndarray:
        precision = parts["matches"][indices].sum(-1) / parts["totals"][indices].sum(-1)
        hyp, ref = parts["hyp"][indices].sum(-1), parts["ref"][indices].sum(-1)
        with np.errstate(divide="ignore", over="ignore"):
            penalty = np.where(hyp > ref, 1.0, np.exp(1.0 - ref / np.maximum(hyp, 1e-12)))
        return np.where(hyp > 0, precision * penalty, 0.0)

    return statistic


def distinct_statistic(texts: Sequence[str], n: int) -> intervals.Statistic:
    """Corpus Distinct-n over each resample, without the bias of recounting duplicated draws."""
    grams = []
    for text in texts:
        tokens = tokenize(text)
        grams.append([tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)])
    numerators, denominators = intervals.distinct_share_parts(grams)
    return intervals.ratio_statistic(numerators, denominators)


def distinct_outputs_statistic(texts: Sequence[str]) -> intervals.Statistic:
    """The number of different texts, as a sum of per-example parts (resampled without bias)."""
    numerators, _ = intervals.distinct_share_parts([[" ".join(text.split())] for text in texts])
    return lambda indices: numerators[indices].sum(-1)


def text_statistics(texts: Sequence[str], references: Sequence[str]) -> dict[str, intervals.Statistic]:
    """BLEU-1, Distinct-2 and distinct outputs of one system's texts as resampleable statistics."""
    return {
        "bleu_1": bleu1_statistic(bleu1_parts(texts, references)),
        "distinct_2": distinct_statistic(texts, 2),
        "distinct_outputs": distinct_outputs_statistic(texts),
    }


def interval_dict(interval: intervals.Interval) -> dict:
    """An interval as JSON (NaN -> None)."""

    def clean(value):
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    payload = interval.to_dict()
    payload["estimate"] = clean(payload["estimate"])
    if payload.get("ci95") is not None:
        payload["ci95"] = [clean(value) for value in payload["ci95"]]
    return payload


__all__ = [
    "bleu1_parts",
    "bleu1_statistic",
    "distinct_outputs_statistic",
    "distinct_statistic",
    "interval_dict",
    "text_statistics",
]
