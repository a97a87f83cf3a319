"""Which model a checkpoint holds, read from its `config.json` before any weights load.

transformers' `from_pretrained` loads any checkpoint into any class: given another model's folder it only logs a
table of missing weights and returns a randomly initialised model, which a command would then train, push or
generate with. `require_model_type` turns that into one line naming the option, before anything loads.
`Trainer.save_model` writes over any model an `--output_dir` holds: `check_model_output_dir` refuses a folder
of another kind of model than the run saves, so a typo never replaces a trained CLIP or selector. `loading`
names the option when a model or tokenizer cannot be loaded at all (a missing folder, a config of wrong types,
weights or a GGUF file cut short). `without_chat_template` is the tokenizer a generator folder saves.
This module imports only torch, transformers, huggingface_hub, safetensors and `errors`, so every layer may use it.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import struct
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError, safe_open
from transformers import AutoConfig, PretrainedConfig
from transformers.utils import ADAPTER_CONFIG_NAME  # peft's adapter_config.json: what marks a LoRA run folder

from gest_showcases.errors import InputError, one_line
from gest_showcases.files import holds_the_current_folder
from gest_showcases.numerics import check_finite_weights


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
    if not isinstance(config, dict):  # `[1, 2]` is JSON too
        raise InputError(f"{option} {source}: its config.json is not a JSON object (not a model); {hint}")
    found = config.get("model_type")
    if found not in accepted:
        wanted = " or ".join(repr(name) for name in accepted)
        held = f"a {found!r} model" if found is not None else "a config.json without a model_type (not a model)"
        raise InputError(f"{option} {source}: holds {held}, not {wanted}; {hint}")
    return config


def check_tokenizer_fits(tokenizer, tokenizer_name: str | Path, vocab_size: int, decoder_name: str | Path) -> None:
    """Refuse a tokenizer whose ids reach past the decoder's vocabulary (`vocab_size`, from the decoder's config):
    they would fail deep inside its embedding, mid-training (an IndexError, or a device-side assert on a GPU).

    Raises:
        InputError: "tokenizer T has token ids up to N, past the vocabulary of decoder D (M): pass the decoder's own
            tokenizer".
    """
    special = [token for token in (tokenizer.bos_token_id, tokenizer.eos_token_id) if token is not None]
    largest = max(tokenizer.vocab_size - 1, *special)
    if largest >= vocab_size:
        raise InputError(
            f"tokenizer {tokenizer_name} has token ids up to {largest}, past the vocabulary of decoder {decoder_name} "
            f"({vocab_size}): pass the decoder's own tokenizer"
        )


@contextmanager
def loading(
    option: str, source: str | Path, failure: str = "cannot be loaded", hint: str | None = None
) -> Iterator[None]:
    """Turn a loader's error for `source` into one line naming `option`. transformers and huggingface_hub
    raise an `OSError`, with a paragraph that names neither, for a folder or Hub repo that is not there or a
    Hub repo while offline, and a `ValueError` for a folder that holds no such model or tokenizer. Wrap only
    the loader's call: every `ValueError` inside is reported as the option's.

    Raises:
        InputError: "OPTION SOURCE: FAILURE (the library's message on one line)[; HINT]"; an `InputError` of
            the loader's own gets the "OPTION SOURCE: " prefix unless its message starts with it.
    """
    prefix = f"{option} {source}: "
    try:
        yield
    except InputError as error:
        if str(error).startswith(prefix):
            raise
        raise InputError(prefix + str(error)) from error
    # Also a config.json of wrong types (huggingface_hub's strict dataclasses) or of sizes its weights do not have
    # (RuntimeError: size mismatch), a weights file cut short (a save that was killed: SafetensorError) or a GGUF file
    # cut short (struct.error from its reader): the folder's fault, not a bug.
    # A pickled weights file that torch's weights-only loader refuses (UnpicklingError): nothing in it ran.
    except (OSError, ValueError, RuntimeError, StrictDataclassError, SafetensorError, struct.error,
            pickle.UnpicklingError) as error:  # fmt: skip
        raise InputError(f"{prefix}{failure} ({one_line(error)})" + (f"; {hint}" if hint else "")) from error


def without_chat_template(tokenizer):
    """A shallow copy of `tokenizer` without its chat template, to save beside a generator. PC2L and the baselines
    frame each explanation as BOS text EOS and never apply a template, and the template is the one tokenizer file
    transformers writes back verbatim (`chat_template.jinja`): one that a link in a user's folder read from elsewhere
    (a key, a token) would otherwise be saved and published."""
    saved = copy.copy(tokenizer)
    saved.chat_template = None
    return saved


def load_whole(model_class, source: str | Path, option: str, **kwargs):
    """`model_class.from_pretrained(source, **kwargs)`, refused when the weights file lacks a weight the model has,
    holds one it has not, or one of another shape: transformers fills such a gap with random values after a warning,
    and the run goes on with a model nobody trained. A NaN or inf weight is refused too. Call it inside
    `loading(option, source)`.

    Raises:
        InputError: "OPTION SOURCE: its weights do not fit the model (missing: ...; unexpected: ...)".
        NonFiniteError: "OPTION SOURCE: 2 of 79 weight tensors hold NaN or inf (...)".
    """
    _check_the_weights_cover_the_config(model_class, source, option, kwargs.get("config"))
    model, info = model_class.from_pretrained(source, output_loading_info=True, **kwargs)
    gaps = [
        f"{label}: {', '.join(sorted(map(str, info[key]))[:3])}{', ...' if len(info[key]) > 3 else ''}"
        for key, label in (("missing_keys", "missing"), ("unexpected_keys", "unexpected"), ("mismatched_keys", "another shape"))
        if info.get(key)
    ]
    if gaps:
        raise InputError(f"{option} {source}: its weights do not fit the model ({'; '.join(gaps)})")
    check_finite_weights(model, f"{option} {source}", "a model that computes NaN; retrain it")
    return model


def _check_the_weights_cover_the_config(model_class, source: str | Path, option: str, config=None) -> None:
    """Refuse a local folder whose config describes far more weights than its safetensors files hold, before
    `from_pretrained`, which first fills every missing weight with random values: a PC2L config.json whose decoder
    was edited to Llama's default sizes asked for 27 GB (session 43's review) before `load_whole` could refuse it.
    The model is built on the meta device (no memory) and the files' headers are read, not their tensors."""
    folder = Path(source)
    files = sorted(folder.glob("model*.safetensors")) if folder.is_dir() else []
    if not files:
        return  # a Hub name (downloaded by from_pretrained), or another weights format: checked after loading
    held = 0
    for path in files:
        with safe_open(str(path), "pt") as handle:
            names = handle.keys()  # a list (the handle itself is not iterable)
            held += sum(math.prod(handle.get_slice(name).get_shape()) for name in names)
    config_class = getattr(model_class, "config_class", None)  # None for an Auto class
    if config is None:
        config = (config_class or AutoConfig).from_pretrained(folder, trust_remote_code=False)
    with torch.device("meta"):
        model = model_class(config) if config_class is not None else model_class.from_config(config)
        described = sum(parameter.numel() for parameter in model.parameters())
    # A small gap is left to from_pretrained, whose loading info names the missing weights (load_whole's message).
    if described > 2 * held:
        raise InputError(f"{option} {source}: its config.json describes {described:,} weights, more than twice the "
                         f"{held:,} its weights files hold: the config is not the weights' (edited, or another "
                         f"model's)")  # fmt: skip


