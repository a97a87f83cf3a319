import subprocess
import sys

import pytest

from gest_showcases import cli


def test_help_lists_every_subcommand(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.SUBCOMMANDS:
        assert name in out


def test_unknown_command_is_an_error(capsys):
    assert cli.main(["no-such-command"]) == 2
    assert "unknown command" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(cli.SUBCOMMANDS))
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main([name, "--help"])
    assert excinfo.value.code == 0
    assert "usage" in capsys.readouterr().out.lower()


def test_no_command_module_writes_to_stderr_when_imported():
    """A command's bad input gets one line on stderr; a warning printed while its modules import (transformers'
    torchvision fallback, looked up at import, did) stood before that line. Pytest's own process has usually
    printed such one-time warnings already, so a fresh interpreter imports every command's module."""
    modules = sorted({module for module, _ in cli.SUBCOMMANDS.values()})
    code = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)"
    result = subprocess.run(
        [sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
