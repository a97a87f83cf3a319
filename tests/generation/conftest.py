"""Fixtures of the generation tests; the helpers live in pc2l_fixtures.py."""

import pytest
from pc2l_fixtures import build_tokenizer
from transformers import GPT2TokenizerFast


@pytest.fixture(scope="session")
def tokenizer() -> GPT2TokenizerFast:
    return build_tokenizer()
