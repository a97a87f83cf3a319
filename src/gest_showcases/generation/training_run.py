"""What a PC2L training run is made of: its model and data options, its examples, its tokenizer and its model.

`gest-showcases train-pc2l` (`gest_showcases.commands.train_pc2l`) parses `PC2LModelArguments` and
`PC2LDataArguments` with transformers' `TrainingArguments` and trains with `PC2LTrainer`; `train-generator`, the
experiment grid and the baselines (which read their examples exactly as PC2L does) reuse the pieces here:

- `load_split`: one `s2` split as targets and per-example feature tensors (the `features` folder's tables);
- `config_kwargs`: the `PC2LConfig` fields the options set;
- `load_tokenizer`, `decoder_config`: the decoder's tokenizer and config, checked against each other;
- `build_model`: the model, from a pretrained causal LM or random GPT-2 small, LoRA-wrapped when asked.
"""

import logging
import math
import os
from dataclasses import dataclass, field

import torch
from transformers import AutoConfig, AutoTokenizer, GPT2Config

from gest_showcases.errors import InputError, check_at_least, check_at_most, one_line
from gest_showcases.model_folders import check_tokenizer_fits, loading
from gest_showcases.numerics import check_finite_rows

from .configuration_pc2l import IMAGE_KINDS, PC2LConfig
from .lora import MAX_LORA_RANK, apply_lora
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
    cross_attention_gate: str = field(
        default="tanh",
        metadata={
            "help": "A decoder other than GPT-2: tanh (Flamingo's gates, starting closed) | none (the blocks' "
            "outputs added ungated, as the paper inserts cross-attention into GPT-2; docs/experiments.md, H13d). "
            "With none and --lora_cross_attention the blocks' random weights stay frozen under their adapters, a "
            "fixed change to the LM that no gate can scale down.",
            "choices": ["tanh", "none"],
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
    likelihood_image_negatives: str = field(
        default="all",
        metadata={
            "help": "all | entity: with --contrastive_score likelihood, CCL's only negative is the entity-swapped "
            "target (not the target under another example's photos); a documented deviation (H7)"
        },
    )
    hard_negative_gradients: str = field(
        default="full",
        metadata={
            "help": "full (the paper) | detached: a deviation for speed, CCL's hard negatives run through the decoder "
            "without gradients (same loss value, a different model: H14 in docs/experiments.md); embedding score only"
        },
    )
    decoder_contrastive_gradients: str = field(
        default="full",
        metadata={
            "help": "full (the paper): the contrastive losses train the decoder through phi_Y(H^Y) too. none (an "
            "option, H23): the decoder's states are detached before phi_Y, so the decoder learns from cross-entropy "
            "alone and the contrastive losses train the encoder and the projection heads; embedding score only"
        },
    )
    encoder_contrastive_gradients: str = field(
        default="full",
        metadata={
            "help": "full (the paper): the image and review embeddings phi_V(H^V), phi_R(H^R) train the encoder too. "
            "none (an option, H24): the encoder's states are detached before phi_V and phi_R, so the losses reach "
            "the encoder only through phi_Y(H^Y)'s cross-attention; embedding score only"
        },
    )
    mined_negative_candidates: int = field(
        default=0,
        metadata={
            "help": "0: CCL's hard negatives are made once, at random (the paper). K > 0 (a deviation, H8): from "
            "the second epoch on, every epoch re-mines each training target's negative as its likeliest "
            "one-entity swap under the model being trained, among the K swaps whose first token it finds "
            "likeliest (generation.mined_negatives)"
        },
    )
    contrastive_warmup_ratio: float = field(
        default=0.0,
        metadata={
            "help": "0 (the paper, whose decoder was pretrained). r in (0, 1) (an option, H15): the first r of the "
            "optimizer steps train on cross-entropy alone, then the contrastive losses join with their weights"
        },
    )
    in_batch_labels: str = field(
        default="none",
        metadata={
            "help": "none (the paper): every other target of the batch is a negative of CCL/PCL/CL. noun_chunks (an "
            "option, H22): two examples whose targets name one noun chunk (the entities CCL's hard negatives swap) "
            "are left out of each other's in-batch negatives; embedding score only"
        },
    )
    gradient_conflicts: str = field(
        default="kept",
        metadata={
            "help": "kept (the paper): each step follows the gradient of eq. 11. projected (an option, H28): in a step "
            "where the contrastive losses' gradient points against cross-entropy's, it loses its component along "
            "cross-entropy's (one-sided PCGrad); one more backward pass per step, single-process training only"
        },
    )
    contrastive_normaliser: str = field(
        default="shared",
        metadata={
            "help": "shared (the paper): one AdamW on the gradient of eq. 11. separate (an option, H30): "
            "cross-entropy's gradient gets AdamW's step on its own moments and the contrastive losses' gradient an "
            "Adam step on moments of its own, times --contrastive_step_scale; one more backward pass per step, "
            "single-process training only"
        },
    )
    contrastive_step_scale: float = field(
        default=0.2,
        metadata={
            "help": "with --contrastive_normaliser separate: the contrastive step's size as a share of cross-entropy's"
        },
    )
    review_pooling: str = field(
        default="mean",
        metadata={
            "help": "mean (the paper, eq. 6): phi_R averages the history reviews' states. shown_photos (an option, "
            "H33): their average weighted by a softmax of each review's largest cosine to a shown photo (input "
            "features) over --review_pooling_temperature, so that PCL pulls towards the reviews of what the photos "
            "show; embedding score, img+text only",
            "choices": ["mean", "shown_photos"],
        },
    )
    review_pooling_temperature: float = field(
        default=0.1, metadata={"help": "with --review_pooling shown_photos: its softmax temperature"}
    )
    image_feature_noise: float = field(
        default=0.0,
        metadata={
            "help": "0 (the paper). s > 0 (a deviation, H9): during training, every photo feature v gets Gaussian "
            "noise of root-mean-square norm s * |v|, drawn anew at each training forward (held-out-like photos); "
            "not at inference"
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

    def __post_init__(self):
        # The flags' own bounds, named, before any model loads (PC2LConfig checks how the options fit together).
        check_at_least(
            self, cross_attention_every_n_layers=1, lambda1=0, lambda2=0, encoder_layers=1, encoder_attention_heads=1,
            projection_dim=1, mined_negative_candidates=0, image_feature_noise=0, lora_rank=1,
        )  # fmt: skip
        check_at_most(self, lora_rank=MAX_LORA_RANK)


# The train-pc2l options that set the contrastive losses: what a cross-entropy-only run is never given.
CONTRASTIVE_OPTIONS = frozenset({
    "image_contrastive", "review_contrastive", "lambda1", "lambda2", "pcl_alpha", "contrastive_temperature",
    "projection_dim", "contrastive_target", "contrastive_score", "likelihood_image_negatives",
    "hard_negative_gradients", "mined_negative_candidates", "contrastive_warmup_ratio", "in_batch_labels",
    "decoder_contrastive_gradients", "encoder_contrastive_gradients", "gradient_conflicts", "contrastive_normaliser",
    "contrastive_step_scale", "review_pooling", "review_pooling_temperature",
})  # fmt: skip


@dataclass
class PC2LDataArguments:
    """Where the examples come from."""

    dataset: str = field(
        metadata={"help": "Built dataset folder (gest-showcases build); its s2 config is read."}
    )
    features: str = field(metadata={"help": "Feature folder (gest-showcases features)."})
    image_kind: str = field(
        default="vision",
        metadata={"help": "Image feature kind: vision (the paper's CNN features) or image (CLIP).",
                  "choices": list(IMAGE_KINDS)},  # fmt: skip
    )
    max_length: int = field(default=64, metadata={"help": "Most target tokens, BOS and EOS included."})
    max_images: int = 5
    max_reviews: int = 10
    negative_seed: int = 0

    def __post_init__(self):
        check_at_least(self, max_length=3, max_images=1, max_reviews=1, negative_seed=0)  # BOS, a token, EOS


def feature_kinds_read(reads_images: bool, reads_reviews: bool, image_kind: str) -> list[str]:
    """The feature-table kinds (`gest_showcases.features.load_features`) a generator reads: `image_kind` for its
    photos, `"review"` for the user's history reviews (PC2L and every baseline)."""
    return [image_kind] * reads_images + ["review"] * reads_reviews


def load_split(data_args: PC2LDataArguments, split: str, config: PC2LConfig, tables: dict) -> dict[str, list]:
    """Targets and per-example feature tensors of one `s2` split; examples with no usable input are dropped.

    `tables` maps a feature kind to its table (`gest_showcases.features.load_features`).
    """
    # Imported here, not at the top: `datasets` is needed only to read a built dataset, and the GPU suite's benchmarks
    # import this module on machines that have torch and transformers but no `datasets`.
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


def require_test_inputs(data_args: PC2LDataArguments, config: PC2LConfig, tables: dict) -> None:
    """Before training a model whose test generations are written after it (`train-generator`): the `s2` test split,
    when the dataset has one, must have an example with an input the model reads in `tables`. Features extracted
    from `s1` alone cover no test user of the published data (new users, in `s2` only): the refusal came after
    the whole training run.

    `config` is a `PC2LConfig` or any object with its `uses_images`, `uses_reviews`, `max_images`, `max_reviews`.

    Raises:
        InputError: "DATASET: no s2 test example has its image features in FEATURES: ...".
    """
    from gest_showcases.data.folder import dataset_configs  # here, as `load_split`'s import is

    if not (config.uses_images or config.uses_reviews):
        return  # a model of ids or references alone has an input for every row
    if "test" not in dataset_configs(data_args.dataset).get("s2", {}):
        return
    if not load_split(data_args, "test", config, tables)["target"]:
        kinds = feature_kinds_read(config.uses_images, config.uses_reviews, data_args.image_kind)
        raise InputError(
            f"{data_args.dataset}: no s2 test example has its {' or '.join(kinds)} features in {data_args.features},"
            " so no test generation could be written after training; were they extracted from this dataset's s2? "
            "(`gest-showcases features` embeds s1 and s2 by default; --no_generate_test trains without them)"
        )


def config_kwargs(model_args: PC2LModelArguments, data_args: PC2LDataArguments) -> dict:
    """The `PC2LConfig` fields other than the decoder."""
    names = ("input_mode", "image_contrastive", "review_contrastive", "lambda1", "lambda2", "pcl_alpha",
             "contrastive_temperature", "encoder_layers", "encoder_attention_heads", "projection_dim",
             "contrastive_target", "contrastive_score", "hard_negative_gradients", "decoder_contrastive_gradients",
             "encoder_contrastive_gradients", "likelihood_image_negatives", "mined_negative_candidates",
             "contrastive_warmup_ratio", "in_batch_labels", "gradient_conflicts", "contrastive_normaliser",
             "contrastive_step_scale", "review_pooling", "review_pooling_temperature", "image_feature_noise",
             "cross_attention_every_n_layers", "cross_attention_gate")  # fmt: skip
    return {name: getattr(model_args, name) for name in names} | {
        "max_images": data_args.max_images,
        "max_reviews": data_args.max_reviews,
    }


def pc2l_config(decoder, kwargs: dict) -> PC2LConfig:
    """`PC2LConfig(decoder=decoder, **kwargs)` for the command-line options `kwargs` (`config_kwargs`); the config's
    refusal of options that contradict each other (or the decoder's width) is the user's flags, one line.

    Raises:
        InputError: "the PC2L options do not fit together: ...".
    """
    try:
        return PC2LConfig(decoder=decoder, **kwargs)
    except ValueError as error:
        raise InputError(f"the PC2L options do not fit together: {one_line(error)}") from error


def load_tokenizer(model_args: PC2LModelArguments):
    """`--tokenizer`, read from the decoder's GGUF file when it names the `--decoder` folder (a GGUF holds both)."""
    decoder = model_args.decoder
    same_folder = decoder is not None and os.path.realpath(model_args.tokenizer) == os.path.realpath(decoder)
    gguf_file = model_args.decoder_gguf_file if same_folder else None
    with loading("--tokenizer", model_args.tokenizer):
        tokenizer = AutoTokenizer.from_pretrained(
            model_args.tokenizer, gguf_file=gguf_file, trust_remote_code=False
        )
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
    with loading("--decoder", model_args.decoder):
        config = AutoConfig.from_pretrained(
            model_args.decoder, gguf_file=model_args.decoder_gguf_file, trust_remote_code=False
        )
    check_tokenizer_fits(tokenizer, model_args.tokenizer, config.vocab_size, model_args.decoder)
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
    return apply_lora(
        model,
        rank=model_args.lora_rank,
        self_attention=model_args.lora_self_attention,
        cross_attention=model_args.lora_cross_attention,
    )
