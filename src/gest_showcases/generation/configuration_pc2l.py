"""PC2L model configuration (Section 4.2-4.3 of the paper)."""

import math

from huggingface_hub.dataclasses import strict
from transformers import GPT2Config, PreTrainedConfig

INPUT_MODES = ("img", "text", "img+text")
IMAGE_CONTRASTIVE_LOSSES = ("none", "cl", "ccl")
REVIEW_CONTRASTIVE_LOSSES = ("none", "cl", "pcl")
CONTRASTIVE_TARGETS = ("decoder", "text")


@strict
class PC2LConfig(PreTrainedConfig):
    r"""
    Configuration of [`PC2LForConditionalGeneration`]: a multimodal encoder over image and history-review features
    and a GPT-2 decoder with cross-attention to it, trained with the PC2L losses.

    The encoder width is the decoder width (the paper uses 768 for both), so the encoder states feed GPT-2's
    cross-attention directly.

    Args:
        decoder (`dict` or [`GPT2Config`], *optional*):
            The GPT-2 decoder configuration; `add_cross_attention` is always `True`.
        image_feature_dim (`int`, *optional*, defaults to 512):
            Dimension of the cached image features (CLIP ViT-B/32 image embeddings: 512).
        review_feature_dim (`int`, *optional*, defaults to 512):
            Dimension of the cached history-review features (CLIP text embeddings: 512).
        encoder_layers (`int`, *optional*, defaults to 3):
            Number of self-attention layers of the multimodal encoder.
        encoder_attention_heads (`int`, *optional*, defaults to 12):
            Attention heads of each encoder layer.
        encoder_ffn_dim (`int`, *optional*, defaults to 3072):
            Width of the encoder feed-forward layers.
        encoder_dropout (`float`, *optional*, defaults to 0.1):
            Dropout of the encoder (attention, residual and feature projections).
        max_images (`int`, *optional*, defaults to 5):
            Most images per example; the collator keeps the first `max_images`.
        max_reviews (`int`, *optional*, defaults to 10):
            Most history reviews per example.
        input_mode (`str`, *optional*, defaults to `"img+text"`):
            Which inputs condition the decoder: `"img"`, `"text"` (history reviews) or `"img+text"`.
        image_contrastive (`str`, *optional*, defaults to `"ccl"`):
            Image-to-target contrastive loss: `"none"`, `"cl"` (InfoNCE, eq. 7) or `"ccl"` (InfoNCE with an
            entity-swapped hard negative, eq. 8). Weighted by `lambda1`.
        review_contrastive (`str`, *optional*, defaults to `"pcl"`):
            Review-to-target contrastive loss: `"none"`, `"cl"` (InfoNCE, eq. 7) or `"pcl"` (personality-weighted
            InfoNCE, eq. 9-10). Weighted by `lambda2`.
        lambda1 (`float`, *optional*, defaults to 0.2):
            Weight of the image contrastive loss in eq. 11.
        lambda2 (`float`, *optional*, defaults to 0.2):
            Weight of the review contrastive loss in eq. 11.
        pcl_alpha (`float`, *optional*, defaults to e):
            Base `alpha > 1` of the PCL negative weights `alpha ** (1 - sim(R_i, R_j))` (eq. 10).
        contrastive_temperature (`float`, *optional*, defaults to 0.1):
            InfoNCE temperature `tau` (not called `temperature`, which `generate` would read as a sampling
            temperature).
        projection_dim (`int`, *optional*, defaults to 256):
            Output width of the projection heads `phi_V`, `phi_R`, `phi_Y` (eq. 6).
        contrastive_target (`str`, *optional*, defaults to `"decoder"`):
            Which hidden states `H^Y` of the target the head `phi_Y` pools (eq. 6). `"decoder"` (the paper): the
            last layer of the decoder pass that computes the LM loss, which cross-attends to the very encoder
            states `phi_V` and `phi_R` pool, so the contrastive losses can be met by copying the inputs into
            the decoder states instead of by relating the text to them. `"text"` (a documented deviation, see
            docs/experiments.md): a second decoder pass over the target (and its hard negative) without
            cross-attention, so `H^Y` depends on the text alone, as the CLIP-style text tower of the loss.

    Example:

    ```python
    >>> from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration

    >>> config = PC2LConfig(decoder={"n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 300})
    >>> model = PC2LForConditionalGeneration(config)
    ```"""

    model_type = "pc2l"
    # Declared with `sub_configs` and built in `__post_init__` rather than with `sub_configs_defaults` /
    # `SubConfigSpec`, which recent transformers 5 releases have and earlier ones (5.17) lack: the config, and a
    # checkpoint's shipped code, then work on both.
    sub_configs = {"decoder": GPT2Config}

    decoder: dict | GPT2Config | None = None
    image_feature_dim: int = 512
    review_feature_dim: int = 512
    encoder_layers: int = 3
    encoder_attention_heads: int = 12
    encoder_ffn_dim: int = 3072
    encoder_dropout: float | int = 0.1
    max_images: int = 5
    max_reviews: int = 10
    input_mode: str = "img+text"
    image_contrastive: str = "ccl"
    review_contrastive: str = "pcl"
    lambda1: float | int = 0.2
    lambda2: float | int = 0.2
    pcl_alpha: float | int = math.e
    contrastive_temperature: float | int = 0.1
    projection_dim: int = 256
    contrastive_target: str = "decoder"

    def __post_init__(self, **kwargs):
        if self.decoder is None:
            self.decoder = GPT2Config()
        elif isinstance(self.decoder, dict):
            self.decoder = GPT2Config(**self.decoder)
        # A decoder given as a dict or a pretrained GPT-2 config must still attend to the encoder.
        self.decoder.add_cross_attention = True
        super().__post_init__(**kwargs)
        if self.input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {self.input_mode!r}")
        if self.image_contrastive not in IMAGE_CONTRASTIVE_LOSSES:
            raise ValueError(
                f"image_contrastive must be one of {IMAGE_CONTRASTIVE_LOSSES}, got {self.image_contrastive!r}"
            )
        if self.review_contrastive not in REVIEW_CONTRASTIVE_LOSSES:
            raise ValueError(
                f"review_contrastive must be one of {REVIEW_CONTRASTIVE_LOSSES}, got {self.review_contrastive!r}"
            )
        if self.contrastive_target not in CONTRASTIVE_TARGETS:
            raise ValueError(
                f"contrastive_target must be one of {CONTRASTIVE_TARGETS}, got {self.contrastive_target!r}"
            )
        if self.image_contrastive != "none" and not self.uses_images:
            raise ValueError(f"image_contrastive={self.image_contrastive!r} needs images in input_mode")
        if self.review_contrastive != "none" and not self.uses_reviews:
            raise ValueError(f"review_contrastive={self.review_contrastive!r} needs reviews in input_mode")
        if self.pcl_alpha <= 1:
            raise ValueError(f"pcl_alpha must be > 1 (paper: e), got {self.pcl_alpha}")
        if self.contrastive_temperature <= 0:
            raise ValueError(f"contrastive_temperature must be > 0, got {self.contrastive_temperature}")
        if self.decoder.n_embd % self.encoder_attention_heads:
            raise ValueError(
                f"the encoder width (decoder n_embd={self.decoder.n_embd}) must be divisible by "
                f"encoder_attention_heads={self.encoder_attention_heads}"
            )

    @property
    def uses_images(self) -> bool:
        return self.input_mode in ("img", "img+text")

    @property
    def uses_reviews(self) -> bool:
        return self.input_mode in ("text", "img+text")


__all__ = ["PC2LConfig"]
