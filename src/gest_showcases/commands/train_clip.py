"""`gest-showcases train-clip`: train the stand-in CLIP from scratch on a built dataset's weakly paired data.

    gest-showcases train-clip --dataset BUILT_DIR --images IMAGES --output_dir clip-synth/ \\
        [--num_train_epochs 10] [--synth_truth ground_truth.json] [--config FILE.yaml] \\
        [--extra_dataset OTHER_BUILT_DIR --extra_images OTHER_IMAGES]

The training is `gest_showcases.features.clip_training.train`'s (its module says what is learnt from and how).
The checkpoint is saved into `--output_dir` with `train_clip_metrics.json`: the training summary, the options,
and with `--synth_truth` (Gest-Synth worlds) the saved checkpoint's `clip_quality` against the world's ground
truth. Options come from the command line, a YAML file (`--config`, which the command line overrides), or both.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gest_showcases.errors import InputError, check_at_least, check_at_most
from gest_showcases.features.clip import CLIP_MODEL_TYPES, load_clip
from gest_showcases.features.clip_standin import IMAGE_TOWERS
from gest_showcases.features.clip_training import PAIR_WITH, train
from gest_showcases.files import write_text_atomically
from gest_showcases.metrics.clip_quality import clip_quality
from gest_showcases.metrics.synth_truth import SynthTruth
from gest_showcases.model_folders import check_model_output_dir

from .arguments import DatasetArguments, LegacyOutputArguments, parse_args, take_deprecated_spelling

METRICS_FILE = "train_clip_metrics.json"


@dataclass
class TrainClipArguments:
    """Options of `gest-showcases train-clip` (with `DatasetArguments` and the output)."""

    image_size: int = field(default=64, metadata={"help": "side of the model's square input images"})
    image_tower: str = field(
        default="vit",
        metadata={
            "help": "the image tower: CLIP's ViT (vit; saved as a CLIPModel) or a small CNN (cnn: 4 x conv3x3-BN-"
            "ReLU-maxpool, 16-128 channels; saved as a VisionTextDualEncoderModel with the same CLIP text tower)",
            "choices": list(IMAGE_TOWERS),
        },
    )
    patch_size: int = field(default=8, metadata={"help": "ViT patch side (vit only)"})
    hidden_size: int = field(default=64, metadata={"help": "width of the transformer towers (MLP: 4x)"})
    num_layers: int = field(default=2, metadata={"help": "transformer layers per tower (the ViT's and the text's)"})
    num_heads: int = field(default=4, metadata={"help": "attention heads per layer"})
    projection_dim: int = field(default=128, metadata={"help": "size of the joint embedding"})
    pair_with: str = field(
        default="review",
        metadata={
            "help": "each image's text: its review's (review), a random sentence of it (sentence), or all its "
            "sentences as one bag of positives for multiple-instance InfoNCE (sentences)",
            "choices": list(PAIR_WITH),
        },
    )
    vocab_size: int = field(
        default=2000, metadata={"help": "BPE vocabulary size (at most; more is never learnt)"}
    )
    bag_of_tokens_weight: float = field(
        default=1.0, metadata={"help": "weight of the bag-of-tokens helper loss (0: plain CLIP training)"}
    )
    augment: bool = field(
        default=False,
        metadata={
            "help": "mirror each training photo left-right at random and shift it by up to 1/8 of its side, "
            "afresh every time it is seen (pad-and-crop and flip, the usual augmentation for a small CNN trained "
            "from scratch)"
        },
    )
    extra_dataset: str | None = field(
        default=None,
        metadata={
            "help": "another built dataset folder whose train split is added to the training pairs (e.g. a "
            "separate Gest-Synth world; validation and --synth_truth stay on --dataset)"
        },
    )
    extra_images: str | None = field(
        default=None, metadata={"help": "folder of --extra_dataset's photos, as --images is --dataset's"}
    )
    synth_truth: str | None = field(
        default=None,
        metadata={
            "help": "a Gest-Synth world's ground_truth.json: after training, report how well the CLIP tells "
            "subjects apart (clip_quality in the metrics JSON); never used for training"
        },
    )
    num_train_epochs: int = field(default=10, metadata={"help": "passes over the training pairs"})
    epochs: int | None = field(
        default=None, metadata={"help": "deprecated spelling of --num_train_epochs (kept for one release)"}
    )
    batch_size: int = field(default=128, metadata={"help": "pairs per step: the InfoNCE negatives"})
    learning_rate: float = field(default=2e-3)
    weight_decay: float = field(default=0.1)
    warmup_fraction: float = field(default=0.05, metadata={"help": "share of steps with linear warm-up"})
    seed: int = field(default=0)
    num_threads: int = field(default=2, metadata={"help": "torch CPU threads"})

    def __post_init__(self):
        take_deprecated_spelling(self, "epochs", "num_train_epochs")
        check_at_least(
            self, image_size=16, patch_size=1, hidden_size=1, num_layers=1, num_heads=1, projection_dim=1,
            vocab_size=1, bag_of_tokens_weight=0, num_train_epochs=1, batch_size=2, learning_rate=0,
            weight_decay=0, warmup_fraction=0, num_threads=1,
        )  # fmt: skip
        # A stand-in trained here: past these sizes a typo (1e5 px, a 4e9 width) runs out of memory, not a model.
        check_at_most(
            self, image_size=1024, hidden_size=4096, num_layers=64, num_heads=64, projection_dim=4096, vocab_size=1_000_000
        )  # fmt: skip
        if self.warmup_fraction > 1:
            raise InputError(f"--warmup_fraction {self.warmup_fraction}: a share of the steps, give one in [0, 1]")
        if self.extra_images is not None and self.extra_dataset is None:
            raise InputError("--extra_images is where --extra_dataset's photos are: give --extra_dataset too")
        if self.hidden_size % self.num_heads:
            raise InputError(f"--hidden_size {self.hidden_size} is not a multiple of --num_heads {self.num_heads}")


@dataclass
class TrainClipOutputArguments(LegacyOutputArguments):
    output_dir: str | None = field(
        default=None,
        metadata={"help": f"folder to save the CLIP checkpoint and {METRICS_FILE} into (required)"},
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    data, args, output = parse_args(
        (DatasetArguments, TrainClipArguments, TrainClipOutputArguments),
        argv,
        prog,
        description=__doc__.split("\n")[0],
    )
    if output.output_dir is None:
        raise InputError("give the folder to save the CLIP into: --output_dir DIR")
    check_model_output_dir(output.output_dir, CLIP_MODEL_TYPES, "train-clip")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Read first: a bad path should stop the command before the training, not after it.
    truth = SynthTruth.load(args.synth_truth) if args.synth_truth else None
    options = asdict(data) | {
        key: value for key, value in asdict(args).items() if key not in ("synth_truth", "epochs")
    }
    summary = train(output_dir=output.output_dir, **options)
    summary["arguments"] = {**options, "synth_truth": args.synth_truth, "output_dir": output.output_dir}
    if truth is not None:
        # Measured on the saved checkpoint, loaded as `gest-showcases features` loads it.
        image_model, text_model = load_clip(output.output_dir)
        summary["clip_quality"] = clip_quality(image_model, text_model, data.dataset, truth, data.images)
    write_text_atomically(Path(output.output_dir) / METRICS_FILE, json.dumps(summary, indent=2))

    retrieval = summary["validation_image_to_review"]
    print(
        f"trained CLIP ({summary['parameters']:,} parameters) on {summary['train_images']} images of "
        f"{summary['train_reviews']} train reviews; loss {summary['epoch_losses'][0]:.3f} -> "
        f"{summary['epoch_losses'][-1]:.3f}"
    )
    print(
        f"validation image -> review recall@1 {retrieval['recall_at_1']:.3f} (chance {retrieval['chance_at_1']:.3f}), "
        f"recall@5 {retrieval['recall_at_5']:.3f} (chance {retrieval['chance_at_5']:.3f}) "
        f"among {retrieval['candidates']} reviews"
    )
    quality = summary.get("clip_quality")
    if quality is not None:
        for key, what in (("subject_probe", "subject"), ("dish_probe", "dish")):
            probe = quality[key]
            print(
                f"test photos' {what} (ground truth, {probe['subjects']} {what}s): nearest centroid "
                f"{probe['nearest_centroid']:.3f}, nearest neighbour {probe['nearest_neighbour']:.3f} "
                f"(majority {probe['majority']:.3f})"
            )
        print(
            f"photo closer to its true sentence than to one naming another subject: "
            f"{quality['subject_match']:.3f} (chance 0.5)"
        )
    print(f"saved to {output.output_dir}")
    return 0


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "train-clip"))
