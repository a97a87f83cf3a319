"""The stand-in CLIP's convolutional image tower (`gest-showcases train-clip --image_tower cnn`).

Why a CNN: trained from scratch on a few thousand 32 px photos, the ViT tower's features told Gest-Synth's dishes
apart at 30-41% (nearest centroid, test photos) and this tower's at 60-75% (docs/experiments.md, issue 12 item 5):
convolutions bring the locality and translation invariance a small ViT has to learn from data it does not have.

It is a vision model as transformers' `VisionTextDualEncoderModel` expects one: `forward(pixel_values)` returns a
`BaseModelOutputWithPooling` whose `pooler_output` [B, C] the dual encoder projects, and `config.hidden_size` is C.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .configuration_conv_tower import ConvImageTowerConfig


class ConvImageTower(PreTrainedModel):
    """Stages of conv3x3 - batch norm - ReLU - max-pool 2x2, then a global average pool ([`ConvImageTowerConfig`])."""

    config_class = ConvImageTowerConfig
    config: ConvImageTowerConfig
    base_model_prefix = "conv_image_tower"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    def __init__(self, config: ConvImageTowerConfig):
        super().__init__(config)
        layers: list[nn.Module] = []
        channels = config.num_channels
        for width in config.widths:
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.stages = nn.Sequential(*layers)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's own defaults (what the measured tower used), through `transformers.initialization`, which leaves
        # the tensors `from_pretrained` loaded as they are.
        if isinstance(module, nn.Conv2d):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple:
        """`pixel_values` [B, 3, H, W] -> `last_hidden_state` [B, C, H / 2^n, W / 2^n], `pooler_output` [B, C].

        `output_hidden_states` adds every stage's output; other keyword arguments (the dual encoder passes
        `output_attentions`) are accepted and ignored: there is no attention.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden = pixel_values.to(self.stages[0].weight.dtype)  # a bf16 tower reads the processor's fp32 pixels
        stages: list[torch.Tensor] = []
        for start in range(0, len(self.stages), 4):
            hidden = self.stages[start : start + 4](hidden)
            stages.append(hidden)
        pooled = hidden.mean(dim=(2, 3))
        hidden_states = tuple(stages) if output_hidden_states else None
        if not return_dict:
            return tuple(value for value in (hidden, pooled, hidden_states) if value is not None)
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled, hidden_states=hidden_states)


# `save_pretrained` ships this file for `AutoModel.from_pretrained(folder, trust_remote_code=True)` without the
# package, as the config's file is shipped.
ConvImageTower.register_for_auto_class("AutoModel")

__all__ = ["ConvImageTower"]
