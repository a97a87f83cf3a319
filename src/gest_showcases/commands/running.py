"""How every subcommand runs, however it was started: `gest-showcases NAME`, `python -m
gest_showcases.commands.MODULE`, `accelerate launch -m gest_showcases.commands.MODULE` or an example
script. One policy for errors and for the end of a run:

- Input the user can fix (`gest_showcases.errors.InputError`; a missing, unreadable or wrong-kind
  path: `FileNotFoundError`, `FileExistsError` (a file where a folder goes), `IsADirectoryError`,
  `NotADirectoryError`, `PermissionError`; a JSON or YAML file that does not parse; text that is not
  UTF-8; an image over the pixel limit or broken,
  `UnreadableImageError`) prints one line, ``gest-showcases <command>: error: <message>``, on stderr
  and exits 2, the code argparse uses for a bad option.
- Ctrl-C prints ``gest-showcases <command>: interrupted`` and exits 130 (128 + SIGINT).
- Any other exception is a bug: it keeps its traceback (exit 1). A one-line summary would make the
  user rerun to see it, and a rerun of a training or feature extraction can take hours.
- ``--debug`` anywhere in the arguments is removed from them and re-raises every error with its traceback.
- Under torchrun or `accelerate launch`, the process group the command joined is closed when it returns,
  whatever the outcome: a gloo group left to interpreter shutdown can abort the process (SIGABRT,
  "terminate called without an active exception") after its work is done, which fails the whole launch.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gest_showcases.errors import InputError

# OSErrors about a path the user gave: their message is "<strerror>: <path>".
_PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)
DEBUG_FLAG = "--debug"
# How long the process group's worker threads get, without the GIL, to free finished work before it is destroyed.
_WORKERS_DRAIN_SECONDS = 0.5


def run_command(command_main: Callable[..., int | None], name: str, argv: list[str] | None = None) -> int:
    """Run `command_main(argv, prog=...)` (a command's `main`) under the policy above; the exit code.

    Args:
        command_main (`Callable`): the command's `main(argv, prog)`.
        name (`str`): the command's name on the command line (`"features"`); messages start with
            ``gest-showcases <name>``.
        argv (`list[str]`, *optional*): its arguments, `sys.argv[1:]` by default; may hold ``--debug``.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = DEBUG_FLAG in argv
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    prog = f"gest-showcases {name}"
    completed = False
    try:
        code = command_main(argv, prog=prog) or 0
        completed = True
        return code
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        message = None if debug else user_error_message(error)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    finally:
        close_process_group(wait_for_other_processes=completed)


def user_error_message(error: BaseException) -> str | None:
    """The one-line message of an error the user can fix, or None for a bug."""
    from gest_showcases.data.images import UnreadableImageError

    yaml = sys.modules.get("yaml")  # only a command that imported yaml can raise its errors
    hub_errors = sys.modules.get("huggingface_hub.errors")  # likewise the Hub client's
    # The selector's (a ValueError of its remote-code file, which cannot import the package's NonFiniteError).
    dpp = sys.modules.get("gest_showcases.selection.modeling_dpp")
    if isinstance(error, _PATH_ERRORS) and error.filename is not None:
        message = f"{error.strerror}: {error.filename}; check the path"
    elif isinstance(error, (InputError, *_PATH_ERRORS, UnreadableImageError)) or (
        dpp is not None and isinstance(error, dpp.NonFiniteKernelError)
    ):
        message = str(error)
    elif isinstance(error, json.JSONDecodeError):
        message = f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno}); fix the file"
    elif isinstance(error, UnicodeDecodeError):
        message = f"a file is not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8"
    elif yaml is not None and isinstance(error, yaml.YAMLError):
        message = f"not valid YAML ({error}); fix the file"
    elif _raised_by_a_parser(error):
        message = "a JSON or YAML file is nested too deep to read; fix the file"
    elif hub_errors is not None and isinstance(error, hub_errors.OfflineModeIsEnabled):
        message = f"{error} (leave out what needs the Hub, or unset HF_HUB_OFFLINE)"
    else:
        return None
    return " ".join(message.split()) or type(error).__name__


def _raised_by_a_parser(error: BaseException) -> bool:
    """A `RecursionError` raised inside the json or yaml package: an input nested deeper than the parser's stack (the
    readers of the package's own formats name the file; this covers a model folder's config.json and the like).
    Any other `RecursionError` is a bug, and keeps its traceback."""
    if not isinstance(error, RecursionError) or error.__traceback__ is None:
        return False
    last = error.__traceback__
    while last.tb_next is not None:
        last = last.tb_next
    return bool({"json", "yaml"} & set(Path(last.tb_frame.f_code.co_filename).parts))


def close_process_group(wait_for_other_processes: bool = True) -> None:
    """Destroy the default torch.distributed process group if this process joined one.

    A gloo group deadlocks when it is destroyed while one of its worker threads is still freeing a finished
    collective: freeing that work's tensors needs the GIL, which the thread destroying the group holds while it
    joins the worker (seen in a stress run, and again under load with only the barrier below). So first, with
    `wait_for_other_processes`, a barrier (every process has finished the command, every collective it queued has
    run), then a pause without the GIL in which the workers free what they hold. After an error the other
    processes may be inside another collective, so there is no barrier: the launcher stops them when this one
    exits.
    """
    torch = sys.modules.get("torch")  # a command that never imported torch joined no group
    if torch is None or not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    if wait_for_other_processes:
        torch.distributed.barrier()
    time.sleep(_WORKERS_DRAIN_SECONDS)
    torch.distributed.destroy_process_group()
