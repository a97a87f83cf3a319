"""Optional LoRA (peft) on the GPT-2 decoder's attention, self- and cross-attention chosen separately.

The parts of PC2L that start from random weights (the encoder, the projection heads, and the cross-attention
when it gets no LoRA) are trained fully and saved with the adapter (`modules_to_save`), so an adapter folder plus
the base checkpoint rebuild the trained model. `save_lora_base` records that base (the PC2L config and the GPT-2
checkpoint the decoder started from) next to the adapter, and `load_lora_pc2l(adapter_dir)` rebuilds it:

```python
>>> from gest_showcases.generation.lora import load_lora_pc2l
>>> model = load_lora_pc2l("runs/pc2l-lora")  # doctest: +SKIP
```
"""

import json
from pathlib import Path

from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import GPT2LMHeadModel

from .configuration_pc2l import PC2LConfig
from .modeling_pc2l import PC2LForConditionalGeneration

BASE_FILE = "pc2l_lora_base.json"
# GPT-2 checkpoints have no cross-attention: its frozen starting weights exist only in the trained run.
CROSS_WEIGHTS_FILE = "pc2l_lora_cross_attention.safetensors"

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


def save_lora_base(model: PeftModel, decoder: str, folder: str | Path) -> None:
    """Record what the adapter in `folder` applies to, so that `load_lora_pc2l` rebuilds it.

    Writes `BASE_FILE` (the PC2L config and the GPT-2 checkpoint, name or path, the decoder started from) and
    `CROSS_WEIGHTS_FILE` (the cross-attention's frozen starting weights, random, in no GPT-2 checkpoint).
    """
    folder = Path(folder)
    payload = {"decoder": decoder, "config": model.get_base_model().config.to_dict()}
    (folder / BASE_FILE).write_text(json.dumps(payload, indent=2) + "\n")
    frozen = {
        name.removeprefix("base_model.model.")
        .replace(".base_layer", "")
        .replace(".original_module", ""): tensor
        for name, tensor in model.state_dict().items()
        if ("crossattention" in name or "ln_cross_attn" in name)
        and "lora_" not in name
        and ".modules_to_save." not in name
    }
    save_file(
        {name: tensor.contiguous() for name, tensor in frozen.items()}, str(folder / CROSS_WEIGHTS_FILE)
    )


def load_lora_pc2l(adapter_dir: str | Path, decoder: str | None = None) -> PeftModel:
    """Rebuild a LoRA-trained PC2L model from its adapter folder (as `train-pc2l --lora` writes it).

    Args:
        adapter_dir: folder with the adapter and `BASE_FILE`.
        decoder (`str`, *optional*): the GPT-2 checkpoint the decoder started from, when it has moved since training.

    Returns:
        `PeftModel` in eval mode.
    """
    folder = Path(adapter_dir)
    for name in (BASE_FILE, CROSS_WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name} is missing: {folder} is not a `train-pc2l --lora` output"
            )
    payload = json.loads((folder / BASE_FILE).read_text())
    base = PC2LForConditionalGeneration(PC2LConfig.from_dict(payload["config"]))
    pretrained = GPT2LMHeadModel.from_pretrained(decoder or payload["decoder"], add_cross_attention=True)
    base.decoder.load_state_dict(pretrained.state_dict())
    _, unexpected = base.load_state_dict(load_file(str(folder / CROSS_WEIGHTS_FILE)), strict=False)
    if unexpected:
        raise ValueError(f"{folder / CROSS_WEIGHTS_FILE} has weights this model lacks: {unexpected[:3]}")
    return PeftModel.from_pretrained(base, folder).eval()


__all__ = [
    "BASE_FILE",
    "CROSS_WEIGHTS_FILE",
    "CROSS_ATTENTION_PATTERN",
    "SELF_ATTENTION_PATTERN",
    "apply_lora",
    "load_lora_pc2l",
    "lora_target_pattern",
    "save_lora_base",
]
