"""Tiny checkpoints saved locally for the showcase tests: CLIP (features/tiny.py), a DPP selector and a PC2L
generator with a byte-level BPE GPT-2 tokenizer trained here (as the generation tests make theirs), plus JPEGs
and a small built dataset folder."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2TokenizerFast

from gest_showcases.features.tiny import save_tiny_clip
from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig

CLIP_DIM = 16  # tiny CLIP projection: selector inputs and review features
VISION_DIM = 32  # tiny CLIP vision hidden size: the generator's "vision" image features
CORPUS = [
    "The ramen broth was rich and the noodles chewy.",
    "Crispy fries and a juicy burger.",
    "Fresh sushi, the tuna roll was great.",
    "Thin crust pizza with basil.",
] * 4


def build_gpt2_tokenizer() -> GPT2TokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    special = "<|endoftext|>"
    return GPT2TokenizerFast(
        tokenizer_object=tokenizer, bos_token=special, eos_token=special, unk_token=special
    )


def save_tiny_generator(path, input_mode: str = "img+text", seed: int = 0):
    tokenizer = build_gpt2_tokenizer()
    special = tokenizer.eos_token_id
    decoder = {
        "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64, "vocab_size": len(tokenizer),
        "bos_token_id": special, "eos_token_id": special, "pad_token_id": special,
    }  # fmt: skip
    config = PC2LConfig(
        decoder=decoder, image_feature_dim=VISION_DIM, review_feature_dim=CLIP_DIM, encoder_layers=1,
        encoder_attention_heads=2, encoder_ffn_dim=64, projection_dim=8, input_mode=input_mode,
        image_contrastive="none" if input_mode == "text" else "ccl",
        review_contrastive="none" if input_mode == "img" else "pcl",
    )  # fmt: skip
    torch.manual_seed(seed)
    model = PC2LForConditionalGeneration(config)
    # A zero end-of-text embedding (tied to the output layer) gives it logit 0 while random words score higher,
    # so the random decoder writes a non-empty text instead of stopping at once.
    model.decoder.transformer.wte.weight.data[special] = 0.0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def save_tiny_selector(path, seed: int = 0):
    torch.manual_seed(seed)
    config = DPPSelectorConfig(
        text_dim=CLIP_DIM, image_dim=CLIP_DIM, user_hidden_sizes=[16], image_hidden_sizes=[16], embed_dim=8
    )
    DPPImageSelector(config).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def make_tiny_generator():
    """`save_tiny_generator` for tests that need another generator (a module-level `conftest` import is ambiguous)."""
    return save_tiny_generator


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """{"clip", "selector", "generator"}: folders of tiny saved checkpoints."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "clip": str(save_tiny_clip(root / "clip", projection_dim=CLIP_DIM)),
        "selector": save_tiny_selector(root / "selector"),
        "generator": save_tiny_generator(root / "generator"),
    }


def write_jpegs(folder, names, seed=0):
    """Random-colour JPEGs `<name>.jpg` of varied sizes; returns {name: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = {}
    for i, name in enumerate(names):
        pixels = rng.integers(0, 256, (36 + 3 * i, 48 - 2 * i, 3), dtype=np.uint8)
        paths[name] = folder / f"{name}.jpg"
        Image.fromarray(pixels).save(paths[name], quality=90)
    return paths


@pytest.fixture
def photos(tmp_path):
    """Eight readable JPEGs `pic0..pic7` plus `corrupt.jpg` (truncated bytes)."""
    paths = write_jpegs(tmp_path / "images", [f"pic{i}" for i in range(8)])
    corrupt = tmp_path / "images" / "corrupt.jpg"
    corrupt.write_bytes(paths["pic0"].read_bytes()[:60])
    paths["corrupt"] = corrupt
    return paths


REVIEWS = [
    # review_id, user, business, text, pics, split
    ("u1_b1", "u1", "b1", "Great ramen! The broth was rich.", ["pic0", "pic1"], "train"),
    ("u1_b2", "u1", "b2", "Tiny place with good dumplings.", ["pic2"], "train"),
    ("u2_b1", "u2", "b1", "Cozy room with candles & <b>jazz</b>.", ["pic3", "pic4"], "test"),
    ("u2_b2", "u2", "b2", "Noodles and tea. Friendly staff!", ["pic5"], "test"),
    ("u3_b1", "u3", "b1", "Best pizza in town.", ["pic6", "pic7"], "test"),
]


@pytest.fixture
def built_dataset(tmp_path, photos):
    """A dataset folder in the builder's layout (parquet + README `configs:`) with an s1 config."""
    folder = tmp_path / "dataset"
    (folder / "s1").mkdir(parents=True)
    by_business: dict[str, list[str]] = {}
    for _, _, business, _, pics, _ in REVIEWS:
        by_business.setdefault(business, []).extend(pics)
    splits: dict[str, list[dict]] = {}
    for rid, user, business, text, pics, split in REVIEWS:
        others = [r for r in REVIEWS if r[1] == user and r[0] != rid]
        splits.setdefault(split, []).append(
            {
                "review_id": rid,
                "user_id": user,
                "business_id": business,
                "rating": 5,
                "review_text": text,
                "pics": pics,
                "time": None,
                "pic_paths": [f"../images/{p}.jpg" for p in pics],
                "history_review_ids": [r[0] for r in others],
                "history_texts": [r[3] for r in others],
                "history_pics": [p for r in others for p in r[4]],
                "candidate_pics": by_business[business],
                "candidate_paths": [f"../images/{p}.jpg" for p in by_business[business]],
            }  # fmt: skip
        )
    data_files = []
    for split, rows in splits.items():
        pq.write_table(pa.Table.from_pylist(rows), folder / "s1" / f"{split}-00000.parquet")
        data_files.append({"split": split, "path": f"s1/{split}-*.parquet"})
    card = {"configs": [{"config_name": "s1", "default": True, "data_files": data_files}]}
    (folder / "README.md").write_text("---\n" + json.dumps(card) + "\n---\n# test dataset\n")
    return folder


@pytest.fixture(autouse=True)
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
