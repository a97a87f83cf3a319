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

import argparse
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer, GPT2Config, TrainingArguments

import gest_showcases.features
from gest_showcases.baselines.collator import GeneratorCollator
from gest_showcases.baselines.data import GeneratorDataArguments, feature_kinds, read_rows
from gest_showcases.baselines.registry import MODEL_NAMES, PC2L_RUNS
from gest_showcases.baselines.training import (
    BaselineModelArguments,
    GeneratorInputs,
    generate_baseline,
    generate_for_rows,
    generation_records,
    train_baseline,
)
from gest_showcases.data.folder import dataset_configs
from gest_showcases.errors import InputError, check_at_least, check_at_most
from gest_showcases.generation.configuration_pc2l import MAX_NEW_TOKENS
from gest_showcases.generation.lora import load_lora_pc2l
from gest_showcases.generation.modeling_pc2l import PC2LForConditionalGeneration
from gest_showcases.generation.training_run import PC2LDataArguments, PC2LModelArguments
from gest_showcases.metrics.generations import write_generations
from gest_showcases.model_folders import load_whole, loading

from . import train_pc2l
from .arguments import CONFIG_FLAG, is_yaml_file, load_options_file, parse_args

logger = logging.getLogger(__name__)

GENERATIONS_FILE = "generations-test.jsonl"


