"""PC2LForConditionalGeneration: shapes, masking, generation (cache, beams, encoder reuse), Auto-class round trips."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from pc2l_fixtures import FEATURE_DIM, synthetic_examples, tiny_config
from transformers import AutoConfig, AutoModel, GPT2Config, GPT2LMHeadModel

from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.generation.collator import PC2LCollator
from tiny_assets import assert_same_tuple

TABLE4 = {
    "baseline": ("none", "none"),
    "img_cl_text_cl": ("cl", "cl"),
    "ccl_text_cl": ("ccl", "cl"),
    "img_cl_pcl": ("cl", "pcl"),
    "pc2l": ("ccl", "pcl"),
}


def _model(tokenizer, seed=0, **overrides):
    torch.manual_seed(seed)
    return PC2LForConditionalGeneration(tiny_config(tokenizer, **overrides))


def _batch(tokenizer, count=4, seed=0, with_negatives=True, **collator_kwargs):
    collator = PC2LCollator(tokenizer, with_negatives=with_negatives, **collator_kwargs)
    return collator(synthetic_examples(count, seed=seed, with_negatives=with_negatives))


def _inputs_only(batch):
    keys = ("image_features", "image_mask", "review_features", "review_mask")
    return {key: batch[key] for key in keys if key in batch}


@pytest.mark.parametrize("row", sorted(TABLE4))
def test_forward_shapes_and_finite_losses_for_every_table4_row(tokenizer, row):
    image_loss, review_loss = TABLE4[row]
    model = _model(tokenizer, image_contrastive=image_loss, review_contrastive=review_loss)
    batch = _batch(tokenizer, with_negatives=image_loss == "ccl")
    out = model(**batch)
    batch_size, length = batch["input_ids"].shape
    assert out.logits.shape == (batch_size, length, len(tokenizer))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.cache is None
    assert out.encoder_last_hidden_state.shape == (batch_size, 5 + 4, 32)  # 5 image + 4 review slots
    embeds = {"image": out.image_embeds, "review": out.review_embeds, "target": out.target_embeds}
    for name, value in embeds.items():
        expected = {"image": image_loss, "review": review_loss, "target": image_loss + review_loss}[name]
        if expected in ("none", "nonenone"):
            assert value is None, name
        else:
            assert value.shape == (batch_size, 16) and torch.isfinite(value).all(), name
    assert (out.negative_embeds is not None) == (image_loss == "ccl")


@pytest.mark.parametrize("mode", ["img", "text", "img+text"])
def test_every_input_mode_reads_only_its_inputs(tokenizer, mode):
    model = _model(tokenizer, input_mode=mode, image_contrastive="none", review_contrastive="none")
    batch = _batch(tokenizer, with_negatives=False)
    out = model(**batch)
    expected_tokens = {"img": 5, "text": 4, "img+text": 9}[mode]
    assert out.encoder_last_hidden_state.shape[1] == expected_tokens
    assert torch.isfinite(out.loss)
    missing = "review_features" if mode == "text" else "image_features"
    batch.pop(missing)
    with pytest.raises(ValueError, match="needs"):
        model(**batch)


def test_config_validates_its_options(tokenizer):
    # Integers (from YAML or the command line) are fine where floats are expected.
    assert tiny_config(tokenizer, lambda1=0, pcl_alpha=3).lambda1 == 0
    with pytest.raises(ValueError, match="pcl_alpha"):
        tiny_config(tokenizer, pcl_alpha=1.0)
    with pytest.raises(ValueError, match="needs reviews"):
        tiny_config(tokenizer, input_mode="img", review_contrastive="pcl")
    with pytest.raises(ValueError, match="input_mode"):
        tiny_config(tokenizer, input_mode="audio")


def test_lm_loss_is_the_token_mean_of_the_shifted_cross_entropy(tokenizer):
    model = _model(tokenizer).eval()
    batch = _batch(tokenizer)
    with torch.no_grad():
        out = model(**batch)
    log_probs = out.logits.log_softmax(-1)
    total, count = 0.0, 0
    for row in range(batch["labels"].shape[0]):
        for position in range(1, batch["labels"].shape[1]):
            label = int(batch["labels"][row, position])
            if label != -100:
                total -= float(log_probs[row, position - 1, label])
                count += 1
    torch.testing.assert_close(out.loss, torch.tensor(total / count), rtol=1e-5, atol=1e-5)


def test_padding_images_and_reviews_does_not_change_the_outputs(tokenizer):
    model = _model(tokenizer).eval()
    example = synthetic_examples(1, seed=3)[0]
    collator = PC2LCollator(tokenizer, with_negatives=True)
    alone = collator([example])
    padded_partner = dict(
        example, image_features=torch.randn(5, FEATURE_DIM), review_features=torch.randn(4, 8)
    )
    together = collator([example, padded_partner])
    out_alone = model(**alone)
    out_together = model(**together)
    torch.testing.assert_close(out_together.logits[:1], out_alone.logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out_together.image_embeds[:1], out_alone.image_embeds, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out_together.review_embeds[:1], out_alone.review_embeds, rtol=1e-4, atol=1e-5)


def test_hard_negatives_share_the_decoder_call_and_match_a_separate_pass(tokenizer):
    model = _model(tokenizer).eval()
    batch = _batch(tokenizer)
    calls = []
    model.decoder.transformer.register_forward_hook(
        lambda module, args, kwargs, out: calls.append(1), with_kwargs=True
    )
    out = model(**batch)
    assert len(calls) == 1
    # The negatives' embeddings equal phi_Y of a separate decoder pass over them as targets.
    separate = dict(
        batch, input_ids=batch["negative_input_ids"], attention_mask=batch["negative_attention_mask"]
    )
    separate["labels"] = separate["input_ids"]
    del separate["negative_input_ids"], separate["negative_attention_mask"]
    torch.testing.assert_close(model(**separate).target_embeds, out.negative_embeds, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("num_beams", [1, 2])
def test_generation_with_and_without_cache_agree(tokenizer, num_beams):
    model = _model(tokenizer, decoder={"n_positions": 128}).eval()
    inputs = _inputs_only(_batch(tokenizer, count=3))
    kwargs = {"num_beams": num_beams, "max_new_tokens": 20, "do_sample": False}
    with_cache = model.generate(**inputs, **kwargs)
    without_cache = model.generate(**inputs, use_cache=False, **kwargs)
    assert with_cache.shape[0] == 3
    torch.testing.assert_close(with_cache, without_cache)


def test_generation_from_precomputed_encoder_states_equals_raw_features_and_encodes_once(tokenizer):
    model = _model(tokenizer, decoder={"n_positions": 128}).eval()
    inputs = _inputs_only(_batch(tokenizer, count=3))
    encoder_calls = []
    model.encoder.register_forward_hook(lambda *args: encoder_calls.append(1))
    from_features = model.generate(**inputs, num_beams=2, max_new_tokens=64, min_new_tokens=64)
    assert len(encoder_calls) == 1  # once per input batch, not once per step or per beam
    assert from_features.shape == (3, 65)  # BOS + 64 new tokens
    states, mask = model.encode(**inputs)
    from_states = model.generate(encoder_hidden_states=states, encoder_attention_mask=mask, num_beams=2,
                                 max_new_tokens=64, min_new_tokens=64)  # fmt: skip
    assert len(encoder_calls) == 2
    torch.testing.assert_close(from_features, from_states)


def test_generation_depends_on_the_inputs(tokenizer):
    model = _model(tokenizer, decoder={"n_positions": 128}).eval()
    inputs = _inputs_only(_batch(tokenizer, count=2))
    states, mask = model.encode(**inputs)
    logits_a = model(input_ids=torch.zeros(2, 1, dtype=torch.long), encoder_hidden_states=states,
                     encoder_attention_mask=mask).logits  # fmt: skip
    logits_b = model(input_ids=torch.zeros(2, 1, dtype=torch.long), encoder_hidden_states=states.flip(0),
                     encoder_attention_mask=mask.flip(0)).logits  # fmt: skip
    assert not torch.allclose(logits_a, logits_b)


def test_decoder_starts_from_a_gpt2_checkpoint(tokenizer, tmp_path):
    torch.manual_seed(1)
    gpt2 = GPT2LMHeadModel(
        GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=len(tokenizer), n_positions=64)
    )
    gpt2.save_pretrained(tmp_path / "gpt2")
    model = PC2LForConditionalGeneration.from_decoder_pretrained(
        str(tmp_path / "gpt2"), image_feature_dim=FEATURE_DIM, review_feature_dim=FEATURE_DIM,
        encoder_attention_heads=2, encoder_layers=1,
    )  # fmt: skip
    assert model.config.decoder.add_cross_attention
    decoder_state = model.decoder.state_dict()
    for name, value in gpt2.state_dict().items():
        torch.testing.assert_close(decoder_state[name], value)
    assert "transformer.h.0.crossattention.c_attn.weight" in decoder_state
    assert model.decoder.lm_head.weight.data_ptr() == model.decoder.transformer.wte.weight.data_ptr()


def test_save_and_load_through_the_auto_classes(tokenizer, tmp_path):
    model = _model(tokenizer).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_pc2l.PC2LForConditionalGeneration"
    assert (tmp_path / "modeling_pc2l.py").exists() and (tmp_path / "configuration_pc2l.py").exists()
    assert isinstance(AutoConfig.from_pretrained(tmp_path), PC2LConfig)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, PC2LForConditionalGeneration)
    batch = _batch(tokenizer)
    torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)


@pytest.mark.slow
def test_fresh_process_loads_with_trust_remote_code(tokenizer, tmp_path):
    model = _model(tokenizer).eval()
    model.save_pretrained(tmp_path / "model")
    batch = _batch(tokenizer)
    torch.save({key: value for key, value in batch.items()}, tmp_path / "batch.pt")
    torch.save(model(**batch).logits, tmp_path / "logits.pt")
    script = textwrap.dedent(
        f"""
        import sys, torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True).eval()
        assert not any(name.startswith("gest_showcases") for name in sys.modules), "package was imported"
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        batch = torch.load({str(tmp_path / "batch.pt")!r})
        torch.testing.assert_close(model(**batch).logits, torch.load({str(tmp_path / "logits.pt")!r}))
        ids = model.generate(**{{k: batch[k] for k in ("image_features", "image_mask", "review_features",
                                  "review_mask")}}, num_beams=2, max_new_tokens=5)
        print("OK", tuple(ids.shape))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": os.environ["HF_HOME"]},
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK (4, 6)" in result.stdout


