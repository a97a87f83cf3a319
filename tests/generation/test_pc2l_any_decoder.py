"""PC2L around a decoder other than GPT-2 (issue 17): a tiny Llama with gated cross-attention blocks.

Oracles: the bare `LlamaForCausalLM` with the same weights (identity at initialisation), the model itself with
the cache off / without activation checkpointing / before saving.
"""

import copy
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from pc2l_fixtures import FEATURE_DIM, synthetic_examples, tiny_config
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModel,
    CLIPTextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    OPTConfig,
    TrainingArguments,
)

from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.generation.collator import PC2LCollator, PC2LDataset
from gest_showcases.generation.gated_cross_attention import PC2LGatedCrossAttentionBlock, PC2LTanhGate
from gest_showcases.generation.lora import apply_lora, load_lora_pc2l, save_lora_base
from gest_showcases.generation.losses import total_loss
from gest_showcases.generation.trainer import PC2LTrainer

ENCODER = {
    "image_feature_dim": FEATURE_DIM, "review_feature_dim": FEATURE_DIM, "encoder_layers": 2,
    "encoder_attention_heads": 2, "encoder_ffn_dim": 64, "encoder_dropout": 0.0, "projection_dim": 16,
}  # fmt: skip
INPUT_KEYS = ("image_features", "image_mask", "review_features", "review_mask")


def llama_config(tokenizer, **overrides) -> LlamaConfig:
    """Hidden 32, 2 layers, 2 heads, tied embeddings (as SmolLM2), the tokenizer's special token."""
    special = tokenizer.eos_token_id
    settings = {
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
        "intermediate_size": 64, "vocab_size": len(tokenizer), "max_position_embeddings": 128,
        "tie_word_embeddings": True, "bos_token_id": special, "eos_token_id": special, "pad_token_id": special,
    }  # fmt: skip
    return LlamaConfig(**(settings | overrides))


def gated_model(tokenizer, seed=0, open_gates=False, decoder=None, **overrides) -> PC2LForConditionalGeneration:
    """A PC2L with a tiny Llama decoder; `open_gates`: every tanh gate at 1, so the blocks change the outputs."""
    torch.manual_seed(seed)
    config = PC2LConfig(decoder=(decoder or llama_config(tokenizer)).to_dict(), **(ENCODER | overrides))
    model = PC2LForConditionalGeneration(config)
    if open_gates:
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, PC2LTanhGate):
                    module.weight.fill_(1.0)
    return model


def _batch(tokenizer, count=4, seed=0):
    return PC2LCollator(tokenizer, with_negatives=True)(synthetic_examples(count, seed=seed))


def _inputs(batch):
    return {key: batch[key] for key in INPUT_KEYS}


def _bare_lm(model) -> LlamaForCausalLM:
    """The decoder without its gated blocks: a plain Llama with the same weights."""
    lm = LlamaForCausalLM(model.config.decoder).eval()
    loaded = lm.load_state_dict(model.decoder.state_dict(), strict=False)
    assert not loaded.missing_keys
    assert loaded.unexpected_keys and all(".cross_attention." in key for key in loaded.unexpected_keys)
    return lm


# -- the config builds the decoder it names, or refuses ----------------------------------------------------------


def test_a_llama_config_builds_a_llama_with_gated_blocks_before_the_chosen_layers(tokenizer):
    model = gated_model(tokenizer, decoder=llama_config(tokenizer, num_hidden_layers=4),
                        cross_attention_every_n_layers=2)  # fmt: skip
    assert isinstance(model.config.decoder, LlamaConfig)
    assert isinstance(model.decoder, LlamaForCausalLM)
    with_block = [index for index, layer in enumerate(model.decoder.model.layers) if "cross_attention" in layer._modules]
    assert with_block == [1, 3] == list(model.config.gated_cross_attention_layers)
    blocks = [layer.cross_attention for layer in model.decoder.model.layers if "cross_attention" in layer._modules]
    assert [block.index for block in blocks] == [0, 1]
    assert all(isinstance(block, PC2LGatedCrossAttentionBlock) for block in blocks)
    assert model.cross_attention_kv.out_features == 2 * 2 * 32  # 2 blocks x (keys, values) x hidden


