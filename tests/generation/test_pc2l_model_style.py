"""PC2LForConditionalGeneration in transformers' encoder-decoder style (issue 14): outputs that carry what the
caller asks for (`output_hidden_states`, `output_attentions`), an already-built decoder (`decoder=`), a pretrained
decoder built once, and checkpoints and decoding of earlier versions unchanged. Both decoder kinds: GPT-2 with its own
cross-attention and a tiny Llama with gated cross-attention blocks.
"""

import functools

import pytest
import torch
from pc2l_fixtures import FEATURE_DIM, synthetic_examples, tiny_config
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
from transformers.testing_utils import CaptureLogger

from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration, modeling_pc2l
from gest_showcases.generation.collator import PC2LCollator
from gest_showcases.generation.gated_cross_attention import PC2LTanhGate
from gest_showcases.generation.smollm2 import SMOLLM2_GGUF_FILE, smollm2_folder

ENCODER = {
    "image_feature_dim": FEATURE_DIM, "review_feature_dim": FEATURE_DIM, "encoder_layers": 2,
    "encoder_attention_heads": 2, "encoder_ffn_dim": 64, "encoder_dropout": 0.0, "projection_dim": 16,
}  # fmt: skip
INPUT_KEYS = ("image_features", "image_mask", "review_features", "review_mask")
DECODER_KINDS = ("gpt2", "llama")


def llama_config(tokenizer, **overrides) -> LlamaConfig:
    """Hidden 32, 2 layers, 2 heads, tied embeddings, the tokenizer's special token."""
    special = tokenizer.eos_token_id
    settings = {
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
        "intermediate_size": 64, "vocab_size": len(tokenizer), "max_position_embeddings": 128,
        "tie_word_embeddings": True, "bos_token_id": special, "eos_token_id": special, "pad_token_id": special,
    }  # fmt: skip
    return LlamaConfig(**(settings | overrides))


def pc2l_config(tokenizer, kind: str, **overrides) -> PC2LConfig:
    if kind == "gpt2":
        return tiny_config(tokenizer, **overrides)
    return PC2LConfig(decoder=llama_config(tokenizer).to_dict(), **(ENCODER | overrides))


def pc2l_model(tokenizer, kind: str, seed=0, **overrides) -> PC2LForConditionalGeneration:
    torch.manual_seed(seed)
    return PC2LForConditionalGeneration(pc2l_config(tokenizer, kind, **overrides)).eval()


def _batch(tokenizer, count=3, with_negatives=True):
    collator = PC2LCollator(tokenizer, with_negatives=with_negatives)
    return collator(synthetic_examples(count, seed=0, with_negatives=with_negatives))


def _inputs(batch):
    return {key: batch[key] for key in INPUT_KEYS}


def _decoder_layers(model) -> int:
    return model.config.decoder.num_hidden_layers


# -- hidden states and attentions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", DECODER_KINDS)
def test_output_hidden_states_returns_the_decoders_and_the_encoders(tokenizer, kind):
    model = pc2l_model(tokenizer, kind)
    batch = _batch(tokenizer)  # with labels and hard negatives: the decoder call holds 2B rows
    batch_size, length = batch["input_ids"].shape
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        plain = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **_inputs(batch))

    assert len(out.hidden_states) == _decoder_layers(model) + 1
    for states, plain_states in zip(out.hidden_states, plain_states_of(model, batch), strict=True):
        assert states.shape == (batch_size, length, 32)
        torch.testing.assert_close(states, plain_states)  # the targets' rows, never the negatives'
    # The last is what the LM head reads, the first the embeddings (a gated block adds 0 while its gates are shut).
    torch.testing.assert_close(model.decoder.lm_head(out.hidden_states[-1]), plain.logits)
    embeddings = model.decoder.get_input_embeddings()(batch["input_ids"])
    if kind == "gpt2":
        embeddings = embeddings + model.decoder.transformer.wpe(torch.arange(length))
    torch.testing.assert_close(out.hidden_states[0], embeddings)

    num_inputs = out.encoder_last_hidden_state.shape[1]
    assert len(out.encoder_hidden_states) == model.config.encoder_layers + 1
    assert all(states.shape == (batch_size, num_inputs, 32) for states in out.encoder_hidden_states)
    assert out.encoder_hidden_states[-1] is out.encoder_last_hidden_state
    num_images = batch["image_features"].shape[1]
    image_modality = model.encoder.modality_embeddings.weight[0]
    first_images = model.encoder.image_projection(batch["image_features"]) + image_modality
    torch.testing.assert_close(out.encoder_hidden_states[0][:, :num_images], first_images)
    assert plain.hidden_states is None and plain.encoder_hidden_states is None  # only when asked for


