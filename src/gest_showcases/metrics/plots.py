"""The paper's Figure 6 as PNG bytes (`write_evaluation` writes them with its tables): grouped bars, one colour per
system.

matplotlib is imported when a figure is drawn: it is optional, and slow to import.
"""

from __future__ import annotations

import io

import numpy as np

from gest_showcases.metrics.coverage import LENGTH_BINS, POS_GROUPS


def _grouped_bars(series: dict[str, list[float]], ticks: list[str], xlabel: str, ylabel: str, title: str) -> bytes:
    """One bar group per tick, one colour per series: the PNG's bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    try:
        for i, (name, values) in enumerate(series.items()):
            ax.bar(np.arange(len(ticks)) + i * width, values, width, label=name)
        ax.set_xticks(np.arange(len(ticks)) + 0.4 - width / 2, ticks)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, dpi=120, format="png")
        return png.getvalue()
    finally:
        plt.close(fig)


def length_distribution_png(distributions: dict[str, dict]) -> bytes:
    """Figure 6 (a): share of texts per length bin, one colour per system (GT included), as PNG bytes."""
    ticks = [f"{lo}-{hi}" for lo, hi in zip(LENGTH_BINS[:-1], LENGTH_BINS[1:], strict=True)]
    series = {name: dist["shares"] for name, dist in distributions.items()}
    return _grouped_bars(series, ticks, "length (words)", "share of texts", "(a) length distribution")


def pos_coverage_png(coverage: dict[str, dict[str, float]]) -> bytes:
    """Figure 6 (b): coverage of ground-truth nouns, adjectives and adverbs, one colour per system, as PNG bytes."""
    series = {name: [values[g] for g in POS_GROUPS] for name, values in coverage.items()}
    return _grouped_bars(
        series, ["Noun", "ADJ", "ADV"], "part of speech", "coverage of ground-truth words", "(b) keyword coverage"
    )
