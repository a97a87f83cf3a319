"""The package's one user-facing error.

`InputError` is raised for input the user can fix (a bad file, a bad flag, a folder that would be
overwritten): the `gest-showcases` command prints its message as one line on stderr and exits 2,
without a traceback unless `--debug`. It subclasses `ValueError`, so library callers that already
catch `ValueError` keep working. This module imports nothing, so every layer may raise it.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input the user can fix; the message says what is wrong and what to do."""
