"""Tiny assets shared by the test folders, imported by name (`conftest` is ambiguous across folders): a PC2L
generator with a byte-level BPE GPT-2 tokenizer trained here, a DPP selector, a CLIP (features/tiny.py), random
JPEGs and a built dataset folder in the builder's layout. Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from transformers import GPT2TokenizerFast

from gest_showcases.features.tiny import save_tiny_clip
from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig
from gest_showcases.testing import gpt2_tokenizer

CLIP_DIM = 16  # tiny CLIP projection: selector inputs and review features
VISION_DIM = 32  # tiny CLIP vision hidden size: the generator's "vision" image features
CORPUS = [
    "The ramen broth was rich and the noodles chewy.",
    "Crispy fries and a juicy burger.",
    "Fresh sushi, the tuna roll was great.",
    "Thin crust pizza with basil.",
] * 4


def build_gpt2_tokenizer(texts: list[str]) -> GPT2TokenizerFast:
    """A byte-level BPE tokenizer with GPT-2's special token (at most 400 tokens), trained on `texts`."""
    return gpt2_tokenizer(texts, vocab_size=400)


def save_tiny_generator(
    path: str | Path, texts: list[str] = CORPUS, input_mode: str = "img+text", seed: int = 0
) -> str:
    """A random 2-layer PC2L reading `input_mode`, saved with a tokenizer learnt on `texts`; returns `path`."""
    tokenizer = build_gpt2_tokenizer(texts)
    eos = tokenizer.eos_token_id
    decoder = {
        "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64, "vocab_size": len(tokenizer),
        "bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos,
    }  # fmt: skip
    config = PC2LConfig(
        decoder=decoder, image_feature_dim=VISION_DIM, review_feature_dim=CLIP_DIM, encoder_layers=1,
        encoder_attention_heads=2, encoder_ffn_dim=64, projection_dim=8, input_mode=input_mode,
        image_contrastive="none" if input_mode == "text" else "ccl",
        review_contrastive="none" if input_mode == "img" else "pcl",
    )  # fmt: skip
    torch.manual_seed(seed)
    model = PC2LForConditionalGeneration(config)
    # Zero (tied) embeddings give logit 0 while some random word scores higher: the random decoder neither stops
    # at once (end of text) nor writes bytes that are no text (pieces of UTF-8 characters), so its output reads.
    unreadable = [
        index
        for index in range(len(tokenizer))
        if index == eos
        or not tokenizer.decode([index]).strip().isascii()
        or not tokenizer.decode([index]).strip().isalpha()
    ]
    model.decoder.transformer.wte.weight.data[unreadable] = 0.0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def save_tiny_selector(path: str | Path, seed: int = 0) -> str:
    """A random DPP selector over `CLIP_DIM` text and image features; returns `path`."""
    torch.manual_seed(seed)
    config = DPPSelectorConfig(
        text_dim=CLIP_DIM, image_dim=CLIP_DIM, user_hidden_sizes=[16], image_hidden_sizes=[16], embed_dim=8
    )
    DPPImageSelector(config).save_pretrained(path)
    return str(path)


def save_tiny_checkpoints(root: Path, texts: list[str] = CORPUS) -> dict[str, str]:
    """{"clip", "selector", "generator"}: folders under `root` of tiny checkpoints that fit together."""
    return {
        "clip": str(save_tiny_clip(root / "clip", projection_dim=CLIP_DIM)),
        "selector": save_tiny_selector(root / "selector"),
        "generator": save_tiny_generator(root / "generator", texts),
    }


def write_jpegs(folder: Path, names: list[str], seed: int = 0, size: tuple[int, int] = (40, 56)) -> dict:
    """Random-colour JPEGs `<name>.jpg`, the i-th of `size` plus (3i, -2i) pixels; returns {name: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = {}
    for i, name in enumerate(names):
        height, width = size[0] + 3 * i, size[1] - 2 * i
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        paths[name] = folder / f"{name}.jpg"
        Image.fromarray(pixels).save(paths[name], quality=90)
    return paths


def rewrite_s1_rows(dataset: Path, change) -> None:
    """Apply `change` to every row of the s1 parquet files (as a hostile or hand-made file would)."""
    for path in (dataset / "s1").glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(
            table.from_pylist([change(row) for row in table.to_pylist()], schema=table.schema), path
        )


def write_built_dataset(folder: Path, image_dir: Path, reviews: list[tuple]) -> Path:
    """A dataset folder in the builder's layout (parquet + README `configs:`) with an s1 config.

    `reviews` holds (review_id, user, business, text, pics, split) tuples; the history of a review is its user's
    other reviews, its candidates are every picture of its business, and `image_dir` is a sibling of `folder`.
    """
    (folder / "s1").mkdir(parents=True)
    by_business: dict[str, list[str]] = {}
    for _, _, business, _, pics, _ in reviews:
        by_business.setdefault(business, []).extend(pics)
    rel = f"../{image_dir.name}"
    splits: dict[str, list[dict]] = {}
    for rid, user, business, text, pics, split in reviews:
        others = [r for r in reviews if r[1] == user and r[0] != rid]
        splits.setdefault(split, []).append(
            {
                "review_id": rid,
                "user_id": user,
                "business_id": business,
                "rating": 5,
                "review_text": text,
                "pics": pics,
                "time": None,
                "pic_paths": [f"{rel}/{p}.jpg" for p in pics],
                "history_review_ids": [r[0] for r in others],
                "history_texts": [r[3] for r in others],
                "history_pics": [p for r in others for p in r[4]],
                "candidate_pics": by_business[business],
                "candidate_paths": [f"{rel}/{p}.jpg" for p in by_business[business]],
            }
        )
    data_files = []
    for split, rows in splits.items():
        pq.write_table(pa.Table.from_pylist(rows), folder / "s1" / f"{split}-00000-of-00001.parquet")
        data_files.append({"split": split, "path": f"s1/{split}-*.parquet"})
    card = {"configs": [{"config_name": "s1", "default": True, "data_files": data_files}]}
    (folder / "README.md").write_text("---\n" + json.dumps(card) + "\n---\n# test dataset\n")
    return folder


@pytest.fixture(autouse=True)
def few_threads():
    """One torch thread per test where a conftest imports this: on tiny tensors extra threads only add contention
    on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
