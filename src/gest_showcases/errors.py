"""The package's one user-facing error.

`InputError` is raised for input the user can fix (a bad file, a bad flag, a folder that would be
overwritten): the `gest-showcases` command prints its message as one line on stderr and exits 2,
without a traceback unless `--debug`. It subclasses `ValueError`, so library callers that already
catch `ValueError` keep working. `check_at_least` and `check_at_most` refuse an option outside its sensible range with one.
This module imports nothing of the package, so every layer may raise it.
"""

from __future__ import annotations

import math


class InputError(ValueError):
    """Bad input the user can fix; the message says what is wrong and what to do."""


def one_line(error: BaseException, limit: int = 300) -> str:
    """A library's error message on one line, cut to `limit` characters (some span a paragraph), for an `InputError`
    that names what the user gave and why a library refused it."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_at_least(arguments, **bounds: float) -> None:
    """Refuse an option under its least sensible value, naming the flag: `check_at_least(args, num_train_epochs=1)`.

    For the `__post_init__` of an argument or config dataclass, so that a value that would fail (or train nothing)
    after minutes of work is one line before any work starts.

    Raises:
        InputError: "--name VALUE: give a number >= BOUND", or "give a finite number" for NaN and infinity.
    """
    for name, bound in bounds.items():
        value = _number(arguments, name)
        if value is not None and value < bound:
            raise InputError(f"--{name} {value}: give a number >= {bound}")


def check_at_most(arguments, **bounds: float) -> None:
    """Refuse an option over its largest sensible value, naming the flag, as `check_at_least` does under the least
    (for sizes whose typo, e.g. `1e300`, would otherwise run out of memory or never finish)."""
    for name, bound in bounds.items():
        value = _number(arguments, name)
        if value is not None and value > bound:
            raise InputError(f"--{name} {value}: give a number <= {bound:,}")


def _number(arguments, name: str) -> float | None:
    """`arguments.name` if it is a finite number or None; otherwise the one-line refusal."""
    value = getattr(arguments, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):  # a YAML --config can hold anything
        raise InputError(f"--{name} {value!r}: give a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"--{name} {value}: give a finite number")
    return value