def test_a_decoder_the_package_cannot_build_is_refused(tokenizer):
    # Not a causal LM at all: refused by the config (this used to build a GPT-2 silently).
    with pytest.raises(ValueError, match="AutoModelForCausalLM"):
        PC2LConfig(decoder=CLIPTextConfig(hidden_size=32).to_dict(), **ENCODER)
    with pytest.raises(ValueError, match="AutoModelForCausalLM"):
        PC2LConfig(decoder=CLIPTextConfig(hidden_size=32), **ENCODER)
    with pytest.raises(ValueError, match="no-such-lm"):
        PC2LConfig(decoder={"model_type": "no-such-lm", "hidden_size": 32}, **ENCODER)
    # A causal LM whose layers are not where the gated blocks go (OPT keeps them in `model.decoder.layers`).
    opt = OPTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64, vocab_size=len(tokenizer),
                    word_embed_proj_dim=32)  # fmt: skip
    with pytest.raises(ValueError, match="Llama layout"):
        PC2LForConditionalGeneration(PC2LConfig(decoder=opt.to_dict(), **ENCODER))
    with pytest.raises(ValueError, match="cross_attention_every_n_layers"):
        PC2LConfig(decoder=llama_config(tokenizer).to_dict(), cross_attention_every_n_layers=3, **ENCODER)
    with pytest.raises(ValueError, match="GPT-2 has cross-attention in every block"):
        tiny_config(tokenizer, cross_attention_every_n_layers=2)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_an_encoder_of_another_width_is_projected_to_the_decoders(tokenizer, kind):
    if kind == "llama":
        model = gated_model(tokenizer, encoder_hidden_size=16)
    else:
        torch.manual_seed(0)
        model = PC2LForConditionalGeneration(tiny_config(tokenizer, encoder_hidden_size=16))
    assert model.encoder.layers[0].qkv_proj.in_features == 16
    out = model(**_batch(tokenizer))
    assert out.encoder_last_hidden_state.shape[-1] == 32  # the decoder's width
    assert torch.isfinite(out.loss)


