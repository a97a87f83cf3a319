"""Fixtures of the generation tests; the helpers live in pc2l_fixtures.py."""

import pytest
import torch
from pc2l_fixtures import FakeFeatureTable, build_tokenizer, write_built_dataset
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

import gest_showcases.features


@pytest.fixture(scope="session")
def tokenizer() -> GPT2TokenizerFast:
    return build_tokenizer()


@pytest.fixture
def command_assets(tmp_path, monkeypatch, tokenizer):
    """A tokenizer, a 1-layer GPT-2 and a built dataset under `tmp_path`; features read from `FakeFeatureTable`
    (`train_pc2l_argv` points train-pc2l at them)."""
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    torch.manual_seed(0)
    special = {"bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id}
    config = GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=64, vocab_size=len(tokenizer), **special)
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2")
    write_built_dataset(tmp_path / "dataset")
    monkeypatch.setattr(gest_showcases.features, "load_features", lambda root, kind: FakeFeatureTable())
    return tmp_path
