"""Optional LoRA (peft) on the GPT-2 decoder's attention, self- and cross-attention chosen separately.

The parts of PC2L that start from random weights (the encoder, the projection heads, and the cross-attention
when it gets no LoRA) are trained fully and saved with the adapter (`modules_to_save`), so an adapter folder plus
the base checkpoint rebuild the trained model: `PeftModel.from_pretrained(base_model, adapter_dir)`.
"""

from peft import LoraConfig, PeftModel, get_peft_model

from .modeling_pc2l import PC2LForConditionalGeneration

_LAYER = r"decoder\.transformer\.h\.\d+\."
SELF_ATTENTION_PATTERN = _LAYER + r"attn\.(?:c_attn|c_proj)"
CROSS_ATTENTION_PATTERN = _LAYER + r"crossattention\.(?:q_attn|c_attn|c_proj)"


def lora_target_pattern(self_attention: bool, cross_attention: bool) -> str:
    """A regex (peft full-matches it against module names) for the decoder attention projections to adapt."""
    patterns = [SELF_ATTENTION_PATTERN] * self_attention + [CROSS_ATTENTION_PATTERN] * cross_attention
    if not patterns:
        raise ValueError("LoRA needs self_attention and/or cross_attention")
    return "|".join(patterns)


def apply_lora(
    model: PC2LForConditionalGeneration,
    rank: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    self_attention: bool = True,
    cross_attention: bool = False,
) -> PeftModel:
    """Wrap `model` with LoRA adapters on the chosen decoder attention layers.

    Args:
        model ([`PC2LForConditionalGeneration`]): the model to adapt (its decoder typically from GPT-2).
        rank (`int`, *optional*, defaults to 8): LoRA rank `r`.
        alpha (`int`, *optional*, defaults to 16): LoRA scaling `lora_alpha`.
        dropout (`float`, *optional*, defaults to 0.05): dropout on the LoRA path.
        self_attention (`bool`, *optional*, defaults to `True`): adapt the decoder self-attention.
        cross_attention (`bool`, *optional*, defaults to `False`): adapt the cross-attention with LoRA; when
            `False` the (fresh) cross-attention layers are trained fully instead.

    Returns:
        `PeftModel`: only the adapters and the fresh modules are trainable.
    """
    fresh = ["encoder"] + [
        name for name in ("image_head", "review_head", "target_head") if name in model._modules
    ]
    if not cross_attention:
        fresh += ["crossattention", "ln_cross_attn"]
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_target_pattern(self_attention, cross_attention),
        modules_to_save=fresh,
        fan_in_fan_out=True,  # GPT-2's Conv1D stores weights as [in, out]
    )
    return get_peft_model(model, config)


__all__ = ["CROSS_ATTENTION_PATTERN", "SELF_ATTENTION_PATTERN", "apply_lora", "lora_target_pattern"]