def plain_states_of(model, batch):
    """The decoder's hidden states over the targets alone, the decoder called directly (no PC2L forward)."""
    with torch.no_grad():
        states, mask = model.encode(**_inputs(batch))
        if model.config.uses_gated_cross_attention:
            return model.decoder(
                batch["input_ids"],
                attention_mask=batch["attention_mask"],
                output_hidden_states=True,
                cross_key_values=model.cross_attention_kv(states),
                cross_attention_mask=modeling_pc2l.cross_attention_bias(mask, states.dtype),
            ).hidden_states
        return model.decoder.transformer(
            batch["input_ids"],
            attention_mask=batch["attention_mask"],
            encoder_hidden_states=states,
            encoder_attention_mask=mask,
            output_hidden_states=True,
        ).hidden_states


@pytest.mark.parametrize("kind", DECODER_KINDS)
def test_config_output_hidden_states_is_the_default(tokenizer, kind):
    model = pc2l_model(tokenizer, kind)
    model.config.output_hidden_states = True
    batch = _batch(tokenizer, with_negatives=False)
    with torch.no_grad():
        out = model(**batch)
        asked_off = model(**batch, output_hidden_states=False)
    assert len(out.hidden_states) == _decoder_layers(model) + 1
    assert len(out.encoder_hidden_states) == model.config.encoder_layers + 1
    assert asked_off.hidden_states is None and asked_off.encoder_hidden_states is None


@pytest.mark.parametrize("kind", DECODER_KINDS)
def test_likelihood_scores_return_the_batchs_own_rows(tokenizer, kind):
    # The likelihood losses encode swapped copies of the batch and decode the targets under them in the same calls.
    model = pc2l_model(tokenizer, kind, contrastive_score="likelihood")
    batch = _batch(tokenizer)
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        plain = model(**_inputs(batch), input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      output_hidden_states=True)  # fmt: skip
    for name in ("hidden_states", "encoder_hidden_states"):
        for states, plain_states in zip(out[name], plain[name], strict=True):
            torch.testing.assert_close(states, plain_states)


@pytest.mark.parametrize("kind", DECODER_KINDS)
def test_output_attentions_needs_eager_attention_and_returns_every_layers_weights(tokenizer, kind):
    model = pc2l_model(tokenizer, kind)
    batch = _batch(tokenizer)
    with pytest.raises(ValueError, match="eager"):  # SDPA keeps no weights: never an empty tuple
        model(**batch, output_attentions=True)
    model.set_attn_implementation("eager")
    modeling_pc2l.logger.warning_once.cache_clear()
    with torch.no_grad(), CaptureLogger(modeling_pc2l.logger) as captured:
        out = model(**batch, output_attentions=True)
        without = model(**batch)
    batch_size, length = batch["input_ids"].shape
    input_mask = out.encoder_attention_mask  # [B, N]
    num_inputs = input_mask.shape[1]

    assert len(out.attentions) == _decoder_layers(model)
    for weights in out.attentions:
        assert weights.shape == (batch_size, 2, length, length)
        torch.testing.assert_close(weights.sum(-1), torch.ones(batch_size, 2, length))
        assert not weights.triu(1).any()  # causal
    if kind == "gpt2":
        assert len(out.cross_attentions) == _decoder_layers(model)
        for weights in out.cross_attentions:
            assert weights.shape == (batch_size, 2, length, num_inputs)
            assert not weights.masked_select(~input_mask[:, None, None, :]).any()  # padding gets no weight
    else:
        # The gated blocks attend with SDPA and keep no weights: said, never silently dropped.
        assert out.cross_attentions is None
        assert "no cross_attentions for a gated decoder" in captured.out

    assert len(out.encoder_attentions) == model.config.encoder_layers
    for weights in out.encoder_attentions:
        assert weights.shape == (batch_size, 2, num_inputs, num_inputs)
        assert not weights.masked_select(~input_mask[:, None, None, :]).any()
    # The eager encoder computes what scaled dot-product attention does.
    torch.testing.assert_close(out.encoder_last_hidden_state, without.encoder_last_hidden_state)
    torch.testing.assert_close(out.logits, without.logits)


