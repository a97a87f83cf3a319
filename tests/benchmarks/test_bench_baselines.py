"""benchmarks/bench_baselines.py: the Table 2 generators in the grid's shapes, their throughput against PC2L's."""

import argparse
import json
import os
from pathlib import Path

import pytest
import torch

from gest_showcases.baselines.registry import BASELINES, MODEL_NAMES

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
TINY = ["--width", "8", "--vocab-size", "50", "--num-users", "5", "--num-items", "4", "--feature-dim", "8",
        "--batch-size", "2", "--target-tokens", "6", "--images", "2", "--reviews", "2", "--references", "2",
        "--reference-tokens", "3", "--gen-batch-size", "2", "--new-tokens", "2", "--steps", "1", "--warmup", "0",
        "--gen-repeats", "1"]  # fmt: skip


@pytest.fixture
def bench(monkeypatch):
    """The benchmark module, imported as when it runs as a script (its folder on `sys.path`)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_baselines

    return bench_baselines


def test_models_are_built_in_the_grids_shapes(bench):
    args = argparse.Namespace(
        width=24, vocab_size=50, feature_dim=16, num_users=5, num_items=4, target_tokens=8
    )
    pc2l, ce = bench.build("pc2l", args).config, bench.build("gpt2-ce", args).config
    assert (pc2l.image_contrastive, pc2l.review_contrastive) == ("ccl", "pcl")
    assert (ce.image_contrastive, ce.review_contrastive) == ("none", "none")
    for config in (pc2l, ce):
        decoder = config.decoder
        assert (decoder.n_embd, decoder.n_layer, decoder.n_head, decoder.n_positions) == (24, 2, 2, 128)
        assert (config.encoder_layers, config.encoder_attention_heads, config.projection_dim) == (1, 2, 64)
        assert config.input_mode == "img+text" and config.image_feature_dim == config.review_feature_dim == 16
    # The grid's --config_overrides at width 24 (`experiments.grid.baseline_overrides`).
    st, r2gen, ref2seq, peter, pepler = (bench.build(name, args).config for name in BASELINES)
    assert (
        st.embedding_size == st.hidden_size == r2gen.hidden_size == r2gen.ffn_dim == ref2seq.hidden_size == 24
    )
    assert (peter.hidden_size, peter.intermediate_size) == (24, 96)
    assert (pepler.decoder.n_embd, pepler.decoder.n_layer, pepler.decoder.n_head) == (24, 2, 2)
    assert r2gen.num_layers == 3  # R2Gen's own depth: the grid overrides only widths
    assert st.image_feature_dim == r2gen.image_feature_dim == 16
    assert (peter.num_users, peter.num_items, pepler.num_users, pepler.num_items) == (5, 4, 5, 4)
    assert st.vocab_size == pepler.decoder.vocab_size == 50


def test_each_model_reads_only_its_inputs(bench):
    args = argparse.Namespace(
        width=8, vocab_size=50, feature_dim=8, num_users=5, num_items=4, target_tokens=6
    )
    keys = {name: set(bench.model_keys(bench.build(name, args))) for name in MODEL_NAMES}
    features = {"image_features", "image_mask", "review_features", "review_mask"}
    assert keys["pc2l"] == features | {"negative_input_ids", "negative_attention_mask"}
    assert keys["gpt2-ce"] == features
    assert keys["st"] == keys["r2gen"] == {"image_features", "image_mask"}
    assert keys["peter"] == keys["pepler"] == {"user_ids", "item_ids"}
    assert keys["ref2seq"] == {"user_reference_ids", "user_reference_mask", "item_reference_ids",
                               "item_reference_mask"}  # fmt: skip


@pytest.mark.slow
def test_reports_every_row_against_pc2l_and_refuses_on_load(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "set_num_threads", lambda count: None)  # keep the session's threads
    output = tmp_path / "b.json"
    monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 99.0, 99.0))
    with pytest.raises(SystemExit, match="refused"):
        bench.main([*TINY, "--output", str(output)])
    assert not output.exists()

    report = bench.main([*TINY, "--output", str(output), "--noisy"])
    assert json.loads(output.read_text()) == report and report["noisy"] is True
    training, generation = report["training"], report["generation"]
    assert list(training) == list(MODEL_NAMES)
    assert list(generation) == [name for name in MODEL_NAMES if name != "gpt2-ce"]  # CE-only decodes as PC2L
    for row in training.values():
        assert row["tokens_per_s"] == pytest.approx(2 * 6 / row["step_s"])  # batch x target tokens
        assert row["tokens_per_s_over_pc2l"] == pytest.approx(
            row["tokens_per_s"] / training["pc2l"]["tokens_per_s"]
        )
        assert row["parameters"] > 0
    for row in generation.values():
        assert row["new_tokens_per_s"] == pytest.approx(2 * 2 / row["generate_s"])
        assert row["new_tokens_per_s_over_pc2l"] == pytest.approx(
            row["new_tokens_per_s"] / generation["pc2l"]["new_tokens_per_s"]
        )
    assert (
        training["pc2l"]["tokens_per_s_over_pc2l"] == generation["pc2l"]["new_tokens_per_s_over_pc2l"] == 1.0
    )
    assert report["inputs"] == {"pc2l": "img+text", "gpt2-ce": "img+text", "st": "img", "r2gen": "img",
                                "ref2seq": "text", "peter": "ids", "pepler": "ids"}  # fmt: skip
    assert report["shape"]["width"] == 8 and report["precision"] == "fp32"


def test_every_generator_trains_and_decodes_under_bf16_autocast(bench, tmp_path, monkeypatch):
    """The GPU suite runs this benchmark with `--dtype bf16`. CPU autocast casts the linear layers, not the RNNs (the
    Ref2Seq fault the first H200 run found has its own tests: tests/baselines/test_ref2seq.py and
    test_rnn_autocast.py), so this catches dtype mixing around the linear layers only."""
    monkeypatch.setattr(torch, "set_num_threads", lambda count: None)
    report = bench.main([*TINY, "--dtype", "bf16", "--noisy", "--output", str(tmp_path / "b.json")])
    assert "bf16" in report["precision"]
    assert list(report["training"]) == list(MODEL_NAMES)
    assert all(row["step_s"] > 0 for row in report["training"].values())
    assert all(row["generate_s"] > 0 for row in report["generation"].values())
