"""The package's own test helpers (as `transformers.testing_utils`): tiny assets built here, nothing downloaded.

`tokenizers` (GPT-2's BPE scheme learnt on a few texts), `tiny_assets` (a tiny CLIP, DPP selector and PC2L saved
like real checkpoints), `images` (random JPEGs, JPEGs cut short) and `built_folder` (a dataset folder in the
builder's layout). Names load on first use (PEP 562): a caller of the tokenizers alone does not import the models.
"""

from gest_showcases._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "GPT2_SPECIAL_TOKEN": "tokenizers",
        "byte_level_bpe": "tokenizers",
        "gpt2_tokenizer": "tokenizers",
        "CLIP_DIM": "tiny_assets",
        "VISION_DIM": "tiny_assets",
        "CORPUS": "tiny_assets",
        "build_gpt2_tokenizer": "tiny_assets",
        "save_tiny_clip": "tiny_assets",
        "save_tiny_selector": "tiny_assets",
        "save_tiny_generator": "tiny_assets",
        "save_tiny_checkpoints": "tiny_assets",
        "jpeg_bytes": "images",
        "write_jpegs": "images",
        "write_truncated_jpeg": "images",
        "write_built_folder": "built_folder",
        "write_built_dataset": "built_folder",
        "s1_rows": "built_folder",
        "rewrite_s1_rows": "built_folder",
    },
)