def test_return_dict_false_gives_the_outputs_tuple(tokenizer):
    """Session 26's audit: `return_dict=False` reached the decoder and failed (`'tuple' object has no attribute
    'last_hidden_state'`); `config.return_dict=False` was ignored. Oracle: the output's own `to_tuple()`."""
    model = _model(tokenizer).eval()
    batch = _batch(tokenizer)
    with torch.no_grad():
        expected = model(**batch).to_tuple()
        as_tuple = model(**batch, return_dict=False)
        model.config.return_dict = False
        from_config = model(**batch)
    for output in (as_tuple, from_config):
        assert_same_tuple(output, expected)


def test_a_likelihood_ccl_model_computes_its_loss_without_hard_negatives(tokenizer):
    """Session 26's audit: a `contrastive_score="likelihood"` model (the demo's `ccl_entity`) given labels but no
    `negative_input_ids` (a plain loss or perplexity call) failed in `zip()`. Oracle: the same weights scored as CE."""
    model = _model(
        tokenizer, contrastive_score="likelihood", likelihood_image_negatives="entity", review_contrastive="none"
    ).eval()
    batch = _batch(tokenizer, with_negatives=False)
    with torch.no_grad():
        out = model(**batch)
        model.config.image_contrastive = "none"
        plain = model(**batch)
    torch.testing.assert_close(out.loss, plain.loss, rtol=0, atol=0)
    assert out.target_log_likelihood.shape == (batch["input_ids"].shape[0],)
    assert out.negative_log_likelihood is None


