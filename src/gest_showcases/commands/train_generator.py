"""`gest-showcases train-generator`: train any generator of the paper's Table 2 and write its test generations.

    gest-showcases train-generator --model peter --dataset data/gest --features data/features \\
        --tokenizer data/gpt2 --output_dir runs/peter [TrainingArguments] [--config_overrides 'hidden_size=128'] \\
        [--config FILE.yaml]

`--model` is one of `pc2l`, `gpt2-ce` (PC2L without contrastive losses: `--image_contrastive none
--review_contrastive none`, Table 2's GPT-2 row), both trained by `train-pc2l` with the other options, or a baseline
of `baselines.registry.BASELINES` (`st`, `r2gen`, `ref2seq`, `peter`, `pepler`), built from its configuration (the
package's small defaults, then `--config_overrides`) and trained by `baselines.training.train_baseline`. Every
model reads the same `s2` splits, features and tokenizer and trains under the same `Trainer` (`GeneratorTrainer`).

Then, unless `--generate_test false`, it writes `generations-test.jsonl` in the output folder: one line per `s2`
test example the model has an input for, generated from the user's own photos (`pics`), in the format
`gest-showcases evaluate --generations` reads (`metrics.generations`), system name `--system` (default: the model name).
Options come from the command line, a YAML file (`--config`, which the command line overrides), or both.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser, TrainingArguments

from gest_showcases.baselines.data import GeneratorDataArguments, read_rows
from gest_showcases.baselines.registry import MODEL_NAMES, PC2L_RUNS
from gest_showcases.baselines.training import BaselineModelArguments
from gest_showcases.generation.train import yaml_to_argv

logger = logging.getLogger(__name__)

GENERATIONS_FILE = "generations-test.jsonl"


@dataclass
class TrainGeneratorArguments:
    """Which generator, and the test generations written after training."""

    model: str = field(metadata={"help": "the generator to train", "choices": list(MODEL_NAMES)})
    generate_test: bool = field(
        default=True,
        metadata={"help": f"write {GENERATIONS_FILE}: the s2 test split, from the users' photos"},
    )
    system: str | None = field(
        default=None, metadata={"help": "system name in the generations file (default: --model)"}
    )
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "decoding: most new tokens (default: the model's, the paper's 64)"}
    )
    no_repeat_ngram_size: int = field(
        default=0,
        metadata={"help": "decoding: no repeated n-gram of this size (0: off, the paper's decoding)"},
    )
    generation_batch_size: int = 32


def _expand_config(argv: list[str]) -> list[str]:
    """`argv` with `--config FILE.yaml` replaced by the file's options, placed first so later options override them."""
    if "--config" not in argv:
        return argv
    index = argv.index("--config")
    return yaml_to_argv(argv[index + 1]) + argv[:index] + argv[index + 2 :]


def _full_parser(prog: str | None) -> HfArgumentParser:
    return HfArgumentParser(
        (TrainGeneratorArguments, BaselineModelArguments, GeneratorDataArguments, TrainingArguments),
        prog=prog,
        allow_abbrev=False,
        epilog="With --model pc2l or gpt2-ce the other options are train-pc2l's (gest-showcases train-pc2l --help).",
    )


def _pc2l_generations(model_args, data_args, folder: str, rows: list[dict], decoding: dict):
    """(examples, texts) of the PC2L run in `folder`, from each row's own photos."""
    from transformers import AutoTokenizer

    from gest_showcases.baselines.collator import GeneratorCollator
    from gest_showcases.baselines.data import feature_kinds
    from gest_showcases.baselines.training import generate_for_rows
    from gest_showcases.features import load_features
    from gest_showcases.generation import PC2LForConditionalGeneration

    if model_args.lora:
        from gest_showcases.generation.lora import load_lora_pc2l

        model = load_lora_pc2l(folder)
    else:
        model = PC2LForConditionalGeneration.from_pretrained(folder)
    config = model.config
    inputs = ("image",) * config.uses_images + ("review",) * config.uses_reviews
    tokenizer = AutoTokenizer.from_pretrained(folder)
    # PC2L's batch is the collator's for these inputs (PC2LCollator's own code).
    collator = GeneratorCollator(
        tokenizer, conditioning_inputs=inputs, max_length=data_args.max_length, max_images=config.max_images,
        max_reviews=config.max_reviews,
    )  # fmt: skip
    kind = config.image_features_read
    tables = {name: load_features(data_args.features, name) for name in feature_kinds(inputs, kind)}
    return generate_for_rows(model.eval(), tokenizer, collator, rows, tables, kind, **decoding)


