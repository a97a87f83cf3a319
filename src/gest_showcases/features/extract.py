"""`gest-showcases features`: cache CLIP and backbone features of every image and review of a dataset.

    gest-showcases features --dataset DIR --images IMAGES --output FEATDIR \\
        [--model openai/clip-vit-base-patch32]
    accelerate launch --multi_gpu --num_processes 8 -m gest_showcases.features.extract --dataset DIR ...

Writes FEATDIR/{image,review,sentence,vision}/ (see `gest_showcases.features.cache`). Rerunning
skips what is cached; a folder written by another checkpoint is refused.

The photos are the files the dataset's stored image paths name, checked by the path policy
(`gest_showcases.features.inputs.image_items`): relative, and inside the dataset folder or `--images`.
A build stores its photos where its `--images` pointed, so pass that folder when it lies outside the
dataset folder; without it the command stops with one line saying so.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from dataclasses import asdict, dataclass, field

import torch
from accelerate import PartialState
from transformers import HfArgumentParser

from .clip import (
    DEFAULT_CLIP,
    extract_image_features,
    extract_text_features,
    load_clip,
    load_vision_backbone,
    resolve_dtype,
)
from .inputs import image_items, read_config_rows, review_texts

logger = logging.getLogger(__name__)

KINDS = ("image", "text", "vision")


@dataclass
class FeatureArguments:
    dataset: str = field(metadata={"help": "built dataset folder (gest-showcases build --output)"})
    output: str = field(metadata={"help": "feature folder to write (resumes if it exists)"})
    images: str | None = field(
        default=None,
        metadata={
            "help": "folder of the dataset's photos when they are outside the dataset folder (the build's "
            "--images); stored image paths may only lead into the dataset folder or this one"
        },
    )
    model: str = field(default=DEFAULT_CLIP, metadata={"help": "CLIP checkpoint, Hub name or local path"})
    vision_model: str | None = field(
        default=None,
        metadata={"help": "generator backbone checkpoint (default: the CLIP vision tower of --model)"},
    )
    kinds: list[str] = field(
        default_factory=lambda: list(KINDS),
        metadata={"help": "image (CLIP image), text (CLIP review + sentence), vision (generator backbone)"},
    )
    config: str = field(default="s1", metadata={"help": "dataset config whose images and reviews to embed"})
    batch_size: int = field(default=256, metadata={"help": "images or sentences per forward pass"})
    num_workers: int = field(default=4, metadata={"help": "DataLoader processes reading images"})
    shard_size: int = field(default=8192, metadata={"help": "rows per cache shard (the unit of resumption)"})
    device: str | None = field(default=None, metadata={"help": "default: this process's accelerate device"})
    dtype: str = field(
        default="auto", metadata={"help": "auto (bf16 on GPU, fp32 on CPU), float32, float16, bfloat16"}
    )
    decode_on: str = field(
        default="auto",
        metadata={"help": "cpu (PIL in workers), gpu (nvJPEG, needs torchvision), auto (gpu if possible)"},
    )


def _decode_on_gpu(choice: str, device: torch.device) -> bool:
    if choice not in ("auto", "cpu", "gpu"):
        raise ValueError(f"--decode_on must be auto, cpu or gpu, not {choice!r}")
    if choice == "gpu" and device.type != "cuda":
        raise ValueError("--decode_on gpu needs a CUDA device")
    has_torchvision = importlib.util.find_spec("torchvision") is not None
    if choice == "gpu" and not has_torchvision:
        raise ValueError("--decode_on gpu needs torchvision (pip install torchvision matching your torch)")
    return choice == "gpu" or (choice == "auto" and device.type == "cuda" and has_torchvision)


def run(args: FeatureArguments) -> dict:
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown --kinds {sorted(unknown)}; expected some of {KINDS}")
    # Under torchrun/accelerate on CPUs, `cpu=True` is what makes accelerate join the gloo process group.
    state = PartialState(cpu=not torch.cuda.is_available() or args.device == "cpu")
    device = torch.device(args.device) if args.device else state.device
    dtype = resolve_dtype(args.dtype, device)
    rows = read_config_rows(args.dataset, args.config)
    # Checked before any model loads: a path outside the policy stops the command at once.
    items = image_items(args.dataset, rows, args.images) if {"image", "vision"} & set(args.kinds) else []
    reports = []
    if "image" in args.kinds or "text" in args.kinds:
        image_model, text_model = load_clip(args.model, device, dtype)
        if "image" in args.kinds:
            reports.append(
                extract_image_features(
                    items,
                    image_model,
                    args.output,
                    "image",
                    args.batch_size,
                    args.num_workers,
                    args.shard_size,
                    _decode_on_gpu(args.decode_on, device),
                )
            )
        if "text" in args.kinds:
            reports.extend(
                extract_text_features(
                    review_texts(rows), text_model, args.output, args.batch_size, args.shard_size
                )
            )
    if "vision" in args.kinds:
        backbone = load_vision_backbone(args.vision_model or args.model, device, dtype)
        reports.append(
            extract_image_features(
                items,
                backbone,
                args.output,
                "vision",
                args.batch_size,
                args.num_workers,
                args.shard_size,
                _decode_on_gpu(args.decode_on, device),
            )
        )
    return {report.kind: asdict(report) for report in reports}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = HfArgumentParser(FeatureArguments, prog=prog)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    summary = run(args)
    if PartialState().is_main_process:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
