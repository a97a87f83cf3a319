"""Training and generation of the Table 2 baselines: the library behind `gest-showcases train-generator`.

`train_baseline` trains one baseline of `registry.BASELINES` on a built dataset's `s2` train split with
[`GeneratorTrainer`] (the model's own loss, each `loss_*` part logged) and saves, in the output folder, the model,
the tokenizer and `generator_inputs.json`: which inputs the model reads, how the collator cut them, the feature
models they come from and the train split's id vocabulary (the model's id embeddings are indexed by it).

`load_generator` + `generate_texts` write explanations for any examples (`baselines.data.build_examples`) with any
Table 2 generator, PC2L included (its batch is the collator's for `("image", "review")`), and
`generation_records` turns them into the lines `gest-showcases evaluate` reads (`metrics.generations`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gest_showcases.data.folder import dataset_configs
from gest_showcases.errors import InputError, one_line
from gest_showcases.files import write_text_atomically
from gest_showcases.model_folders import (
    check_model_output_dir,
    check_tokenizer_fits,
    load_whole,
    loading,
    require_model_type,
)
from gest_showcases.trainer_utils import checkpoint_to_resume, save_model_atomically

from .collator import GeneratorCollator
from .data import (
    ConditioningContext,
    GeneratorDataArguments,
    IdVocabulary,
    build_examples,
    feature_kinds,
    has_input,
    load_examples,
    read_rows,
    require_test_examples,
)
from .registry import BASELINES

logger = logging.getLogger(__name__)

INPUTS_FILE = "generator_inputs.json"
# Batch keys that are the target, not an input of `generate`.
_TARGET_KEYS = ("input_ids", "attention_mask", "labels")


@dataclass
class BaselineModelArguments:
    """The baseline's tokenizer and configuration."""

    tokenizer: str = field(
        metadata={"help": "GPT-2 tokenizer name or folder (the one every Table 2 row shares)."}
    )
    decoder: str | None = field(
        default=None,
        metadata={
            "help": "GPT-2 checkpoint to start the decoder from (PEPLER); a small random one when unset"
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "configuration values over the package's small defaults, as transformers' run_clm takes "
            "them: 'hidden_size=64,num_layers=1'"
        },
    )


