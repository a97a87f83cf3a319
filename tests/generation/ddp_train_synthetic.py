"""Run by test_two_process_cpu_training under `torchrun --nproc_per_node 2`: PC2L training on synthetic data.

Each rank writes rank<k>.json to the folder given as argv[1]: world size, a checksum of the trained weights (equal
on both ranks when DDP synchronised the gradients), whether they changed, and the logged loss parts. An optional
argv[2] is a JSON object whose "config" and "args" entries update the PC2L config and the TrainingArguments.
"""

import json
import sys
from pathlib import Path

import torch
from pc2l_fixtures import build_tokenizer, synthetic_examples, tiny_config
from transformers import TrainingArguments

from gest_showcases.commands.running import close_process_group
from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.generation.collator import PC2LCollator, PC2LDataset
from gest_showcases.generation.trainer import PC2LTrainer


def main(output_dir: Path, overrides: dict) -> None:
    torch.set_num_threads(1)
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(tiny_config(tokenizer, **overrides.get("config", {})))
    before = sum(parameter.detach().double().sum() for parameter in model.parameters())
    examples = synthetic_examples(8)
    dataset = PC2LDataset(
        targets=[e["target"] for e in examples],
        image_features=[e["image_features"] for e in examples],
        review_features=[e["review_features"] for e in examples],
        negatives=[e["negative"] for e in examples],
    )
    args = TrainingArguments(**(dict(
        output_dir=str(output_dir), use_cpu=True, report_to=[], save_strategy="no", logging_steps=1,
        per_device_train_batch_size=2, gradient_accumulation_steps=2, max_steps=2, learning_rate=1e-3,
        remove_unused_columns=False, disable_tqdm=True, ddp_backend="gloo",
    ) | overrides.get("args", {})))  # fmt: skip
    trainer = PC2LTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=PC2LCollator(tokenizer, with_negatives=True),
    )
    trainer.train()
    after = sum(parameter.detach().double().sum() for parameter in model.parameters())
    logged = sorted({key for entry in trainer.state.log_history for key in entry})
    record = {"world_size": args.world_size, "checksum": float(after), "changed": bool(after != before),
              "logged": logged}  # fmt: skip
    (output_dir / f"rank{args.process_index}.json").write_text(json.dumps(record))
    # A gloo group left to interpreter shutdown can abort the process after its work is done; the package's
    # commands close it this way (see its docstring for the deadlock a plain destroy can meet).
    close_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
