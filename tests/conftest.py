"""Test-wide settings: no hidden Hub calls, seeded randomness, quiet progress bars."""

import os
import tempfile

# Set before any HF library is imported, so a hidden download fails at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A fresh datasets cache per test session: pytest recycles tmp folder paths across runs, and a
# cache keyed by path could otherwise hand back an earlier run's rows.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="gest-showcases-hf-cache-")
