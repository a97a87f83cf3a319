"""Evaluation metrics: pure functions over tensors or strings, returning flat dicts with lowercase keys.

- `text`: BLEU-1/4, METEOR, NIST-4, Distinct-1/2 (checked against NLTK) and BERTScore.
- `grounding`: CLIP-Align (paper eq. 12) and CLIP-Score.
- `selection`: Precision@K, Recall@K, F1@K and div@K.
- `generations`: the generations file `gest-showcases evaluate` reads.
- `paper_tables`: the paper's Table 2 from a generations file, and the files `evaluate` writes.
- `coverage`, `plots`: the paper's Figure 6 (length distribution, keyword coverage by part of speech).

Four metrics also ship as `evaluate` modules loadable offline by path:
``evaluate.load(gest_showcases.metrics.module_path("clip_align"))`` (and ``"clip_score"``,
``"distinct"``, ``"div_at_k"``); ``modules/README.md`` says how to publish them on the Hub.
"""

from __future__ import annotations

from pathlib import Path

from gest_showcases._lazy import lazy_exports

MODULES_DIR = Path(__file__).parent / "modules"
EVALUATE_MODULES = ("clip_align", "clip_score", "distinct", "div_at_k", "synth_grounding")


def module_path(name: str) -> str:
    """Absolute path of the shipped `evaluate` module folder ``name``, for ``evaluate.load``."""
    if name not in EVALUATE_MODULES:
        raise ValueError(f"unknown evaluate module {name!r}; choose one of {', '.join(EVALUATE_MODULES)}")
    return str(MODULES_DIR / name)


# The metric functions load on first use: `text` imports numpy, `grounding` and `selection` torch.
__getattr__, __dir__, _lazy_names = lazy_exports(
    __name__,
    {
        "bert_score": "text",
        "bleu": "text",
        "distinct": "text",
        "meteor": "text",
        "nist": "text",
        "text_metrics": "text",
        "tokenize": "text",
        "tokens_memoised": "text",
        "clip_align": "grounding",
        "clip_score": "grounding",
        "clip_align_from_embeddings": "grounding",
        "clip_score_from_embeddings": "grounding",
        "precision_at_k": "selection",
        "recall_at_k": "selection",
        "f1_score": "selection",
        "diversity_at_k": "selection",
        "selection_metrics": "selection",
    },
)
__all__ = sorted(["EVALUATE_MODULES", "MODULES_DIR", "module_path", *_lazy_names])
