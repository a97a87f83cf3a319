"""Calls a transformers user types on the Table 2 baselines (session 25's audit): `max_length`, a bf16 model on
fp32 features, `resize_token_embeddings`, and plain errors for ids an embedding cannot look up."""

from __future__ import annotations

import pytest
import torch

import gest_showcases as gs
from tiny_assets import assert_same_tuple

SPECIAL = {"vocab_size": 40, "bos_token_id": 39, "eos_token_id": 39, "pad_token_id": 39}
BATCH = 2


def _model(name: str):
    torch.manual_seed(0)
    if name == "st":
        return gs.ShowAndTellForExplanation(gs.ShowAndTellConfig(image_feature_dim=4, embedding_size=8, hidden_size=8,
                                                           **SPECIAL))  # fmt: skip
    if name == "r2gen":
        return gs.R2GenForExplanation(gs.R2GenConfig(image_feature_dim=4, hidden_size=8, ffn_dim=8, num_layers=1,
                                               num_attention_heads=2, memory_slots=1, memory_attention_heads=2,
                                               **SPECIAL))  # fmt: skip
    if name == "ref2seq":
        return gs.Ref2SeqForExplanation(gs.Ref2SeqConfig(hidden_size=8, num_layers=1, **SPECIAL))
    if name == "peter":
        return gs.PeterForExplanation(gs.PeterConfig(num_users=3, num_items=3, hidden_size=8, intermediate_size=8, **SPECIAL))
    decoder = {"n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 32, "vocab_size": 40, "bos_token_id": 39,
               "eos_token_id": 39}  # fmt: skip
    return gs.PeplerForExplanation(gs.PeplerConfig(decoder=decoder, num_users=3, num_items=3))


def _inputs(name: str) -> dict:
    generator = torch.Generator().manual_seed(1)
    if name in ("st", "r2gen"):
        return {"image_features": torch.randn(BATCH, 3, 4, generator=generator)}
    if name == "ref2seq":
        references = torch.randint(0, 39, (BATCH, 2, 5), generator=generator)  # [B, references, tokens]
        return {"user_reference_ids": references, "item_reference_ids": references.flip(1)}
    return {"user_ids": torch.tensor([1, 2]), "item_ids": torch.tensor([2, 0])}


NAMES = ["st", "r2gen", "ref2seq", "peter", "pepler"]


@pytest.mark.parametrize("name", NAMES)
def test_max_length_counts_over_the_saved_max_new_tokens(name):
    """A trained baseline's generation_config sets max_new_tokens=64; `generate(max_length=6)` gave 65 tokens."""
    model = _model(name).eval()
    model.generation_config.max_new_tokens = 64
    model.generation_config.min_new_tokens = None
    ids = model.generate(**_inputs(name), max_length=4, min_length=4, num_beams=1)
    assert ids.shape == (BATCH, 4)
    assert model.generate(**_inputs(name), max_new_tokens=3, min_new_tokens=3, num_beams=1).shape == (BATCH, 4)


@pytest.mark.parametrize("name", NAMES)
def test_a_bf16_baseline_reads_fp32_inputs(name):
    """ST and R2Gen failed with `mat1 and mat2 must have the same dtype` (PC2L casts; so do they now)."""
    model = _model(name).to(torch.bfloat16).eval()
    assert model.generate(**_inputs(name), max_new_tokens=2, num_beams=1).shape[0] == BATCH


def test_pepler_resizes_its_token_embeddings_and_reloads(tmp_path):
    model = _model("pepler")
    model.resize_token_embeddings(48)  # AttributeError: no `lm_head` before set_output_embeddings
    assert model.get_output_embeddings().weight.shape[0] == 48 == model.config.decoder.vocab_size
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # still tied
    model.save_pretrained(tmp_path)
    reloaded = gs.PeplerForExplanation.from_pretrained(tmp_path)
    torch.testing.assert_close(reloaded.get_output_embeddings().weight, model.get_output_embeddings().weight)


@pytest.mark.parametrize("name", ["peter", "pepler"])
@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ({"user_ids": torch.tensor([3, 1])}, r"user_ids must lie in \[0, 3\) .* got 1..3"),
        ({"item_ids": torch.tensor([-1, 1])}, r"item_ids must lie in \[0, 3\)"),
        ({"user_ids": torch.tensor([1.0, 2.0])}, "user_ids must be a 1-D integer tensor .* torch.float32"),
        ({"user_ids": torch.tensor([[1], [2]])}, "user_ids must be a 1-D integer tensor"),
        ({"item_ids": torch.tensor([1, 2, 0])}, r"user_ids \(2,\) and item_ids \(3,\): give one of each"),
    ],
    ids=["user-out-of-range", "negative-item", "float-ids", "2-D-ids", "different-batches"],
)
def test_ids_an_embedding_cannot_look_up_are_a_plain_error(name, ids, message):
    with pytest.raises(ValueError, match=message):
        _model(name).eval().generate(**(_inputs(name) | ids), max_new_tokens=2, num_beams=1)


