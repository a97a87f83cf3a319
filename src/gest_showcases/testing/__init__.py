"""The package's own test helpers (as `transformers.testing_utils`): tiny assets built here, nothing downloaded."""

from .tokenizers import GPT2_SPECIAL_TOKEN, byte_level_bpe, gpt2_tokenizer

__all__ = ["GPT2_SPECIAL_TOKEN", "byte_level_bpe", "gpt2_tokenizer"]