@pytest.mark.parametrize("kind", DECODER_KINDS)
def test_generate_returns_the_hidden_states_of_every_step(tokenizer, kind):
    model = pc2l_model(tokenizer, kind)
    batch = _batch(tokenizer, with_negatives=False)
    generated = model.generate(**_inputs(batch), num_beams=2, max_new_tokens=4, min_new_tokens=4,
                               output_hidden_states=True, return_dict_in_generate=True)  # fmt: skip
    assert len(generated.hidden_states) == 4  # one entry per step
    assert all(len(step) == _decoder_layers(model) + 1 for step in generated.hidden_states)
    assert generated.hidden_states[0][0].shape == (3 * 2, 1, 32)  # batch x beams, the BOS
    with pytest.raises(ValueError, match="static"):
        model.generate(**_inputs(batch), max_new_tokens=2, cache_implementation="static",
                       output_hidden_states=True, return_dict_in_generate=True)  # fmt: skip


# -- an already-built decoder --------------------------------------------------------------------------------------


def _gpt2_decoder(config: PC2LConfig, seed=1, **changes) -> GPT2LMHeadModel:
    """A GPT-2 built on its own from a copy of `config.decoder` (with `changes`)."""
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(**(config.decoder.to_dict() | changes)))


def test_a_gpt2_decoder_passed_in_is_the_decoder(tokenizer, tmp_path):
    config = tiny_config(tokenizer)
    decoder = _gpt2_decoder(config)
    weights = {name: value.clone() for name, value in decoder.state_dict().items()}
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(config, decoder=decoder).eval()

    assert model.decoder is decoder and model.get_decoder() is decoder
    assert model.get_encoder() is model.encoder and model.base_model is model
    assert decoder.config is model.config.decoder  # one config: what is saved is what runs
    for name, value in decoder.state_dict().items():
        torch.testing.assert_close(value, weights[name], rtol=0, atol=0, msg=name)  # not re-initialised
    assert decoder.lm_head.weight is decoder.transformer.wte.weight

    # The tied head is saved once and tied again on loading; the logits survive the round trip.
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert "decoder.lm_head.weight" not in saved and "decoder.transformer.wte.weight" in saved
    loaded = PC2LForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.decoder.lm_head.weight is loaded.decoder.transformer.wte.weight
    batch = _batch(tokenizer)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=0, atol=0)


