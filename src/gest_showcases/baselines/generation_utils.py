"""What the Table 2 baselines share to decode through transformers' `GenerationMixin` as PC2L does.

The paper's decoding saved with every model (`BaselineGenerationConfig`), the decoder prompt of a `generate` call
that gets only conditioning inputs (`generation_prompt`: BOS per example), and the right-padding check of decoders
that read the tokens left to right without a key padding mask (`check_right_padded`), and the call of the recurrent
baselines' GRUs and LSTM outside autocast (`run_outside_autocast`).

Free of torch and of the package's other layers: configuration files import it (they must stay cheap to import),
and `save_pretrained` ships it next to the modeling files that import it relatively.
"""

import copy

from transformers import GenerationConfig

# The paper's decoding (Section 5.1: beam size 2) and the package's length limit, as PC2L's. Written out rather than
# imported: this file ships with saved baselines as remote code, which must not import the package.
PAPER_DECODING = {"num_beams": 2, "max_new_tokens": 64}


class BaselineGenerationConfig(GenerationConfig):
    """The generation config a new baseline starts with: its special tokens and the paper's decoding (2 beams, at
    most 64 new tokens), so `save_pretrained` writes them to `generation_config.json` and a plain `generate()`
    after `from_pretrained` decodes as the paper does.

    `use_cache` is off: the baselines keep no key/value cache or recurrent state between decoding steps (each step
    re-reads the prefix, which gives the same tokens).
    """

    @classmethod
    def from_model_config(cls, model_config) -> "BaselineGenerationConfig":
        generation_config = super().from_model_config(model_config)
        generation_config.update(**PAPER_DECODING, use_cache=False)
        if generation_config.pad_token_id is None:
            # GPT-2 has no pad token; finished beams are padded with EOS, which `generate` would pick after a warning.
            generation_config.pad_token_id = generation_config.eos_token_id
        return generation_config


def generation_prompt(inputs, generate_kwargs: dict, bos_token_id: int, reference):
    """The decoder prompt of a `generate` call: `inputs` or `generate_kwargs["input_ids"]`, else BOS per example.

    Also completes `generate_kwargs` in place: an all-ones `attention_mask` unless one is given (GPT-2's BOS is also
    its EOS and pad token, which `generate` would take for padding), `use_cache=False` (see
    [`BaselineGenerationConfig`]), and a `max_length` given without `max_new_tokens` made to count.

    Args:
        inputs (`torch.LongTensor` of shape `(batch_size, prompt_length)`, *optional*): the prompt, unpadded.
        generate_kwargs (`dict`): the other arguments of the `generate` call.
        bos_token_id (`int`): the token decoding starts from.
        reference (`torch.Tensor`): a batch-first conditioning tensor (batch size and device of the BOS prompt).
    """
    input_ids = generate_kwargs.pop("input_ids", None)
    if inputs is not None and input_ids is not None:
        raise ValueError("pass the decoder prompt as `inputs` or as `input_ids`, not both")
    inputs = input_ids if inputs is None else inputs
    if inputs is None:
        # Made as integers: a float `reference` in bf16/fp16 cannot hold a large id (GPT-2's 50256 would round).
        inputs = reference.new_zeros((reference.shape[0], 1)).long().fill_(bos_token_id)  # [B, 1]
    generate_kwargs.setdefault("attention_mask", inputs.new_ones(inputs.shape))
    if generate_kwargs.get("generation_config") is not None:
        # On a copy of the call's config: a call giving both a config and settings is deprecated (a warning each time).
        config = copy.deepcopy(generate_kwargs["generation_config"])
        config.use_cache = False
        generate_kwargs["generation_config"] = config
    else:
        generate_kwargs["use_cache"] = False
    if "max_length" in generate_kwargs and "max_new_tokens" not in generate_kwargs:
        # The call's length over the generation_config's max_new_tokens (trained baselines set 64), which
        # transformers would let win with only a warning. A call argument: on a config, None means "the model's".
        generate_kwargs["max_new_tokens"] = None
    return inputs


def run_outside_autocast(rnn, *inputs):
    """`rnn(*inputs)` for an `nn.GRU`/`nn.LSTM`, with autocast off and the inputs (tensors or a `PackedSequence`) in
    the RNN's own weights' dtype: float32 in a mixed-precision run.

    CUDA autocast runs cuDNN's RNNs in float16 whatever the autocast dtype, so a `--bf16` run would train them in
    float16 with no loss scaler, and hand float16 outputs to code that expects the autocast dtype (the first H200 run
    of the GPU suite failed on that in Ref2Seq).
    """
    import torch  # here, not at the top: this module stays free of torch (see the module docstring)

    weight = next(rnn.parameters())
    with torch.autocast(weight.device.type, enabled=False):
        return rnn(*(value.to(weight.dtype) for value in inputs))


def check_right_padded(attention_mask) -> None:
    """Raise when a row of `attention_mask` [B, T] has a real token after padding (left padding).

    For decoders that read the tokens left to right without masking padding: with right padding every real
    position is computed from real tokens only, and the padded positions carry no label.
    """
    if attention_mask is not None and (attention_mask[:, 1:] > attention_mask[:, :-1]).any():
        raise ValueError(
            "attention_mask must be right-padded (1s then 0s in each row); left padding is unsupported"
        )


def check_logits_only(model, kwargs: dict) -> None:
    """The baselines return logits (and a loss) only: a call that asks for hidden states or attentions (`forward`, or
    `generate(..., return_dict_in_generate=True, output_hidden_states=True)`) is refused, rather than answered with
    None in their place (or an AttributeError in `generate`)."""
    asked = [name for name in ("output_hidden_states", "output_attentions") if kwargs.get(name)]
    if asked:
        raise ValueError(f"{type(model).__name__} returns logits only: it has no {' or '.join(asked)}")


__all__ = [
    "PAPER_DECODING",
    "BaselineGenerationConfig",
    "check_logits_only",
    "check_right_padded",
    "generation_prompt",
    "run_outside_autocast",
]


def shifted_cross_entropy(logits, labels):
    """Next-token cross-entropy of every baseline: position t predicts token t + 1, mean over the label tokens of the
    batch (-100 ignored), in float32 whatever the logits' dtype."""
    import torch.nn.functional as F  # here: importing this module (the configurations do) stays free of torch

    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten().to(logits.device), ignore_index=-100
    )
