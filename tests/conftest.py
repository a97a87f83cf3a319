"""Test-wide settings: no hidden Hub calls, seeded randomness, quiet progress bars."""

import atexit
import os
import shutil
import tempfile

# Set before any HF library is imported, so a hidden download fails at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _session_folder(prefix: str) -> str:
    """A fresh folder for this test session, removed when it ends."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


# A fresh datasets cache per test session: pytest recycles tmp folder paths across runs, and a
# cache keyed by path could otherwise hand back an earlier run's rows.
os.environ["HF_DATASETS_CACHE"] = _session_folder("gest-showcases-hf-cache-")
# A fresh HF home and compiler cache too, inherited by the commands tests start: evaluate's and transformers' module
# copies, an accelerate config and torch.compile's kernels stay out of the user's home and the shared /tmp, where a
# config of the user's or another job's files would change what a test runs.
os.environ["HF_HOME"] = _session_folder("gest-showcases-hf-home-")
os.environ["TORCHINDUCTOR_CACHE_DIR"] = _session_folder("gest-showcases-inductor-")

import pytest  # noqa: E402  (after the settings above, which must precede any HF import)
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """The demo, the experiment and train-clip set torch's thread count for their run, and tests run them
    in-process: each later test starts with the count it would have had alone."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture
def treebank_splits(monkeypatch) -> list[str]:
    """The texts the metrics' Treebank tokenizer splits during the test, in order (lower-cased, as it gets them)."""
    from gest_showcases.metrics import text

    splits, real = [], text._treebank()

    class Counting:
        def tokenize(self, text):
            splits.append(text)
            return real.tokenize(text)

    monkeypatch.setattr(text, "_treebank", Counting)
    return splits
