"""R2Gen configuration (Chen et al., EMNLP 2020), the "R2Gen" row of the paper's Table 2."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

# GPT-2's byte-level BPE vocabulary and its one special token (BOS = EOS = padding).
GPT2_VOCAB_SIZE = 50257
GPT2_SPECIAL_TOKEN_ID = 50256


@strict
class R2GenConfig(PreTrainedConfig):
    r"""
    Configuration of [`R2GenForExplanation`]: a transformer encoder over the photos' features and a transformer
    decoder whose layer norms are conditioned on a relational memory of the tokens so far (memory-driven conditional
    layer norm, MCLN).

    The defaults halve R2Gen's width (`d_model = d_ff = rm_d_model = 512`) and keep its depth (3 layers), heads (8)
    and memory (3 slots, 8 heads): the package trains this row on about a thousand examples on CPU, where the 50k-token
    input and output layers (2 x 50257 x 256 = 25.7M of the 34.5M parameters) already dwarf the data.

    Args:
        vocab_size (`int`, *optional*, defaults to 50257):
            Size of the token vocabulary (GPT-2's BPE, the tokenizer every Table 2 row shares).
        bos_token_id (`int`, *optional*, defaults to 50256):
            Token that starts every target; decoding starts from it.
        eos_token_id (`int`, *optional*, defaults to 50256):
            Token that ends every target.
        pad_token_id (`int`, *optional*, defaults to 50256):
            Token that pads targets and finished beams.
        image_feature_dim (`int`, *optional*, defaults to 512):
            Dimension of the cached image features (CLIP ViT-B/32 image embeddings: 512; R2Gen's `d_vf`).
        max_images (`int`, *optional*, defaults to 5):
            Most photos per example (the paper's limit); the collator keeps the first `max_images`.
        hidden_size (`int`, *optional*, defaults to 256):
            Width of the encoder, the decoder and the relational memory slots (R2Gen's `d_model`; its code needs
            `rm_d_model == d_model`, since the memory reads the token embeddings and conditions layer norms of that
            width).
        ffn_dim (`int`, *optional*, defaults to 256):
            Width of the feed-forward layers (R2Gen's `d_ff`, equal to `d_model` there).
        num_layers (`int`, *optional*, defaults to 3):
            Layers of the encoder and of the decoder.
        num_attention_heads (`int`, *optional*, defaults to 8):
            Attention heads of every encoder and decoder attention.
        memory_slots (`int`, *optional*, defaults to 3):
            Rows of the relational memory (`rm_num_slots`).
        memory_attention_heads (`int`, *optional*, defaults to 8):
            Heads of the memory's attention over `[memory; token]` (`rm_num_heads`).
        dropout (`float`, *optional*, defaults to 0.1):
            Dropout of attention weights, residual branches, feed-forward layers and token embeddings.
        feature_dropout (`float`, *optional*, defaults to 0.5):
            Dropout after the projection of the photo features (`drop_prob_lm`).
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Added to the standard deviation in every (conditional) layer norm.

    Example:

    ```python
    >>> from gest_showcases.baselines.configuration_r2gen import R2GenConfig
    >>> from gest_showcases.baselines.modeling_r2gen import R2GenForExplanation

    >>> config = R2GenConfig(vocab_size=100, bos_token_id=99, eos_token_id=99, pad_token_id=99, image_feature_dim=8,
    ...                      hidden_size=16, ffn_dim=32, num_layers=1, num_attention_heads=2, memory_attention_heads=2)
    >>> model = R2GenForExplanation(config)
    ```"""

    model_type = "r2gen"

    vocab_size: int = GPT2_VOCAB_SIZE
    bos_token_id: int | None = GPT2_SPECIAL_TOKEN_ID
    eos_token_id: int | None = GPT2_SPECIAL_TOKEN_ID
    pad_token_id: int | None = GPT2_SPECIAL_TOKEN_ID
    image_feature_dim: int = 512
    max_images: int = 5
    hidden_size: int = 256
    ffn_dim: int = 256
    num_layers: int = 3
    num_attention_heads: int = 8
    memory_slots: int = 3
    memory_attention_heads: int = 8
    dropout: float | int = 0.1
    feature_dropout: float | int = 0.5
    layer_norm_eps: float = 1e-6

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        sizes = {
            "vocab_size": self.vocab_size,
            "image_feature_dim": self.image_feature_dim,
            "max_images": self.max_images,
            "hidden_size": self.hidden_size,
            "ffn_dim": self.ffn_dim,
            "num_layers": self.num_layers,
            "num_attention_heads": self.num_attention_heads,
            "memory_slots": self.memory_slots,
            "memory_attention_heads": self.memory_attention_heads,
        }
        if any(size < 1 for size in sizes.values()):
            raise ValueError(f"sizes must be positive, got {sizes}")
        heads = {
            "num_attention_heads": self.num_attention_heads,
            "memory_attention_heads": self.memory_attention_heads,
        }
        for name, count in heads.items():
            if self.hidden_size % count:
                raise ValueError(f"hidden_size={self.hidden_size} must be divisible by {name}={count}")
        for name, rate in {"dropout": self.dropout, "feature_dropout": self.feature_dropout}.items():
            if not 0 <= rate < 1:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")
        if self.layer_norm_eps <= 0:
            raise ValueError(f"layer_norm_eps must be > 0, got {self.layer_norm_eps}")


# `save_pretrained` ships this file for `AutoConfig.from_pretrained(repo, trust_remote_code=True)`.
R2GenConfig.register_for_auto_class()

__all__ = ["R2GenConfig"]
