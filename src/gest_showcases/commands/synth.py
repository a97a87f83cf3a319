"""`gest-showcases synth`: generate a Gest-Synth world and write its files.

    gest-showcases synth --output_dir gest-synth [--seed 0] [--num_reviews 3000] [--config FILE.yaml]

The world's generative story and the files written are `gest_showcases.synth`'s (its module gives both). Options
come from the command line, a YAML file (`--config`, which the command line overrides), or both.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from gest_showcases.errors import check_at_least, check_at_most
from gest_showcases.synth.world import SynthConfig, generate_world
from gest_showcases.synth.write import check_output_folder, write_world

from .arguments import parse_args


@dataclass
class SynthOutputArguments:
    """Where and how to write the world."""

    output_dir: str = field(metadata={"help": "folder to write the Gest-Synth files into"})
    image_size: int = field(default=64, metadata={"help": "side of the square JPEG photos, in pixels"})
    num_workers: int = field(default=1, metadata={"help": "processes rendering photos"})
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "replace files of synth's names (image_review_all.json, images/, ...) in a folder that "
            "an earlier synth run did not write (refused otherwise)"
        },
    )

    def __post_init__(self):
        check_at_least(self, image_size=8, num_workers=0)  # 0 or 1: in this process
        # A typo (1e6 px, 100000 processes) would run out of memory or never start: 1024 px is 4.6x the side CLIP
        # reads, and 256 workers more than any one machine here has cores.
        check_at_most(self, image_size=1024, num_workers=256)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    config, output = parse_args(
        (SynthConfig, SynthOutputArguments), argv, prog, description=__doc__.split("\n")[0]
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    check_output_folder(output.output_dir, output.overwrite)  # before the world is generated
    world = generate_world(config)
    counts = write_world(world, output.output_dir, output.image_size, output.num_workers, output.overwrite)
    print(f"Gest-Synth (seed {config.seed}) written to {output.output_dir}:")
    for key, value in counts.items():
        print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "synth"))
