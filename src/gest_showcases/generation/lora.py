"""Optional LoRA (peft) on the decoder's attention, self- and cross-attention chosen separately.

Self-attention is GPT-2's (`attn.c_attn`, `attn.c_proj`) or, for a gated decoder of the Llama layout, the LM's
own `self_attn.{q,k,v,o}_proj`. Cross-attention is GPT-2's `crossattention`, or the gated blocks' linear layers
(query, output, feed-forward) and their shared key/value map `cross_attention_kv` (see `gated_cross_attention.py`).

The parts of PC2L that start from random weights (the encoder, the projection heads, and the cross-attention
when it gets no LoRA) are trained fully and saved with the adapter (`modules_to_save`). With LoRA on the gated
blocks their tanh gates (`cross_attention_gate="tanh"`, the default) are trained fully too: a gate starts at 0 and
closes the block, so without it the block's adapters would get no gradient. The model the adapter applies to (the decoder as it started, with the
cross-attention's random starting weights, which no LM checkpoint holds, and the encoder and heads as they
started) is saved by `save_lora_base` as a plain PC2L checkpoint in `<run>/base/`, and the adapter's config points
at it, so a LoRA run loads the standard ways:

```python
>>> import gest_showcases  # registers PC2L with AutoModel, which the adapter config names
>>> from peft import AutoPeftModel, PeftModel
>>> model = AutoPeftModel.from_pretrained("runs/pc2l-lora")  # doctest: +SKIP
>>> base = gest_showcases.PC2LForConditionalGeneration.from_pretrained("runs/pc2l-lora/base")  # doctest: +SKIP
>>> model = PeftModel.from_pretrained(base, "runs/pc2l-lora")  # doctest: +SKIP
```

`base_model_name_or_path` is the base folder's absolute path: peft hands it verbatim to
`AutoModel.from_pretrained`, so a relative path would resolve against the working directory, not the run. A run
moved elsewhere still loads with `PeftModel.from_pretrained(...from_pretrained(<run>/base), <run>)` or
`load_lora_pc2l(<run>)`, which find the base inside the run; a Hub copy needs the base published as its own repo
and the adapter config pointing at that repo id (a repo id cannot name a subfolder, and a base at the adapter
repo's root would make transformers apply the adapter while loading the base).
"""

import copy
import json
import re
from pathlib import Path

from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from safetensors import safe_open
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from gest_showcases.errors import one_line
from gest_showcases.model_folders import load_whole, require_model_type
from gest_showcases.numerics import check_finite_weights

from .configuration_pc2l import PC2LConfig
from .modeling_pc2l import PC2LForConditionalGeneration

BASE_FOLDER = "base"
ADAPTER_CONFIG_FILE = "adapter_config.json"  # peft's CONFIG_NAME
ADAPTER_WEIGHTS_FILES = ("adapter_model.safetensors", "adapter_model.bin")  # peft's, safetensors first
# The largest LoRA rank trained or loaded: the decoders here are 64-768 wide (SmolLM2: 576), and rank past the width
# adapts nothing more; an adapter config's `r` of 1e9 would try to allocate hundreds of GB.
MAX_LORA_RANK = 1024
# `AutoPeftModel` imports the base class from here; PC2L's own module is outside peft's default import allowlist,
# while `AutoModel` is inside it and resolves PC2LConfig to PC2L once `gest_showcases` is imported.
AUTO_MAPPING = {"base_model_class": "AutoModel", "parent_library": "transformers"}

_LAYER = r"decoder\.transformer\.h\.\d+\."
SELF_ATTENTION_PATTERN = _LAYER + r"attn\.(?:c_attn|c_proj)"
CROSS_ATTENTION_PATTERN = _LAYER + r"crossattention\.(?:q_attn|c_attn|c_proj)"
# A gated decoder: `decoder.<base model>.layers.<i>.`, the LM's own names.
_GATED_LAYER = r"decoder\.\w+\.layers\.\d+\."
GATED_SELF_ATTENTION_PATTERN = _GATED_LAYER + r"self_attn\.(?:q_proj|k_proj|v_proj|o_proj)"
GATED_CROSS_ATTENTION_PATTERN = _GATED_LAYER + r"cross_attention\.(?:q_proj|o_proj|fc1|fc2)|cross_attention_kv"
# Name parts peft adds around the base weights (dropped) and the adapter's own weights (skipped).
_WRAPPER_PARTS = frozenset({"base_layer", "original_module"})


