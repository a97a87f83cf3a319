"""`gest-showcases train-selector`: train the DPP selectors and print the paper's Table 3.

Reads the `s1` config of a built dataset folder and a CLIP feature folder (`gest-showcases features`),
trains one `DPPImageSelector` per input mode on the training split (keeping the epoch with the best
F1@K on the validation split, when the dataset has one), scores them and the random baseline on the
evaluation split, and writes `table3.md`, `table3.json` (values in percent) and one
`save_pretrained` folder per mode (`selector-img`, `selector-text`, `selector-img+text`) to
`--output_dir`. Runs under `accelerate launch` (`examples/train_selector.py` is the same `main`). Options come
from the command line, a YAML file (`--config`, which the command line overrides), or both.

Example:

```bash
gest-showcases train-selector --dataset gest-synth --features gest-synth-features --output_dir selector-runs
accelerate launch examples/train_selector.py --dataset gest-synth --features gest-synth-features \\
    --output_dir selector-runs --num_train_epochs 30
```
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import PartialState
from accelerate.utils import set_seed

from gest_showcases.data.build import load_built
from gest_showcases.errors import InputError, check_at_least
from gest_showcases.features.cache import load_features
from gest_showcases.files import saving_into
from gest_showcases.model_folders import check_model_output_dir
from gest_showcases.selection.configuration_dpp import DPPSelectorConfig
from gest_showcases.selection.dataset import build_selection_dataset, training_pool_pics
from gest_showcases.selection.training import (
    METHODS,
    SelectorTrainingArguments,
    run_selection_ablation,
    write_selection_table,
)

from .arguments import OutputArguments, parse_args, take_deprecated_spelling

logger = logging.getLogger(__name__)

S1_COLUMNS = ["pics", "candidate_pics", "history_pics", "history_review_ids"]


@dataclass
class SelectorScriptArguments:
    """Where the data comes from, which rows to train."""

    dataset: str = field(metadata={"help": "Built dataset folder (`gest-showcases build --output_dir`)."})
    features: str = field(metadata={"help": "Feature folder with `image` and `review` kinds."})
    methods: list[str] = field(
        default_factory=lambda: list(METHODS),
        metadata={"help": f"Rows of the table, a subset of {METHODS}.", "choices": list(METHODS)},
    )
    train_split: str = field(default="train", metadata={"help": "Split to train on."})
    validation_split: str = field(
        default="validation",
        metadata={"help": "Split that chooses each model's epoch; skipped when the dataset lacks it."},
    )
    eval_split: str = field(default="test", metadata={"help": "Split to score."})
    training_pools: str = field(
        default="train_images",
        metadata={
            "help": "`train_images`: training pools keep only images posted in training reviews (the default; "
            "with `all`, every held-out image is a training negative, which teaches the selector to avoid the "
            "very images the evaluation asks for). `all`: the pools as stored in s1.",
            "choices": ["train_images", "all"],
        },
    )
    history_prior: float = field(
        default=0.0,
        metadata={
            "help": "not in the paper: start each img / img+text selector's relevance with this weight times the "
            "cosine between a candidate and the user's history photos (a learnt weight; the history-cosine rule as "
            "a prior; 0: the paper's model). The text mode does not see the history photos and keeps 0."
        },
    )
    use_cpu: bool = field(default=False, metadata={"help": "Train on CPU even when a GPU is present."})
    # None when not given, so that only a given --cpu warns; a bare --cpu means True, as it did.
    cpu: bool | None = field(
        default=None,
        metadata={
            "help": "deprecated spelling of --use_cpu (kept for one release)",
            "nargs": "?",
            "const": True,
        },
    )

    def __post_init__(self):
        take_deprecated_spelling(self, "cpu", "use_cpu")
        check_at_least(self, history_prior=0)


@dataclass
class SelectorCommandTrainingArguments(SelectorTrainingArguments):
    """`SelectorTrainingArguments` with the old `--num_epochs` spelling of `--num_train_epochs`, for one release."""

    num_epochs: int | None = field(
        default=None, metadata={"help": "deprecated spelling of --num_train_epochs (kept for one release)"}
    )

    def __post_init__(self):
        take_deprecated_spelling(self, "num_epochs", "num_train_epochs")
        super().__post_init__()


@dataclass
class SelectorOutputArguments(OutputArguments):
    output_dir: str | None = field(
        default=None,
        metadata={"help": "Folder for table3.md, table3.json and the trained models (required)."},
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    script_args, train_args, output = parse_args(
        (SelectorScriptArguments, SelectorCommandTrainingArguments, SelectorOutputArguments),
        argv,
        prog,
        description=__doc__.split("\n")[0],
    )
    if output.output_dir is None:
        raise InputError("give the folder for Table 3 and the selectors: --output_dir DIR")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run(script_args, train_args, output.output_dir)
    return 0


def check_splits(script_args: SelectorScriptArguments, present: list[str]) -> None:
    """Refuse a split the dataset lacks (a KeyError after loading), a mistyped --validation_split (it turned
    epoch selection off without a word), and training on the split Table 3 scores (memorisation)."""
    default_validation = SelectorScriptArguments.__dataclass_fields__["validation_split"].default
    for option in ("train_split", "eval_split", "validation_split"):
        split = getattr(script_args, option)
        if split not in present and not (option == "validation_split" and split == default_validation):
            raise InputError(f"--{option} {split}: the dataset's s1 splits are {present}")
    if script_args.train_split == script_args.eval_split:
        raise InputError(
            f"--train_split and --eval_split are both {script_args.eval_split}: Table 3 would score the "
            "examples the selectors trained on; give different splits"
        )


def run(script_args: SelectorScriptArguments, train_args: SelectorTrainingArguments, output_dir: str) -> None:
    """Train the selectors of `script_args.methods`, write Table 3 and the models into `output_dir`."""
    for mode in script_args.methods:  # before any training: a folder holding another model is not written over
        check_model_output_dir(Path(output_dir) / f"selector-{mode}", DPPSelectorConfig.model_type, "train-selector")
    set_seed(train_args.seed)
    splits = load_built(script_args.dataset, "s1")
    check_splits(script_args, list(splits))
    image_table = load_features(script_args.features, "image")
    review_table = load_features(script_args.features, "review")
    if image_table.fingerprint != review_table.fingerprint:  # the selector compares the two in one space
        raise InputError(
            f"--features {script_args.features}: its image features come from {image_table.checkpoint!r} and "
            f"its review features from {review_table.checkpoint!r} (another fingerprint); give one CLIP's"
        )

    def examples(split: str, pool_pics: set[str] | None = None):
        return build_selection_dataset(
            splits[split].select_columns(S1_COLUMNS), image_table, review_table, pool_pics
        )

    pool_pics = None
    if script_args.training_pools == "train_images":
        pool_pics = training_pool_pics(splits[script_args.train_split].select_columns(["pics"]))
    train_dataset = examples(script_args.train_split, pool_pics)
    eval_dataset = examples(script_args.eval_split)
    validation_dataset = None
    if script_args.validation_split in splits:
        validation_dataset = examples(script_args.validation_split)
    # A dataset whose review texts are all empty has no review features: no width to build the selector with.
    if review_table.embeddings.numel() == 0 or image_table.embeddings.numel() == 0:
        raise InputError(
            f"--features {script_args.features} holds no review or no image features: extract features of a "
            "dataset with review texts and photos"
        )
    base_config = DPPSelectorConfig(
        text_dim=review_table.embeddings.shape[1],
        image_dim=image_table.embeddings.shape[1],
        history_prior=script_args.history_prior,
    )
    results, models = run_selection_ablation(
        train_dataset,
        eval_dataset,
        base_config,
        train_args,
        tuple(script_args.methods),
        validation_dataset,
        output_dir=output_dir,
        use_cpu=script_args.use_cpu,
    )
    if PartialState().is_main_process:
        output_dir = Path(output_dir)
        counts = {script_args.train_split: len(train_dataset), script_args.eval_split: len(eval_dataset)}
        # The previous run's table goes first, and the new one comes last: a run killed while saving leaves no
        # table beside selectors it does not describe.
        for name in ("table3.md", "table3.json"):
            (output_dir / name).unlink(missing_ok=True)
        for mode, model in models.items():
            with saving_into(output_dir / f"selector-{mode}") as staging:  # a killed save leaves the previous one
                model.save_pretrained(staging)
        print(write_selection_table(results, train_args.top_k, output_dir, counts))


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "train-selector"))
