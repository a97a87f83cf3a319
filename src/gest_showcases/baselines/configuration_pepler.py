"""PEPLER configuration (Li, Zhang, Chen, TOIS 2023; user and item ids as continuous prompts of GPT-2)."""

from huggingface_hub.dataclasses import strict
from transformers import GPT2Config, PreTrainedConfig

# Token settings every baseline configuration takes at the top level (`train-generator` passes the tokenizer's);
# PEPLER's belong to its GPT-2 decoder.
DECODER_TOKEN_SETTINGS = ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id")


@strict
class PeplerConfig(PreTrainedConfig):
    r"""
    Configuration of [`PeplerForExplanation`]: a GPT-2 decoder whose input starts with two continuous prompt
    vectors, the user's and the item's id embeddings.

    Start from a GPT-2 checkpoint with [`~PeplerForExplanation.from_decoder_pretrained`] (the paper's route); a
    config built directly has a randomly initialised decoder of `decoder`'s size (GPT-2 small by default, 124M
    parameters). `vocab_size`, `bos_token_id`, `eos_token_id` and `pad_token_id` given as keywords set the
    decoder's, so PEPLER takes the same token settings as the other baselines.

    Args:
        decoder (`dict` or [`GPT2Config`], *optional*):
            The GPT-2 decoder configuration; its width is the prompt width, and its `n_positions` must hold the two
            prompts plus the text (BOS, at most 64 new tokens).
        num_users (`int`, *optional*, defaults to 1), num_items (`int`, *optional*, defaults to 1):
            Sizes of the user and item id vocabularies built from the train split, index 0 included: id 0 is the
            unknown id (a user or business never seen in training), with its own learnt embedding (see
            `unknown_id_probability`).
        unknown_id_probability (`float`, *optional*, defaults to 0.1):
            In training, the probability that a user or item id is replaced by the unknown id 0, so that id 0 learns
            an embedding of "some user" / "some business". 0 leaves that embedding at its random initialisation.

    Example:

    ```python
    >>> from gest_showcases.baselines.configuration_pepler import PeplerConfig
    >>> config = PeplerConfig(decoder={"n_embd": 32, "n_layer": 2, "n_head": 2}, num_users=10, num_items=5)
    ```"""

    model_type = "pepler"
    # Declared with `sub_configs` and built in `__post_init__`, as `PC2LConfig` (see there why).
    sub_configs = {"decoder": GPT2Config}

    decoder: dict | GPT2Config | None = None
    num_users: int = 1
    num_items: int = 1
    unknown_id_probability: float | int = 0.1

    def __post_init__(self, **kwargs):
        if self.decoder is None:
            self.decoder = GPT2Config()
        elif isinstance(self.decoder, dict):
            self.decoder = GPT2Config(**self.decoder)
        for name in DECODER_TOKEN_SETTINGS:
            if name in kwargs:
                setattr(self.decoder, name, kwargs.pop(name))
        super().__post_init__(**kwargs)
        if min(self.num_users, self.num_items) < 1:
            raise ValueError(
                f"num_users and num_items must be positive, got {self.num_users}, {self.num_items}"
            )
        if not 0 <= self.unknown_id_probability <= 1:
            raise ValueError(f"unknown_id_probability must be in [0, 1], got {self.unknown_id_probability}")


# `save_pretrained` ships this file for `AutoConfig.from_pretrained(repo, trust_remote_code=True)`.
PeplerConfig.register_for_auto_class()

__all__ = ["PeplerConfig"]
