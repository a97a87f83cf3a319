"""What `train-pc2l` saves for the Hugging Face side: the input contracts in `PC2LConfig`, the paper's decoding in
`generation_config.json`, and a run with `--gradient_checkpointing True`."""

import json
import warnings

import pytest
import torch
from pc2l_fixtures import write_built_dataset
from transformers import GPT2Config, GPT2LMHeadModel

from gest_showcases.commands import train_pc2l as train
from gest_showcases.experiments.world import SMOLLM2_TRAINING_OPTIONS
from gest_showcases.features import cache as feature_cache
from gest_showcases.features.cache import FeatureCache
from gest_showcases.generation import PC2LConfig, configuration_pc2l
from tiny_assets import CORPUS, build_gpt2_tokenizer

DIM = 8
@pytest.mark.slow
def test_train_pc2l_saves_the_input_contracts_and_the_papers_decoding(tmp_path):
    tokenizer = build_gpt2_tokenizer(CORPUS)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    torch.manual_seed(0)
    eos = tokenizer.eos_token_id
    # A decoder saved from training: `use_cache=False`, no pad token (GPT-2's).
    gpt2 = GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=64, vocab_size=len(tokenizer),
                      bos_token_id=eos, eos_token_id=eos, use_cache=False)  # fmt: skip
    GPT2LMHeadModel(gpt2).save_pretrained(tmp_path / "gpt2")
    write_built_dataset(tmp_path / "dataset")
    features = tmp_path / "features"
    image_ids = [f"p{i}{side}" for i in range(8) if i != 3 for side in "ab"]  # example 3 has no photo
    review_ids = [f"u{i}_h{j}" for i in range(8) for j in range(i % 3)]
    # The image features as a GPU writes them (`features --dtype auto`: bf16), the reviews' in float32.
    FeatureCache(features, "image", "org/clip-a", "a" * 64, normalized=True, dtype="bfloat16").write(
        image_ids, torch.randn(len(image_ids), DIM)
    )
    FeatureCache(features, "review", "org/clip-b", "b" * 64, normalized=True, dtype="float32").write(
        review_ids, torch.randn(len(review_ids), DIM)
    )
    argv = ["--dataset", str(tmp_path / "dataset"), "--features", str(features),
            "--tokenizer", str(tmp_path / "tokenizer"), "--decoder", str(tmp_path / "gpt2"),
            "--output_dir", str(tmp_path / "run"), "--encoder_layers", "1", "--encoder_attention_heads", "2",
            "--projection_dim", "8", "--image_kind", "image", "--image_contrastive", "cl",
            "--gradient_checkpointing", "True", "--max_steps", "1", "--per_device_train_batch_size", "3",
            "--save_strategy", "no", "--report_to", "none", "--use_cpu", "True", "--disable_tqdm", "True"]  # fmt: skip
    assert train.main(argv) == 0

    config = PC2LConfig.from_pretrained(tmp_path / "run")
    assert (config.image_kind, config.image_feature_model, config.image_feature_fingerprint,
            config.image_feature_dtype) == ("image", "org/clip-a", "a" * 64, "bfloat16")  # fmt: skip
    assert (config.review_feature_model, config.review_feature_fingerprint, config.review_feature_dtype) == (
        "org/clip-b", "b" * 64, "float32",
    )  # fmt: skip
    assert (config.image_feature_dim, config.review_feature_dim) == (DIM, DIM)
    generation = json.loads((tmp_path / "run" / "generation_config.json").read_text())
    assert {key: generation.get(key) for key in ("num_beams", "max_new_tokens", "use_cache", "pad_token_id")} == {
        "num_beams": 2, "max_new_tokens": 64, "use_cache": True, "pad_token_id": eos,
    }  # fmt: skip


def test_checkpoints_saved_before_the_contracts_load_with_none(tmp_path):
    config = PC2LConfig(decoder={"n_embd": 16, "n_layer": 1, "n_head": 2}, encoder_attention_heads=2)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    for name in ("image_kind", "image_feature_model", "image_feature_fingerprint", "image_feature_dtype",
                 "review_feature_model", "review_feature_fingerprint", "review_feature_dtype"):  # fmt: skip
        saved.pop(name)
    (tmp_path / "config.json").write_text(json.dumps(saved))
    loaded = PC2LConfig.from_pretrained(tmp_path)
    assert loaded.image_kind is None and loaded.image_feature_fingerprint is None
    assert loaded.image_feature_dtype is None and loaded.review_feature_dtype is None
    with pytest.raises(ValueError, match="image_kind must be one of"):
        PC2LConfig(
            decoder={"n_embd": 16, "n_layer": 1, "n_head": 2}, encoder_attention_heads=2, image_kind="clip"
        )
    with pytest.raises(ValueError, match="review_feature_dtype must be one of"):
        PC2LConfig(
            decoder={"n_embd": 16, "n_layer": 1, "n_head": 2}, encoder_attention_heads=2, review_feature_dtype="fp8"
        )



def test_the_config_knows_the_feature_caches_precisions():
    # The config keeps its own copy (it is exported as remote code, which cannot import the package).
    assert configuration_pc2l.FEATURE_DTYPES == feature_cache.FEATURE_DTYPES


def test_the_smollm2_cells_recompute_activations_under_transformers_current_flag(tmp_path):
    """The demo's and the experiment's SmolLM2 cells train with `SMOLLM2_TRAINING_OPTIONS`: transformers 5's
    `--activation_checkpointing`, not its deprecated alias `--gradient_checkpointing`, which warned in every cell."""
    argv = ["--dataset", "gest", "--features", "f", "--tokenizer", "t", "--output_dir", str(tmp_path), *SMOLLM2_TRAINING_OPTIONS]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        _, _, training_args = train.parse_pc2l_args(argv)
    assert training_args.activation_checkpointing is True
