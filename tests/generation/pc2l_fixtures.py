"""Tiny PC2L building blocks shared by the generation tests (imported by name: `conftest` is ambiguous across test folders): a byte-level BPE GPT-2 tokenizer trained here, tiny
configs and synthetic examples (no download)."""

import torch
from transformers import GPT2TokenizerFast, TrainingArguments

from gest_showcases.generation import PC2LConfig
from gest_showcases.generation.collator import PC2LDataset
from gest_showcases.testing import gpt2_tokenizer
from gest_showcases.testing.built_folder import write_built_folder

CORPUS = [
    "I like the sushi here and the spicy tuna roll was great.",
    "The burger was juicy and their fries were crispy.",
    "We loved the ramen, the broth is rich and the noodles are chewy.",
    "The pizza had a thin crust and fresh basil on top.",
    "Their coffee is strong and the croissant was flaky.",
    "The tacos were spicy, the salsa fresh and the margarita cold.",
] * 4

FEATURE_DIM = 8


def build_tokenizer() -> GPT2TokenizerFast:
    """A ~300-token byte-level BPE tokenizer with GPT-2's special token, trained on CORPUS."""
    return gpt2_tokenizer(CORPUS, vocab_size=320)


def tiny_config(tokenizer, decoder: dict | None = None, **overrides) -> PC2LConfig:
    """Hidden 32, 2 decoder layers, 2 heads, 2 encoder layers, dropout off (deterministic comparisons).

    `decoder` entries update the tiny GPT-2 settings; `overrides` replace other PC2LConfig fields.
    """
    special = tokenizer.eos_token_id
    decoder_settings = {
        "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64, "vocab_size": len(tokenizer),
        "bos_token_id": special, "eos_token_id": special, "pad_token_id": special,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
    }  # fmt: skip
    kwargs = {
        "decoder": decoder_settings | (decoder or {}), "image_feature_dim": FEATURE_DIM, "review_feature_dim": FEATURE_DIM,
        "encoder_layers": 2, "encoder_attention_heads": 2, "encoder_ffn_dim": 64, "encoder_dropout": 0.0,
        "projection_dim": 16,
    }  # fmt: skip
    return PC2LConfig(**(kwargs | overrides))


def synthetic_examples(count: int, seed: int = 0, with_negatives: bool = True) -> list[dict]:
    """Examples with 1-5 images and 0-4 reviews (at least one input), targets from CORPUS."""
    generator = torch.Generator().manual_seed(seed)
    examples = []
    for index in range(count):
        num_images = int(torch.randint(1, 6, (1,), generator=generator))
        num_reviews = int(torch.randint(0, 5, (1,), generator=generator))
        example = {
            "target": CORPUS[index % 6],
            "image_features": torch.randn(num_images, FEATURE_DIM, generator=generator),
            "review_features": torch.randn(num_reviews, FEATURE_DIM, generator=generator),
        }
        if with_negatives:
            example["negative"] = CORPUS[(index + 1) % 6].replace("the", "a")
        examples.append(example)
    return examples


# A built dataset folder and fake feature tables for the train-pc2l script tests.


class FakeFeatureTable:
    """`load_features` stand-in: a deterministic feature per id, ids starting with "missing" not found."""

    checkpoint = "fake-clip"  # what train-pc2l records as the feature model in the PC2L config
    fingerprint = "f" * 64
    dtype = "float32"  # the precision train-pc2l records

    def lookup(self, ids):
        found = torch.tensor([not key.startswith("missing") for key in ids], dtype=torch.bool)
        seeds = torch.tensor([sum(map(ord, key)) for key in ids], dtype=torch.float32)
        features = torch.sin(seeds[:, None] * torch.arange(1, FEATURE_DIM + 1))  # [N, FEATURE_DIM]
        return features * found[:, None], found


