"""Configuration of the stand-in CLIP's convolutional image tower ([`ConvImageTower`])."""

# No `from __future__ import annotations`: `@strict` checks each field against its annotation, which must be a type
# at run time (as a string it is skipped).
from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class ConvImageTowerConfig(PreTrainedConfig):
    r"""
    Configuration of [`ConvImageTower`]: a small convolutional image encoder, the stand-in CLIP's image tower with
    `gest-showcases train-clip --image_tower cnn` (in a `VisionTextDualEncoderModel` beside CLIP's text tower).

    Each stage is a 3x3 convolution (no bias), batch normalisation, ReLU and a 2x2 max-pool, so `len(widths)` stages
    halve the side that many times (32 px -> 2 x 2 with four); the pooled output is the global average of the last
    stage's feature map.

    Args:
        widths (`list[int]`, *optional*, defaults to `[16, 32, 64, 128]`):
            Output channels of each stage.
        num_channels (`int`, *optional*, defaults to 3):
            Channels of the input images.
        image_size (`int`, *optional*, defaults to 32):
            Side of the square input images (recorded: the convolutions take any size, the image processor sets it).
    """

    model_type = "gest_conv_image_tower"

    widths: list[int] | tuple[int, ...] = (16, 32, 64, 128)
    num_channels: int = 3
    image_size: int = 32

    def __post_init__(self, **kwargs):
        self.widths = list(self.widths)
        if not self.widths or any(not isinstance(width, int) or width < 1 for width in self.widths):
            raise ValueError(f"widths must be a non-empty list of positive integers, got {self.widths}")
        for name in ("num_channels", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        super().__post_init__(**kwargs)

    @property
    def hidden_size(self) -> int:
        """Size of the pooled output (the last stage's channels): what `VisionTextDualEncoderModel` projects."""
        return self.widths[-1]


# `save_pretrained` ships this file for `AutoConfig.from_pretrained(repo, trust_remote_code=True)`.
ConvImageTowerConfig.register_for_auto_class()

__all__ = ["ConvImageTowerConfig"]
