"""`gest-showcases stats`: print the paper's Table 1 statistics of a built dataset folder.

    gest-showcases stats FOLDER [--output_dir DIR] [--config FILE.yaml]

The counts are `gest_showcases.data.stats.dataset_stats`'. With `--output_dir` the table is also written there,
as markdown (`table1.md`) and as JSON rows (`table1.json`).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gest_showcases.data.stats import dataset_stats, format_markdown
from gest_showcases.errors import InputError
from gest_showcases.files import write_text_atomically

from .arguments import OutputArguments, parse_args

TABLE_FILE = "table1.md"
ROWS_FILE = "table1.json"


@dataclass
class StatsArguments:
    """Options of `gest-showcases stats FOLDER`."""

    folder: str | None = field(default=None, metadata={"help": "the dataset folder (or give it as FOLDER)"})


@dataclass
class StatsOutputArguments(OutputArguments):
    output_dir: str | None = field(
        default=None, metadata={"help": f"also write the table there ({TABLE_FILE}, {ROWS_FILE})"}
    )


def _folder_argument(parser) -> None:
    parser.add_argument("folder_arg", nargs="?", metavar="FOLDER", help="the dataset folder")


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args, output, extra = parse_args(
        (StatsArguments, StatsOutputArguments), argv, prog, add_arguments=_folder_argument
    )
    folder = args.folder or extra.folder_arg
    if folder is None:
        raise InputError("give the dataset folder: gest-showcases stats FOLDER")
    rows = dataset_stats(folder)
    table = format_markdown(rows)
    print(table)
    if output.output_dir is not None:
        folder_out = Path(output.output_dir)
        folder_out.mkdir(parents=True, exist_ok=True)
        write_text_atomically(folder_out / TABLE_FILE, table + "\n")
        write_text_atomically(folder_out / ROWS_FILE, json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "stats"))
