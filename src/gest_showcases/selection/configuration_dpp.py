"""Configuration of the DPP image selector (Personalized Showcases, Section 4.1)."""

# No `from __future__ import annotations`: `@strict` checks each field against its annotation, which must be a type
# at run time (as a string it is skipped).
from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

INPUT_MODES = ("img", "text", "img+text")
# The most photos a showcase selects (the paper's K is 3; Gest's businesses have a few dozen photos).
MAX_TOP_K = 1000
# Written by the selectors saved before it went: the MLPs always had Kaiming initialisation for ReLU, so it was never
# read. Dropped on load, so that such a config.json still loads (and is not written back).
REMOVED_FIELDS = ("initializer_range",)


@strict
class DPPSelectorConfig(PreTrainedConfig):
    r"""
    Configuration of a [`DPPImageSelector`]: the user-profile and image encoders and the DPP kernel built
    from them. The defaults are the paper's: CLIP ViT-B/32 features (512-d text and image), a user MLP
    1024 -> 512 -> 512 -> 256 -> 128 and an image MLP 512 -> 512 -> 512 -> 256 -> 128 with ReLU.

    Args:
        text_dim (`int`, *optional*, defaults to 512):
            Size of the CLIP text feature of the user's history reviews (the text half of the profile).
        image_dim (`int`, *optional*, defaults to 512):
            Size of the CLIP image feature, for both the profile's image half and each candidate.
        user_hidden_sizes (`list[int]`, *optional*, defaults to `(512, 512, 256)`):
            Hidden layer sizes of the user MLP, whose input is `text_dim + image_dim`.
        image_hidden_sizes (`list[int]`, *optional*, defaults to `(512, 512, 256)`):
            Hidden layer sizes of the image MLP, whose input is `image_dim`.
        embed_dim (`int`, *optional*, defaults to 128):
            Output size of both MLPs: the space where relevance and similarity are measured.
        input_mode (`str`, *optional*, defaults to `"img+text"`):
            Which parts of the profile the model sees: `"img"` (history images), `"text"` (history
            reviews) or `"img+text"`. The unused half of the profile is replaced by zeros, so every mode
            keeps the same `text_dim + image_dim` input layer.
        max_log_quality (`float`, *optional*, defaults to 5.0):
            Bound `c` on the log relevance: `log q = c * tanh(<u, v> / (c * sqrt(embed_dim)))`, a smooth
            clamp that keeps every kernel entry within `exp(+-2c)` and its gradient alive.
        similarity_eps (`float`, *optional*, defaults to 1e-3):
            Added to the diagonal of the similarity Gram matrix `S`, making it positive definite even when
            the pool has more images than `embed_dim` or duplicate images.
        jitter (`float`, *optional*, defaults to 1e-6):
            Added to the diagonal before each Cholesky factorisation of the log-likelihood.
        top_k (`int`, *optional*, defaults to 3):
            Number of images `select` returns per (user, business) pair (the paper's K).
        history_prior (`float`, *optional*, defaults to 0.0):
            Not in the paper (a documented option, docs/experiments.md): the starting weight `a` of a learnt term
            `a * cos(candidate feature, user's image profile)` added to the relevance score before the clamp, so a
            candidate like the user's history photos starts out relevant (the `history-cosine` rule as a prior the
            MLPs refine). 0 leaves the paper's model, without the parameter. Needs the image profile: not with
            `input_mode="text"`.

    The MLP layers have Kaiming initialisation for ReLU (weights) and zeros (biases), which no field sets.

    Example:

    ```python
    >>> from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig
    >>> config = DPPSelectorConfig(input_mode="img")
    >>> model = DPPImageSelector(config)
    ```"""

    model_type = "dpp_image_selector"

    text_dim: int = 512
    image_dim: int = 512
    user_hidden_sizes: list[int] | tuple[int, ...] = (512, 512, 256)
    image_hidden_sizes: list[int] | tuple[int, ...] = (512, 512, 256)
    embed_dim: int = 128
    input_mode: str = "img+text"
    max_log_quality: float | int = 5.0
    similarity_eps: float | int = 1e-3
    jitter: float | int = 1e-6
    top_k: int = 3
    history_prior: float | int = 0.0

    def __post_init__(self, **kwargs):
        for name in REMOVED_FIELDS:
            kwargs.pop(name, None)
        self.user_hidden_sizes = list(self.user_hidden_sizes)
        self.image_hidden_sizes = list(self.image_hidden_sizes)
        sizes = {name: getattr(self, name) for name in ("text_dim", "image_dim", "embed_dim", "top_k")}
        for name in ("user_hidden_sizes", "image_hidden_sizes"):
            sizes |= {f"{name}[{index}]": size for index, size in enumerate(getattr(self, name))}
        for name, size in sizes.items():
            if size < 1:
                raise ValueError(f"{name} must be a positive integer, got {size}")
        if self.top_k > MAX_TOP_K:  # the selection's (batch, k) index tensor is allocated whole
            raise ValueError(f"top_k must be at most {MAX_TOP_K} (photos per showcase), got {self.top_k}")
        if self.input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {self.input_mode!r}")
        if not 0 <= self.history_prior < float("inf"):
            raise ValueError(f"history_prior must be a finite number >= 0, got {self.history_prior}")
        if self.history_prior and self.input_mode == "text":
            raise ValueError("history_prior reads the user's image profile, which input_mode 'text' does not see")
        if self.max_log_quality <= 0 or self.similarity_eps <= 0 or self.jitter < 0:
            raise ValueError(
                "max_log_quality and similarity_eps must be positive and jitter non-negative, got "
                f"{self.max_log_quality}, {self.similarity_eps}, {self.jitter}"
            )
        super().__post_init__(**kwargs)


# `save_pretrained` ships this file for `AutoConfig.from_pretrained(repo, trust_remote_code=True)`.
DPPSelectorConfig.register_for_auto_class()

__all__ = ["DPPSelectorConfig"]
