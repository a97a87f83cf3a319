"""The Gest data layer: published files -> canonical reviews -> the raw/s1/s2 dataset folder.

Only `records` (standard library) loads with the package, so that `gest_showcases.data.records`
imports on machines without `datasets` or `pyarrow`; the other names load on first use.
"""

from gest_showcases._lazy import lazy_exports

from .records import SPLITS, DropReport, Review, normalize_pic_id, split_sentences

_LAZY = {
    "BuildResult": "build",
    "ExplanationFilter": "build",
    "build_dataset": "build",
    "load_built": "build",
    "dataset_features": "build",
    "dataset_configs": "folder",
    "dataset_image_paths": "folder",
    "read_rows": "folder",
    "split_front_matter": "folder",
    "ImageStatus": "images",
    "check_images": "images",
    "image_path": "images",
    "probe_image": "images",
    "detect_format": "readers",
    "read_gest_filtered": "readers",
    "read_gest_raw": "readers",
    "read_google_local": "readers",
    "read_reviews": "readers",
    "dataset_stats": "stats",
    "format_markdown": "stats",
}

__getattr__, __dir__, _lazy_names = lazy_exports(__name__, _LAZY)
__all__ = ["SPLITS", "DropReport", "Review", "normalize_pic_id", "split_sentences", *_lazy_names]
