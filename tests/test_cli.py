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


@pytest.mark.parametrize("outcome", ["returns", "fails"])
def test_the_command_process_group_is_closed_when_it_ends(outcome, tmp_path, monkeypatch, capsys):
    """A gloo group left to interpreter shutdown can abort a torchrun worker after its work is done (seen
    in CI as SIGABRT, "terminate called without an active exception"); the CLI closes it either way."""
    import types

    import torch.distributed as dist

    from gest_showcases.errors import InputError

    def main(argv, prog=None):
        dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
        if outcome == "fails":
            raise InputError("bad input")
        return 0

    module = types.ModuleType("gest_showcases_group_command")
    module.main = main
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli.SUBCOMMANDS, "group", (module.__name__, "joins a process group"))
    assert cli.main(["group"]) == (0 if outcome == "returns" else 2)
    assert not dist.is_initialized()


def test_a_command_module_run_as_a_script_follows_the_cli_error_rule(tmp_path):
    """`python -m gest_showcases.commands.MODULE` (how the README launches features under accelerate) gets the
    CLI's one error line and exit 2, not a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "gest_showcases.commands.stats", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"gest-showcases stats: error: {tmp_path / 'missing'}: no such folder; pass a folder `build` wrote"
    ]
