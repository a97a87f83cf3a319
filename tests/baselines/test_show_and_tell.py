"""Show and Tell baseline: loss, masking, causality, decoding and save/reload on a tiny config."""

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

from gest_showcases.baselines.configuration_show_and_tell import ShowAndTellConfig
from gest_showcases.baselines.modeling_show_and_tell import ShowAndTellForExplanation


def _model(**overrides) -> ShowAndTellForExplanation:
    torch.manual_seed(0)
    settings = {"image_feature_dim": FEATURE_DIM, "embedding_size": 16, "hidden_size": 24, "dropout": 0.0}
    return ShowAndTellForExplanation(ShowAndTellConfig(**SPECIAL_TOKENS | settings | overrides))


def test_loss_is_the_token_mean_cross_entropy_of_the_next_token():
    check_loss_is_token_mean_cross_entropy(_model().eval())


def test_loss_decreases_on_a_fixed_batch():
    first, last = check_loss_decreases(_model(dropout=0.3))
    assert last < 0.5 * first, (first, last)


def test_padded_photos_do_not_change_the_logits():
    check_padded_photos_are_ignored(_model())


def test_a_token_changes_no_earlier_score():
    check_causal(_model())


def test_logits_to_keep_gives_the_last_positions():
    check_logits_to_keep(_model())


def test_one_photo_or_none_stays_finite():
    check_finite_with_one_photo_and_with_none(_model(dropout=0.3))


def test_generate_starts_from_bos_with_the_papers_decoding():
    check_generates_from_bos_with_the_papers_decoding(_model())


def test_greedy_generate_matches_a_hand_rolled_loop():
    check_greedy_generate_matches_reference(_model())


def test_save_and_reload_give_identical_generations(tmp_path):
    files = ("configuration_show_and_tell.py", "modeling_show_and_tell.py", "generation_utils.py")
    check_save_and_reload_generate_the_same(_model(), ShowAndTellForExplanation, tmp_path, files)


@pytest.mark.slow
def test_fresh_process_loads_with_trust_remote_code(tmp_path):
    check_fresh_process_loads_with_trust_remote_code(_model(), tmp_path)


def test_left_padding_is_refused():
    check_left_padding_is_refused(_model())


def test_the_image_is_the_first_lstm_step():
    """Oracle: the LSTM run by hand on [W_img mean(valid photos); embeddings], its first output dropped."""
    model = _model().eval()
    batch = tiny_batch()
    mask = batch["image_mask"].unsqueeze(-1).float()
    mean_photo = (batch["image_features"] * mask).sum(1) / mask.sum(1)  # [B, Dv]
    steps = torch.cat([(mean_photo @ model.image_embedding.weight.T).unsqueeze(1),
                       model.embed_tokens(batch["input_ids"])], dim=1)  # fmt: skip
    outputs, _ = model.lstm(steps)
    expected = outputs[:, 1:] @ model.lm_head.weight.T + model.lm_head.bias
    torch.testing.assert_close(model(**batch).logits, expected)


def test_initialisation_is_im2txt_uniform_with_forget_bias_one():
    model = _model()
    scale = model.config.initializer_scale
    for name, parameter in model.named_parameters():
        if name != "lstm.bias_hh_l0":
            assert parameter.abs().max() <= scale, name
    hidden = model.config.hidden_size
    expected_bias = torch.zeros(4 * hidden)
    expected_bias[hidden : 2 * hidden] = 1.0  # torch's gate order: input, forget, cell, output
    assert torch.equal(model.lstm.bias_hh_l0.detach(), expected_bias)


def test_generate_rejects_a_prompt_given_twice():
    model = _model().eval()
    bos = torch.full((3, 1), SPECIAL_TOKENS["bos_token_id"])
    with pytest.raises(ValueError, match="not both"):
        model.generate(bos, input_ids=bos, **images(tiny_batch()))
