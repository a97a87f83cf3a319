"""PC2L as transformers users call it: `generate` with `input_ids=` / `inputs=` / neither and masks left out, the
paper's decoding saved in `generation_config.json`, and activation checkpointing."""

import json
import logging

import pytest
import torch
from pc2l_fixtures import FEATURE_DIM, build_tokenizer, synthetic_examples, tiny_config
from transformers import AutoModel

from gest_showcases.generation import PC2LCollator, PC2LForConditionalGeneration


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def _features(batch_size=2, images=3, reviews=2):
    generator = torch.Generator().manual_seed(1)
    return (
        torch.randn(batch_size, images, FEATURE_DIM, generator=generator),
        torch.randn(batch_size, reviews, FEATURE_DIM, generator=generator),
    )


def test_generate_takes_the_prompt_as_input_ids_inputs_or_neither(tokenizer):
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(tiny_config(tokenizer)).eval()
    images, reviews = _features()
    masks = {
        "image_mask": torch.ones(2, 3, dtype=torch.bool),
        "review_mask": torch.ones(2, 2, dtype=torch.bool),
    }
    bos = torch.full((2, 1), tokenizer.bos_token_id)
    settings = {"num_beams": 2, "max_new_tokens": 6}
    # Oracle: the call with every argument explicit (BOS prompt and its mask, all-true feature masks).
    expected = model.generate(bos, attention_mask=torch.ones_like(bos), image_features=images,
                              review_features=reviews, **masks, **settings)  # fmt: skip
    calls = {
        "input_ids": model.generate(
            input_ids=bos, image_features=images, review_features=reviews, **settings
        ),
        "inputs": model.generate(inputs=bos, image_features=images, review_features=reviews, **settings),
        "neither": model.generate(image_features=images, review_features=reviews, **settings),
    }
    for name, ids in calls.items():
        assert torch.equal(ids, expected), name
    with pytest.raises(ValueError, match="not both"):
        model.generate(bos, input_ids=bos, image_features=images, review_features=reviews)


def test_omitted_masks_mean_every_input_is_real(tokenizer):
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(tiny_config(tokenizer)).eval()
    images, reviews = _features()
    states, mask = model.encode(images, None, reviews, None)
    expected_states, expected_mask = model.encode(
        images, torch.ones(2, 3, dtype=torch.bool), reviews, torch.ones(2, 2, dtype=torch.bool)
    )
    torch.testing.assert_close(states, expected_states)
    assert mask.dtype == torch.bool and torch.equal(mask, expected_mask)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_saved_generation_config_is_the_papers_decoding(tokenizer, tmp_path, recwarn):
    # GPT-2 has no pad token, and a decoder saved from training says use_cache=False (the Trainer sets it).
    config = tiny_config(tokenizer, decoder={"pad_token_id": None, "use_cache": False})
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(config)
    model.config.use_cache = False  # what `Trainer` sets on the model it trains
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert {key: saved.get(key) for key in ("num_beams", "max_new_tokens", "use_cache", "pad_token_id")} == {
        "num_beams": 2, "max_new_tokens": 64, "use_cache": True, "pad_token_id": tokenizer.eos_token_id,
    }  # fmt: skip

    loaded = AutoModel.from_pretrained(tmp_path).eval()
    images, reviews = _features()
    records = _Records()
    logging.getLogger("transformers").addHandler(records)
    try:
        plain = loaded.generate(image_features=images, review_features=reviews)
    finally:
        logging.getLogger("transformers").removeHandler(records)
    assert records.messages == [] and not [w for w in recwarn if "generat" in str(w.message).lower()]
    # Oracle: the same decoding spelled out.
    explicit = loaded.generate(image_features=images, review_features=reviews, num_beams=2, max_new_tokens=64,
                               use_cache=True, pad_token_id=tokenizer.eos_token_id)  # fmt: skip
    assert torch.equal(plain, explicit)


def test_activation_checkpointing_gives_the_same_loss_and_gradients(tokenizer):
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(tiny_config(tokenizer)).train()  # dropout 0 in the tiny config
    batch = PC2LCollator(tokenizer, max_length=32)(synthetic_examples(4))

    def loss_and_grads():
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        return loss.detach(), {
            name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None
        }

    loss, grads = loss_and_grads()
    model.activation_checkpointing_enable()
    checkpointed = []
    for module in model.modules():
        if getattr(module, "gradient_checkpointing", False):
            inner, layer = module._gradient_checkpointing_func, type(module).__name__

            def counting(*args, _inner=inner, _layer=layer, **kwargs):
                checkpointed.append(_layer)
                return _inner(*args, **kwargs)

            module._gradient_checkpointing_func = counting
    checkpointed_loss, checkpointed_grads = loss_and_grads()
    # Both the encoder's and the decoder's layers were checkpointed, every layer once per forward pass.
    assert sorted(checkpointed) == ["GPT2Block"] * 2 + ["PC2LEncoderLayer"] * 2
    torch.testing.assert_close(checkpointed_loss, loss, rtol=0, atol=1e-6)
    assert checkpointed_grads.keys() == grads.keys() and len(grads) > 20
    for name, grad in grads.items():
        torch.testing.assert_close(checkpointed_grads[name], grad, rtol=1e-5, atol=1e-6, msg=name)
