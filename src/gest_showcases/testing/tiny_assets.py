"""Tiny checkpoints that fit together: a PC2L generator with a byte-level BPE GPT-2 tokenizer learnt here, a DPP
selector and a CLIP (`gest_showcases.features.tiny`), all random, all saved with `save_pretrained` so the tests, the
demo and the benchmarks run the real loading code paths. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GPT2TokenizerFast

from gest_showcases.features.tiny import save_tiny_clip
from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig

from .tokenizers import gpt2_tokenizer

CLIP_DIM = 16  # tiny CLIP projection: selector inputs and review features
VISION_DIM = 32  # tiny CLIP vision hidden size: the generator's "vision" image features
CORPUS = [
    "The ramen broth was rich and the noodles chewy.",
    "Crispy fries and a juicy burger.",
    "Fresh sushi, the tuna roll was great.",
    "Thin crust pizza with basil.",
] * 4


def build_gpt2_tokenizer(texts: list[str]) -> GPT2TokenizerFast:
    """A byte-level BPE tokenizer with GPT-2's special token (at most 400 tokens), trained on `texts`."""
    return gpt2_tokenizer(texts, vocab_size=400)


def save_tiny_generator(
    path: str | Path, texts: list[str] = CORPUS, input_mode: str = "img+text", seed: int = 0
) -> str:
    """A random 2-layer PC2L reading `input_mode`, saved with a tokenizer learnt on `texts`; returns `path`."""
    tokenizer = build_gpt2_tokenizer(texts)
    eos = tokenizer.eos_token_id
    decoder = {
        "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64, "vocab_size": len(tokenizer),
        "bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos,
    }  # fmt: skip
    config = PC2LConfig(
        decoder=decoder, image_feature_dim=VISION_DIM, review_feature_dim=CLIP_DIM, encoder_layers=1,
        encoder_attention_heads=2, encoder_ffn_dim=64, projection_dim=8, input_mode=input_mode,
        image_contrastive="none" if input_mode == "text" else "ccl",
        review_contrastive="none" if input_mode == "img" else "pcl",
    )  # fmt: skip
    torch.manual_seed(seed)
    model = PC2LForConditionalGeneration(config)
    # Zero (tied) embeddings give logit 0 while some random word scores higher: the random decoder neither stops
    # at once (end of text) nor writes bytes that are no text (pieces of UTF-8 characters), so its output reads.
    unreadable = [
        index
        for index in range(len(tokenizer))
        if index == eos
        or not tokenizer.decode([index]).strip().isascii()
        or not tokenizer.decode([index]).strip().isalpha()
    ]
    model.decoder.transformer.wte.weight.data[unreadable] = 0.0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def save_tiny_selector(path: str | Path, seed: int = 0) -> str:
    """A random DPP selector over `CLIP_DIM` text and image features; returns `path`."""
    torch.manual_seed(seed)
    config = DPPSelectorConfig(
        text_dim=CLIP_DIM, image_dim=CLIP_DIM, user_hidden_sizes=[16], image_hidden_sizes=[16], embed_dim=8
    )
    DPPImageSelector(config).save_pretrained(path)
    return str(path)


def save_tiny_checkpoints(root: Path, texts: list[str] = CORPUS) -> dict[str, str]:
    """{"clip", "selector", "generator"}: folders under `root` of tiny checkpoints that fit together."""
    root = Path(root)
    return {
        "clip": str(save_tiny_clip(root / "clip", projection_dim=CLIP_DIM)),
        "selector": save_tiny_selector(root / "selector"),
        "generator": save_tiny_generator(root / "generator", texts),
    }
