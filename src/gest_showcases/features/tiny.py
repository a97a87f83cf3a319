"""A tiny randomly initialised CLIP checkpoint, saved like a real one, for tests and offline demos.

No CLIP weights can be downloaded here, so tests exercise the real `from_pretrained` code paths on a
model built from `CLIPConfig` (hidden 32, 2 layers, 32x32 images in 8x8 patches) with a
character-level CLIP tokenizer: every byte is a token (with and without the `</w>` word-end suffix),
so tokenisation, padding and 77-token truncation behave as with the real BPE vocabulary. With
`image_tower="cnn"` the image tower is the stand-in CLIP's CNN ([`ConvImageTower`], 8 and 16 channels) in a
`VisionTextDualEncoderModel`, as `train-clip --image_tower cnn` saves it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers.pre_tokenizers import ByteLevel
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPTextConfig,
    CLIPTokenizer,
    VisionTextDualEncoderConfig,
    VisionTextDualEncoderModel,
)

from .clip_standin import BOS, EOS, stand_in_image_processor
from .configuration_conv_tower import ConvImageTowerConfig


def tiny_clip_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer whose vocabulary is the 256 byte symbols, plain and word-final, and no merges."""
    vocab = {BOS: 0, EOS: 1}
    for symbol in sorted(ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    for symbol in sorted(ByteLevel.alphabet()):
        vocab[symbol + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[])


def save_tiny_clip(
    path: str | Path, projection_dim: int = 16, image_size: int = 32, seed: int = 0, image_tower: str = "vit"
) -> Path:
    """Build a tiny CLIP (model, tokenizer, image processor) and `save_pretrained` it into `path`; `image_tower`
    `"vit"` (a `CLIPModel`) or `"cnn"` (a `VisionTextDualEncoderModel` with a [`ConvImageTower`])."""
    tokenizer = tiny_clip_tokenizer()
    text_config = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": 77,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision_config = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": image_size,
        "patch_size": 8,
    }
    torch.manual_seed(seed)
    if image_tower == "cnn":
        config = VisionTextDualEncoderConfig.from_vision_text_configs(
            ConvImageTowerConfig(widths=[8, 16], image_size=image_size),
            CLIPTextConfig(**text_config),
            projection_dim=projection_dim,
        )
        model = VisionTextDualEncoderModel(config).eval()
    else:
        config = CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=projection_dim)
        model = CLIPModel(config).eval()
    processor = stand_in_image_processor(image_size)
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    processor.save_pretrained(path)
    return path
