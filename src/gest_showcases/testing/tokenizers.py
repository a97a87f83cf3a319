"""Byte-level BPE tokenizers learnt on a few texts: GPT-2's tokenizer scheme without a download.

The tests' tiny generators, the demo's stand-in GPT-2 and the tiny GGUF Llama all read tokens of
`byte_level_bpe`: byte-level pre-tokenisation (so no character is unknown), merges learnt on the texts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2TokenizerFast

GPT2_SPECIAL_TOKEN = "<|endoftext|>"


def byte_level_bpe(
    texts: Iterable[str],
    vocab_size: int,
    special_tokens: Sequence[str] = (GPT2_SPECIAL_TOKEN,),
    min_frequency: int = 0,
    show_progress: bool = False,
) -> Tokenizer:
    """A byte-level BPE `tokenizers.Tokenizer` of at most `vocab_size` tokens learnt on `texts`.

    Args:
        texts (`Iterable[str]`): the training texts.
        vocab_size (`int`): the most tokens: the special tokens, the 256 bytes, then the merges.
        special_tokens (`Sequence[str]`, *optional*, defaults to `("<|endoftext|>",)`): the first ids.
        min_frequency (`int`, *optional*, defaults to 0): the fewest occurrences of a pair it merges.
        show_progress (`bool`, *optional*, defaults to `False`): the trainer's progress bar.
    """
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return bpe


def gpt2_tokenizer(
    texts: Iterable[str], vocab_size: int = 320, min_frequency: int = 0, show_progress: bool = False
) -> GPT2TokenizerFast:
    """A `GPT2TokenizerFast` learnt on `texts` (`byte_level_bpe`), with GPT-2's one special token
    `<|endoftext|>` as BOS, EOS and unknown token."""
    bpe = byte_level_bpe(texts, vocab_size, min_frequency=min_frequency, show_progress=show_progress)
    return GPT2TokenizerFast(
        tokenizer_object=bpe,
        bos_token=GPT2_SPECIAL_TOKEN,
        eos_token=GPT2_SPECIAL_TOKEN,
        unk_token=GPT2_SPECIAL_TOKEN,
    )