# -- identity at initialisation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("every", [1, 2])
def test_at_initialisation_the_logits_are_the_bare_lms(tokenizer, every):
    model = gated_model(tokenizer, cross_attention_every_n_layers=every, encoder_hidden_size=16).eval()
    lm = _bare_lm(model)
    batch = _batch(tokenizer)  # right-padded targets
    with torch.no_grad():
        logits = model(**batch).logits
        expected = lm(batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert (logits - expected).abs().max() <= 1e-6
    # and so is what generation decodes, beams and cache included
    bos = torch.full((4, 1), tokenizer.eos_token_id)
    kwargs = {"num_beams": 2, "max_new_tokens": 12, "do_sample": False}
    assert torch.equal(model.generate(**_inputs(batch), **kwargs), lm.generate(bos, **kwargs))


def test_open_gates_make_the_outputs_depend_on_the_inputs(tokenizer):
    model = gated_model(tokenizer, open_gates=True).eval()
    states, mask = model.encode(**_inputs(_batch(tokenizer)))
    ids = torch.zeros(4, 3, dtype=torch.long)
    with torch.no_grad():
        logits = model(input_ids=ids, encoder_hidden_states=states, encoder_attention_mask=mask).logits
        swapped = model(input_ids=ids, encoder_hidden_states=states.flip(0), encoder_attention_mask=mask.flip(0)).logits
        bare = _bare_lm(model)(ids).logits
    assert not torch.allclose(logits, swapped)
    assert not torch.allclose(logits, bare)
    # The decoder alone would skip the blocks without a word: its layers refuse to run without the encoder inputs.
    with pytest.raises(TypeError, match="cross_key_values"):
        model.decoder(ids)


# -- ungated blocks (`cross_attention_gate="none"`, the paper's way of inserting cross-attention) ---------------------


def test_ungated_blocks_are_the_gated_ones_with_the_gates_taken_out(tokenizer):
    ungated = gated_model(tokenizer, cross_attention_gate="none").eval()
    gated = gated_model(tokenizer).eval()  # the same seed: the same projections
    assert not any(isinstance(module, PC2LTanhGate) for module in ungated.modules())
    gate_names = {name for name in gated.state_dict() if name.endswith("_gate.weight")}
    assert len(gate_names) == 4 and set(ungated.state_dict()) == set(gated.state_dict()) - gate_names
    for name, value in ungated.state_dict().items():
        torch.testing.assert_close(value, gated.state_dict()[name], rtol=0, atol=0, msg=name)
    # The oracle: the gated model with its gates replaced by the identity.
    for block in [layer.cross_attention for layer in gated.decoder.model.layers]:
        block.attention_gate, block.mlp_gate = torch.nn.Identity(), torch.nn.Identity()
    batch = _batch(tokenizer)
    with torch.no_grad():
        logits = ungated(**batch).logits
        torch.testing.assert_close(logits, gated(**batch).logits, rtol=0, atol=0)
        # unlike tanh gates, the fresh blocks change the LM's outputs from the start
        bare = _bare_lm(ungated)(batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert (logits - bare).abs().max() > 1e-3


def test_an_unknown_gate_is_refused(tokenizer):
    with pytest.raises(ValueError, match="cross_attention_gate must be one of"):
        PC2LConfig(decoder=llama_config(tokenizer).to_dict(), cross_attention_gate="sigmoid", **ENCODER)
    with pytest.raises(ValueError, match="gate must be 'tanh' or 'none'"):  # the public block, built directly
        PC2LGatedCrossAttentionBlock(32, 2, 0, gate="Tanh")


# -- training ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "target"), [("embedding", "decoder"), ("embedding", "text"), ("likelihood", "decoder")]
)
def test_ce_ccl_and_pcl_are_finite_and_decrease(tokenizer, score, target):
    model = gated_model(tokenizer, contrastive_score=score, contrastive_target=target)  # PC2L: CCL + PCL
    batch = _batch(tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(6):
        loss, parts = total_loss(model.config, model(**batch), batch)
        assert set(parts) == {"loss_ce", "loss_ccl", "loss_pcl"}
        assert all(torch.isfinite(value) for value in parts.values())
        history.append({name: value.item() for name, value in parts.items()})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name in history[0]:
        assert history[-1][name] < history[0][name], (name, history[0][name], history[-1][name])
    gates = [module.weight for module in model.modules() if isinstance(module, PC2LTanhGate)]
    assert len(gates) == 4 and all(gate.abs().item() > 0 for gate in gates)  # training opened every gate


def test_activation_checkpointing_checkpoints_the_blocks_and_keeps_the_gradients(tokenizer):
    model = gated_model(tokenizer, open_gates=True).train()
    batch = _batch(tokenizer)

    def gradients():
        model.zero_grad()
        total_loss(model.config, model(**batch), batch)[0].backward()
        return {name: parameter.grad.clone() for name, parameter in model.named_parameters()}

    expected = gradients()
    model.activation_checkpointing_enable()
    checkpointed = []
    for module in model.modules():
        if isinstance(module, PC2LGatedCrossAttentionBlock):
            inner = module._gradient_checkpointing_func
            module._gradient_checkpointing_func = lambda *args, inner=inner, **kwargs: (
                checkpointed.append(1) or inner(*args, **kwargs)
            )
    got = gradients()
    assert len(checkpointed) == 2  # both blocks ran under checkpointing
    assert expected.keys() == got.keys()
    for name, gradient in expected.items():
        torch.testing.assert_close(got[name], gradient, msg=name)
    assert expected["decoder.model.layers.0.cross_attention.q_proj.weight"].abs().sum() > 0


def test_pc2l_trainer_trains_a_llama_decoder_with_activation_checkpointing(tokenizer, tmp_path):
    model = gated_model(tokenizer)
    before = copy.deepcopy(model.state_dict())
    examples = synthetic_examples(4)
    dataset = PC2LDataset(
        targets=[example["target"] for example in examples],
        image_features=[example["image_features"] for example in examples],
        review_features=[example["review_features"] for example in examples],
        negatives=[example["negative"] for example in examples],
    )
    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to=[], save_strategy="no", logging_steps=1, optim="adamw_torch",
        learning_rate=1e-2, per_device_train_batch_size=2, max_steps=2, remove_unused_columns=False,
        dataloader_num_workers=0, disable_tqdm=True, activation_checkpointing=True,
    )  # fmt: skip
    trainer = PC2LTrainer(model=model, args=args, train_dataset=dataset,
                          data_collator=PC2LCollator(tokenizer, with_negatives=True))  # fmt: skip
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss_ccl" in entry]
    assert logged and all(torch.isfinite(torch.tensor(entry["loss_pcl"])) for entry in logged)
    after = model.state_dict()
    for name in ("decoder.model.layers.0.self_attn.q_proj.weight", "decoder.model.layers.1.cross_attention.mlp_gate.weight",
                 "cross_attention_kv.weight", "encoder.layers.0.qkv_proj.weight"):  # fmt: skip
        assert not torch.equal(after[name], before[name]), name


# -- generation ----------------------------------------------------------------------------------------------------


def test_beam_search_with_and_without_the_cache_agree_and_encode_once(tokenizer):
    model = gated_model(tokenizer, open_gates=True).eval()
    inputs = _inputs(_batch(tokenizer, count=3))
    calls = {"encoder": 0, "cross_attention_kv": 0}
    model.encoder.register_forward_hook(lambda *args: calls.__setitem__("encoder", calls["encoder"] + 1))
    model.cross_attention_kv.register_forward_hook(
        lambda *args: calls.__setitem__("cross_attention_kv", calls["cross_attention_kv"] + 1)
    )
    kwargs = {"num_beams": 2, "max_new_tokens": 12, "min_new_tokens": 12, "do_sample": False}
    with_cache = model.generate(**inputs, **kwargs)
    assert calls == {"encoder": 1, "cross_attention_kv": 1}  # once per call, not per step or per beam
    without_cache = model.generate(**inputs, use_cache=False, **kwargs)
    assert with_cache.shape == (3, 13)
    torch.testing.assert_close(with_cache, without_cache)
    states, mask = model.encode(**inputs)
    from_states = model.generate(encoder_hidden_states=states, encoder_attention_mask=mask, **kwargs)
    torch.testing.assert_close(from_states, with_cache)
    flipped = {key: value.flip(0) for key, value in inputs.items()}
    assert not torch.equal(model.generate(**flipped, **kwargs), with_cache)  # each example decodes its own inputs


@pytest.mark.parametrize("gate", ["tanh", "none"])
def test_save_and_reload_generate_identically(tokenizer, tmp_path, gate):
    model = gated_model(tokenizer, open_gates=True, cross_attention_every_n_layers=2, encoder_hidden_size=16,
                        cross_attention_gate=gate).eval()  # fmt: skip
    model.save_pretrained(tmp_path)
    assert (tmp_path / "gated_cross_attention.py").exists()  # shipped with the modeling file for remote code
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["decoder"]["model_type"] == "llama" and saved["cross_attention_every_n_layers"] == 2
    assert saved["cross_attention_gate"] == gate
    batch = _batch(tokenizer)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, PC2LForConditionalGeneration) and isinstance(loaded.config.decoder, LlamaConfig)
    assert loaded.config.decoder.to_diff_dict() == model.config.decoder.to_diff_dict()
    assert loaded.decoder.lm_head.weight.data_ptr() == loaded.decoder.model.embed_tokens.weight.data_ptr()  # tied
    torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)
    kwargs = {"num_beams": 2, "max_new_tokens": 8, "do_sample": False}
    assert torch.equal(loaded.generate(**_inputs(batch), **kwargs), model.generate(**_inputs(batch), **kwargs))


