"""Ref2Seq baseline: the reference encoders' pooling, attention, loss, masking, decoding and save/reload."""

import pytest
import torch
from image_baseline_fixtures import (
    SPECIAL_TOKENS,
    one_torch_thread,  # noqa: F401  (an autouse fixture: importing it applies it here)
)
from text_baseline_fixtures import (
    ITEM_REFERENCES,
    USER_REFERENCES,
    check_generates_from_bos_with_the_papers_decoding,
    check_greedy_generate_matches_reference,
    check_loss_decreases,
    check_save_and_reload_generate_the_same,
    reference_cross_entropy,
    reference_inputs,
    text_batch,
)

from gest_showcases.baselines.configuration_ref2seq import Ref2SeqConfig
from gest_showcases.baselines.modeling_ref2seq import Ref2SeqForExplanation


def _model(**overrides) -> Ref2SeqForExplanation:
    torch.manual_seed(0)
    settings = {"hidden_size": 16, "num_layers": 2, "encoder_dropout": 0.0, "decoder_dropout": 0.0}
    return Ref2SeqForExplanation(Ref2SeqConfig(**SPECIAL_TOKENS | settings | overrides))


def _batch() -> dict:
    return text_batch() | reference_inputs()


def _pooled_by_hand(
    gru, embedded: torch.Tensor, lengths: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each reference of one example through `gru` on its own (no packing, no padding), directions summed, then the
    max over the references with a token at each position: (states [L, H], final states [layers, H]); zeros where
    no reference reaches."""
    length, width = embedded.shape[1], gru.hidden_size
    states = torch.full((length, width), -torch.inf)
    finals = torch.full((gru.num_layers, width), -torch.inf)
    for slot, size in enumerate(lengths):
        outputs, last = gru(embedded[slot, :size][None])  # [1, size, 2H], [2 * layers, 1, H]
        states[:size] = torch.maximum(states[:size], outputs[0, :, :width] + outputs[0, :, width:])
        finals = torch.maximum(finals, last.view(gru.num_layers, 2, width).sum(1))
    return states.nan_to_num(neginf=0.0), finals.nan_to_num(neginf=0.0)


def test_pooled_states_are_the_max_over_each_reference_encoded_alone():
    model = _model().eval()
    inputs = reference_inputs()
    encoded = model.encode(**inputs)
    for row, (user_lengths, item_lengths) in enumerate(zip(USER_REFERENCES, ITEM_REFERENCES, strict=True)):
        initial = 0.0
        for side, encoder, lengths in (("user", model.user_encoder, user_lengths),
                                       ("item", model.item_encoder, item_lengths)):  # fmt: skip
            embedded = model.embeddings(inputs[f"{side}_reference_ids"][row])
            states, finals = _pooled_by_hand(encoder.gru, embedded, lengths)
            torch.testing.assert_close(encoded[f"{side}_states"][row], states)
            expected_mask = inputs[f"{side}_reference_mask"][row].bool().any(0)
            assert torch.equal(encoded[f"{side}_states_mask"][row], expected_mask)
            initial = initial + finals
        torch.testing.assert_close(encoded["initial_hidden_state"][row], initial)  # [layers, H]


def test_attention_is_luong_general_over_the_unmasked_positions_and_zero_without_any():
    model = _model().eval()
    queries, states = torch.randn(2, 3, 16), torch.randn(2, 4, 16)
    mask = torch.tensor([[True, False, True, True], [False, False, False, False]])
    context = model.decoder.attend(queries, states, mask)
    scores = queries[0] @ model.decoder.attention.weight @ states[0, [0, 2, 3]].T  # h^T W_a e_j, [3, 3]
    torch.testing.assert_close(context[0], scores.softmax(-1) @ states[0, [0, 2, 3]])
    assert torch.equal(context[1], torch.zeros(3, 16))


def test_logits_read_the_gru_state_and_both_attention_contexts():
    """Oracle: `W_o tanh(W_c [h_t; c_user; c_item])`, `h_t` the decoder GRU from the encoders' initial state, each
    context a softmax of `h_t^T W_a e_j` over that side's pooled positions, zero for a side with none."""
    model = _model().eval()
    batch = _batch()
    encoded = model.encode(**reference_inputs())
    initial = encoded["initial_hidden_state"].transpose(0, 1).contiguous()  # [layers, B, H]
    outputs, _ = model.decoder.gru(model.embeddings(batch["input_ids"]), initial)  # [B, T, H]
    contexts = []
    for side in ("user", "item"):
        states, mask = encoded[f"{side}_states"], encoded[f"{side}_states_mask"]
        context = torch.zeros_like(outputs)
        for row in range(3):
            if mask[row].any():
                valid = states[row, mask[row]]  # [n, H]
                context[row] = (outputs[row] @ model.decoder.attention.weight @ valid.T).softmax(-1) @ valid
        contexts.append(context)
    expected = model.lm_head(torch.tanh(model.decoder.combine(torch.cat([outputs, *contexts], dim=-1))))
    torch.testing.assert_close(model(**batch).logits, expected)


def test_loss_is_the_token_mean_cross_entropy_of_the_next_token():
    model = _model().eval()
    batch = _batch()
    output = model(**batch)
    assert torch.isfinite(output.loss)
    torch.testing.assert_close(output.loss.double(), reference_cross_entropy(output.logits, batch["labels"]))


def test_loss_decreases_on_a_fixed_batch():
    first, last = check_loss_decreases(_model(encoder_dropout=0.3, decoder_dropout=0.2), _batch())
    assert last < 0.5 * first, (first, last)


def test_padding_and_missing_references_do_not_change_the_logits():
    """Any token under a zero mask (padding, missing reference slots, the reference-less example) is ignored; a real
    reference token is not."""
    model = _model().eval()
    batch = _batch()
    logits = model(**batch).logits
    noisy = dict(batch)
    for side in ("user", "item"):
        ids, mask = batch[f"{side}_reference_ids"], batch[f"{side}_reference_mask"].bool()
        noise = torch.randint(0, 99, ids.shape, generator=torch.Generator().manual_seed(1))
        noisy[f"{side}_reference_ids"] = torch.where(mask, ids, noise)
        assert not torch.equal(noisy[f"{side}_reference_ids"], ids)
    torch.testing.assert_close(model(**noisy).logits, logits)
    for side in ("user", "item"):
        real = batch | {f"{side}_reference_ids": batch[f"{side}_reference_ids"].clone()}
        real[f"{side}_reference_ids"][0, 0, 0] = (real[f"{side}_reference_ids"][0, 0, 0] + 1) % 99
        assert not torch.allclose(model(**real).logits[0], logits[0]), side


def test_an_example_without_references_gives_finite_logits_and_gradients():
    model = _model(encoder_dropout=0.3, decoder_dropout=0.2).train()
    batch = _batch()
    assert not batch["user_reference_mask"][1].any() and not batch["item_reference_mask"][1].any()
    output = model(**batch)
    assert torch.isfinite(output.logits).all()
    output.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_a_token_changes_no_earlier_score():
    model = _model().eval()
    batch = _batch()
    logits = model(**batch).logits
    changed = batch | {"input_ids": batch["input_ids"].clone()}
    changed["input_ids"][0, 3] = (changed["input_ids"][0, 3] + 1) % 99
    changed_logits = model(**changed).logits
    torch.testing.assert_close(changed_logits[0, :3], logits[0, :3])
    assert not torch.allclose(changed_logits[0, 3:], logits[0, 3:])


def test_generate_starts_from_bos_with_the_papers_decoding():
    check_generates_from_bos_with_the_papers_decoding(_model(), reference_inputs())


def test_greedy_generate_matches_a_hand_rolled_loop():
    check_greedy_generate_matches_reference(_model(), reference_inputs())


def test_save_and_reload_give_identical_generations(tmp_path):
    files = ("configuration_ref2seq.py", "modeling_ref2seq.py", "generation_utils.py")
    check_save_and_reload_generate_the_same(
        _model(), Ref2SeqForExplanation, tmp_path, reference_inputs(), files
    )


def test_left_padding_is_refused():
    model = _model()
    batch = _batch()
    with pytest.raises(ValueError, match="right-padded"):
        model(**batch | {"attention_mask": batch["attention_mask"].flip(1)})
    with pytest.raises(ValueError, match="right-padded"):
        model(**batch | {"user_reference_mask": batch["user_reference_mask"].flip(-1)})


class _HalfPrecisionGRU(torch.nn.Module):
    """A GRU that returns bfloat16, as cuDNN's does under CUDA autocast (CPU autocast leaves GRUs in float32)."""

    def __init__(self, gru: torch.nn.GRU):
        super().__init__()
        self.gru = gru

    def forward(self, packed, *args):
        outputs, last = self.gru(packed, *args)
        return outputs._replace(data=outputs.data.to(torch.bfloat16)), last.to(torch.bfloat16)


def test_reference_encoders_take_a_half_precision_gru():
    """The H200 run of the GPU suite failed here: the pooled buffers (the embeddings' float32) took the GRU's half
    precision outputs in an indexed write. Oracle: the same model with its float32 GRU, to bfloat16's precision."""
    model = _model().eval()
    inputs = reference_inputs()
    expected = model.encode(**inputs)
    for encoder in (model.user_encoder, model.item_encoder):
        encoder.gru = _HalfPrecisionGRU(encoder.gru)
    encoded = model.encode(**inputs)
    assert encoded.keys() == expected.keys()
    for name, value in expected.items():
        if torch.is_tensor(value) and value.is_floating_point():
            assert encoded[name].dtype == value.dtype
            torch.testing.assert_close(encoded[name], value, atol=0.05, rtol=0.02)
