"""`gest-showcases finetune-lm`: the "FT" step of the paper's Table 5.

Continue pretraining the GPT-2 decoder as a plain language model on in-domain review text (the `review_text` of a
built dataset's training split) before PC2L training. The output folder is a GPT-2 checkpoint (with its
tokenizer) to pass as `--decoder` to `gest-showcases train-pc2l`:

    gest-showcases finetune-lm --dataset data/gest --decoder gpt2 --tokenizer gpt2 --output_dir runs/gpt2-ft \\
        --num_train_epochs 1 --per_device_train_batch_size 8
"""

import logging
import sys
from dataclasses import dataclass, field

from transformers import (
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    HfArgumentParser,
    TrainingArguments,
    default_data_collator,
)

from .trainer import FiniteTrainer

logger = logging.getLogger(__name__)


@dataclass
class FinetuneLMArguments:
    """Which text, which decoder."""

    dataset: str = field(metadata={"help": "Built dataset folder (gest-showcases build)."})
    tokenizer: str = field(metadata={"help": "GPT-2 tokenizer name or folder (e.g. gpt2)."})
    decoder: str | None = field(
        default=None, metadata={"help": "GPT-2 checkpoint to continue from; random GPT-2 small when unset."}
    )
    config_name: str = field(default="s1", metadata={"help": "Dataset config whose train split is read."})
    text_column: str = "review_text"
    block_size: int = field(default=128, metadata={"help": "Tokens per training block (texts are packed)."})


def pack_texts(token_ids: list[list[int]], eos_token_id: int, block_size: int) -> list[list[int]]:
    """Concatenate tokenised texts, each closed by EOS, and cut the stream into full blocks (the tail is dropped)."""
    stream = [token for ids in token_ids for token in [*ids, eos_token_id]]
    usable = len(stream) // block_size * block_size
    return [stream[start : start + block_size] for start in range(0, usable, block_size)]


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = HfArgumentParser((FinetuneLMArguments, TrainingArguments), prog=prog)
    args, training_args = parser.parse_args_into_dataclasses(args=sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from gest_showcases.data.build import load_built

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    texts = load_built(args.dataset, args.config_name, split="train")
    texts = texts.filter(lambda text: len(text.strip()) > 0, input_columns=args.text_column)

    def tokenize_and_pack(batch):
        ids = tokenizer(batch[args.text_column], add_special_tokens=False)["input_ids"]
        blocks = pack_texts(ids, tokenizer.eos_token_id, args.block_size)
        return {"input_ids": blocks, "labels": blocks}

    with training_args.main_process_first():
        blocks = texts.map(tokenize_and_pack, batched=True, remove_columns=texts.column_names, desc="packing")
    if len(blocks) == 0:
        raise ValueError(
            f"{args.dataset} ({args.config_name}/train) has fewer than {args.block_size} tokens of text"
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
    result = trainer.train()
    trainer.save_model()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
