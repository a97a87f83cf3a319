"""Configuration of the explanation-distillation classifier (paper Section 3.3)."""

# No `from __future__ import annotations`: `@strict` checks each field against its annotation, which must be a type
# at run time (as a string it is skipped).
from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class ExplanationClassifierConfig(PreTrainedConfig):
    r"""
    Configuration of [`ExplanationClassifier`]: does a sentence describe an image?

    Args:
        text_dim (`int`, *optional*, defaults to 512):
            Size of the CLIP sentence embedding.
        image_dim (`int`, *optional*, defaults to 512):
            Size of the CLIP image embedding.
        interaction (`bool`, *optional*, defaults to `False`):
            Also feed the element-wise product of the two embeddings to the same single linear layer,
            `[t ; v ; t * v]`. The paper's `[t ; v]` scores `w_t . t + w_v . v + b`, a sum of a
            sentence term and an image term, which cannot tell *which* image a sentence describes
            (it ranks every image the same way for every sentence); the product term
            `sum_k w_k t_k v_k` is a learnt weighted cosine and can. Needs `text_dim == image_dim`.
        threshold (`float`, *optional*, defaults to 0.5):
            Probability at or above which a pair counts as "describes"; `distill` sets it to the
            value maximising F1 on the validation split.
        clip_checkpoint (`str`, *optional*):
            The CLIP checkpoint whose embeddings the classifier reads (recorded, not loaded).
        clip_fingerprint (`str`, *optional*):
            Hash of that checkpoint's config and weights, as in the feature cache's manifest.
    """

    model_type = "explanation_classifier"
    # `Trainer.evaluate`/`predict` hand `compute_metrics` the probabilities alone (e.g. `compute_auc`), as transformers'
    # own configs name the outputs to leave out.
    keys_to_ignore_at_inference = ["logits", "hidden_states"]

    text_dim: int = 512
    image_dim: int = 512
    interaction: bool = False
    # Not range-checked: `distill --threshold` sets it after construction, and every saved value must load.
    threshold: float | int = 0.5
    clip_checkpoint: str | None = None
    clip_fingerprint: str | None = None

    def __post_init__(self, **kwargs):
        for name in ("text_dim", "image_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.interaction and self.text_dim != self.image_dim:
            raise ValueError(
                f"interaction needs text_dim == image_dim, got {self.text_dim} and {self.image_dim}"
            )
        super().__post_init__(**kwargs)


# `save_pretrained` ships this file for `AutoConfig.from_pretrained(repo, trust_remote_code=True)`.
ExplanationClassifierConfig.register_for_auto_class()

__all__ = ["ExplanationClassifierConfig"]
