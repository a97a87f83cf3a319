"""`contrastive_target="text"`: H^Y of the contrastive losses depends on the target text only; the LM loss is unchanged."""

import pytest
import torch
from pc2l_fixtures import build_tokenizer, synthetic_examples, tiny_config

from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.generation.collator import PC2LCollator


def _batch(tokenizer, seed):
    return PC2LCollator(tokenizer, with_negatives=True)(synthetic_examples(4, seed=seed))


@pytest.mark.parametrize("target", ["decoder", "text"])
def test_target_embeddings_depend_on_the_inputs_only_in_decoder_mode(target):
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(tiny_config(tokenizer, contrastive_target=target)).eval()
    batch = _batch(tokenizer, seed=0)
    other = _batch(tokenizer, seed=1)  # same targets (CORPUS order), other features
    swapped = dict(batch) | {
        key: other[key] for key in ("image_features", "image_mask", "review_features", "review_mask")
    }
    with torch.no_grad():
        own, moved = model(**batch), model(**swapped)
    for name in ("target_embeds", "negative_embeds"):
        same = torch.allclose(getattr(own, name), getattr(moved, name), atol=1e-6)
        assert same == (target == "text"), name
    assert not torch.allclose(own.image_embeds, moved.image_embeds)  # the input side still sees the inputs


def test_text_target_keeps_the_lm_loss_and_logits_of_the_paper_mode():
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    paper = PC2LForConditionalGeneration(tiny_config(tokenizer)).eval()
    text = PC2LForConditionalGeneration(tiny_config(tokenizer, contrastive_target="text")).eval()
    text.load_state_dict(paper.state_dict())
    batch = _batch(tokenizer, seed=2)
    with torch.no_grad():
        a, b = paper(**batch), text(**batch)
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.loss, b.loss)
    torch.testing.assert_close(a.image_embeds, b.image_embeds)
    # Text-only H^Y: the decoder run on the targets without encoder states.
    with torch.no_grad():
        states = text.decoder.transformer(
            batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
    torch.testing.assert_close(b.target_embeds, text.target_head(states, batch["attention_mask"]))


def test_unknown_contrastive_target_is_refused():
    with pytest.raises(ValueError, match="contrastive_target"):
        PC2LConfig(contrastive_target="encoder")