@dataclass
class TrainGeneratorArguments:
    """Which generator, and the test generations written after training."""

    model: str = field(metadata={"help": "the generator to train", "choices": list(MODEL_NAMES)})
    generate_test: bool = field(
        default=True,
        metadata={"help": f"whether to write {GENERATIONS_FILE} (the s2 test split, from the users' photos); on by "
                          "default, --no_generate_test turns it off"},  # fmt: skip
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

    def __post_init__(self):  # else decoding fails after the whole training run
        check_at_least(self, max_new_tokens=1, no_repeat_ngram_size=0, generation_batch_size=1)
        check_at_most(self, max_new_tokens=MAX_NEW_TOKENS)


def _model_name(argv: list[str]) -> str | None:
    """`--model` as the command line gives it, else as its `--config` file does: it decides the other options."""
    front = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    front.add_argument("--model")
    front.add_argument(CONFIG_FLAG)
    known, _ = front.parse_known_args(argv)
    if known.model is not None or known.config is None or not is_yaml_file(known.config):
        return known.model
    options = load_options_file(known.config)
    model = options.get("model") if isinstance(options, dict) else None
    if model is not None and not isinstance(model, str):
        raise InputError(f"--config {known.config}: model: {model!r}; give one name, e.g. model: pc2l")
    return model


def _point_to_train_pc2l(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "With --model pc2l or gpt2-ce the other options are train-pc2l's (listed by --model pc2l --help, or "
        "gest-showcases train-pc2l --help)."
    )


def parse_generator_args(argv: list[str] | None = None, prog: str | None = None) -> tuple:
    """(`TrainGeneratorArguments`, model arguments, data arguments, `TrainingArguments`) from `argv` and `--config`.

    The model and data arguments are train-pc2l's (`PC2LModelArguments`, `PC2LDataArguments`) for a PC2L run, with
    the options that make that run (`PC2L_RUNS`) last so that they win; a baseline's otherwise. `--help` lists the
    options of the `--model` given (train-pc2l's for `pc2l` and `gpt2-ce`), the baselines' without one.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    model = _model_name(argv)
    if model in PC2L_RUNS:
        dataclass_types = (TrainGeneratorArguments, PC2LModelArguments, PC2LDataArguments, TrainingArguments)
        argv += PC2L_RUNS[model]
    else:
        dataclass_types = (
            TrainGeneratorArguments,
            BaselineModelArguments,
            GeneratorDataArguments,
            TrainingArguments,
        )
    return parse_args(
        dataclass_types, argv, prog, description=__doc__.split("\n")[0], add_arguments=_point_to_train_pc2l
    )


def _pc2l_generations(model_args, data_args, folder: str, rows: list[dict], decoding: dict):
    """(examples, texts) of the PC2L run in `folder`, from each row's own photos."""
    if model_args.lora:
        model = load_lora_pc2l(folder)
    else:
        with loading("--output_dir", folder):  # weights that do not fit the model: one line, not random weights
            model = load_whole(PC2LForConditionalGeneration, folder, "--output_dir")
    config = model.config
    inputs = ("image",) * config.uses_images + ("review",) * config.uses_reviews
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    # PC2L's batch is the collator's for these inputs (PC2LCollator's own code).
    collator = GeneratorCollator(
        tokenizer, conditioning_inputs=inputs, max_length=data_args.max_length, max_images=config.max_images,
        max_reviews=config.max_reviews,
    )  # fmt: skip
    kind = config.image_features_read
    kinds = feature_kinds(inputs, kind)
    tables = {name: gest_showcases.features.load_features(data_args.features, name) for name in kinds}
    return generate_for_rows(model.eval(), tokenizer, collator, rows, tables, kind, **decoding)


def _baseline_generations(data_args, folder: str, rows: list[dict], decoding: dict):
    """(examples, texts) of the baseline in `folder`, from each row's own photos."""
    record = GeneratorInputs.load(folder)
    kinds = feature_kinds(tuple(record.conditioning_inputs), record.image_kind)
    tables = {kind: gest_showcases.features.load_features(data_args.features, kind) for kind in kinds}
    return generate_baseline(folder, data_args.dataset, rows, tables, **decoding)


def _check_new_tokens_fit(max_new_tokens: int | None, model_args: PC2LModelArguments) -> None:
    """`--max_new_tokens` against a GPT-2 decoder's positions, before training: past them, decoding the test split
    failed with an IndexError once the model was trained. Decoders with rotary positions have no such bound."""
    if max_new_tokens is None:
        return
    if model_args.decoder is None:
        positions = GPT2Config().n_positions  # train-pc2l's random GPT-2 small
    else:
        with loading("--decoder", model_args.decoder):
            decoder = AutoConfig.from_pretrained(
                model_args.decoder, gguf_file=model_args.decoder_gguf_file, trust_remote_code=False
            )
        positions = getattr(decoder, "n_positions", None)
    if positions is not None and max_new_tokens > positions:
        raise InputError(
            f"--max_new_tokens {max_new_tokens}: the decoder has {positions} positions (n_positions); give at most "
            f"{positions}"
        )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args, model_args, data_args, training_args = parse_generator_args(argv, prog)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.model in PC2L_RUNS:
        _check_new_tokens_fit(args.max_new_tokens, model_args)
        command = f"train-generator --model {args.model}"
        train_pc2l.run(model_args, data_args, training_args, command=command, generates_test=args.generate_test)

        def generate(rows, decoding):
            return _pc2l_generations(model_args, data_args, training_args.output_dir, rows, decoding)

    else:
        train_baseline(args.model, model_args, data_args, training_args, generates_test=args.generate_test)

        def generate(rows, decoding):
            return _baseline_generations(data_args, training_args.output_dir, rows, decoding)

    if args.generate_test and training_args.process_index == 0:
        # A previous run's generations would sit beside the new model for as long as generating takes (seconds to
        # hours), and `evaluate` would read them as this model's: gone as soon as the new model is saved.
        (Path(training_args.output_dir) / GENERATIONS_FILE).unlink(missing_ok=True)
        write_test_generations(args, data_args.dataset, training_args.output_dir, generate)
    return 0


def write_test_generations(args: TrainGeneratorArguments, dataset: str, folder: str, generate) -> Path | None:
    """`GENERATIONS_FILE` in `folder`: `generate(rows, decoding)`'s texts for the `s2` test split of `dataset`."""
    if "test" not in dataset_configs(dataset).get("s2", {}):
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
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "train-generator"))
