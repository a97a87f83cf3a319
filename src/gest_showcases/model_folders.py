"""Which model a checkpoint holds, read from its `config.json` before any weights load.

transformers' `from_pretrained` loads any checkpoint into any class: given another model's folder it only logs a
table of missing weights and returns a randomly initialised model, which a command would then train, push or
generate with. `require_model_type` turns that into one line naming the option, before anything loads.
`Trainer.save_model` writes over any model an `--output_dir` holds: `check_output_folder` refuses a folder
of another kind of model than the run saves, so a typo never replaces a trained CLIP or selector.
This module imports only transformers' config class and `errors`, so every layer may use it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
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


@contextmanager
def loading(option: str, source: str | Path) -> Iterator[None]:
    """Turn a loader's `OSError` for `source` into one line naming `option`. transformers and huggingface_hub
    raise one, with a paragraph that does not name the path, for a folder or Hub repo that is not there, or
    for a Hub repo while offline.

    Raises:
        InputError: "OPTION SOURCE: cannot be loaded (the library's message on one line)".
    """
    try:
        yield
    except InputError:
        raise
    except OSError as error:
        raise InputError(f"{option} {source}: cannot be loaded ({one_line(error)})") from error


def check_output_folder(output_dir: str | Path, model_type: str, command: str) -> None:
    """Refuse `output_dir` when its `config.json` is another model kind than the `model_type` `command` saves.

    A folder the same command wrote (a rerun) or a folder with no model stays allowed, as `Trainer` allows it; a
    file is refused.

    Raises:
        InputError: "--output_dir DIR: holds a 'gest_conv_image_tower' model, which COMMAND would overwrite
            with a 'gpt2' one; give a new folder".
    """
    if Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise InputError(f"--output_dir {output_dir}: a file, not a folder; give a folder to save the run into")
    config = Path(output_dir) / "config.json"
    if not config.is_file():
        return
    try:
        found = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not a JSON object
        found = "unreadable"
    if found != model_type:
        raise InputError(
            f"--output_dir {output_dir}: holds a {found!r} model, which {command} would overwrite with a "
            f"{model_type!r} one; give a new folder"
        )


__all__ = ["check_output_folder", "loading", "require_model_type"]