def _baseline_generations(data_args, folder: str, rows: list[dict], decoding: dict):
    """(examples, texts) of the baseline in `folder`, from each row's own photos."""
    from gest_showcases.baselines.data import feature_kinds
    from gest_showcases.baselines.training import GeneratorInputs, generate_baseline
    from gest_showcases.features import load_features

    record = GeneratorInputs.load(folder)
    kinds = feature_kinds(tuple(record.conditioning_inputs), record.image_kind)
    tables = {kind: load_features(data_args.features, kind) for kind in kinds}
    return generate_baseline(folder, data_args.dataset, rows, tables, **decoding)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    argv = _expand_config(list(sys.argv[1:] if argv is None else argv))
    if "-h" in argv or "--help" in argv:
        # Every option of the command (argparse prints them and exits), whichever --model is given.
        _full_parser(prog).parse_args(["--help"])
    front = HfArgumentParser(TrainGeneratorArguments, prog=prog, allow_abbrev=False, add_help=False)
    args, rest = front.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.model in PC2L_RUNS:
        from gest_showcases.generation import train as train_pc2l

        rest = rest + list(PC2L_RUNS[args.model])
        status = train_pc2l.main(rest, prog)
        if status:
            return status
        # The options train-pc2l read, for the test generations.
        model_args, data_args, training_args = train_pc2l.parse_args(
            rest, prog, (train_pc2l.PC2LModelArguments, train_pc2l.PC2LDataArguments, TrainingArguments)
        )

        def generate(rows, decoding):
            return _pc2l_generations(model_args, data_args, training_args.output_dir, rows, decoding)

    else:
        from gest_showcases.baselines.training import train_baseline

        model_args, data_args, training_args = HfArgumentParser(
            (BaselineModelArguments, GeneratorDataArguments, TrainingArguments), prog=prog, allow_abbrev=False
        ).parse_args_into_dataclasses(args=rest)
        train_baseline(args.model, model_args, data_args, training_args)

        def generate(rows, decoding):
            return _baseline_generations(data_args, training_args.output_dir, rows, decoding)

    if args.generate_test and training_args.process_index == 0:
        write_test_generations(args, data_args.dataset, training_args.output_dir, generate)
    return 0


def write_test_generations(args: TrainGeneratorArguments, dataset: str, folder: str, generate) -> Path | None:
    """`GENERATIONS_FILE` in `folder`: `generate(rows, decoding)`'s texts for the `s2` test split of `dataset`."""
    import datasets

    from gest_showcases.baselines.training import generation_records, write_generations

    if "test" not in datasets.get_dataset_split_names(dataset, "s2"):
        logger.warning("%s has no s2 test split: no test generations written", dataset)
        return None
    decoding = {"batch_size": args.generation_batch_size}
    if args.no_repeat_ngram_size:
        decoding["no_repeat_ngram_size"] = args.no_repeat_ngram_size
    if args.max_new_tokens is not None:
        decoding["max_new_tokens"] = args.max_new_tokens
    examples, texts = generate(read_rows(dataset, "test"), decoding)
    records = generation_records(args.system or args.model, examples, texts)
    path = write_generations(Path(folder) / GENERATIONS_FILE, records)
    logger.info("wrote %d test generations to %s", len(records), path)
    return path


if __name__ == "__main__":
    sys.exit(main())
