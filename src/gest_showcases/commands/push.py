"""`gest-showcases push`: publish the selector, the generator, the dataset and the evaluate modules to the Hub.

    gest-showcases push --namespace ORG --selector runs/selector-img+text --generator runs/pc2l \\
        --dataset data/gest --evaluate_modules clip_align clip_score distinct div_at_k \\
        [--selector_results runs/table3.md] [--generator_results runs/table2.md] \\
        [--output_dir export/ [--dry_run]] [--config FILE.yaml]

The work is `gest_showcases.push`' (its module says what each repository holds and what is never published).
`--output_dir DIR` stages the repositories into DIR and keeps them; with `--dry_run` nothing is uploaded, so DIR
(with `push_plan.json`, the repositories and their files) is exactly what would go up. `--dry_run DIR`, the
spelling of older releases, still means `--output_dir DIR --dry_run` for one release. With `HF_HUB_OFFLINE=1` an
upload stops at once and says so. Options come from the command line, a YAML file (`--config`, which the command
line overrides), or both.
"""

from __future__ import annotations

import logging
import sys
import warnings
from dataclasses import dataclass, field

from huggingface_hub.errors import OfflineModeIsEnabled

from gest_showcases.errors import InputError
from gest_showcases.push import PushArguments, push

from .arguments import parse_args, take_deprecated_spelling

# What a bare `--dry_run` parses to; any other value is a folder, the deprecated spelling `--dry_run DIR`.
_BARE_DRY_RUN = ""


@dataclass
class PushCommandArguments(PushArguments):
    """`PushArguments` with transformers' `--output_dir` for the staging folder, `--dry_run` a switch, and the old
    spellings `--dry_run DIR` and `--clip` kept for one release."""

    # The library reads `dry_run` as the folder to stage into without uploading: `__post_init__` sets it so.
    dry_run: str | None = field(
        default=None,
        metadata={
            "help": "stage into --output_dir and upload nothing (--dry_run DIR, the old spelling of "
            "--output_dir DIR --dry_run, works for one release)",
            "nargs": "?",
            "const": _BARE_DRY_RUN,
        },
    )
    clip: str | None = field(
        default=None, metadata={"help": "deprecated spelling of --clip_model (kept for one release)"}
    )

    def __post_init__(self):
        super().__post_init__()
        take_deprecated_spelling(self, "clip", "clip_model")
        if self.dry_run is None:
            return
        if self.dry_run != _BARE_DRY_RUN:
            # Not `take_deprecated_spelling`: the flag stays, only its folder value goes.
            folder = self.dry_run
            warnings.warn(
                f"--dry_run {folder} is deprecated and will be removed in the next release; use --output_dir "
                f"{folder} --dry_run",
                FutureWarning,
                stacklevel=1,  # the generated __init__ of the dataclass would be no better a place to point at
            )
            if self.output_dir is not None and self.output_dir != folder:
                raise InputError(
                    f"--dry_run {folder} and --output_dir {self.output_dir} name different folders: give "
                    "--output_dir DIR --dry_run"
                )
            self.output_dir = folder
        if self.output_dir is None:
            raise InputError("--dry_run stages into a folder: give it with --output_dir DIR")
        self.dry_run = self.output_dir


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    (args,) = parse_args((PushCommandArguments,), argv, prog, description=__doc__.split("\n")[0])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        results = push(args)
    except OfflineModeIsEnabled as error:
        print(f"{prog or 'gest-showcases push'}: {error}", file=sys.stderr)
        return 1
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "push"))
