"""Configuration of the explanation-distillation classifier (paper Section 3.3)."""

from __future__ import annotations

from transformers import PretrainedConfig


class ExplanationClassifierConfig(PretrainedConfig):
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

    def __init__(
        self,
        text_dim: int = 512,
        image_dim: int = 512,
        interaction: bool = False,
        threshold: float = 0.5,
        clip_checkpoint: str | None = None,
        clip_fingerprint: str | None = None,
        **kwargs,
    ):
        self.text_dim = text_dim
        self.image_dim = image_dim
        self.interaction = interaction
        self.threshold = threshold
        self.clip_checkpoint = clip_checkpoint
        self.clip_fingerprint = clip_fingerprint
        super().__init__(**kwargs)
        if interaction and text_dim != image_dim:
            raise ValueError(f"interaction needs text_dim == image_dim, got {text_dim} and {image_dim}")
