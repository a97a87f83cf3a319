"""`gest_showcases.testing.gpt2_tokenizer`, the one GPT-2 BPE builder of the tests and the demo."""

import hashlib
import json

import pytest

from gest_showcases.testing import GPT2_SPECIAL_TOKEN, byte_level_bpe, gpt2_tokenizer
from tiny_assets import CORPUS


def _digest(tokenizer) -> str:
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    return hashlib.sha256(json.dumps([model["vocab"], model["merges"]]).encode()).hexdigest()


@pytest.mark.parametrize(
    "options, digest",
    [
        # The tests' tiny generators (tests/tiny_assets.py): at most 400 tokens.
        ({"vocab_size": 400}, "01e7bb39e1815eff9b80136f68ed0b13f30e5aae39c1b5f4e4cb33ffacaa58ef"),
        # The demo's stand-in GPT-2: merges of pairs seen at least twice.
        (
            {"vocab_size": 300, "min_frequency": 2},
            "310ec6e6f289960b0ee0d19a4fc124271104988f6809586120d1e4b0b0d815a5",
        ),
    ],
)
def test_vocab_and_merges_are_the_ones_the_earlier_builders_learnt(options, digest):
    # Oracle: the vocab and merges the three builders it replaced (tests/tiny_assets.py,
    # tests/generation/pc2l_fixtures.py, demo.train_gpt2_tokenizer) learnt on the same texts, recorded before
    # they went; every test's tiny model and the demo's tables are built on these tokens.
    assert _digest(gpt2_tokenizer(CORPUS, **options)) == digest


def test_gpt2_special_token_and_byte_level_round_trip():
    tokenizer = gpt2_tokenizer(CORPUS)
    assert tokenizer.convert_ids_to_tokens(0) == GPT2_SPECIAL_TOKEN
    assert tokenizer.bos_token == tokenizer.eos_token == tokenizer.unk_token == GPT2_SPECIAL_TOKEN
    assert len(tokenizer) <= 320
    text = "Crème brûlée 🍮 at 9pm, ¡olé!"  # characters the corpus never shows: bytes, never unknown
    assert tokenizer.unk_token_id not in tokenizer(text)["input_ids"]
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_min_frequency_leaves_pairs_seen_fewer_times_unmerged():
    texts = ["abab", "cd"]  # the pair "a b" twice (and "ab ab" once), "c d" once

    def merges(**options) -> list:
        return json.loads(byte_level_bpe(texts, 300, **options).to_str())["model"]["merges"]

    assert merges() == [["a", "b"], ["c", "d"], ["ab", "ab"]]
    assert merges(min_frequency=2) == [["a", "b"]]