@pytest.mark.parametrize("name", NAMES)
def test_hidden_states_or_attentions_asked_of_a_baseline_are_refused(name):
    """Session 26's audit: ST, R2Gen, Ref2Seq and PEPLER answered `output_hidden_states=True` with None (in `generate`
    too) and PETER failed with an AttributeError inside `generate`."""
    model = _model(name).eval()
    ids = torch.full((BATCH, 3), 5)
    for flag in ("output_hidden_states", "output_attentions"):
        with pytest.raises(ValueError, match=f"returns logits only: it has no {flag}"):
            model(input_ids=ids, **_inputs(name), **{flag: True})
        with pytest.raises(ValueError, match=f"returns logits only: it has no {flag}"):
            model.generate(**_inputs(name), max_new_tokens=2, return_dict_in_generate=True, **{flag: True})
    assert model.generate(**_inputs(name), max_new_tokens=2, return_dict_in_generate=True).sequences.shape[0] == BATCH


@pytest.mark.parametrize("name", NAMES)
def test_return_dict_false_in_the_call_or_the_config_gives_a_tuple(name):
    """PETER, PEPLER and Ref2Seq ignored `config.return_dict=False`. Oracle: the output's own `to_tuple()`."""
    model = _model(name).eval()
    ids = torch.full((BATCH, 3), 5)
    with torch.no_grad():
        expected = model(input_ids=ids, labels=ids, **_inputs(name)).to_tuple()
        outputs = [model(input_ids=ids, labels=ids, **_inputs(name), return_dict=False)]
        model.config.return_dict = False
        outputs.append(model(input_ids=ids, labels=ids, **_inputs(name)))
    for output in outputs:
        assert_same_tuple(output, expected)


@pytest.mark.parametrize("name", NAMES)
def test_a_generation_config_decodes_without_a_deprecation_warning(name):
    """Session 26's audit: every `generate(generation_config=...)` warned that passing a config with other settings
    is deprecated (the baselines added `use_cache=False` to the call); the caller's config is left as given."""
    import io
    import logging

    from transformers import GenerationConfig
    from transformers.utils import logging as hf_logging
    from transformers.utils.logging import warning_once

    model = _model(name).eval()
    config = GenerationConfig(max_new_tokens=3, min_new_tokens=3, num_beams=1, bos_token_id=39, eos_token_id=39,
                              pad_token_id=39)  # fmt: skip
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    hf_logging.get_logger("transformers").addHandler(handler)
    try:
        warning_once.cache_clear()  # transformers says it once per process: here, whatever ran before
        ids = model.generate(**_inputs(name), generation_config=config)
    finally:
        hf_logging.get_logger("transformers").removeHandler(handler)
    assert "deprecated" not in stream.getvalue()
    assert ids.shape == (BATCH, 4) and config.use_cache is None


@pytest.mark.parametrize("name", NAMES)
def test_max_length_counts_with_a_generation_config_too(name):
    """Session 26's review: with the length moved onto the config's copy, transformers refilled it from the model's
    max_new_tokens (64) and `generate(generation_config=cfg, max_length=4)` gave 65 tokens."""
    from transformers import GenerationConfig

    model = _model(name).eval()
    model.generation_config.max_new_tokens = 64
    config = GenerationConfig(num_beams=1, min_length=4, bos_token_id=39, eos_token_id=39, pad_token_id=39)
    assert model.generate(**_inputs(name), generation_config=config, max_length=4).shape == (BATCH, 4)


@pytest.mark.parametrize("name", NAMES)
def test_the_generators_trainer_reads_the_loss_whatever_config_return_dict_says(name, tmp_path):
    """Session 26's review: with `config.return_dict=False` (honoured since this session) the trainer's
    `outputs.loss` failed on the tuple."""
    from transformers import TrainingArguments

    from gest_showcases.generation.trainer import GeneratorTrainer

    model = _model(name).eval()  # no dropout: the oracle below is the same computation
    model.config.return_dict = False
    trainer = GeneratorTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[]))
    ids = torch.full((BATCH, 3), 5)
    loss = trainer.compute_loss(model, {"input_ids": ids, "labels": ids, **_inputs(name)})
    model.config.return_dict = True
    torch.testing.assert_close(loss, model(input_ids=ids, labels=ids, **_inputs(name)).loss)
