"""`gest-showcases features`: cache CLIP and backbone features of a built dataset's images and reviews.

    gest-showcases features --dataset DIR --images IMAGES --output_dir FEATDIR \\
        [--clip_model openai/clip-vit-base-patch32] [--dataset_config_name s1 s2] [--config FILE.yaml]
    accelerate launch --multi_gpu --num_processes 8 -m gest_showcases.commands.features --dataset DIR ...

The work is `gest_showcases.features.extract.extract_features`' (its module says what is written and which photo
paths are read). Prints a JSON summary of what each kind wrote. Options come from the command line, a YAML file
(`--config`, which the command line overrides), or both.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field

from accelerate import PartialState

from gest_showcases.errors import InputError, check_at_least
from gest_showcases.features.clip import DEFAULT_CLIP
from gest_showcases.features.extract import KINDS, extract_features

from .arguments import (
    DatasetArguments,
    DatasetConfigArguments,
    LegacyOutputArguments,
    check_device,
    parse_args,
    take_deprecated_spelling,
)


@dataclass
class FeatureArguments:
    """Options of `gest-showcases features` (with `DatasetArguments`, `FeatureConfigArguments` and the output)."""

    clip_model: str = field(
        default=DEFAULT_CLIP, metadata={"help": "CLIP checkpoint, Hub name or local path"}
    )
    model: str | None = field(
        default=None, metadata={"help": "deprecated spelling of --clip_model (kept for one release)"}
    )
    vision_model: str | None = field(
        default=None,
        metadata={"help": "generator backbone checkpoint (default: the CLIP vision tower of --clip_model)"},
    )
    kinds: list[str] = field(
        default_factory=lambda: list(KINDS),
        metadata={"help": "image (CLIP image), text (CLIP review + sentence), vision (generator backbone)"},
    )
    batch_size: int = field(default=256, metadata={"help": "images or sentences per forward pass"})
    num_workers: int = field(default=4, metadata={"help": "DataLoader processes reading images"})
    shard_size: int = field(default=8192, metadata={"help": "rows per cache shard (the unit of resumption)"})
    device: str | None = field(default=None, metadata={"help": "default: this process's accelerate device"})
    dtype: str = field(
        default="auto",
        metadata={
            "help": "auto (bf16 on GPU, fp32 on CPU), float32, float16, bfloat16; recorded in the folder: a rerun "
            "into it must use the same, and a pipeline encodes in it"
        },
    )
    decode_on: str = field(
        default="auto",
        metadata={"help": "cpu (PIL in workers), gpu (nvJPEG, needs torchvision), auto (gpu if possible)"},
    )

    def __post_init__(self):
        take_deprecated_spelling(self, "model", "clip_model")
        check_at_least(self, batch_size=1, num_workers=0, shard_size=1)
        check_device(self)


@dataclass
class FeatureConfigArguments(DatasetConfigArguments):
    """Which configs' photos and reviews `features` embeds: several, by default those the models read."""

    dataset_config_name: list[str] | None = field(
        default=None,
        metadata={
            "help": "configs whose photos and reviews to embed (default: s1 and s2, those the folder holds; a build of "
            "the published filter_all_t.json holds its test users in s2 only); --config NAME is its deprecated "
            "spelling"
        },
    )


@dataclass
class FeatureOutputArguments(LegacyOutputArguments):
    output_dir: str | None = field(
        default=None, metadata={"help": "feature folder to write (required; resumes if it exists)"}
    )


def parse_feature_args(
    argv: list[str] | None = None, prog: str | None = None
) -> tuple[DatasetArguments, FeatureArguments, FeatureConfigArguments, FeatureOutputArguments]:
    dataset, args, config, output = parse_args(
        (DatasetArguments, FeatureArguments, FeatureConfigArguments, FeatureOutputArguments),
        argv,
        prog,
        description=__doc__.split("\n")[0],
    )
    if output.output_dir is None:
        raise InputError("give the feature folder to write: --output_dir FEATDIR")
    return dataset, args, config, output


def run(
    dataset: DatasetArguments,
    args: FeatureArguments,
    config: FeatureConfigArguments,
    output: FeatureOutputArguments,
) -> dict:
    """`extract_features` with the command's options: `{kind: report}`."""
    return extract_features(
        dataset.dataset,
        output.output_dir,
        images=dataset.images,
        model=args.clip_model,
        vision_model=args.vision_model,
        kinds=args.kinds,
        config=config.dataset_config_name,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        shard_size=args.shard_size,
        device=args.device,
        dtype=args.dtype,
        decode_on=args.decode_on,
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parsed = parse_feature_args(argv, prog)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    summary = run(*parsed)
    if PartialState().is_main_process:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "features"))