@dataclass
class GeneratorInputs:
    """What a trained generator reads and how its batches were cut (`generator_inputs.json` in its folder).

    Args:
        model (`str`): its `train-generator --model` name.
        conditioning_inputs (`list[str]`): the model class's `conditioning_inputs`.
        image_kind (`str`): the image feature kind it read.
        max_length, max_images, max_reviews, max_references, max_reference_length (`int`): the collator's limits.
        feature_models (`dict`): per feature kind read, the `checkpoint` and `fingerprint` of the model that computed
            the features.
        vocabulary (`dict`, *optional*): the [`IdVocabulary`] of the train split, for models reading `"ids"`.
    """

    model: str
    conditioning_inputs: list[str]
    image_kind: str
    max_length: int
    max_images: int
    max_reviews: int
    max_references: int
    max_reference_length: int
    feature_models: dict = field(default_factory=dict)
    vocabulary: dict | None = None

    def save(self, folder: str | Path) -> None:
        write_text_atomically(Path(folder) / INPUTS_FILE, json.dumps(self.__dict__, indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> GeneratorInputs:
        path = Path(folder) / INPUTS_FILE
        if not path.is_file():
            raise InputError(f"{folder}: no {INPUTS_FILE}; pass a folder that `train-generator` wrote")
        saved = json.loads(path.read_text(encoding="utf-8"))
        fields = dataclasses.fields(cls)
        names = {item.name for item in fields}
        required = {
            item.name
            for item in fields
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        }
        if not isinstance(saved, dict) or set(saved) - names or required - set(saved):
            raise InputError(
                f"{path} is not a {INPUTS_FILE} that `train-generator` writes (keys: {sorted(names)}); "
                "train the generator again"
            )
        if saved["model"] not in BASELINES:
            raise InputError(f"{path}: unknown model {str(saved['model'])[:40]!r}; expected one of {sorted(BASELINES)}")
        return cls(**saved)

    def collator(self, tokenizer) -> GeneratorCollator:
        return GeneratorCollator(
            tokenizer, conditioning_inputs=tuple(self.conditioning_inputs), max_length=self.max_length,
            max_images=self.max_images, max_reviews=self.max_reviews, max_references=self.max_references,
            max_reference_length=self.max_reference_length,
        )  # fmt: skip

    def context(self, train_rows: list[dict]) -> ConditioningContext:
        """The id vocabulary the model was trained with and the item references of `train_rows`."""
        vocabulary = IdVocabulary.from_dict(self.vocabulary) if self.vocabulary else None
        return ConditioningContext.from_train_rows(train_rows, vocabulary)


def _input_config(inputs: tuple[str, ...], examples: list[dict], data_args, vocabulary) -> dict:
    """The configuration values the data sets: feature widths, input limits, id vocabulary sizes."""
    values = {}
    if "image" in inputs:
        values |= {
            "image_feature_dim": examples[0]["image_features"].shape[-1],
            "max_images": data_args.max_images,
        }
    if "review" in inputs:
        values |= {
            "review_feature_dim": examples[0]["review_features"].shape[-1],
            "max_reviews": data_args.max_reviews,
        }
    if "ids" in inputs:
        values |= {"num_users": vocabulary.num_users, "num_items": vocabulary.num_items}
    if "references" in inputs:
        values |= {
            "max_references": data_args.max_references,
            "max_reference_length": data_args.max_reference_length,
        }
    return values


def _overrides(config_class: type, kwargs: dict, overrides: str | None) -> dict:
    """The values of an `--config_overrides` string ('name=value,...'), typed as the configuration's fields."""
    if not overrides:
        return {}
    config = config_class(**kwargs)
    try:
        # transformers' parser: the type of each value is that of the field it replaces.
        config.update_from_string(overrides)
    # An unknown name, a value of the wrong type, no "name=value"; a sub-configuration (PEPLER's `decoder`): TypeError.
    except (ValueError, TypeError) as error:
        raise InputError(f"--config_overrides {overrides!r}: {error}") from error
    return {name: getattr(config, name) for name in (item.split("=")[0] for item in overrides.split(","))}


def train_baseline(
    name: str,
    model_args: BaselineModelArguments,
    data_args: GeneratorDataArguments,
    training_args,
    generates_test: bool = False,
) -> dict[str, float]:
    """Train baseline `name` and save it with its tokenizer and [`GeneratorInputs`] in `training_args.output_dir`.

    Evaluates on the `s2` validation split when it has examples. Returns the train (and eval) metrics. With
    `generates_test` (`train-generator`, which generates the test split next) the test split's inputs are checked
    before training.
    """
    from transformers import AutoTokenizer, set_seed

    from gest_showcases.features import load_features
    from gest_showcases.generation.trainer import GeneratorTrainer, check_generator_training_args

    baseline = BASELINES[name]
    if model_args.decoder is not None and not baseline.pretrained_decoder:
        raise InputError(f"--decoder: {name} has no GPT-2 decoder to start from a checkpoint")
    writes = baseline.config_class().model_type
    check_model_output_dir(training_args.output_dir, writes, f"train-generator --model {name}")
    check_generator_training_args(training_args)  # before any data is read
    resume_from = checkpoint_to_resume(training_args, logger)
    decoder = None
    if model_args.decoder is not None:
        decoder = require_model_type(
            model_args.decoder, "gpt2", "--decoder", "pass a GPT-2 checkpoint (`finetune-lm` writes one)"
        )
    model_class = baseline.model_class()
    checkpointing = any(getattr(training_args, flag, False) for flag in ("activation_checkpointing",
                                                                         "gradient_checkpointing"))  # fmt: skip
    if checkpointing and not model_class.supports_gradient_checkpointing:  # else a traceback when training starts
        able = sorted(key for key, entry in BASELINES.items() if entry.model_class().supports_gradient_checkpointing)
        raise InputError(f"--gradient_checkpointing / --activation_checkpointing: {name} has no activation "
                         f"checkpointing (these do: {', '.join(able)})")  # fmt: skip
    inputs = tuple(model_class.conditioning_inputs)
    with loading("--tokenizer", model_args.tokenizer):
        tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer, trust_remote_code=False)
    # The card's splits (one line for a missing folder, a file, no card), not `datasets`' Hub lookup of the name.
    present = list(dataset_configs(data_args.dataset).get("s2", {}))
    if "train" not in present:
        raise InputError(f"{data_args.dataset} has no s2 train split (splits: {present})")
    kinds = feature_kinds(inputs, data_args.image_kind)
    tables = {kind: load_features(data_args.features, kind) for kind in kinds}
    train_rows = read_rows(data_args.dataset, "train")
    context = ConditioningContext.from_train_rows(train_rows)
    splits = {"train": load_examples(data_args, "train", inputs, tables, context, rows=train_rows)}
    if "validation" in present:
        splits["validation"] = load_examples(data_args, "validation", inputs, tables, context)
    if not splits["train"]:
        raise InputError(f"{data_args.dataset}: no s2 train example holds the inputs {name} reads ({inputs})")
    if generates_test:
        require_test_examples(data_args, inputs, tables)

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    special = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": pad,
    }
    kwargs = baseline.defaults | {"vocab_size": len(tokenizer), **special}
    kwargs |= _input_config(inputs, splits["train"], data_args, context.vocabulary)
    without_overrides = dict(kwargs)
    kwargs |= _overrides(baseline.config_class(), kwargs, model_args.config_overrides)
    record = GeneratorInputs(
        model=name, conditioning_inputs=list(inputs), image_kind=data_args.image_kind, max_length=data_args.max_length,
        max_images=data_args.max_images, max_reviews=data_args.max_reviews, max_references=data_args.max_references,
        max_reference_length=data_args.max_reference_length,
        feature_models={kind: {"checkpoint": table.checkpoint, "fingerprint": table.fingerprint}
                        for kind, table in tables.items()},
        vocabulary=context.vocabulary.to_dict() if "ids" in inputs else None,
    )  # fmt: skip
    # The initial weights are the seed's, as the Trainer's shuffling is.
    set_seed(training_args.seed)

    def build(config_kwargs: dict):
        if model_args.decoder is not None:
            decoder_free = {key: value for key, value in config_kwargs.items() if key != "decoder"}
            return model_class.from_decoder_pretrained(model_args.decoder, **decoder_free)
        return model_class(baseline.config_class()(**config_kwargs))

    if decoder is not None:
        check_tokenizer_fits(tokenizer, model_args.tokenizer, decoder.get("vocab_size", 0), model_args.decoder)
    with training_args.main_process_first():
        try:
            model = build(kwargs)
        # torch refuses the layer shapes (`hidden_size=-4`); a config refuses a value (`decoder=7`, a zero size)
        except (RuntimeError, ValueError, TypeError, ZeroDivisionError) as error:
            if model_args.config_overrides is None:
                raise
            build(without_overrides)  # the overrides are to blame only if the model builds without them
            message = f"--config_overrides {model_args.config_overrides!r}: the model cannot be built"
            raise InputError(f"{message} ({one_line(error)})") from error
    evaluation = splits.get("validation") or None
    trainer = GeneratorTrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=evaluation,
        data_collator=record.collator(tokenizer),
        processing_class=tokenizer,
    )
    result = trainer.train(resume_from_checkpoint=resume_from)
    metrics = dict(result.metrics)
    if evaluation is not None:
        metrics |= trainer.evaluate()  # before the save: a model computing NaN is refused, not saved
    save_model_atomically(trainer, record.save)
    trainer.save_state()  # trainer_state.json: the run's log history (each logged loss part), as HF's scripts keep it
    trainer.log_metrics("all", metrics)
    trainer.save_metrics("all", metrics)
    return metrics


