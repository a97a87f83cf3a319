"""Features: CLIP/backbone feature cache, the explanation-distillation classifier, visual diversity.

Names load on first use (PEP 562), so `import gest_showcases.features.loading` stays as light as
torch + PIL for benchmarks on bare machines.
"""

from gest_showcases._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
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
        "ConvImageTowerConfig": "configuration_conv_tower",
        "ConvImageTower": "modeling_conv_tower",
        "load_clip_model": "clip",
        "ExplanationFilter": "distill",
        "ExplanationClassifierTrainer": "distill",
        "train_explanation_classifier": "distill",
        "roc_auc": "distill",
        "best_f1_threshold": "distill",
        "visual_diversity": "diversity",
        "save_tiny_clip": "tiny",
    },
)
