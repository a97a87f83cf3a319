"""`gest-showcases finetune-lm`: the "FT" step of the paper's Table 5.

Continue pretraining the GPT-2 decoder as a plain language model on in-domain review text (the `review_text` of a
built dataset's training split) before PC2L training. The output folder is a GPT-2 checkpoint (with its
tokenizer) to pass as `--decoder` to `gest-showcases train-pc2l`:

    gest-showcases finetune-lm --dataset data/gest --decoder gpt2 --tokenizer gpt2 --output_dir runs/gpt2-ft \\
        --num_train_epochs 1 --per_device_train_batch_size 8 [--dataset_config_name s1] [--config FILE.yaml]

The training options are transformers' `TrainingArguments` (`--output_dir`, `--num_train_epochs`, `--use_cpu`,
...). Options come from the command line, a YAML file (`--config`, which the command line overrides), or both.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from transformers import (
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    TrainingArguments,
    default_data_collator,
)

from gest_showcases.data.build import load_built
from gest_showcases.errors import InputError, check_at_least
from gest_showcases.generation.finetune_lm import pack_texts
from gest_showcases.model_folders import (
    check_model_output_dir,
    check_tokenizer_fits,
    loading,
    require_model_type,
)
from gest_showcases.trainer_utils import FiniteTrainer, checkpoint_to_resume, save_model_atomically

from .arguments import DatasetConfigArguments, parse_args, take_deprecated_spelling

logger = logging.getLogger(__name__)


@dataclass
class FinetuneLMArguments:
    """Which text, which decoder."""

    dataset: str = field(metadata={"help": "Built dataset folder (gest-showcases build)."})
    tokenizer: str = field(metadata={"help": "GPT-2 tokenizer name or folder (e.g. gpt2)."})
    decoder: str | None = field(
        default=None, metadata={"help": "GPT-2 checkpoint to continue from; random GPT-2 small when unset."}
    )
    config_name: str | None = field(
        default=None, metadata={"help": "deprecated spelling of --dataset_config_name (kept for one release)"}
    )
    text_column: str = "review_text"
    block_size: int = field(default=128, metadata={"help": "Tokens per training block (texts are packed)."})

    def __post_init__(self):
        check_at_least(self, block_size=1)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args, data, training_args = parse_args(
        (FinetuneLMArguments, DatasetConfigArguments, TrainingArguments),
        argv,
        prog,
        description=__doc__.split("\n")[0],
    )
    # --config_name, this command's old spelling of --dataset_config_name, lives in the other dataclass.
    take_deprecated_spelling(args, "config_name", "dataset_config_name", target=data)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(args, data.dataset_config_name, training_args)
    return 0


def run(args: FinetuneLMArguments, config_name: str, training_args: TrainingArguments) -> None:
    """Train the decoder on the packed `train` texts of `args.dataset`'s `config_name`; save it with its tokenizer."""
    # Before any text is packed: GPT2LMHeadModel would load another model's folder with random weights.
    decoder = None
    if args.decoder is not None:
        decoder = require_model_type(args.decoder, "gpt2", "--decoder", "pass a GPT-2 checkpoint (Hub name or folder)")
    check_model_output_dir(training_args.output_dir, "gpt2", "finetune-lm")
    resume_from = checkpoint_to_resume(training_args, logger)
    with loading("--tokenizer", args.tokenizer):
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer, trust_remote_code=False)
    if decoder is not None:
        check_tokenizer_fits(tokenizer, args.tokenizer, decoder.get("vocab_size", 0), args.decoder)
    texts = load_built(args.dataset, config_name, split="train")
    if args.text_column not in texts.column_names:
        raise InputError(
            f"--text_column {args.text_column}: {args.dataset} ({config_name}) has no such column; "
            f"its columns: {', '.join(texts.column_names)}"
        )
    texts = texts.filter(lambda text: len(text.strip()) > 0, input_columns=args.text_column)

    def tokenize_and_pack(batch):
        ids = tokenizer(batch[args.text_column], add_special_tokens=False)["input_ids"]
        blocks = pack_texts(ids, tokenizer.eos_token_id, args.block_size)
        return {"input_ids": blocks, "labels": blocks}

    with training_args.main_process_first():
        blocks = texts.map(tokenize_and_pack, batched=True, remove_columns=texts.column_names, desc="packing")
    if len(blocks) == 0:
        raise InputError(
            f"{args.dataset} ({config_name}/train) has fewer than {args.block_size} tokens of text; "
            "give a smaller --block_size"
        )
    logger.info("%d blocks of %d tokens from %d reviews", len(blocks), args.block_size, len(texts))

    if args.decoder is not None:
        model = GPT2LMHeadModel.from_pretrained(args.decoder)
    else:
        special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), **special))
    # Stops at a NaN loss or gradient (a diverging learning rate, a broken checkpoint) instead of saving a NaN model.
    trainer = FiniteTrainer(
        model=model,
        args=training_args,
        train_dataset=blocks,
        data_collator=default_data_collator,
        processing_class=tokenizer,
    )
    result = trainer.train(resume_from_checkpoint=resume_from)
    save_model_atomically(trainer)
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "finetune-lm"))
