"""The stand-in CLIP: a small `CLIPModel` and a tokenizer learnt on the world's reviews.

`gest-showcases train-clip` (`features.clip_training`) builds both with the functions here, trains them from
scratch and saves them like any CLIP checkpoint, in place of `openai/clip-vit-base-patch32`.

- Tokenizer: a CLIP tokenizer (byte-level BPE with `</w>` word ends, lower-cased) whose merges are
  learnt on the train-split review texts with `tokenizers`' BPE trainer, so words are a token or two
  (a character-level vocabulary would spend CLIP's 77 tokens on one sentence).
- Model (`image_tower`): `CLIPModel` from `CLIPConfig` (`"vit"`): a ViT over `image_size` images in `patch_size`
  patches and a causal text transformer, both `hidden_size` wide; or (`"cnn"`) transformers'
  `VisionTextDualEncoderModel` joining the package's small CNN ([`ConvImageTower`]) to the same CLIP text
  transformer. Both have CLIP's attributes (`vision_model`, `visual_projection`, `text_model`, `text_projection`,
  `logit_scale`), forward and loss, and load with `features.clip.load_clip_model`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from tokenizers.pre_tokenizers import ByteLevel
from transformers import (
    BaseImageProcessor,
    CLIPConfig,
    CLIPModel,
    CLIPTextConfig,
    CLIPTokenizer,
    VisionTextDualEncoderConfig,
    VisionTextDualEncoderModel,
)
from transformers.utils import is_torchvision_available

from .clip import CLIP_MAX_TOKENS
from .configuration_conv_tower import ConvImageTowerConfig

# The stand-in CLIP's image towers (`train-clip --image_tower`).
IMAGE_TOWERS = ("vit", "cnn")

BOS, EOS = "<|startoftext|>", "<|endoftext|>"

# CLIP's own pre-tokenisation: contractions, letter runs, single digits, punctuation runs.
_CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+"""


def stand_in_image_processor(image_size: int) -> BaseImageProcessor:
    """CLIP's image processor resizing and cropping to `image_size`, saved as `CLIPImageProcessor` either way.

    Without torchvision, transformers' `CLIPImageProcessor` name resolves to `CLIPImageProcessorPil` and warns on
    stderr the first time it is looked up; looking it up at import put that warning before every command's one-line
    error. Naming the PIL class here gives the same processor without the warning.
    """
    if is_torchvision_available():
        from transformers import CLIPImageProcessor as processor_class
    else:
        from transformers import CLIPImageProcessorPil as processor_class
    return processor_class(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )


def _word_final_symbols(bpe: Tokenizer, texts: Sequence[str]) -> list[str]:
    """The word-final symbols (`x</w>`) the BPE trainer makes from `texts`, sorted.

    `tokenizers`' BPE trainer (0.23) numbers the suffixed symbols as it meets them in a hash map of the
    words, whose order changes from call to call, and breaks ties between equally frequent merges by
    those numbers, so the same texts gave different merges and ids (huggingface/tokenizers#1794).
    Passed first as the trainer's special tokens, they get fixed ids and the training is reproducible.
    """
    words = (
        word
        for text in texts
        for word, _ in bpe.pre_tokenizer.pre_tokenize_str(bpe.normalizer.normalize_str(text))
    )
    return sorted({word[-1] + "</w>" for word in words})


def train_clip_tokenizer(texts: Sequence[str], vocab_size: int = 2000) -> CLIPTokenizer:
    """A `CLIPTokenizer` with BPE merges learnt on `texts` (CLIP's normalisation and pre-tokenisation).

    Every byte symbol is in the vocabulary both plain and word-final (`x</w>`), as in CLIP's, so any
    text tokenises. The same texts always give the same tokenizer (see `_word_final_symbols`).
    """
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS, *_word_final_symbols(bpe, texts)],
        initial_alphabet=ByteLevel.alphabet(),
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    learnt = json.loads(bpe.to_str())["model"]
    vocab: dict[str, int] = dict(learnt["vocab"])
    for symbol in sorted(ByteLevel.alphabet()):
        vocab.setdefault(symbol + "</w>", len(vocab))
    merges = [tuple(merge) for merge in learnt["merges"]]
    return CLIPTokenizer(vocab=vocab, merges=merges)


def build_clip(
    tokenizer: CLIPTokenizer,
    image_size: int,
    patch_size: int,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    projection_dim: int,
    image_tower: str = "vit",
    cnn_widths: Sequence[int] = (16, 32, 64, 128),
) -> CLIPModel | VisionTextDualEncoderModel:
    """A randomly initialised stand-in CLIP whose text tower reads `tokenizer`'s ids (module docstring).

    `image_tower="vit"` is a `CLIPModel` (`patch_size`, `num_layers`, `num_heads` and `hidden_size` shape both
    towers); `"cnn"` a `VisionTextDualEncoderModel` with a [`ConvImageTower`] of `cnn_widths` (`patch_size` unused).
    """
    if image_tower not in IMAGE_TOWERS:
        raise ValueError(f"image_tower must be one of {', '.join(IMAGE_TOWERS)}, not {image_tower!r}")
    tower = {
        "hidden_size": hidden_size,
        "intermediate_size": 4 * hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
    }
    text_config = {
        **tower,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": CLIP_MAX_TOKENS,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if image_tower == "cnn":
        config = VisionTextDualEncoderConfig.from_vision_text_configs(
            ConvImageTowerConfig(widths=list(cnn_widths), image_size=image_size),
            CLIPTextConfig(**text_config),
            projection_dim=projection_dim,
        )
        model = VisionTextDualEncoderModel(config)
        # The dual encoder draws its projections from N(0, 0.02); CLIPModel from N(0, in_features^-0.5), which keeps
        # the projected features' scale that of the towers' outputs. The stand-in keeps CLIP's recipe.
        with torch.no_grad():
            for projection in (model.visual_projection, model.text_projection):
                projection.weight.normal_(std=projection.in_features**-0.5)
        return model
    vision_config = {**tower, "image_size": image_size, "patch_size": patch_size}
    config = CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=projection_dim)
    return CLIPModel(config)
