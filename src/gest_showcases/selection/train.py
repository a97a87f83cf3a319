"""`gest-showcases train-selector`: train the DPP selectors and print the paper's Table 3.

Reads the `s1` config of a built dataset folder and a CLIP feature folder (`gest-showcases features`),
trains one `DPPImageSelector` per input mode on the training split (keeping the epoch with the best
F1@K on the validation split, when the dataset has one), scores them and the random baseline on the
evaluation split, and writes `table3.md`, `table3.json` (values in percent) and one
`save_pretrained` folder per mode (`selector-img`, `selector-text`, `selector-img+text`) to
`--output_dir`. Runs under `accelerate launch` (`examples/train_selector.py` is the same `main`).

Example:

```bash
gest-showcases train-selector --dataset gest-synth --features gest-synth-features --output_dir selector-runs
accelerate launch examples/train_selector.py --dataset gest-synth --features gest-synth-features \\
    --output_dir selector-runs --num_epochs 30
```
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import HfArgumentParser

from .configuration_dpp import DPPSelectorConfig
from .dataset import build_selection_dataset, training_pool_pics
from .training import METHODS, SelectorTrainingArguments, format_selection_table, run_selection_ablation

logger = logging.getLogger(__name__)

S1_COLUMNS = ["pics", "candidate_pics", "history_pics", "history_review_ids"]


@dataclass
class SelectorScriptArguments:
    """Where the data comes from and where the results go."""

    dataset: str = field(metadata={"help": "Built dataset folder (`gest-showcases build --output`)."})
    features: str = field(metadata={"help": "Feature folder with `image` and `review` kinds."})
    output_dir: str = field(metadata={"help": "Folder for table3.md, table3.json and the trained models."})
    methods: list[str] = field(
        default_factory=lambda: list(METHODS),
        metadata={"help": f"Rows of the table, a subset of {METHODS}."},
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
    cpu: bool = field(default=False, metadata={"help": "Train on CPU even when a GPU is present."})


def write_table(
    results: dict[str, dict[str, float]], k: int, output_dir: Path, counts: dict[str, int]
) -> str:
    """Writes `table3.md` and `table3.json` (percent) to `output_dir`; returns the markdown."""
    markdown = format_selection_table(results, k)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "table3.md").write_text(markdown + "\n")
    payload = {
        "k": k,
        "unit": "percent",
        "examples": counts,
        "results": {
            method: {key: 100 * value for key, value in metrics.items()}
            for method, metrics in results.items()
        },
    }
    (output_dir / "table3.json").write_text(json.dumps(payload, indent=2) + "\n")
    return markdown


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = HfArgumentParser((SelectorScriptArguments, SelectorTrainingArguments), prog=prog)
    script_args, train_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Heavy and owned by other layers: loaded only when the command runs.
    from gest_showcases.data.build import load_built

    from ..features import load_features

    accelerator = Accelerator(cpu=script_args.cpu)
    set_seed(train_args.seed)
    splits = load_built(script_args.dataset, "s1")
    image_table = load_features(script_args.features, "image")
    review_table = load_features(script_args.features, "review")

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
    base_config = DPPSelectorConfig(
        text_dim=review_table.embeddings.shape[1], image_dim=image_table.embeddings.shape[1]
    )
    results, models = run_selection_ablation(
        train_dataset,
        eval_dataset,
        base_config,
        train_args,
        accelerator,
        tuple(script_args.methods),
        validation_dataset,
    )
    if accelerator.is_main_process:
        output_dir = Path(script_args.output_dir)
        counts = {script_args.train_split: len(train_dataset), script_args.eval_split: len(eval_dataset)}
        print(write_table(results, train_args.top_k, output_dir, counts))
        for mode, model in models.items():
            model.save_pretrained(output_dir / f"selector-{mode}")
    return 0
