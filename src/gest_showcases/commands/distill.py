"""`gest-showcases distill`: train the explanation classifier on annotated pairs and build `s2` with it.

    gest-showcases distill --annotations annotations.jsonl --images IMAGES --features FEATDIR \\
        --output_dir classifier/ [--clip_model openai/clip-vit-base-patch32] [--num_train_epochs 300] \\
        [--dataset BUILT_DIR --build_inputs FILES --build_images IMAGES] [--config FILE.yaml]

The method is `gest_showcases.features.distill`'s (its module says how the classifier is trained and which photo
folder serves which role). The classifier and `distill_metrics.json` are written into `--output_dir`; the JSON
summary is also printed. Options come from the command line, a YAML file (`--config`, which the command line
overrides), or both.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gest_showcases.data.images import photo_files
from gest_showcases.errors import InputError, check_at_least
from gest_showcases.features.cache import load_features
from gest_showcases.features.clip import DEFAULT_CLIP, extract_image_features, load_clip
from gest_showcases.features.configuration_explanation import ExplanationClassifierConfig
from gest_showcases.features.distill import (
    BUILD_INPUTS_NEEDED,
    check_enough_pairs,
    read_annotations,
    train_explanation_classifier,
    write_s2,
)
from gest_showcases.files import saving_into, write_text_atomically
from gest_showcases.model_folders import check_model_output_dir, loading

from .arguments import LegacyOutputArguments, check_device, parse_args, take_deprecated_spelling

logger = logging.getLogger(__name__)

METRICS_FILE = "distill_metrics.json"


@dataclass
class DistillArguments:
    """Options of `gest-showcases distill`."""

    annotations: str = field(metadata={"help": "JSON Lines of pic_id, review_id, sentence, label"})
    features: str = field(
        metadata={"help": "feature folder; annotation images missing there are extracted into it"}
    )
    images: str | None = field(
        default=None,
        metadata={
            "help": "folder of the annotations' <pic_id>.jpg (default: images/ beside the annotations); the "
            "dataset's photos are read from --build_images"
        },
    )
    clip_model: str = field(
        default=DEFAULT_CLIP, metadata={"help": "CLIP checkpoint, Hub name or local path"}
    )
    model: str | None = field(
        default=None, metadata={"help": "deprecated spelling of --clip_model (kept for one release)"}
    )
    dataset: str | None = field(
        default=None,
        metadata={"help": "dataset folder to (re)build with s2 distilled from s1 (needs --build_inputs)"},
    )
    build_inputs: list[str] = field(
        default_factory=list,
        metadata={"help": "the input files the dataset is built from (as for `build --input`)"},
    )
    build_images: str | None = field(
        default=None,
        metadata={
            "help": "the dataset's image folder (as for `build --images`); its stored image paths may only "
            "lead into the dataset folder or this one"
        },
    )
    build_meta: list[str] = field(
        default_factory=list, metadata={"help": "Google Local meta files (as for `build --meta`)"}
    )
    threshold: float | None = field(
        default=None, metadata={"help": "override the validation-chosen threshold"}
    )
    interaction: bool = field(
        default=False, metadata={"help": "add the sentence x image product features (not in the paper)"}
    )
    num_train_epochs: int = field(default=300, metadata={"help": "passes over the training pairs"})
    epochs: int | None = field(
        default=None, metadata={"help": "deprecated spelling of --num_train_epochs (kept for one release)"}
    )
    learning_rate: float = field(default=1e-2)
    batch_size: int = field(default=1024)
    seed: int = field(default=0)
    device: str = field(default="cpu")
    num_workers: int = field(default=2, metadata={"help": "DataLoader processes reading images"})

    def __post_init__(self):
        take_deprecated_spelling(self, "model", "clip_model")
        take_deprecated_spelling(self, "epochs", "num_train_epochs")
        check_at_least(self, threshold=0, num_train_epochs=1, learning_rate=0, batch_size=1, num_workers=0)
        check_device(self)
        if self.threshold is not None and self.threshold > 1:
            raise InputError(f"--threshold {self.threshold}: a probability, give a number in [0, 1]")
        if self.dataset and not (self.build_inputs and self.build_images):
            # Checked before any work: write_s2 would refuse only after training, over the earlier run's output.
            raise InputError(BUILD_INPUTS_NEEDED)


@dataclass
class DistillOutputArguments(LegacyOutputArguments):
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": f"folder for the trained classifier (save_pretrained) and {METRICS_FILE} (required)"
        },
    )


def run(args: DistillArguments, output_dir: str) -> dict:
    """Train the classifier on the annotations, save it into `output_dir`, rebuild `args.dataset` with s2."""
    annotations = read_annotations(args.annotations)
    check_enough_pairs(len(annotations), args.annotations)  # before CLIP loads and the photos are embedded
    image_dir = Path(args.images) if args.images else Path(args.annotations).parent / "images"
    with loading("--clip_model", args.clip_model):
        image_model, text_model = load_clip(args.clip_model, args.device)
    pic_ids = list(dict.fromkeys(row["pic_id"] for row in annotations))
    extract_image_features(
        list(photo_files(image_dir, pic_ids).items()),
        image_model,
        args.features,
        "image",
        num_workers=args.num_workers,
    )
    images = load_features(args.features, "image")
    image_embeds, found = images.lookup([row["pic_id"] for row in annotations])
    if not found.all():
        logger.warning(
            "%d of %d annotated pairs have no image features and are left out",
            int((~found).sum()),
            len(found),
        )
    kept = [row for row, ok in zip(annotations, found.tolist(), strict=True) if ok]
    text_embeds = text_model.encode([row["sentence"] for row in kept])
    labels = torch.tensor([float(row["label"]) for row in kept])
    result = train_explanation_classifier(
        text_embeds,
        image_embeds[found],
        labels,
        epochs=args.num_train_epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        seed=args.seed,
        interaction=args.interaction,
        clip_checkpoint=args.clip_model,
        clip_fingerprint=text_model.fingerprint,
    )
    if args.threshold is not None:
        result.model.config.threshold = args.threshold
    # The previous run's metrics would describe another classifier than the one saved next: gone first, written last.
    (Path(output_dir) / METRICS_FILE).unlink(missing_ok=True)
    with saving_into(output_dir) as staging:  # a run stopped mid-save leaves the previous classifier whole
        result.model.save_pretrained(staging)
    summary = {"pairs": len(kept), **result.metrics}
    # Written as soon as the classifier is: a rebuild of --dataset that fails still leaves it described.
    write_text_atomically(Path(output_dir) / METRICS_FILE, json.dumps(summary, indent=2))
    if args.dataset:
        summary["s2_rows"] = write_s2(
            args.dataset,
            result.model,
            image_model,
            text_model,
            summary,
            features=args.features,
            build_inputs=args.build_inputs,
            build_images=args.build_images,
            build_meta=args.build_meta,
            classifier_dir=output_dir,
            clip_model=args.clip_model,
            num_workers=args.num_workers,
        )
        write_text_atomically(Path(output_dir) / METRICS_FILE, json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args, output = parse_args(
        (DistillArguments, DistillOutputArguments), argv, prog, description=__doc__.split("\n")[0]
    )
    if output.output_dir is None:
        raise InputError("give the folder for the trained classifier: --output_dir DIR")
    check_model_output_dir(output.output_dir, ExplanationClassifierConfig.model_type, "distill")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(json.dumps(run(args, output.output_dir), indent=2))
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "distill"))
