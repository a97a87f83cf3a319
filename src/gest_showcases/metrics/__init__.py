"""Evaluation metrics: pure functions over tensors or strings, returning flat dicts with lowercase keys.

- `text`: BLEU-1/4, METEOR, NIST-4, Distinct-1/2 (checked against NLTK) and BERTScore.
- `grounding`: CLIP-Align (paper eq. 12) and CLIP-Score.
- `selection`: Precision@K, Recall@K, F1@K and div@K.
- `report`: the paper's Table 2 and Figure 6 from a generations file.

Four metrics also ship as `evaluate` modules loadable offline by path:
``evaluate.load(gest_showcases.metrics.module_path("clip_align"))`` (and ``"clip_score"``,
``"distinct"``, ``"div_at_k"``); ``modules/README.md`` says how to publish them on the Hub.
"""

from __future__ import annotations

from pathlib import Path

from gest_showcases.metrics.text import bert_score, bleu, distinct, meteor, nist, text_metrics, tokenize

MODULES_DIR = Path(__file__).parent / "modules"
EVALUATE_MODULES = ("clip_align", "clip_score", "distinct", "div_at_k", "synth_grounding")


def module_path(name: str) -> str:
    """Absolute path of the shipped `evaluate` module folder ``name``, for ``evaluate.load``."""
    if name not in EVALUATE_MODULES:
        raise ValueError(f"unknown evaluate module {name!r}; choose one of {', '.join(EVALUATE_MODULES)}")
    return str(MODULES_DIR / name)


__all__ = [
    "EVALUATE_MODULES",
    "bert_score",
    "bleu",
    "distinct",
    "meteor",
    "module_path",
    "nist",
    "text_metrics",
    "tokenize",
]
