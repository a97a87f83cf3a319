"""`gest-showcases build`: build the raw/s1/s2 dataset folder from Gest or Google Local files.

    gest-showcases build --input filter_all_t.json --images google-images [--output_dir gest] [--copy_images] \\
        [--config FILE.yaml]

The processing is `gest_showcases.data.build.build_dataset`'s (its module says what each config holds). Options
come from the command line, a YAML file (`--config`, which the command line overrides), or both.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from gest_showcases.data.build import DEFAULT_OUTPUT_DIR, build_dataset
from gest_showcases.errors import check_at_least

from .arguments import LegacyOutputArguments, parse_args


@dataclass
class BuildArguments:
    """Options of `gest-showcases build`."""

    input: list[str] = field(
        metadata={
            "help": "image_review_all.json, filter_all_t.json or Google Local review-*.json(.gz) files "
            "(repeat the flag or list several)",
            "action": "extend",
        }
    )
    images: str = field(metadata={"help": "image folder holding <pic_id>.jpg files"})
    meta: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Google Local meta-*.json(.gz) files (restaurants by category)",
            "action": "extend",
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of the user split"})
    split_ratios: list[float] = field(
        default_factory=lambda: [0.8, 0.1, 0.1], metadata={"help": "train/validation/test shares of users"}
    )
    min_words: int = field(default=5, metadata={"help": "drop reviews with fewer words"})
    max_images: int = field(default=10, metadata={"help": "drop reviews with more images"})
    max_history: int = field(
        default=50, metadata={"help": "most history reviews per record (most recent first)"}
    )
    embed_images: bool = field(
        default=False, metadata={"help": "also embed the image bytes (`images` column of datasets.Image())"}
    )
    copy_images: bool = field(
        default=False,
        metadata={
            "help": "self-contained folder: hard-link (or copy) the used images into <output_dir>/images/, store "
            "paths there and embed their bytes (`images` column); default: paths lead to --images, no Image column"
        },
    )
    num_proc: int = field(default=1, metadata={"help": "processes for checking image files"})

    def __post_init__(self):
        check_at_least(self, seed=0, min_words=0, max_images=1, max_history=0, num_proc=1)


@dataclass
class BuildOutputArguments(LegacyOutputArguments):
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": f"dataset folder to write (a previous build there is replaced); default: ./{DEFAULT_OUTPUT_DIR}, "
            f'so that load_dataset("{DEFAULT_OUTPUT_DIR}", "s2") works from the same folder'
        },
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args, output = parse_args(
        (BuildArguments, BuildOutputArguments), argv, prog, description=__doc__.split("\n")[0]
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = build_dataset(
        args.input,
        args.images,
        output.output_dir or DEFAULT_OUTPUT_DIR,
        args.meta,
        seed=args.seed,
        split_ratios=args.split_ratios,
        min_words=args.min_words,
        max_images=args.max_images,
        max_history=args.max_history,
        embed_images=args.embed_images,
        copy_images=args.copy_images,
        num_proc=args.num_proc,
    )
    print(f"wrote {result.output_dir}")
    for config, splits in result.num_rows.items():
        print(f"  {config}: " + ", ".join(f"{split} {count:,}" for split, count in splits.items()))
    print(result.summary())
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "build"))
