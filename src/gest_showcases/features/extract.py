"""Cache CLIP and backbone features of every image and review of a dataset (`extract_features`).

The command is `gest-showcases features` (`gest_showcases.commands.features`):

    gest-showcases features --dataset DIR --images IMAGES --output_dir FEATDIR \\
        [--clip_model openai/clip-vit-base-patch32] [--dataset_config_name s1 s2]
    accelerate launch --multi_gpu --num_processes 8 -m gest_showcases.commands.features --dataset DIR ...

Writes FEATDIR/{image,review,sentence,vision}/ (see `gest_showcases.features.cache`). Rerunning
skips what is cached; a folder written by another checkpoint is refused.

The photos are the files the dataset's stored image paths name, checked by the path policy
(`gest_showcases.features.inputs.image_items`): relative, and inside the dataset folder or `--images`.
A build stores its photos where its `--images` pointed, so pass that folder when it lies outside the
dataset folder; without it the command stops with one line saying so.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import asdict

import torch
from accelerate import PartialState

from gest_showcases.data.folder import dataset_configs
from gest_showcases.errors import InputError
from gest_showcases.model_folders import loading

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
TRAINING_CONFIGS = ("s1", "s2")  # what the models read: the default configs to embed


def _decode_on_gpu(choice: str, device: torch.device) -> bool:
    if choice not in ("auto", "cpu", "gpu"):
        raise ValueError(f"--decode_on must be auto, cpu or gpu, not {choice!r}")
    if choice == "gpu" and device.type != "cuda":
        raise ValueError("--decode_on gpu needs a CUDA device")
    has_torchvision = importlib.util.find_spec("torchvision") is not None
    if choice == "gpu" and not has_torchvision:
        raise ValueError("--decode_on gpu needs torchvision (pip install torchvision matching your torch)")
    return choice == "gpu" or (choice == "auto" and device.type == "cuda" and has_torchvision)


def _configs(dataset: str, config: str | Sequence[str] | None) -> list[str]:
    if config is not None:
        return [config] if isinstance(config, str) else list(config)
    present = dataset_configs(dataset)
    chosen = [name for name in TRAINING_CONFIGS if name in present]
    if not chosen:
        raise InputError(
            f"{dataset} holds neither s1 nor s2 (configs: {', '.join(present) or 'none'}); name one with "
            "--dataset_config_name, or rebuild it (were its photos found in --images?)"
        )
    return chosen


def extract_features(
    dataset: str,
    output_dir: str,
    *,
    images: str | None = None,
    model: str = DEFAULT_CLIP,
    vision_model: str | None = None,
    kinds: Sequence[str] = KINDS,
    config: str | Sequence[str] | None = None,
    batch_size: int = 256,
    num_workers: int = 4,
    shard_size: int = 8192,
    device: str | None = None,
    dtype: str = "auto",
    decode_on: str = "auto",
) -> dict:
    """Cache the `kinds` of features of `config`'s images and reviews of the built folder `dataset` in `output_dir`.

    `config`: a config or a list of them; by default `s1` and `s2`, those the folder holds: the selector reads `s1`,
    the generators `s2`, and a build of the published `filter_all_t.json` holds its test users in `s2` only (they
    are new users, with one review each, which `s1` drops).

    `kinds`: `image` (CLIP image), `text` (CLIP review and sentence), `vision` (the generator backbone,
    `vision_model`, default the CLIP vision tower of `model`). `device` defaults to this process's accelerate
    device; `dtype` `auto` is bf16 on GPU and fp32 on CPU; `decode_on` `cpu` decodes photos with PIL in the
    DataLoader's workers, `gpu` with nvJPEG (needs torchvision), `auto` on the GPU when possible.

    Returns:
        `{kind: report}`, each report a dict of `gest_showcases.features.cache`'s counts (rows written, skipped).
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown --kinds {sorted(unknown)}; expected some of {KINDS}")
    # Under torchrun/accelerate on CPUs, `cpu=True` is what makes accelerate join the gloo process group.
    state = PartialState(cpu=not torch.cuda.is_available() or device == "cpu")
    device = torch.device(device) if device else state.device
    torch_dtype = resolve_dtype(dtype, device)
    rows = [row for name in _configs(dataset, config) for row in read_config_rows(dataset, name)]
    # Checked before any model loads: a path outside the policy stops the command at once.
    reads_images = bool({"image", "vision"} & set(kinds))
    items = image_items(dataset, rows, images) if reads_images else []
    on_gpu = reads_images and _decode_on_gpu(decode_on, device)
    reports = []
    if "image" in kinds or "text" in kinds:
        with loading("--clip_model", model):
            image_model, text_model = load_clip(model, device, torch_dtype)
        if "image" in kinds:
            reports.append(
                extract_image_features(
                    items, image_model, output_dir, "image", batch_size, num_workers, shard_size, on_gpu
                )
            )
        if "text" in kinds:
            reports.extend(
                extract_text_features(review_texts(rows), text_model, output_dir, batch_size, shard_size)
            )
    if "vision" in kinds:
        with loading("--vision_model", vision_model or model):
            backbone = load_vision_backbone(vision_model or model, device, torch_dtype)
        reports.append(
            extract_image_features(items, backbone, output_dir, "vision", batch_size, num_workers, shard_size, on_gpu)
        )
    return {report.kind: asdict(report) for report in reports}
