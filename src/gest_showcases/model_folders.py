"""Which model a checkpoint holds, read from its `config.json` before any weights load.

transformers' `from_pretrained` loads any checkpoint into any class: given another model's folder it only logs a
table of missing weights and returns a randomly initialised model, which a command would then train, push or
generate with. `require_model_type` turns that into one line naming the option, before anything loads.
This module imports only transformers' config class and `errors`, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from transformers import PretrainedConfig

from gest_showcases.errors import InputError, one_line


def require_model_type(source: str | Path, expected: str | Collection[str], option: str, hint: str) -> dict:
    """Refuse `source` (a folder or Hub repo) unless its config's `model_type` is `expected` (or one of them).

    `option` names what the user passed (`--selector`, or a keyword argument's name); `hint` says what to pass
    instead. Returns the config as a dict.

    Raises:
        InputError: "OPTION SOURCE: no model config there (...)" or "OPTION SOURCE: holds a 'pc2l' model, not
            'dpp_image_selector'; HINT".
    """
    accepted = (expected,) if isinstance(expected, str) else tuple(expected)
    try:
        config, _ = PretrainedConfig.get_config_dict(str(source))
    except (OSError, ValueError) as error:  # no folder or Hub repo, no config.json, a config that is not JSON
        raise InputError(f"{option} {source}: no model config there ({one_line(error)})") from error
    found = config.get("model_type")
    if found not in accepted:
        wanted = " or ".join(repr(name) for name in accepted)
        raise InputError(f"{option} {source}: holds a {found!r} model, not {wanted}; {hint}")
    return config


__all__ = ["require_model_type"]