def load_generator(folder: str | Path):
    """(model in eval mode, tokenizer, [`GeneratorInputs`]) of a baseline folder `train_baseline` wrote."""
    from transformers import AutoTokenizer

    record = GeneratorInputs.load(folder)
    with loading("baseline", folder):  # a weights file that does not fit: one line, not random weights
        model = load_whole(BASELINES[record.model].model_class(), folder, "baseline").eval()
    # The tokenizer class is transformers'; no code shipped in the folder runs.
    return model, AutoTokenizer.from_pretrained(folder, trust_remote_code=False), record


@torch.no_grad()
def generate_texts(
    model, tokenizer, collator, examples: list[dict], batch_size: int = 32, **decoding
) -> list[str]:
    """The model's explanation for each example (stripped), decoded with `decoding` over its generation config.

    Every batch key but the target's (`input_ids`, `attention_mask`, `labels`) is a conditioning input of
    `model.generate`.
    """
    texts = []
    for start in range(0, len(examples), batch_size):
        batch = collator(examples[start : start + batch_size])
        conditioning = {key: value for key, value in batch.items() if key not in _TARGET_KEYS}
        ids = model.generate(**conditioning, **decoding)
        texts += [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]
    return texts


def generate_for_rows(
    model, tokenizer, collator, rows: list[dict], tables: dict, image_kind: str = "image",
    context: ConditioningContext | None = None, pic_ids: list[list[str]] | None = None, batch_size: int = 32,
    **decoding,
) -> tuple[list[dict], list[str]]:  # fmt: skip
    """(examples, generated texts) of the `s2` rows the model has an input for, shown `pic_ids` (default: own photos).

    `collator.conditioning_inputs` says what the model reads; `context` is needed for ids and references.
    """
    examples = build_examples(rows, collator.conditioning_inputs, context, tables, image_kind, pic_ids)
    usable = [example for example in examples if has_input(example)]
    if examples and not usable:  # else an empty generations file and exit 0
        raise InputError(
            f"none of the {len(examples)} rows has an input the model reads ({', '.join(collator.conditioning_inputs)})"
            " among the features: were they extracted from this dataset's s2? (`gest-showcases features` embeds s1 "
            "and s2 by default)"
        )
    if len(usable) < len(examples):
        logger.warning("%d of %d rows have no input the model reads: no generation", len(examples) - len(usable),
                       len(examples))  # fmt: skip
    return usable, generate_texts(model, tokenizer, collator, usable, batch_size, **decoding)