def lora_target_pattern(self_attention: bool, cross_attention: bool, gated: bool = False) -> str:
    """A regex (peft full-matches it against module names) for the decoder attention projections to adapt;
    `gated`: for a decoder with gated cross-attention blocks rather than GPT-2."""
    if gated:
        patterns = [GATED_SELF_ATTENTION_PATTERN] * self_attention + [GATED_CROSS_ATTENTION_PATTERN] * cross_attention
    else:
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
        model ([`PC2LForConditionalGeneration`]): the model to adapt (its decoder typically a pretrained LM).
        rank (`int`, *optional*, defaults to 8): LoRA rank `r`.
        alpha (`int`, *optional*, defaults to 16): LoRA scaling `lora_alpha`.
        dropout (`float`, *optional*, defaults to 0.05): dropout on the LoRA path.
        self_attention (`bool`, *optional*, defaults to `True`): adapt the decoder self-attention.
        cross_attention (`bool`, *optional*, defaults to `False`): adapt the cross-attention with LoRA; when
            `False` the (fresh) cross-attention layers (GPT-2's, or the whole gated blocks and their key/value map)
            are trained fully instead.

    Returns:
        `PeftModel`: only the adapters and the fresh modules are trainable.
    """
    gated = model.config.uses_gated_cross_attention
    fresh = ["encoder"] + [
        name for name in ("image_head", "review_head", "target_head") if name in model._modules
    ]
    if gated:
        if not cross_attention:
            fresh += ["cross_attention", "cross_attention_kv"]
        elif model.config.cross_attention_gate == "tanh":
            fresh += ["attention_gate", "mlp_gate"]
    elif not cross_attention:
        fresh += ["crossattention", "ln_cross_attn"]
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_target_pattern(self_attention, cross_attention, gated),
        modules_to_save=fresh,
        fan_in_fan_out=not gated,  # GPT-2's Conv1D stores weights as [in, out], nn.Linear as [out, in]
    )
    return get_peft_model(model, config)


def base_state_dict(model: PeftModel) -> dict:
    """The weights the adapter applies to, under the plain model's names.

    peft keeps them while training: a LoRA layer's frozen `base_layer`, and a trained-fully module's frozen
    `original_module` (its trained copy, under `modules_to_save`, belongs to the adapter).
    """
    state = {}
    for name, tensor in model.get_base_model().state_dict().items():
        parts = name.split(".")
        if "modules_to_save" in parts or any(part.startswith("lora_") for part in parts):
            continue
        state[".".join(part for part in parts if part not in _WRAPPER_PARTS)] = tensor
    return state


def save_lora_base(model: PeftModel, folder: str | Path) -> Path:
    """Save the model the adapter in `folder` applies to as `folder/base`, and point the adapter config at it.

    `train-pc2l --lora` calls it before training (the base is the model as it started, so that every `checkpoint-N`
    the run saves loads with it, even if the run stops), then `point_adapter_at_base` once the adapter is saved
    (`trainer.save_model()`); an adapter config already in `folder` is pointed at the base here (see the module
    docstring for why an absolute path).

    Returns:
        `Path`: the base folder.
    """
    folder = Path(folder)
    trained = model.get_base_model()
    base = PC2LForConditionalGeneration(copy.deepcopy(trained.config))
    base.load_state_dict(base_state_dict(model))  # strict: every base weight accounted for
    base.generation_config = copy.deepcopy(trained.generation_config)
    base_dir = (folder / BASE_FOLDER).resolve()
    base.save_pretrained(base_dir)
    if (folder / ADAPTER_CONFIG_FILE).is_file():
        point_adapter_at_base(folder)
    for config in model.peft_config.values():  # a later save of this model keeps the same base
        config.base_model_name_or_path = str(base_dir)
    return base_dir


def point_adapter_at_base(folder: str | Path, run_folder: str | Path | None = None) -> None:
    """Rewrite the `adapter_config.json` in `folder` (as peft saved it) to name the run's `base/` (absolute path)
    and `transformers.AutoModel` as the base's class (an `AutoPeftModel` allowlists it; peft names the model's own
    class). `run_folder` (defaults to `folder`) is the run's folder, when `folder` is where its save is staged."""
    config_path = Path(folder) / ADAPTER_CONFIG_FILE
    adapter_config = json.loads(config_path.read_text())
    base_dir = (Path(folder if run_folder is None else run_folder) / BASE_FOLDER).resolve()
    adapter_config |= {"base_model_name_or_path": str(base_dir), "auto_mapping": AUTO_MAPPING}
    config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")  # as peft writes it


