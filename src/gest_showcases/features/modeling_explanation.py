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
from transformers import initialization as init
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

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
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True` is passed
        or when `config.output_hidden_states=True`):
            One tensor of shape `(batch_size, text_dim + image_dim)` (`(batch_size, 2 * text_dim + image_dim)` with
            `interaction`): the features the linear layer scores, `[t ; v (; t * v)]`.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    probabilities: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class ExplanationClassifier(PreTrainedModel):
    """Linear classifier over `[sentence embedding ; image embedding (; their product)]`, sigmoid output."""

    config_class = ExplanationClassifierConfig
    config: ExplanationClassifierConfig
    base_model_prefix = "explanation_classifier"
    main_input_name = "text_embeds"

    def __init__(self, config: ExplanationClassifierConfig):
        super().__init__(config)
        product_dim = config.text_dim if config.interaction else 0
        self.classifier = torch.nn.Linear(config.text_dim + config.image_dim + product_dim, 1)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        # `transformers.initialization` leaves the tensors `from_pretrained` loaded as they are.
        if isinstance(module, torch.nn.Linear):
            init.normal_(module.weight, std=0.02)
            init.zeros_(module.bias)

    @can_return_tuple  # `return_dict=False` (or `config.return_dict=False`): a tuple
    def forward(
        self,
        text_embeds: torch.Tensor,
        image_embeds: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> ExplanationClassifierOutput:
        r"""
        Args:
            text_embeds (`torch.FloatTensor` of shape `(batch_size, text_dim)`): CLIP sentence embeddings.
            image_embeds (`torch.FloatTensor` of shape `(batch_size, image_dim)`): CLIP image embeddings.
            labels (`torch.FloatTensor` of shape `(batch_size,)`, *optional*): 1 if the sentence describes the image.
            output_hidden_states (`bool`, *optional*): return the scored features as `hidden_states`; defaults to
                `config.output_hidden_states`.
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        parts = [text_embeds, image_embeds] + (
            [text_embeds * image_embeds] if self.config.interaction else []
        )
        features = torch.cat(parts, dim=-1).to(self.classifier.weight.dtype)
        logits = self.classifier(features).squeeze(-1)  # [B, 1] -> [B]
        loss = None
        if labels is not None:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return ExplanationClassifierOutput(
            loss=loss,
            logits=logits,
            probabilities=torch.sigmoid(logits),
            hidden_states=(features,) if output_hidden_states else None,
        )

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


# `save_pretrained` ships this file for `AutoModel.from_pretrained(repo, trust_remote_code=True)`; with the package,
# `import gest_showcases` registers the classes (`gest_showcases._auto_registration`).
ExplanationClassifier.register_for_auto_class("AutoModel")

__all__ = ["ExplanationClassifier", "ExplanationClassifierOutput"]
