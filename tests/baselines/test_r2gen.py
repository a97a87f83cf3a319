"""R2Gen baseline: the relational memory's update and the MCLN by hand, loss, masking, causality, decoding and
save/reload on a tiny config."""

import math

import pytest
import torch
from image_baseline_fixtures import (
    FEATURE_DIM,
    SPECIAL_TOKENS,
    check_causal,
    check_finite_with_one_photo_and_with_none,
    check_fresh_process_loads_with_trust_remote_code,
    check_generates_from_bos_with_the_papers_decoding,
    check_greedy_generate_matches_reference,
    check_left_padding_is_refused,
    check_logits_to_keep,
    check_loss_decreases,
    check_loss_is_token_mean_cross_entropy,
    check_padded_photos_are_ignored,
    check_save_and_reload_generate_the_same,
    images,
    one_torch_thread,  # noqa: F401  (an autouse fixture: importing it applies it here)
    tiny_batch,
)

from gest_showcases.baselines.configuration_r2gen import R2GenConfig
from gest_showcases.baselines.modeling_r2gen import (
    R2GenAttention,
    R2GenConditionalLayerNorm,
    R2GenForExplanation,
    R2GenRelationalMemory,
)


def _config(**overrides) -> R2GenConfig:
    settings = {
        "image_feature_dim": FEATURE_DIM, "hidden_size": 16, "ffn_dim": 32, "num_layers": 2,
        "num_attention_heads": 2, "memory_slots": 3, "memory_attention_heads": 2, "dropout": 0.0,
        "feature_dropout": 0.0,
    }  # fmt: skip
    return R2GenConfig(**SPECIAL_TOKENS | settings | overrides)


def _model(**overrides) -> R2GenForExplanation:
    torch.manual_seed(0)
    return R2GenForExplanation(_config(**overrides))


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def test_relational_memory_step_matches_a_hand_computed_update():
    """Width 2, 2 slots, 1 head; projections set so every term of the update is visible:
    attention projections identity, MLP identity (so MLP(y) = relu(y)), the input gate reads the token
    (W x = [x; 0]) and the forget gate the memory (U tanh(M) = [0; tanh(M)])."""
    memory_module = R2GenRelationalMemory(
        _config(hidden_size=2, memory_slots=2, memory_attention_heads=1, num_attention_heads=1)
    )
    eye, zero = torch.eye(2), torch.zeros(2, 2)
    with torch.no_grad():
        for layer in (memory_module.attention.q_proj, memory_module.attention.k_proj,
                      memory_module.attention.v_proj, memory_module.attention.out_proj,
                      memory_module.mlp[0], memory_module.mlp[2]):  # fmt: skip
            layer.weight.copy_(eye)
            layer.bias.zero_()
        memory_module.W.weight.copy_(torch.cat([eye, zero]))
        memory_module.U.weight.copy_(torch.cat([zero, eye]))
        memory_module.W.bias.zero_()
        memory_module.U.bias.zero_()
    token = [1.0, 2.0]
    initial = memory_module.initial_memory(1, torch.zeros(1, 2))
    assert torch.equal(initial, torch.eye(2).unsqueeze(0))  # M_0: the identity

    memory = [[1.0, 0.0], [0.0, 1.0]]
    keys = [*memory, token]  # [memory; token]
    expected = []
    for slot in memory:
        scores = [sum(q * k for q, k in zip(slot, key, strict=True)) / math.sqrt(2) for key in keys]
        weights = [math.exp(score) / sum(math.exp(s) for s in scores) for score in scores]
        attended = [sum(w * key[d] for w, key in zip(weights, keys, strict=True)) for d in range(2)]
        candidate = [slot[d] + attended[d] for d in range(2)]  # residual attention
        candidate = [value + max(value, 0.0) for value in candidate]  # residual MLP
        expected.append([
            _sigmoid(token[d]) * math.tanh(candidate[d]) + _sigmoid(math.tanh(slot[d])) * slot[d] for d in range(2)
        ])  # fmt: skip
    expected = torch.tensor([expected])  # [1, slots, D]
    step = memory_module.step(torch.tensor([token]), initial)
    torch.testing.assert_close(step, expected)
    # `forward` runs the same steps from M_0 and returns each M_t flattened.
    states = memory_module(torch.tensor([[token, [0.5, -1.0]]]))  # [1, 2, slots * D]
    torch.testing.assert_close(states[:, 0], expected.flatten(1))
    torch.testing.assert_close(states[:, 1], memory_module.step(torch.tensor([[0.5, -1.0]]), step).flatten(1))


def test_conditional_layer_norm_matches_a_hand_computed_value():
    """One slot of width 2: MLP_gamma(M) = relu(M), MLP_beta(M) = [0.5, -0.5]; x = [1, 3] has mean 2 and unbiased
    standard deviation sqrt(2)."""
    norm = R2GenConditionalLayerNorm(2, memory_slots=1, eps=1e-6)
    with torch.no_grad():
        for layer in (norm.mlp_gamma[0], norm.mlp_gamma[2], norm.mlp_beta[0]):
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
        norm.mlp_beta[2].weight.zero_()
        norm.mlp_beta[2].bias.copy_(torch.tensor([0.5, -0.5]))
    output = norm(torch.tensor([[[1.0, 3.0]]]), torch.tensor([[[0.5, -2.0]]]))
    scale = math.sqrt(2) + 1e-6
    expected = torch.tensor([[[(1 + 0.5) * -1 / scale + 0.5, (1 + 0.0) * 1 / scale - 0.5]]])
    torch.testing.assert_close(output, expected)