def test_gates_missing_from_a_checkpoint_start_closed(tokenizer, tmp_path):
    # The decoder's own weight init, which transformers runs on its modules, does not know the gates.
    model = gated_model(tokenizer, open_gates=True)
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    save_file({name: value for name, value in state.items() if not name.endswith("_gate.weight")},
              tmp_path / "model.safetensors", metadata={"format": "pt"})  # fmt: skip
    loaded = PC2LForConditionalGeneration.from_pretrained(tmp_path).eval()
    gates = [module.weight.item() for module in loaded.modules() if isinstance(module, PC2LTanhGate)]
    assert gates == [0.0] * 4
    batch = _batch(tokenizer)
    with torch.no_grad():
        expected = _bare_lm(loaded)(batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        assert (loaded(**batch).logits - expected).abs().max() <= 1e-6


@pytest.mark.slow
def test_a_fresh_process_without_the_package_loads_it_with_trust_remote_code(tokenizer, tmp_path):
    model = gated_model(tokenizer, open_gates=True).eval()
    model.save_pretrained(tmp_path / "model")
    batch = _batch(tokenizer)
    torch.save(dict(batch), tmp_path / "batch.pt")
    kwargs = {"num_beams": 2, "max_new_tokens": 8, "do_sample": False}
    torch.save((model(**batch).logits, model.generate(**_inputs(batch), **kwargs)), tmp_path / "expected.pt")
    script = textwrap.dedent(
        f"""
        import sys, torch
        sys.modules["gest_showcases"] = None  # `import gest_showcases` now raises ImportError
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert type(model.decoder).__name__ == "LlamaForCausalLM"
        batch = torch.load({str(tmp_path / "batch.pt")!r})
        logits, ids = torch.load({str(tmp_path / "expected.pt")!r})
        torch.testing.assert_close(model(**batch).logits, logits)
        inputs = {{key: batch[key] for key in {INPUT_KEYS!r}}}
        assert torch.equal(model.generate(**inputs, **{kwargs!r}), ids)
        print("OK")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": os.environ["HF_HOME"]},
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "OK"


# -- LoRA ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cross_attention", "gate"), [(False, "tanh"), (True, "tanh"), (False, "none"), (True, "none")],
    ids=["blocks-trained-fully", "blocks-lora", "ungated-blocks-trained-fully", "ungated-blocks-lora"],
)  # fmt: skip
def test_lora_on_the_llama_attention_and_the_blocks_trains_and_reloads(tokenizer, tmp_path, cross_attention, gate):
    model = gated_model(tokenizer, cross_attention_gate=gate)
    started = copy.deepcopy(model.state_dict())
    peft_model = apply_lora(model, rank=4, self_attention=True, cross_attention=cross_attention, dropout=0.0)
    adapted = {name.removesuffix(".lora_A") for name, _ in peft_model.named_modules() if name.endswith("lora_A")}
    for projection in ("q_proj", "k_proj", "v_proj", "o_proj"):
        assert any(name.endswith(f"layers.0.self_attn.{projection}") for name in adapted), projection
    for projection in ("q_proj", "o_proj", "fc1", "fc2"):
        assert any(name.endswith(f"layers.0.cross_attention.{projection}") for name in adapted) == cross_attention
    assert any(name.endswith("cross_attention_kv") for name in adapted) == cross_attention
    trainable = {name for name, parameter in peft_model.named_parameters() if parameter.requires_grad}
    assert not any("embed_tokens" in name or ".mlp." in name for name in trainable)  # the LM stays frozen
    assert any("attention_gate" in name for name in trainable) == (gate == "tanh")  # a closed gate must open
    # no adapter copy of a gate that does not exist (peft would wrap the blocks' identity modules)
    assert any("_gate.modules_to_save" in name for name, _ in peft_model.named_modules()) == (
        gate == "tanh" and cross_attention
    )

    batch = _batch(tokenizer)
    optimizer = torch.optim.Adam([p for p in peft_model.parameters() if p.requires_grad], lr=5e-2)
    for _ in range(3):
        optimizer.zero_grad()
        total_loss(model.config, peft_model(**batch), batch)[0].backward()
        optimizer.step()
    peft_model.eval()
    gates = [module.weight for module in peft_model.modules() if isinstance(module, PC2LTanhGate)]
    assert any(weight.abs().item() > 0 for weight in gates) == (gate == "tanh")
    peft_model.save_pretrained(tmp_path)
    base_dir = save_lora_base(peft_model, tmp_path)
    base = PC2LForConditionalGeneration.from_pretrained(base_dir)
    for name, value in base.state_dict().items():  # the base is the model as it started
        torch.testing.assert_close(value, started[name], msg=name)

    reloaded = load_lora_pc2l(tmp_path)
    torch.testing.assert_close(reloaded(**batch).logits, peft_model(**batch).logits)
    kwargs = {"num_beams": 2, "max_new_tokens": 6, "do_sample": False}
    assert torch.equal(reloaded.generate(**_inputs(batch), **kwargs), peft_model.generate(**_inputs(batch), **kwargs))


# -- a pretrained decoder ------------------------------------------------------------------------------------------


def test_from_decoder_pretrained_builds_pc2l_around_a_local_llama(tokenizer, tmp_path):
    torch.manual_seed(3)
    lm = LlamaForCausalLM(llama_config(tokenizer)).eval()
    lm.save_pretrained(tmp_path / "lm")
    model = PC2LForConditionalGeneration.from_decoder_pretrained(str(tmp_path / "lm"), **ENCODER).eval()
    decoder_state = model.decoder.state_dict()
    for name, value in lm.state_dict().items():
        torch.testing.assert_close(decoder_state[name], value, rtol=0, atol=0)
    batch = _batch(tokenizer)
    with torch.no_grad():
        difference = model(**batch).logits - lm(batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert difference.abs().max() <= 1e-6