def check_not_a_file(path: str | Path | None, option: str = "--output_dir") -> None:
    """Refuse a file where a command writes a folder: it would fail with `FileExistsError` after its work."""
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise InputError(f"{option} {path}: a file, not a folder; give a folder")


def check_model_output_dir(
    output_dir: str | Path, model_types: str | Collection[str], command: str, *, lora: bool = False
) -> None:
    """Refuse `output_dir` when it holds another model kind than `command` saves (`model_types`, or one
    of them): a `config.json` of another `model_type`, or a `train-pc2l --lora` run (`adapter_config.json`,
    which the pipeline and `push` would load instead of the new model) unless `lora` (a LoRA run into its own
    folder).

    A folder the same command wrote (a rerun) or a folder with no model stays allowed, as `Trainer` allows it; a
    file, and the current folder or one holding it, are refused.

    Raises:
        InputError: "--output_dir DIR: holds a 'gest_conv_image_tower' model, which COMMAND would overwrite
            with a 'gpt2' one; give a new folder".
    """
    check_not_a_file(output_dir)
    accepted = (model_types,) if isinstance(model_types, str) else tuple(model_types)
    folder = Path(output_dir)
    if holds_the_current_folder(folder):  # saved by replacing it whole (`files.saving_into`): refused before training
        raise InputError(f"--output_dir {output_dir}: is the current folder or holds it; give a subfolder")
    if (folder / ADAPTER_CONFIG_NAME).is_file():
        found = None if lora and "pc2l" in accepted else "a train-pc2l --lora run"
    elif (folder / "config.json").is_file():
        try:
            model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
            found = None if model_type in accepted else f"a {model_type!r} model"
        except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not a JSON object
            found = "an unreadable config.json"
    else:
        found = None
    if found is not None:
        raise InputError(
            f"--output_dir {output_dir}: holds {found}, which {command} would overwrite with a "
            f"{' or '.join(map(repr, accepted))} one; give a new folder"
        )


__all__ = ["check_not_a_file", "check_model_output_dir", "check_tokenizer_fits", "loading", "require_model_type"]