def test_loss_is_the_token_mean_cross_entropy_of_the_next_token():
    check_loss_is_token_mean_cross_entropy(_model().eval())


def test_loss_decreases_on_a_fixed_batch():
    first, last = check_loss_decreases(_model(dropout=0.1, feature_dropout=0.5))
    assert last < 0.5 * first, (first, last)


def test_padded_photos_do_not_change_the_logits():
    check_padded_photos_are_ignored(_model())


def test_a_token_changes_no_earlier_score():
    check_causal(_model())


def test_logits_to_keep_gives_the_last_positions():
    check_logits_to_keep(_model())


def test_one_photo_or_none_stays_finite():
    check_finite_with_one_photo_and_with_none(_model(dropout=0.1, feature_dropout=0.5))


def test_generate_starts_from_bos_with_the_papers_decoding():
    check_generates_from_bos_with_the_papers_decoding(_model())


def test_greedy_generate_matches_a_hand_rolled_loop():
    check_greedy_generate_matches_reference(_model())


def test_save_and_reload_give_identical_generations(tmp_path):
    files = ("configuration_r2gen.py", "modeling_r2gen.py", "generation_utils.py", "positions.py")
    check_save_and_reload_generate_the_same(_model(), R2GenForExplanation, tmp_path, files)


@pytest.mark.slow
def test_fresh_process_loads_with_trust_remote_code(tmp_path):
    check_fresh_process_loads_with_trust_remote_code(_model(), tmp_path)


def test_left_padding_is_refused():
    check_left_padding_is_refused(_model())


def test_precomputed_encoder_states_give_the_same_logits():
    model = _model().eval()
    batch = tiny_batch()
    states, mask = model.encode(**images(batch))
    text = {key: batch[key] for key in ("input_ids", "attention_mask")}
    torch.testing.assert_close(
        model(**text, encoder_hidden_states=states, encoder_attention_mask=mask).logits, model(**batch).logits
    )


def test_the_memory_conditions_every_decoder_layer_norm():
    """The relational memory reaches the decoder, through each of the three MCLNs of every layer: perturbing the
    memory's weights changes the logits, and so does zeroing any one MCLN's memory MLPs."""
    model = _model().eval()
    batch = tiny_batch()
    logits = model(**batch).logits
    with torch.no_grad():
        model.memory.U.weight.add_(1.0)
    assert not torch.allclose(model(**batch).logits, logits)
    model = _model().eval()
    for layer in model.decoder_layers:
        for norm in (layer.self_attn_norm, layer.cross_attn_norm, layer.ffn_norm):
            saved = {name: value.clone() for name, value in norm.state_dict().items()}
            with torch.no_grad():
                for mlp in (norm.mlp_gamma, norm.mlp_beta):
                    mlp[2].weight.zero_()
                    mlp[2].bias.zero_()
            assert not torch.allclose(model(**batch).logits, logits)
            norm.load_state_dict(saved)


def test_initialisation_follows_make_model():
    model = _model()
    norm = model.decoder_layers[0].self_attn_norm
    assert torch.equal(norm.mlp_gamma[0].bias.detach(), torch.full((16,), 0.1))
    assert torch.equal(norm.mlp_beta[2].bias.detach(), torch.full((16,), 0.1))
    assert torch.equal(model.memory.W.bias.detach(), torch.zeros(32))
    assert torch.equal(norm.weight.detach(), torch.ones(16))
    bound = math.sqrt(6 / (16 + 100))  # Xavier-uniform bound of the [100, 16] embedding
    assert model.embed_tokens.weight.abs().max() <= bound


def test_config_rejects_a_width_the_heads_do_not_divide():
    with pytest.raises(ValueError, match="divisible by memory_attention_heads"):
        _config(memory_attention_heads=3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_generate_starts_from_bos_in_half_precision_with_a_large_bos_id(dtype):
    """R2Gen's BOS prompt was made from its float encoder states: in bf16/fp16 GPT-2's id 50256 became 50176/50240."""
    bos = 50256
    model = R2GenForExplanation(_config(vocab_size=bos + 1, bos_token_id=bos, eos_token_id=bos, pad_token_id=bos))
    model = model.to(dtype).eval()
    inputs = images(tiny_batch(photos=(2, 1), lengths=(3, 3)))
    ids = model.generate(
        image_features=inputs["image_features"].to(dtype), image_mask=inputs["image_mask"], max_new_tokens=2,
        num_beams=1,
    )
    assert ids.dtype == torch.long
    assert ids[:, 0].tolist() == [bos, bos]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])  # autocast lowers float32, never float64
def test_a_query_with_no_key_averages_all_keys_under_bf16_autocast(dtype):
    """The documented no-NaN rule (R2Gen's `masked_fill(-1e9)`): a query with no key averages every key. Under autocast
    the float32 bias's lowest value became -inf in bf16 and the row drifted from the average. Oracle: the average of
    the projected values, through the output projection."""
    torch.manual_seed(0)
    attention = R2GenAttention(8, 2, 0.0).eval().to(dtype)
    query, key = torch.randn(2, 3, 8, dtype=dtype), torch.randn(2, 4, 8, dtype=dtype)
    mask = torch.ones(2, 1, 1, 4, dtype=torch.bool)
    mask[1] = False  # example 1 has no key
    average = attention.out_proj(attention.v_proj(key[1]).mean(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = attention(query, key, key, mask)
    assert torch.isfinite(output).all()
    torch.testing.assert_close(output[1].to(dtype), average.expand(3, -1), atol=0.02, rtol=0.02)
