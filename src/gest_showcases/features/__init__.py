"""Features: CLIP/backbone feature cache, the explanation-distillation classifier, visual diversity.

Names load on first use (PEP 562), so `import gest_showcases.features.loading` stays as light as
torch + PIL for benchmarks on bare machines.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FeatureTable": "cache",
    "FeatureCache": "cache",
    "CacheMismatchError": "cache",
    "CorruptCacheError": "cache",
    "load_features": "cache",
    "checkpoint_fingerprint": "cache",
    "ImagePreprocessing": "loading",
    "iterate_pixel_batches": "loading",
    "DEFAULT_CLIP": "clip",
    "ImageFeatureModel": "clip",
    "TextFeatureModel": "clip",
    "ExtractionReport": "clip",
    "load_clip": "clip",
    "load_vision_backbone": "clip",
    "extract_image_features": "clip",
    "extract_text_features": "clip",
    "ExplanationClassifierConfig": "configuration_explanation",
    "ExplanationClassifier": "modeling_explanation",
    "ExplanationClassifierOutput": "modeling_explanation",
    "ExplanationFilter": "distill",
    "train_explanation_classifier": "distill",
    "roc_auc": "distill",
    "best_f1_threshold": "distill",
    "visual_diversity": "diversity",
    "save_tiny_clip": "tiny",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
