"""The explanation-distillation classifier Φ (paper Section 3.3), also the scorer of CLIP-Align.

A CLIP sentence embedding and a CLIP image embedding are concatenated and fed to one fully connected
layer; a sigmoid gives the probability that the sentence describes the image. With
`config.interaction` the layer also reads their element-wise product (see
[`ExplanationClassifierConfig`]), the only way one linear layer can match a sentence to an image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_explanation import ExplanationClassifierConfig


@dataclass
class ExplanationClassifierOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            Mean binary cross-entropy.
        logits (`torch.FloatTensor` of shape `(batch_size,)`):
            Scores before the sigmoid.
        probabilities (`torch.FloatTensor` of shape `(batch_size,)`):
            Probability that each sentence describes its image.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None


class ExplanationClassifier(PreTrainedModel):
    """Linear classifier over `[sentence embedding ; image embedding (; their product)]`, sigmoid output."""

    config_class = ExplanationClassifierConfig
    base_model_prefix = "explanation_classifier"
    main_input_name = "text_embeds"

    def __init__(self, config: ExplanationClassifierConfig):
        super().__init__(config)
        product_dim = config.text_dim if config.interaction else 0
        self.classifier = torch.nn.Linear(config.text_dim + config.image_dim + product_dim, 1)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=0.02)
            torch.nn.init.zeros_(module.bias)

    def forward(
        self,
        text_embeds: torch.Tensor,
        image_embeds: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> ExplanationClassifierOutput:
        r"""
        Args:
            text_embeds (`torch.FloatTensor` of shape `(batch_size, text_dim)`): CLIP sentence embeddings.
            image_embeds (`torch.FloatTensor` of shape `(batch_size, image_dim)`): CLIP image embeddings.
            labels (`torch.FloatTensor` of shape `(batch_size,)`, *optional*): 1 if the sentence describes the image.
        """
        parts = [text_embeds, image_embeds] + (
            [text_embeds * image_embeds] if self.config.interaction else []
        )
        features = torch.cat(parts, dim=-1).to(self.classifier.weight.dtype)
        logits = self.classifier(features).squeeze(-1)  # [B, 1] -> [B]
        loss = None
        if labels is not None:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return ExplanationClassifierOutput(loss=loss, logits=logits, probabilities=torch.sigmoid(logits))

    @torch.inference_mode()
    def pair_probabilities(self, text_embeds: torch.Tensor, image_embeds: torch.Tensor) -> torch.Tensor:
        """Every sentence against every image: `[S, text_dim]` x `[I, image_dim]` -> probabilities `[S, I]`.

        The layer is linear in the concatenation, so the score splits into a sentence part, an image
        part and (with `interaction`) a bilinear part: `w_t . t + w_i . v + (w_x * t) . v + b`, computed
        as an outer sum plus one matrix product instead of S * I concatenations.
        """
        weight = self.classifier.weight[0]
        text_embeds, image_embeds = text_embeds.to(weight.dtype), image_embeds.to(weight.dtype)
        text_dim, image_end = self.config.text_dim, self.config.text_dim + self.config.image_dim
        text_part = text_embeds @ weight[:text_dim]  # [S]
        image_part = image_embeds @ weight[text_dim:image_end]  # [I]
        logits = text_part[:, None] + image_part[None, :] + self.classifier.bias  # [S, I]
        if self.config.interaction:
            logits = logits + (text_embeds * weight[image_end:]) @ image_embeds.T  # [S, D] @ [D, I]
        return torch.sigmoid(logits)


# `register_for_auto_class` makes `save_pretrained`/`push_to_hub` ship these two files, so that
# `AutoModel.from_pretrained(repo, trust_remote_code=True)` works without the package; with it,
# `import gest_showcases` registers the classes (`gest_showcases._auto_registration`).
ExplanationClassifierConfig.register_for_auto_class()
ExplanationClassifier.register_for_auto_class("AutoModel")
