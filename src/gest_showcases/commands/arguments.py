"""Flag groups shared by the subcommands, and the one parser that reads them with `--config FILE.yaml`.

A command lists its own argument dataclass and the groups below; `parse_args` turns them into one
`HfArgumentParser`, as transformers' example scripts combine `ModelArguments`, `DataTrainingArguments` and
`TrainingArguments`, so a flag has the same name, meaning and help in every command that takes it:

- `OutputArguments`: `--output_dir`, the folder a command writes; `LegacyOutputArguments` also accepts the
  `--output` spelling of older releases, with a `FutureWarning`, for one release.
- `DatasetArguments`: `--dataset`, the built dataset folder a command reads, and `--images`, the folder of its
  photos when they lie outside it (the build's `--images`).
- `DatasetConfigArguments`: `--dataset_config_name` (`raw`, `s1`, `s2`), as transformers' examples name it.
- `--config FILE.yaml` on every command: the file's keys are the flags' names (without `--`); flags on the
  command line override them. A `--config` value that is not a `.yaml`/`.yml` file is the old spelling of
  `--dataset_config_name` (`--config s1`) where a command reads a dataset config, with a `FutureWarning`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from transformers import HfArgumentParser, TrainingArguments
from transformers.hf_argparser import string_to_bool

from gest_showcases.data.records import CONFIGS
from gest_showcases.errors import InputError, check_at_least, one_line
from gest_showcases.files import write_text_atomically
from gest_showcases.model_folders import check_not_a_file

CONFIG_FLAG = "--config"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class OutputArguments:
    """Where a command writes."""

    output_dir: str | None = field(
        default=None, metadata={"help": "folder to write (see the command's description)"}
    )

    def __post_init__(self):
        check_not_a_file(self.output_dir)


# The file by which a folder of many outputs says which command made it (`claim_output_folder`).
OWNER_FILE = ".gest-showcases-owner"


def claim_output_folder(folder: Path, command: str, earlier_outputs: Sequence[str] = ()) -> None:
    """Make `folder` the home of `command`'s outputs, or take it back on a rerun; refuse a folder of other files.

    The demo and the experiment write fixed subfolders (`dataset/`, `clip/`, `selector/`, ...) that their stages
    replace when they run again. In a folder of the user's own work those could be a real dataset or model, so a
    folder is taken only when it is new or empty, when it holds `command`'s mark (written first: an interrupted run
    is taken back too), or, made by a release before the mark, when it holds every one of `earlier_outputs`.

    Raises:
        InputError: the folder holds something else; nothing in it was touched.
    """
    mark = folder / OWNER_FILE
    if folder.is_dir() and any(folder.iterdir()):
        owner = mark.read_text(encoding="utf-8").strip() if mark.is_file() else None
        made_before_the_mark = owner is None and bool(earlier_outputs) and all(
            (folder / name).exists() for name in earlier_outputs
        )
        if owner != command and not made_before_the_mark:
            made_by = f"`{owner}`" if owner else "something else"
            raise InputError(
                f"--output_dir {folder} holds files written by {made_by}, not by `{command}`, which replaces the "
                "folders it writes there; give a new or empty folder"
            )
    folder.mkdir(parents=True, exist_ok=True)
    if not mark.is_file():
        write_text_atomically(mark, command + "\n")


def check_file_option(option: str, value: str | None) -> None:
    """Refuse a folder where a command writes one file (`--plot`, the old `--html FILE`): it would be written
    beside it under another name, or fail after the work."""
    if value is not None and Path(value).is_dir():
        raise InputError(f"{option} {value}: a folder; give the path of the file to write in it")


@dataclass
class LegacyOutputArguments(OutputArguments):
    """`OutputArguments` of a command that took `--output` before: that spelling still works for one release."""

    output: str | None = field(
        default=None, metadata={"help": "deprecated spelling of --output_dir (kept for one release)"}
    )

    def __post_init__(self):
        take_deprecated_spelling(self, "output", "output_dir", conflict="name different folders")
        super().__post_init__()


@dataclass
class DatasetArguments:
    """The built dataset folder a command reads, and where its photos are."""

    dataset: str = field(metadata={"help": "built dataset folder (gest-showcases build --output_dir)"})
    images: str | None = field(
        default=None,
        metadata={
            "help": "folder of the dataset's photos when they are outside the dataset folder (the build's "
            "--images); stored image paths may only lead into the dataset folder or this one"
        },
    )


@dataclass
class DatasetConfigArguments:
    """Which config of a built dataset folder a command reads."""

    dataset_config_name: str = field(
        default="s1",
        metadata={
            "help": f"dataset config to read ({', '.join(CONFIGS)}; --config NAME is its deprecated spelling)"
        },
    )


def take_deprecated_spelling(arguments, old: str, new: str, target=None, conflict: str = "disagree") -> None:
    """Move the value of the old spelling `--old` of a flag into `--new`, with a `FutureWarning`, for one release.

    Call from the `__post_init__` of an argument dataclass whose field `old` defaults to None, or after parsing when
    `--new` lives in another dataclass (`target`, default: `arguments`). Both spellings given with different values
    is an `InputError` ("--old A and --new B <conflict>"; a `new` equal to its default counts as not given: a
    dataclass cannot tell).
    """
    target = arguments if target is None else target
    value = getattr(arguments, old)
    if value is None:
        return
    warnings.warn(
        f"--{old} is deprecated and will be removed in the next release; use --{new}",
        FutureWarning,
        stacklevel=1,  # the generated __init__ of the dataclass would be no better a place to point at
    )
    default = type(target).__dataclass_fields__[new].default
    current = getattr(target, new)
    if current != default and current != value:
        raise InputError(f"--{old} {value} and --{new} {current} {conflict}: give --{new} only")
    setattr(target, new, value)


def take_deprecated_file_option(arguments, old: str, file_name: str) -> None:
    """Check the old `--old FILE` of a command that wrote one file where `--output_dir DIR` now writes
    `DIR/file_name` (`showcase --html`, `diversity --output`), with a `FutureWarning`, for one release.

    Not `take_deprecated_spelling`: the old flag names a file, not a folder, and keeps doing so for its last
    release (`output_file`). A folder given as the file, or both flags, is an `InputError`.
    """
    value = getattr(arguments, old)
    if value is None:
        return
    check_file_option(f"--{old}", value)
    warnings.warn(
        f"--{old} is deprecated and will be removed in the next release; use --output_dir (which writes "
        f"{file_name} there)",
        FutureWarning,
        stacklevel=1,  # the generated __init__ of the dataclass would be no better a place to point at
    )
    if arguments.output_dir is not None:
        raise InputError(
            f"--{old} {value} and --output_dir {arguments.output_dir} name different places: give "
            "--output_dir only"
        )


def output_file(arguments, old: str, file_name: str) -> Path | None:
    """The file a command writes: the old `--old FILE` itself, else `DIR/file_name` of `--output_dir DIR`."""
    if getattr(arguments, old) is not None:
        return Path(getattr(arguments, old))
    return None if arguments.output_dir is None else Path(arguments.output_dir) / file_name


def is_yaml_file(value: str) -> bool:
    return value.lower().endswith(YAML_SUFFIXES)


class _Parser(HfArgumentParser):
    """`HfArgumentParser` whose errors are one line: argparse prints the whole usage first (150 lines for
    train-pc2l's), which buries the message."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _parser(dataclass_types: Sequence[type], prog, description, add_arguments) -> HfArgumentParser:
    parser = _Parser(dataclass_types, prog=prog, description=description, allow_abbrev=False)
    parser.add_argument(
        CONFIG_FLAG,
        metavar="FILE.yaml",
        help="YAML file of this command's options (keys are the flag names without --); flags given on the "
        "command line override it",
    )
    if add_arguments is not None:
        add_arguments(parser)
    if any(issubclass(dtype, TrainingArguments) for dtype in dataclass_types):
        # TrainingArguments would fill in ./trainer_output: a run saved where the user never asked.
        for action in parser._actions:
            if action.dest == "output_dir":
                action.required = True
    return parser


def load_options_file(path: str):
    """A `--config` file parsed as `HfArgumentParser.parse_yaml_file` parses it (`yaml.safe_load`); one line naming
    the file for one that is no YAML (the generic message of a `yaml.YAMLError` names no file)."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise InputError(f"{path}: not a YAML file of options ({one_line(error)}); fix the file") from error
    except RecursionError as error:  # nesting deeper than the parser's stack
        raise InputError(f"{path}: YAML nested too deep; fix the file") from error


def _read_yaml(path: str, parser: HfArgumentParser) -> dict:
    """The options of a `--config` file (`load_options_file`), checked against the parser's options."""
    values = load_options_file(path) or {}
    if not isinstance(values, dict):
        raise InputError(f"{path}: a --config file is a YAML mapping of option: value; fix the file")
    known = {action.dest for action in parser._actions} - {"help", "config"}
    unknown = sorted(str(key) for key in values if key not in known)
    if unknown:
        raise InputError(f"{path}: unknown options {', '.join(unknown)}; see {parser.prog} --help")
    # A field typed to hold a list or a mapping as well as text (TrainingArguments' `report_to`, `fsdp_config`)
    # takes the file's list or mapping as it is; argparse sees only its text form.
    # (Read from the classes' annotations: `HfArgumentParser` rewrites a union field's `type` to `str`.)
    containers = {
        name
        for dtype in parser.dataclass_types
        for klass in dtype.__mro__
        for name, annotation in vars(klass).get("__annotations__", {}).items()
        if any(kind in str(annotation).lower() for kind in ("list", "dict"))
    }
    for action in parser._actions:
        value = values.get(action.dest)
        passes = action.dest in containers and action.nargs not in ("+", "*") and isinstance(value, (list, dict))
        if value is not None and not passes:
            values[action.dest] = _file_value(action, value, path)
    return values


def _file_value(action: argparse.Action, value, path: str):
    """A `--config` file's value as the same option's value on the command line: `parse_dict` checks no types,
    so an unquoted id (`user: 1509867`) would stay a number, `seeds: 1.5` a float, `methods: img` a string where
    a list goes, each failing later or silently changing the run.

    Text is converted as the command line converts it (YAML reads `1e-4`, no dot, and quoted values as text); a
    whole number in a text option becomes its digits; one value in a list option becomes a list of one.
    """
    many = action.nargs in ("+", "*")
    if many and not isinstance(value, list):
        value = [value]
    items = value if many else [value]
    if any(isinstance(item, (list, dict)) for item in items):
        raise _invalid(path, action, value, "give a list of plain values" if many else "give one value")
    items = [_file_item(action, item, path) for item in items]
    return items if many else items[0]


def _invalid(path: str, action: argparse.Action, value, why: str) -> InputError:
    return InputError(f"{path}: {action.dest}: {value!r} is not a valid value ({why}); fix the file")


def _file_item(action: argparse.Action, item, path: str):
    if isinstance(item, str):
        if action.type in (None, str):
            return item
        try:
            return action.type(item)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
            raise _invalid(path, action, item, str(error)) from None
    if isinstance(item, bool):
        if action.type in (int, float, str):
            raise _invalid(path, action, item, "true/false where a text or a number goes")
        return item
    if action.type is str:
        if isinstance(item, int):
            return str(item)  # an id written without quotes: its digits, exactly
        raise _invalid(path, action, item, "a number where text goes: quote it")
    if action.type is int and not isinstance(item, int):
        raise _invalid(path, action, item, "give a whole number")
    if action.type is float and isinstance(item, int):
        return float(item)
    # YAML also reads dates and times: only a number goes where a number goes, only true/false where a switch goes.
    if action.type is float and not isinstance(item, float):
        raise _invalid(path, action, item, "give a number")
    if action.type is string_to_bool:
        raise _invalid(path, action, item, "give true or false")
    return item


def _given_flags(parser: HfArgumentParser, argv: list[str]) -> dict:
    """The options `argv` gives, converted by their flags' types; nothing for the options it leaves out."""
    # The same flags with no defaults and none required, so that absent options stay absent and the file's
    # values stand. (argparse keeps its actions in `_actions`; there is no public way to relax them.)
    for action in parser._actions:
        if action.dest != "help":
            action.default = argparse.SUPPRESS
            action.required = False
    given = vars(parser.parse_args(argv))
    given.pop("config", None)
    return given


def _into_dataclasses(parser: HfArgumentParser, argv: list[str]) -> tuple:
    """`parse_args_into_dataclasses(argv)`, with an unknown option as a parser error (one line, exit 2): transformers
    raises a ValueError for it, which would print a traceback for a typo."""
    *outputs, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if remaining:
        parser.error(f"unrecognized arguments: {' '.join(remaining)}")
    return _without_config(tuple(outputs))


def _without_config(outputs: tuple) -> tuple:
    """`parse_args_into_dataclasses`' outputs less the `--config` value (read already), and less an empty Namespace."""
    *instances, last = outputs
    if not isinstance(last, argparse.Namespace):
        return outputs
    vars(last).pop("config", None)
    return (*instances, last) if vars(last) else tuple(instances)


def check_device(arguments, name: str = "device") -> None:
    """Refuse a `--device` torch cannot parse, or a CUDA one on a machine without CUDA, before anything loads:
    torch would stop with a traceback once the models are loaded."""
    import torch  # only the commands that take a device pay for it

    value = getattr(arguments, name)
    if value is None:
        return
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise InputError(f"--{name} {value!r}: not a torch device; give cpu, cuda, cuda:1, ...") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--{name} {value}: this machine has no CUDA device; give --{name} cpu")


# What torch and NumPy accept: a seed is a 32-bit unsigned number (`np.random.seed`), an Adam learning rate a float32,
# a count an index (`itertools.islice`: at most sys.maxsize).
_SEED_RANGE = (0, 2**32 - 1)
_LARGEST_LEARNING_RATE = 3.4e38
_LARGEST_COUNT = sys.maxsize


def check_numbers(instances: Sequence) -> None:
    """Refuse, in every option of the parsed dataclasses (ours and `TrainingArguments`), what the libraries below
    would refuse with a traceback mid-run: NaN and infinity in a float option (none has a use for them, and a NaN
    learning rate or loss weight would fail mid-run or train a NaN), a seed outside 0..2**32 - 1, a learning rate
    beyond float32, a whole number beyond sys.maxsize."""
    for instance in instances:
        if not dataclasses.is_dataclass(instance):
            continue
        for item in dataclasses.fields(instance):
            value = getattr(instance, item.name, None)
            for number in value if isinstance(value, list) else [value]:
                if isinstance(number, float) and not math.isfinite(number):
                    raise InputError(f"--{item.name} {number}: give a finite number")
                if isinstance(number, bool) or not isinstance(number, int | float):
                    continue
                if item.name.endswith("seed") and not _SEED_RANGE[0] <= number <= _SEED_RANGE[1]:
                    raise InputError(f"--{item.name} {number}: give a whole number from 0 to {_SEED_RANGE[1]}")
                if item.name.endswith("learning_rate") and number > _LARGEST_LEARNING_RATE:
                    raise InputError(f"--{item.name} {number}: give a number below {_LARGEST_LEARNING_RATE:g}")
                if isinstance(number, int) and abs(number) > _LARGEST_COUNT:
                    raise InputError(f"--{item.name} {number}: too large (at most {_LARGEST_COUNT})")


def parse_args(
    dataclass_types: Sequence[type],
    argv: list[str] | None = None,
    prog: str | None = None,
    *,
    description: str | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> tuple:
    """One instance per type of `dataclass_types` from `argv` (default `sys.argv[1:]`) and its `--config` file.

    `add_arguments(parser)` may add plain argparse arguments (a positional folder); their values come back in an
    `argparse.Namespace` after the instances, as `HfArgumentParser.parse_args_into_dataclasses` returns them.
    Every number must be usable (`check_numbers`): finite floats, seeds, learning rates and counts in range.
    """
    try:
        instances = _parse_args(dataclass_types, argv, prog, description, add_arguments)
    except InputError:
        raise
    except ValueError as error:  # TrainingArguments' own checks (`--warmup_steps -3`), raised as it is built
        raise InputError(one_line(error)) from error
    check_numbers(instances)
    for instance in instances:
        if isinstance(instance, TrainingArguments):  # else torch refuses them with a traceback at the first step
            check_at_least(instance, learning_rate=0, per_device_train_batch_size=1)
            if instance.max_steps <= 0 and instance.num_train_epochs <= 0:  # would save an untrained model
                raise InputError(f"--num_train_epochs {instance.num_train_epochs}: give a number > 0 (or --max_steps)")
            check_report_to(instance)
            if instance.push_to_hub:  # else the Trainer fails to create the repo once data and model are ready
                from huggingface_hub import constants

                if constants.HF_HUB_OFFLINE:
                    raise InputError("--push_to_hub: the Hub is off (HF_HUB_OFFLINE is set); unset it, or leave "
                                     "--push_to_hub out and publish later with `gest-showcases push`")  # fmt: skip
    return instances


def check_report_to(training_args: TrainingArguments) -> None:
    """Refuse a `--report_to` integration that is not installed: transformers raises a RuntimeError traceback when
    the Trainer is built, after the data and the model are ready."""
    from transformers.integrations import get_available_reporting_integrations

    available = set(get_available_reporting_integrations())
    missing = [name for name in training_args.report_to if name not in available | {"none", "all"}]
    if missing:
        raise InputError(f"--report_to {' '.join(missing)}: not installed here (installed: "
                         f"{', '.join(sorted(available)) or 'none'}); install it or pass --report_to none")  # fmt: skip


def _parse_args(dataclass_types, argv, prog, description, add_arguments) -> tuple:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(dataclass_types, prog, description, add_arguments)
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument(CONFIG_FLAG)
    known, rest = pre.parse_known_args(argv)
    config = known.config
    if config is None or "-h" in argv or "--help" in argv:
        return _into_dataclasses(parser, argv)
    if not is_yaml_file(config):
        if not any(issubclass(kind, DatasetConfigArguments) for kind in dataclass_types):
            parser.error(f"{CONFIG_FLAG} takes a YAML file of options (FILE.yaml), not {config!r}")
        warnings.warn(
            f"{CONFIG_FLAG} {config} is deprecated: in the next release {CONFIG_FLAG} takes a YAML file of options "
            f"only; use --dataset_config_name {config}",
            FutureWarning,
            stacklevel=1,  # the generated __init__ of the dataclass would be no better a place to point at
        )
        # First, so that an explicit --dataset_config_name later on the line wins, as later flags do.
        return _into_dataclasses(parser, ["--dataset_config_name", config, *rest])
    return _parse_with_file(parser, _parser(dataclass_types, prog, description, add_arguments), config, rest)


def _parse_with_file(
    parser: HfArgumentParser, relaxed: HfArgumentParser, path: str, argv: list[str]
) -> tuple:
    """The options of the YAML file `path`, overridden by those `argv` gives, as `parser` would return them.

    `HfArgumentParser.parse_yaml_file` alone needs every required option in the file and takes no command line, so
    the file is read as it reads it and the two are merged into one dict for `parse_dict`, the method it calls.
    """
    values = {**_read_yaml(path, parser), **_given_flags(relaxed, argv)}
    actions = [action for action in parser._actions if action.dest not in ("help", "config")]
    missing = [
        "/".join(action.option_strings) or action.dest
        for action in actions
        if action.required and values.get(action.dest) is None  # `dataset: null` in the file is no value either
    ]
    if missing:
        parser.error(
            f"the following arguments are required (on the command line or in {path}): {', '.join(missing)}"
        )
    for action in actions:  # argparse checks the command line's values; the file's are checked here
        if action.choices is None or action.dest not in values:
            continue
        value = values[action.dest]
        if any(item not in action.choices for item in (value if isinstance(value, list) else [value])):
            parser.error(
                f"{path}: {action.dest}: {value!r} is not one of {', '.join(map(str, action.choices))}"
            )
    fields = {name for dtype in parser.dataclass_types for name in dtype.__dataclass_fields__}
    instances = parser.parse_dict({key: value for key, value in values.items() if key in fields})
    extras = {
        action.dest: values.get(action.dest, action.default)
        for action in actions
        if action.dest not in fields
    }
    return (*instances, argparse.Namespace(**extras)) if extras else instances
