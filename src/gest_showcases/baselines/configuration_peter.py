"""PETER configuration (Li, Zhang, Chen, ACL 2021; the Table 2 baseline with user and item ids as input)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class PeterConfig(PreTrainedConfig):
    r"""
    Configuration of [`PeterForExplanation`]: one transformer over `[user, item, BOS, words...]` with the PETER
    attention mask, trained on explanation generation and context prediction.

    The public code's run uses width 512, feed-forward 2048, 2 layers, 2 heads, dropout 0.2 and context weight 1.0;
    the defaults halve the widths (2.6M parameters with the demo's 2,000-token vocabulary and few ids, trainable on
    CPU on ~1,000 examples).

    Args:
        vocab_size (`int`, *optional*, defaults to 50257):
            Size of the (GPT-2 BPE) vocabulary.
        num_users (`int`, *optional*, defaults to 1), num_items (`int`, *optional*, defaults to 1):
            Sizes of the user and item id vocabularies built from the train split, index 0 included: id 0 is the
            unknown id (a user or business never seen in training), with its own learnt embedding (see
            `unknown_id_probability`).
        hidden_size (`int`, *optional*, defaults to 256):
            Width of the embeddings and the transformer (`emsize`).
        intermediate_size (`int`, *optional*, defaults to 1024):
            Width of the feed-forward layers (`nhid`).
        num_layers (`int`, *optional*, defaults to 2):
            Transformer layers (`nlayers`).
        num_attention_heads (`int`, *optional*, defaults to 2):
            Attention heads of each layer (`nhead`).
        dropout (`float`, *optional*, defaults to 0.2):
            Dropout of the embeddings, the attention weights and the residual branches.
        context_weight (`float`, *optional*, defaults to 1.0):
            Weight of the context prediction loss (`context_reg`): `loss = loss_ce + context_weight * loss_context`.
        unknown_id_probability (`float`, *optional*, defaults to 0.1):
            In training, the probability that a user or item id is replaced by the unknown id 0, so that id 0 learns
            an embedding of "some user" / "some business" for the ids that test time brings and training never saw.
            0 leaves that embedding at its random initialisation.
        bos_token_id (`int`, *optional*, defaults to 50256), eos_token_id (`int`, *optional*, defaults to 50256):
            The tokenizer's BOS and EOS tokens (GPT-2's `<|endoftext|>` is both).
        pad_token_id (`int`, *optional*):
            Its pad token; `generate` pads finished beams with EOS when `None`.

    Example:

    ```python
    >>> from gest_showcases.baselines.configuration_peter import PeterConfig
    >>> from gest_showcases.baselines.modeling_peter import PeterForExplanation
    >>> model = PeterForExplanation(PeterConfig(vocab_size=300, num_users=10, num_items=5, hidden_size=32))
    ```"""

    model_type = "peter"

    vocab_size: int = 50257
    num_users: int = 1
    num_items: int = 1
    hidden_size: int = 256
    intermediate_size: int = 1024
    num_layers: int = 2
    num_attention_heads: int = 2
    dropout: float | int = 0.2
    context_weight: float | int = 1.0
    unknown_id_probability: float | int = 0.1
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256
    pad_token_id: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        sizes = (self.vocab_size, self.num_users, self.num_items, self.num_layers, self.intermediate_size,
                 self.hidden_size, self.num_attention_heads)  # fmt: skip
        if min(sizes) < 1:
            raise ValueError(
                "vocab_size, num_users, num_items, num_layers, intermediate_size, hidden_size and num_attention_heads "
                "must be positive"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by num_attention_heads={self.num_attention_heads}"
            )
        if not (0 <= self.dropout < 1 and 0 <= self.unknown_id_probability <= 1 and self.context_weight >= 0):
            raise ValueError(
                "dropout must be in [0, 1), unknown_id_probability in [0, 1] and context_weight >= 0, got "
                f"{self.dropout}, {self.unknown_id_probability}, {self.context_weight}"
            )


# `save_pretrained` ships this file for `AutoConfig.from_pretrained(repo, trust_remote_code=True)`.
PeterConfig.register_for_auto_class()

__all__ = ["PeterConfig"]