def write_built_dataset(folder):
    """A tiny built dataset folder (s2 train/validation, its default config, and s1 train holding every row) with
    one photo-less example."""
    rows = [
        {
            "review_id": f"u{i}_b{i}",
            "review_text": CORPUS[i] + " Would come back.",
            "explanation": CORPUS[i],
            "pics": [f"p{i}a", f"p{i}b"] if i != 3 else ["missing"],
            "history_review_ids": [f"u{i}_h{j}" for j in range(i % 3)],
        }
        for i in range(8)
    ]
    splits = {"s2": {"train": rows[:6], "validation": rows[6:]}, "s1": {"train": rows}}
    return write_built_folder(folder, splits)


def train_pc2l_argv(assets, *options):
    """train-pc2l options for the `command_assets` fixture: 3 epochs of batch 3, no checkpoints, on CPU."""
    return ["--dataset", str(assets / "dataset"), "--features", "unused", "--image_kind", "image",
            "--tokenizer", str(assets / "tokenizer"), "--decoder", str(assets / "gpt2"),
            "--output_dir", str(assets / "run"), "--encoder_layers", "1", "--encoder_attention_heads", "2",
            "--projection_dim", "8", "--per_device_train_batch_size", "3", "--num_train_epochs", "3",
            "--save_strategy", "no", "--report_to", "none", "--use_cpu", "--disable_tqdm", "true", *options]  # fmt: skip


def pc2l_dataset(examples) -> PC2LDataset:
    """A `PC2LDataset` of `synthetic_examples`."""
    return PC2LDataset(
        targets=[example["target"] for example in examples],
        image_features=[example["image_features"] for example in examples],
        review_features=[example["review_features"] for example in examples],
        negatives=[example["negative"] for example in examples],
    )


def sgd_training_args(tmp_path, **overrides) -> TrainingArguments:
    """Plain SGD at lr 0.1 (no weight decay, clipping or schedule), batches of 2 in order, 2 steps, logged each step,
    on CPU: steps a test can take by hand."""
    defaults = dict(
        output_dir=str(tmp_path), use_cpu=True, report_to=[], save_strategy="no", logging_steps=1,
        optim="sgd", learning_rate=0.1, lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0,
        per_device_train_batch_size=2, max_steps=2, train_sampling_strategy="sequential",
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=True,
    )  # fmt: skip
    return TrainingArguments(**(defaults | overrides))


def sgd_pc2l_trainer(model, tokenizer, tmp_path, examples, eval_examples=None, trainer_class=None, **args):
    """A `PC2LTrainer` (or `trainer_class`) of `model` on `examples` with `sgd_training_args(tmp_path, **args)`."""
    from gest_showcases.generation.collator import PC2LCollator
    from gest_showcases.generation.trainer import PC2LTrainer

    return (trainer_class or PC2LTrainer)(
        model=model,
        args=sgd_training_args(tmp_path, **args),
        train_dataset=pc2l_dataset(examples),
        eval_dataset=None if eval_examples is None else pc2l_dataset(eval_examples),
        data_collator=PC2LCollator(tokenizer, with_negatives=True),
    )


def assert_train_pc2l_records(assets, **options) -> None:
    """`gest-showcases train-pc2l --name value ...` trains, and the saved config and the model card hold each value."""
    from transformers import AutoConfig

    from gest_showcases.cards import generator_card
    from gest_showcases.commands import train_pc2l

    argv = [item for name, value in options.items() for item in (f"--{name}", str(value))]
    assert train_pc2l.main(train_pc2l_argv(assets, *argv)) == 0
    config = AutoConfig.from_pretrained(assets / "run")
    assert {name: getattr(config, name) for name in options} == options
    card = str(generator_card(config, "user/run", results_dir=assets))
    for name, value in options.items():
        assert f"| {name} | {value} |" in card, name


def assert_train_pc2l_refuses_in_one_line(assets, capsys, option: str, value: str) -> None:
    """`gest-showcases train-pc2l ... option value` exits 2 with one line on stderr that names the option."""
    from gest_showcases import cli

    capsys.readouterr()
    assert cli.main(["train-pc2l", *train_pc2l_argv(assets, option, value)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option.lstrip("-") in err[0], err
