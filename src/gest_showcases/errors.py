"""The package's one user-facing error.

`InputError` is raised for input the user can fix (a bad file, a bad flag, a folder that would be
overwritten): the `gest-showcases` command prints its message as one line on stderr and exits 2,
without a traceback unless `--debug`. It subclasses `ValueError`, so library callers that already
catch `ValueError` keep working. This module imports nothing, so every layer may raise it.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input the user can fix; the message says what is wrong and what to do."""


def one_line(error: BaseException, limit: int = 300) -> str:
    """A library's error message on one line, cut to `limit` characters (some span a paragraph), for an `InputError`
    that names what the user gave and why a library refused it."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
