"""`gest-showcases diversity`: intra-business, inter-user and intra-user visual diversity (table + chart).

    gest-showcases diversity --dataset BUILT_DIR --features FEATDIR [--plot diversity.png] [--output_dir DIR] \\
        [--dataset_config_name s1] [--config FILE.yaml]

The figures are `gest_showcases.features.diversity.dataset_diversity`'s (its module gives the definitions), one
markdown row per dataset. With `--output_dir` they are also written there as JSON (`diversity.json`). Options come
from the command line, a YAML file (`--config`, which the command line overrides), or both.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gest_showcases.errors import InputError
from gest_showcases.features.cache import load_features
from gest_showcases.features.diversity import dataset_diversity, diversity_table, plot_diversity
from gest_showcases.features.inputs import read_config_rows
from gest_showcases.files import write_text_atomically

from .arguments import (
    DatasetConfigArguments,
    LegacyOutputArguments,
    OutputArguments,
    check_file_option,
    output_file,
    parse_args,
    take_deprecated_file_option,
)

RESULTS_FILE = "diversity.json"


@dataclass
class DiversityArguments:
    """Options of `gest-showcases diversity`."""

    dataset: list[str] = field(metadata={"help": "built dataset folder(s)"})
    features: list[str] = field(metadata={"help": "feature folder(s), one per dataset"})
    names: list[str] | None = field(
        default=None, metadata={"help": "label per dataset (default: folder name)"}
    )
    plot: str | None = field(
        default=None, metadata={"help": "write the bar chart here (its format from the extension; none: .png)"}
    )

    def __post_init__(self):
        check_file_option("--plot", self.plot)
        suffix = Path(self.plot).suffix.lstrip(".").lower() if self.plot else ""
        if suffix:  # before the work: matplotlib refuses an unknown format only when it saves
            from matplotlib.backend_bases import FigureCanvasBase

            formats = FigureCanvasBase.get_supported_filetypes()
            if suffix not in formats:
                raise InputError(f"--plot {self.plot}: no chart format .{suffix}; give one of "
                                 f"{', '.join('.' + name for name in sorted(formats))}")  # fmt: skip


@dataclass
class DiversityOutputArguments(LegacyOutputArguments):
    """`--output_dir DIR` writes `DIR/diversity.json`; the old `--output FILE` wrote the JSON to FILE itself."""

    output_dir: str | None = field(
        default=None, metadata={"help": f"write the figures there as JSON ({RESULTS_FILE})"}
    )
    output: str | None = field(
        default=None,
        metadata={
            "help": f"deprecated: the JSON file to write (use --output_dir DIR, which writes DIR/{RESULTS_FILE})"
        },
    )

    def __post_init__(self):
        # Not LegacyOutputArguments': the old flag named a file, not a folder, and keeps doing so for its last release.
        OutputArguments.__post_init__(self)
        take_deprecated_file_option(self, "output", RESULTS_FILE)

    def results_path(self) -> Path | None:
        return output_file(self, "output", RESULTS_FILE)


def _json_number(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args, data, output = parse_args(
        (DiversityArguments, DatasetConfigArguments, DiversityOutputArguments),
        argv,
        prog,
        description=__doc__.split("\n")[0],
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    names = args.names or [Path(folder).name for folder in args.dataset]
    if not (len(names) == len(args.dataset) == len(args.features)):
        raise InputError(
            f"{len(args.dataset)} datasets, {len(args.features)} feature folders, {len(names)} names"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # one table row per name: the later dataset would replace the earlier one
        raise InputError(f"two datasets are named {', '.join(repeated)}: give each its own with --names")
    results = {}
    for name, folder, features in zip(names, args.dataset, args.features, strict=True):
        rows = read_config_rows(folder, data.dataset_config_name, columns=["business_id", "user_id", "pics"])
        results[name] = dataset_diversity(rows, load_features(features, "image"))
        if results[name]["images"] == 0 and results[name]["images_without_features"] > 0:
            raise InputError(
                f"--features {features} holds none of the {results[name]['images_without_features']:,} photos of "
                f"{folder}: give the features made from this dataset (gest-showcases features)"
            )
    print(diversity_table(results))
    if args.plot:
        print(f"chart: {plot_diversity(results, args.plot)}")
    path = output.results_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Strict JSON: a figure without pairs (NaN) is null.
        clean = {name: {key: _json_number(value) for key, value in row.items()} for name, row in results.items()}
        write_text_atomically(path, json.dumps(clean, indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "diversity"))
