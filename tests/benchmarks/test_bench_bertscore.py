"""benchmarks/bench_bertscore.py: one shared BertScorer against one bert_score call per system."""

import json

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer


@pytest.fixture
def bench(import_benchmark):
    return import_benchmark("bench_bertscore")


def test_a_tiny_run_scores_alike_and_encodes_fewer_texts(bench, tmp_path):
    words = ["the", "pizza", "was", "soup", "we", "ordered", "and"]
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(tmp_path / "vocab.txt"), model_max_length=128).save_pretrained(tmp_path / "bert")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=20, max_position_embeddings=128)  # fmt: skip
    BertModel(config).save_pretrained(tmp_path / "bert")
    output = tmp_path / "b.json"
    argv = ["--systems", "3", "--examples", "5", "--model", str(tmp_path / "bert"), "--noisy", "--output", str(output)]
    report = bench.main(argv)
    assert json.loads(output.read_text())["speedup"] == report["speedup"] > 0
    assert report["max_score_difference"] < 1e-6
    # Separate calls encode each system's texts plus the 5 references again; the shared scorer each text once.
    assert report["texts_encoded_separate"] == 3 * 10 and report["texts_encoded_shared"] == 4 * 5
    assert report["texts_held_at_most"] == 2 * 5  # the references and one system's texts