@pytest.mark.parametrize(
    "overrides",
    [{}, {"contrastive_score": "likelihood"}, {"contrastive_target": "text"}],
    ids=["paper", "likelihood", "text-target"],
)
def test_without_contrastive_losses_the_forward_is_cross_entropy_alone_in_one_pass(tokenizer, overrides):
    """`contrastive_losses=False` (the trainer's warm-up steps): the loss and logits of a CE-only model with the same
    weights, and one decoder pass over the B targets (the hard negatives, swapped copies and text-only pass would
    each add B rows)."""
    model = _model(tokenizer, **overrides).eval()
    ce_only = PC2LForConditionalGeneration(tiny_config(tokenizer, image_contrastive="none", review_contrastive="none"))
    missing, unexpected = ce_only.load_state_dict(model.state_dict(), strict=False)
    assert not missing and all(name.split(".")[0].endswith("_head") for name in unexpected)
    batch = _batch(tokenizer)
    rows = []  # the sequences each call's first decoder block sees

    def count_rows(module, args, kwargs):
        rows[-1] += (args[0] if args else kwargs["hidden_states"]).shape[0]

    hook = model.decoder.transformer.h[0].register_forward_pre_hook(count_rows, with_kwargs=True)
    with torch.no_grad():
        rows.append(0)
        full = model(**batch)
        rows.append(0)
        without = model(**batch, contrastive_losses=False)
    hook.remove()
    reference = ce_only.eval()(**batch)
    assert rows[0] > 4 and rows[1] == 4  # the full forward ran more than the targets
    torch.testing.assert_close(without.loss, reference.loss)
    torch.testing.assert_close(without.logits, reference.logits)
    torch.testing.assert_close(without.loss, full.loss)  # the LM loss is the targets' either way
    contrastive = ("image_embeds", "review_embeds", "target_embeds", "negative_embeds", "target_log_likelihood")
    assert all(getattr(without, name) is None for name in contrastive)