def generate_baseline(
    folder: str | Path, dataset: str | Path, rows: list[dict], tables: dict, pic_ids: list[list[str]] | None = None,
    batch_size: int = 32, **decoding,
) -> tuple[list[dict], list[str]]:  # fmt: skip
    """`generate_for_rows` with the baseline saved in `folder`; its item references are `dataset`'s train split."""
    model, tokenizer, record = load_generator(folder)
    inputs = record.conditioning_inputs
    context = record.context(read_rows(dataset, "train")) if {"ids", "references"} & set(inputs) else None
    return generate_for_rows(
        model, tokenizer, record.collator(tokenizer), rows, tables, record.image_kind, context, pic_ids, batch_size,
        **decoding,
    )  # fmt: skip


def generation_records(system: str, examples: list[dict], texts: list[str]) -> list[dict]:
    """Lines of a generations file (`metrics.generations`' format) for `examples` and their generated `texts`."""
    return [
        {"id": example["id"], "system": system, "generated": text, "reference": example["target"],
         "pic_ids": example["pic_ids"], "user_id": example["user"], "business_id": example["business"]}
        for example, text in zip(examples, texts, strict=True)
    ]  # fmt: skip


__all__ = [
    "BaselineModelArguments",
    "GeneratorInputs",
    "generate_baseline",
    "generate_for_rows",
    "generate_texts",
    "generation_records",
    "load_generator",
    "train_baseline",
]