def load_lora_pc2l(adapter_dir: str | Path, base: str | Path | None = None) -> PeftModel:
    """Load a LoRA-trained PC2L model from its run folder (as `train-pc2l --lora` writes it).

    The standard `PeftModel.from_pretrained(PC2LForConditionalGeneration.from_pretrained(base), adapter_dir)`, with
    the base found inside the run folder, so it works wherever the folder has moved.

    A `checkpoint-N` folder of the run (the Trainer's, for `--resume_from_checkpoint`) loads too, as the model at
    step N: its adapter applies to the run's own `base/`.

    Args:
        adapter_dir: folder with the adapter and its `base/` folder, or one of the run's `checkpoint-N` folders.
        base (`str` or `Path`, *optional*): the base PC2L checkpoint, when not `adapter_dir/base`.

    Returns:
        `PeftModel` in eval mode.
    """
    folder = Path(adapter_dir)
    base_dir = Path(base) if base is not None else folder / BASE_FOLDER
    if base is None and not base_dir.exists() and re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-\d+", folder.name):
        base_dir = folder.parent / BASE_FOLDER
        if not (base_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{folder} is a checkpoint of a `train-pc2l --lora` run without {base_dir} (an older version wrote "
                f"it only when training ended): finish the run (--resume_from_checkpoint {folder}), then load it"
            )
    if not (base_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{base_dir} holds no PC2L checkpoint: {folder} is not a `train-pc2l --lora` output"
        )
    require_model_type(base_dir, PC2LConfig.model_type, "the LoRA run's base", "retrain the run")
    _check_adapter(folder)
    base_model = load_whole(PC2LForConditionalGeneration, base_dir, "the LoRA run's base")  # no random weights
    try:
        model = PeftModel.from_pretrained(base_model, folder).eval()
    except (KeyError, TypeError) as error:  # peft reads the config's fields without checking them
        raise ValueError(f"{folder / ADAPTER_CONFIG_FILE}: not an adapter of this run ({one_line(error)})") from error
    _check_adapter_weights(model, folder)
    return model


def _check_adapter_weights(model: PeftModel, folder: Path) -> None:
    """Refuse an adapter whose weights file lacks some of the adapter's weights (peft loads it without a word and
    leaves them as initialised: `lora_B` at zero is the base model itself) or holds a NaN or inf weight (session 43's
    review: the explanation came out as '#')."""
    path = folder / ADAPTER_WEIGHTS_FILES[0]
    adapter = get_peft_model_state_dict(model)  # the adapter's own weights; load_whole checked the base's
    if path.is_file():
        with safe_open(str(path), "pt") as handle:
            held = set(handle.keys())
        missing = sorted(set(adapter) - held)
        if missing:
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise ValueError(f"{path}: lacks {len(missing)} of the adapter's weights ({shown}); retrain the run")
    check_finite_weights(adapter, str(path), "an adapter that computes NaN; retrain the run")


def _check_adapter(folder: Path) -> None:
    """Refuse, naming the file, an adapter folder that peft would load into a traceback (a config that is not a LoRA
    one, no weights) or an allocation of any size (the rank)."""
    path = folder / ADAPTER_CONFIG_FILE
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{path}: not JSON ({one_line(error)})") from error
    peft_type = settings.get("peft_type") if isinstance(settings, dict) else None
    if peft_type != "LORA":
        raise ValueError(f"{path}: not a LoRA adapter config (peft_type {peft_type!r}); train-pc2l --lora writes one")
    patterns = settings.get("rank_pattern") or {}  # peft's per-module ranks, which override `r`
    if not isinstance(patterns, dict):
        raise ValueError(f"{path}: rank_pattern {patterns!r} is not a mapping of module names to ranks")
    for name, rank in [("r", settings.get("r")), *((f"rank_pattern[{key!r}]", value) for key, value in patterns.items())]:
        if not isinstance(rank, int) or isinstance(rank, bool) or not 1 <= rank <= MAX_LORA_RANK:
            raise ValueError(f"{path}: {name} {rank!r} is not a LoRA rank in [1, {MAX_LORA_RANK}]")
    if not any((folder / name).is_file() for name in ADAPTER_WEIGHTS_FILES):
        raise FileNotFoundError(f"{folder} has no adapter weights ({' or '.join(ADAPTER_WEIGHTS_FILES)})")


__all__ = [
    "AUTO_MAPPING",
    "BASE_FOLDER",
    "CROSS_ATTENTION_PATTERN",
    "GATED_CROSS_ATTENTION_PATTERN",
    "GATED_SELF_ATTENTION_PATTERN",
    "SELF_ATTENTION_PATTERN",
    "apply_lora",
    "base_state_dict",
    "load_lora_pc2l",
    "lora_target_pattern",
    "point_adapter_at_base",
    "save_lora_base",
]