def test_a_llama_passed_in_gets_the_gated_blocks_and_starts_as_the_lm(tokenizer):
    config = pc2l_config(tokenizer, "llama")
    torch.manual_seed(1)
    lm = LlamaForCausalLM(llama_config(tokenizer)).eval()
    batch = _batch(tokenizer)
    with torch.no_grad():
        expected = lm(batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    weights = {name: value.clone() for name, value in lm.state_dict().items()}

    model = PC2LForConditionalGeneration(config, decoder=lm).eval()
    assert model.decoder is lm and lm.config is model.config.decoder
    blocks = [layer.cross_attention for layer in lm.model.layers]
    gates = [module for block in blocks for module in block.modules() if isinstance(module, PC2LTanhGate)]
    assert gates and all(gate.weight.item() == 0 for gate in gates)  # closed: the blocks add nothing yet
    for name, value in lm.state_dict().items():
        if ".cross_attention." not in name:
            torch.testing.assert_close(value, weights[name], rtol=0, atol=0, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, expected, rtol=0, atol=1e-6)


def test_a_decoder_that_disagrees_with_the_config_is_refused(tokenizer):
    config = tiny_config(tokenizer)
    with pytest.raises(ValueError, match="n_layer=3"):
        PC2LForConditionalGeneration(config, decoder=_gpt2_decoder(config, n_layer=3))
    with pytest.raises(ValueError, match="add_cross_attention=True"):
        PC2LForConditionalGeneration(config, decoder=_gpt2_decoder(config, add_cross_attention=False))
    with pytest.raises(ValueError, match="GPT2LMHeadModel"):
        PC2LForConditionalGeneration(config, decoder=LlamaForCausalLM(llama_config(tokenizer)))

    llama = pc2l_config(tokenizer, "llama")
    with pytest.raises(ValueError, match="hidden_size=64"):
        PC2LForConditionalGeneration(llama, decoder=LlamaForCausalLM(llama_config(tokenizer, hidden_size=64)))
    used = PC2LForConditionalGeneration(llama, decoder=LlamaForCausalLM(llama_config(tokenizer))).decoder
    with pytest.raises(ValueError, match="already has gated cross-attention"):
        PC2LForConditionalGeneration(pc2l_config(tokenizer, "llama"), decoder=used)


def _count_inits(monkeypatch, model_class) -> list:
    calls = []
    original = model_class.__init__

    @functools.wraps(original)
    def counting_init(self, *args, **kwargs):
        calls.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(model_class, "__init__", counting_init)
    return calls


@pytest.mark.parametrize("kind", DECODER_KINDS)
def test_from_decoder_pretrained_builds_the_decoder_once(tokenizer, tmp_path, monkeypatch, kind):
    torch.manual_seed(1)
    if kind == "gpt2":  # a plain GPT-2 checkpoint, without cross-attention
        lm = _gpt2_decoder(tiny_config(tokenizer), add_cross_attention=False)
    else:
        lm = LlamaForCausalLM(llama_config(tokenizer))
    lm.save_pretrained(tmp_path / "lm")
    calls = _count_inits(monkeypatch, type(lm))
    model = PC2LForConditionalGeneration.from_decoder_pretrained(str(tmp_path / "lm"), **ENCODER)
    assert calls == [type(lm).__name__]  # loaded, never built at random first
    assert isinstance(model.decoder, type(lm)) and model.decoder.config is model.config.decoder
    decoder_state = model.decoder.state_dict()
    for name, value in lm.state_dict().items():
        torch.testing.assert_close(decoder_state[name], value, rtol=0, atol=0, msg=name)


def test_from_decoder_pretrained_decodes_in_the_default_dtype_and_says_so(tokenizer, tmp_path):
    # A half-precision checkpoint becomes float32 weights, and the saved config must say float32.
    LlamaForCausalLM(llama_config(tokenizer)).to(torch.bfloat16).save_pretrained(tmp_path / "lm")
    model = PC2LForConditionalGeneration.from_decoder_pretrained(str(tmp_path / "lm"), **ENCODER)
    assert model.decoder.dtype == torch.float32
    assert model.config.decoder.to_dict()["dtype"] == "float32"


# -- what earlier versions saved and decoded -----------------------------------------------------------------------


def _encoder_keys(config) -> list[str]:
    layer = ["self_attn_layer_norm.weight", "self_attn_layer_norm.bias", "qkv_proj.weight", "qkv_proj.bias",
             "out_proj.weight", "out_proj.bias", "final_layer_norm.weight", "final_layer_norm.bias",
             "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]  # fmt: skip
    projections = ["image_projection.weight", "image_projection.bias", "review_projection.weight",
                   "review_projection.bias", "modality_embeddings.weight"]  # fmt: skip
    layers = [f"layers.{index}.{name}" for index in range(config.encoder_layers) for name in layer]
    return [f"encoder.{name}" for name in [*projections, *layers, "layer_norm.weight", "layer_norm.bias"]]


HEAD_KEYS = [f"{head}_head.{fc}.{weight}" for head in ("image", "review", "target") for fc in ("fc1", "fc2")
             for weight in ("weight", "bias")]  # fmt: skip


def _gpt2_decoder_keys(config) -> list[str]:
    block = ["ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "crossattention.c_attn", "crossattention.q_attn",
             "crossattention.c_proj", "ln_cross_attn", "mlp.c_fc", "mlp.c_proj"]  # fmt: skip
    blocks = [f"h.{index}.{name}.{weight}" for index in range(config.decoder.n_layer) for name in block
              for weight in ("weight", "bias")]  # fmt: skip
    names = ["wte.weight", "wpe.weight", *blocks, "ln_f.weight", "ln_f.bias"]
    return [f"decoder.transformer.{name}" for name in names] + ["decoder.lm_head.weight"]


def _llama_decoder_keys(config) -> list[str]:
    layer = ["self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
             "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
             "input_layernorm.weight", "post_attention_layernorm.weight"]  # fmt: skip
    block = ["attention_layer_norm.weight", "attention_layer_norm.bias", "q_proj.weight", "o_proj.weight",
             "attention_gate.weight", "mlp_layer_norm.weight", "mlp_layer_norm.bias", "fc1.weight", "fc2.weight",
             "mlp_gate.weight"]  # fmt: skip
    layers = [f"layers.{index}.{name}" for index in range(config.decoder.num_hidden_layers)
              for name in [*layer, *(f"cross_attention.{part}" for part in block)]]  # fmt: skip
    names = ["embed_tokens.weight", *layers, "norm.weight"]
    return [f"decoder.model.{name}" for name in names] + ["decoder.lm_head.weight", "cross_attention_kv.weight"]


@pytest.mark.parametrize("kind", DECODER_KINDS)
def test_state_dict_keys_are_those_earlier_versions_saved(tokenizer, kind):
    # The keys, in order, of the model before `decoder=` existed: its checkpoints load into this one as they are
    # (`base_model_prefix` names no attribute and no key starts with it, so no key is renamed on loading).
    model = pc2l_model(tokenizer, kind)
    decoder_keys = (_gpt2_decoder_keys if kind == "gpt2" else _llama_decoder_keys)(model.config)
    assert list(model.state_dict()) == _encoder_keys(model.config) + decoder_keys + HEAD_KEYS
    assert not any(key.startswith(model.base_model_prefix) for key in model.state_dict())


def _fill_deterministically(model) -> None:
    """Weights from a seeded generator by parameter name, independent of the initialisation code: norm scales and
    tanh gates near 1 (open), every other weight small, so that the inputs steer the tokens."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            noise = torch.randn(parameter.shape, generator=generator)
            is_scale = parameter.ndim == 1 and name.endswith("weight")
            parameter.copy_(1 + 0.1 * noise if is_scale else 0.3 * noise)


# Decoded by the model before `decoder=` and the output fields existed (git 183fc28), from these very weights.
EARLIER_GPT2_TOKENS = [
    [0, 175, 175, 85, 85, 210, 210, 210, 210, 210, 210],
    [0, 85, 85, 85, 210, 210, 85, 210, 210, 85, 85],
    [0, 85, 85, 85, 85, 210, 210, 210, 210, 85, 85],
]
EARLIER_TOKENS = {
    ("gpt2", 2): EARLIER_GPT2_TOKENS,
    ("gpt2", 1): EARLIER_GPT2_TOKENS,  # two beams find the greedy tokens here
    ("llama", 2): [[0, 264, 90, 90, 90, 90, 245, 245, 245, 245, 245], [0] + [182] * 10,
                   [0, 275, 149, 90, 275, 149, 275, 149, 275, 149, 275]],
    ("llama", 1): [[0, 264] + [90] * 9, [0] + [182] * 10, [0, 231, 275, 149, 275, 275, 275, 275, 275, 149, 275]],
}  # fmt: skip


@pytest.mark.parametrize("num_beams", [2, 1])
@pytest.mark.parametrize("kind", DECODER_KINDS)
def test_generate_decodes_the_tokens_earlier_versions_did(tokenizer, kind, num_beams):
    model = pc2l_model(tokenizer, kind, seed=0)
    _fill_deterministically(model)
    batch = _batch(tokenizer, with_negatives=False)
    generated = model.generate(**_inputs(batch), num_beams=num_beams, max_new_tokens=10, do_sample=False)
    assert generated.tolist() == EARLIER_TOKENS[kind, num_beams]


@pytest.mark.slow
def test_a_dequantised_gguf_decoder_is_a_plain_float_model():
    # transformers marks a model it loaded from a GGUF file as quantised even when it dequantised every weight.
    model = PC2LForConditionalGeneration.from_decoder_pretrained(
        str(smollm2_folder()), gguf_file=SMOLLM2_GGUF_FILE, image_feature_dim=8, review_feature_dim=8,
        encoder_hidden_size=64, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=128,
        cross_attention_every_n_layers=6, image_contrastive="none", review_contrastive="none",
    )  # fmt: skip
    assert not model.decoder.is_quantized and getattr(model.decoder, "hf_quantizer", None) is None
    assert "quantization_config" not in model.config.decoder.to_dict()
    assert all(parameter.dtype == torch.float32 for parameter in model.decoder.parameters())
