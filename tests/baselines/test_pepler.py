"""PEPLER baseline: GPT-2 from a local checkpoint, the prompts, loss, unknown ids, padding, decoding, save/reload."""

import pytest
import torch
from image_baseline_fixtures import (
    SPECIAL_TOKENS,
    VOCAB_SIZE,
    one_torch_thread,  # noqa: F401  (an autouse fixture: importing it applies it here)
)
from text_baseline_fixtures import (
    SPECIAL,
    check_generates_from_bos_with_the_papers_decoding,
    check_greedy_generate_matches_reference,
    check_loss_decreases,
    check_save_and_reload_generate_the_same,
    id_inputs,
    reference_cross_entropy,
    text_batch,
)
from transformers import GPT2Config, GPT2LMHeadModel

from gest_showcases.baselines.configuration_pepler import PeplerConfig
from gest_showcases.baselines.modeling_pepler import PeplerForExplanation


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory) -> str:
    """A tiny randomly initialised GPT-2 saved locally (the world's stand-in for `gpt2`); 2 prompts + BOS + 64 new
    tokens fit its positions. Initialised with std 0.5: at GPT-2's 0.02 a model this small writes the same words
    whatever its prompts, and the generation tests could not tell one user from another."""
    torch.manual_seed(0)
    config = GPT2Config(
        n_embd=16, n_layer=2, n_head=2, n_positions=80, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        initializer_range=0.5, vocab_size=VOCAB_SIZE, bos_token_id=SPECIAL, eos_token_id=SPECIAL,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("gpt2")
    gpt2 = GPT2LMHeadModel(config)
    # With tied embeddings a random GPT-2 scores the token it reads highest, so from BOS it would end at once; a zero
    # BOS/EOS embedding (logit 0) lets it write words.
    gpt2.transformer.wte.weight.data[SPECIAL] = 0.0
    gpt2.save_pretrained(folder)
    return str(folder)


def _model(gpt2_folder: str, **overrides) -> PeplerForExplanation:
    torch.manual_seed(0)
    settings = {"unknown_id_probability": 0.0} | overrides
    return PeplerForExplanation.from_decoder_pretrained(gpt2_folder, num_users=4, num_items=3, **settings)


def _batch() -> dict:
    return text_batch() | id_inputs()


def test_the_decoder_starts_from_the_checkpoint(gpt2_folder):
    model = _model(gpt2_folder)
    gpt2 = GPT2LMHeadModel.from_pretrained(gpt2_folder)
    decoder_state = model.decoder.state_dict()
    for name, value in gpt2.state_dict().items():
        torch.testing.assert_close(decoder_state[name], value)
    assert model.decoder.lm_head.weight.data_ptr() == model.decoder.transformer.wte.weight.data_ptr()
    assert model.generation_config.bos_token_id == SPECIAL and model.generation_config.pad_token_id == SPECIAL


def test_the_token_settings_of_the_shared_command_set_the_decoders():
    config = PeplerConfig(decoder={"n_embd": 16, "n_layer": 1, "n_head": 2}, num_users=2, **SPECIAL_TOKENS)
    assert config.decoder.vocab_size == VOCAB_SIZE
    assert (
        config.decoder.bos_token_id == config.decoder.eos_token_id == config.decoder.pad_token_id == SPECIAL
    )


def test_logits_are_gpt2_on_the_two_prompts_then_the_words(gpt2_folder):
    """Oracle: GPT-2 run by hand on `[user embedding, item embedding, word embeddings]`, the prompts' scores
    dropped."""
    model = _model(gpt2_folder).eval()
    batch = _batch()
    embeds = torch.cat([
        model.id_embeddings.users(batch["user_ids"])[:, None], model.id_embeddings.items(batch["item_ids"])[:, None],
        model.decoder.transformer.wte(batch["input_ids"]),
    ], dim=1)  # fmt: skip
    mask = torch.cat([torch.ones(3, 2, dtype=torch.long), batch["attention_mask"]], dim=1)
    expected = model.decoder(inputs_embeds=embeds, attention_mask=mask).logits[:, 2:]
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(model(**batch).logits[real], expected[real])


def test_loss_is_the_token_mean_cross_entropy_of_the_next_token(gpt2_folder):
    model = _model(gpt2_folder).eval()
    batch = _batch()
    output = model(**batch)
    assert torch.isfinite(output.loss)
    torch.testing.assert_close(output.loss.double(), reference_cross_entropy(output.logits, batch["labels"]))


def test_loss_decreases_on_a_fixed_batch(gpt2_folder):
    first, last = check_loss_decreases(_model(gpt2_folder, unknown_id_probability=0.1), _batch())
    assert last < 0.5 * first, (first, last)


def test_the_prompts_condition_the_text_and_padded_words_do_not(gpt2_folder):
    model = _model(gpt2_folder).eval()
    batch = _batch()
    logits = model(**batch).logits
    mask = batch["attention_mask"].bool()
    noisy = batch | {
        "input_ids": torch.where(mask, batch["input_ids"], torch.randint(0, SPECIAL, mask.shape))
    }
    assert not torch.equal(noisy["input_ids"], batch["input_ids"])
    torch.testing.assert_close(model(**noisy).logits[mask], logits[mask])
    other_user = batch | {"user_ids": torch.tensor([2, 0, 1])}
    assert not torch.allclose(model(**other_user).logits[0], logits[0])


def test_unknown_ids_give_finite_logits_and_generations(gpt2_folder):
    model = _model(gpt2_folder).eval()
    unknown = {"user_ids": torch.zeros(3, dtype=torch.long), "item_ids": torch.zeros(3, dtype=torch.long)}
    assert torch.isfinite(model(**text_batch() | unknown).logits).all()
    ids = model.generate(**unknown, max_new_tokens=8)
    assert ids.shape[0] == 3 and (ids[:, 0] == SPECIAL).all()


def test_training_sees_the_unknown_id_embedding_when_ids_are_forgotten(gpt2_folder):
    model = _model(gpt2_folder, unknown_id_probability=1.0)
    batch = _batch()
    unknown = {"user_ids": torch.zeros(3, dtype=torch.long), "item_ids": torch.zeros(3, dtype=torch.long)}
    # GPT-2's dropouts are 0 here, so train and eval differ only by the forgotten ids.
    torch.testing.assert_close(model.train()(**batch).logits, model.eval()(**batch | unknown).logits)


def test_generate_starts_from_bos_with_the_papers_decoding(gpt2_folder):
    check_generates_from_bos_with_the_papers_decoding(_model(gpt2_folder), id_inputs())


def test_greedy_generate_matches_a_hand_rolled_loop(gpt2_folder):
    check_greedy_generate_matches_reference(_model(gpt2_folder), id_inputs())


def test_save_and_reload_give_identical_generations(gpt2_folder, tmp_path):
    files = ("configuration_pepler.py", "modeling_pepler.py", "generation_utils.py", "id_embeddings.py")
    check_save_and_reload_generate_the_same(
        _model(gpt2_folder), PeplerForExplanation, tmp_path, id_inputs(), files
    )
