"""Show and Tell configuration (Vinyals et al., CVPR 2015), the "ST" row of the paper's Table 2."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

# GPT-2's byte-level BPE vocabulary and its one special token (BOS = EOS = padding).
GPT2_VOCAB_SIZE = 50257
GPT2_SPECIAL_TOKEN_ID = 50256


@strict
class ShowAndTellConfig(PreTrainedConfig):
    r"""
    Configuration of [`ShowAndTellForExplanation`]: a linear image embedding fed as the first input step of an LSTM
    decoder over GPT-2 BPE tokens.

    The defaults halve the widths of im2txt (`embedding_size = num_lstm_units = 512`): the package trains this row
    on about a thousand examples on CPU, where the 50k-token input and output layers (2 x 50257 x 256 = 25.7M of the
    26.4M parameters) already dwarf the data.

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
            Dimension of the cached image features (CLIP ViT-B/32 image embeddings: 512).
        max_images (`int`, *optional*, defaults to 5):
            Most photos per example (the paper's limit); the collator keeps the first `max_images`.
        embedding_size (`int`, *optional*, defaults to 256):
            Width of the token embeddings and of the image embedding (the LSTM's input width).
        hidden_size (`int`, *optional*, defaults to 256):
            Width of the LSTM state.
        dropout (`float`, *optional*, defaults to 0.3):
            Dropout on the LSTM's inputs and outputs (im2txt's `lstm_dropout_keep_prob = 0.7`).
        initializer_scale (`float`, *optional*, defaults to 0.08):
            Every weight starts uniform in `[-initializer_scale, initializer_scale]` (im2txt's initializer).

    Example:

    ```python
    >>> from gest_showcases.baselines.configuration_show_and_tell import ShowAndTellConfig
    >>> from gest_showcases.baselines.modeling_show_and_tell import ShowAndTellForExplanation

    >>> config = ShowAndTellConfig(vocab_size=100, bos_token_id=99, eos_token_id=99, pad_token_id=99,
    ...                            image_feature_dim=8, embedding_size=16, hidden_size=16)
    >>> model = ShowAndTellForExplanation(config)
    ```"""

    model_type = "show_and_tell"

    vocab_size: int = GPT2_VOCAB_SIZE
    bos_token_id: int | None = GPT2_SPECIAL_TOKEN_ID
    eos_token_id: int | None = GPT2_SPECIAL_TOKEN_ID
    pad_token_id: int | None = GPT2_SPECIAL_TOKEN_ID
    image_feature_dim: int = 512
    max_images: int = 5
    embedding_size: int = 256
    hidden_size: int = 256
    dropout: float | int = 0.3
    initializer_scale: float | int = 0.08

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        sizes = {
            "vocab_size": self.vocab_size,
            "image_feature_dim": self.image_feature_dim,
            "max_images": self.max_images,
            "embedding_size": self.embedding_size,
            "hidden_size": self.hidden_size,
        }
        if any(size < 1 for size in sizes.values()):
            raise ValueError(f"sizes must be positive, got {sizes}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.initializer_scale <= 0:
            raise ValueError(f"initializer_scale must be > 0, got {self.initializer_scale}")


# `save_pretrained` ships this file for `AutoConfig.from_pretrained(repo, trust_remote_code=True)`.
ShowAndTellConfig.register_for_auto_class()

__all__ = ["ShowAndTellConfig"]
