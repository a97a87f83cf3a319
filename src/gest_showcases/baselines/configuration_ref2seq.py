"""Ref2Seq configuration (Ni, Li, McAuley, EMNLP 2019; the Table 2 baseline with history-text input)."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig


@strict
class Ref2SeqConfig(PreTrainedConfig):
    r"""
    Configuration of [`Ref2SeqForExplanation`]: GRU encoders over the user's and the business's reference texts,
    max-pooled over the references, and a GRU decoder with attention to both.

    The defaults are the public code's run (`ref2seq/run.sh`: hidden 256, 5 references; `main.py`: 2 layers,
    encoder dropout 0.5, decoder dropout 0.2, 20 tokens a reference) on GPT-2's BPE vocabulary; with the demo's
    2,000-token vocabulary that is 6.0M parameters, trainable on CPU on ~1,000 examples.

    Args:
        vocab_size (`int`, *optional*, defaults to 50257):
            Size of the (GPT-2 BPE) vocabulary, shared by the references and the explanation.
        hidden_size (`int`, *optional*, defaults to 256):
            Width of the word embeddings and of every GRU state.
        num_layers (`int`, *optional*, defaults to 2):
            GRU layers of each encoder and of the decoder.
        encoder_dropout (`float`, *optional*, defaults to 0.5):
            Dropout between the encoder GRU layers.
        decoder_dropout (`float`, *optional*, defaults to 0.2):
            Dropout on the decoder's word embeddings, between its GRU layers and on its GRU outputs.
        max_references (`int`, *optional*, defaults to 5):
            Most reference texts per side (user, business) the collator keeps.
        max_reference_length (`int`, *optional*, defaults to 20):
            Most tokens per reference text the collator keeps.
        bos_token_id (`int`, *optional*, defaults to 50256), eos_token_id (`int`, *optional*, defaults to 50256):
            The tokenizer's BOS and EOS tokens (GPT-2's `<|endoftext|>` is both).
        pad_token_id (`int`, *optional*):
            Its pad token; `generate` pads finished beams with EOS when `None`.

    Example:

    ```python
    >>> from gest_showcases.baselines.configuration_ref2seq import Ref2SeqConfig
    >>> from gest_showcases.baselines.modeling_ref2seq import Ref2SeqForExplanation
    >>> model = Ref2SeqForExplanation(Ref2SeqConfig(vocab_size=300, hidden_size=32, num_layers=1))
    ```"""

    model_type = "ref2seq"

    vocab_size: int = 50257
    hidden_size: int = 256
    num_layers: int = 2
    encoder_dropout: float | int = 0.5
    decoder_dropout: float | int = 0.2
    max_references: int = 5
    max_reference_length: int = 20
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256
    pad_token_id: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if (
            min(
                self.vocab_size,
                self.hidden_size,
                self.num_layers,
                self.max_references,
                self.max_reference_length,
            )
            < 1
        ):
            raise ValueError(
                "vocab_size, hidden_size, num_layers, max_references and max_reference_length must be positive"
            )
        if not (0 <= self.encoder_dropout < 1 and 0 <= self.decoder_dropout < 1):
            raise ValueError(
                f"dropouts must be in [0, 1), got {self.encoder_dropout} and {self.decoder_dropout}"
            )


# `save_pretrained` ships this file for `AutoConfig.from_pretrained(repo, trust_remote_code=True)`.
Ref2SeqConfig.register_for_auto_class()

__all__ = ["Ref2SeqConfig"]
