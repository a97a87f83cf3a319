"""With `_negative_prefix_sharing` on, GPT-2 computes each hard negative only from its first swapped token on
(`_negative_suffix_states`).

Oracle: the same model with `_negative_prefix_sharing = False` (the default), which runs every negative through
the decoder in full, batched with the targets. Losses, the negatives' embeddings and
log-likelihoods, and every parameter's gradient must agree to 1e-5.
"""

import pytest
import torch
from pc2l_fixtures import FEATURE_DIM, build_tokenizer, tiny_config

from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.generation.losses import total_loss

LENGTH = 12


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def _batch(vocab_size: int, pad: int) -> dict[str, torch.Tensor]:
    """Six examples whose negatives first differ at 0, 1, 3, 7, never (identical) and 5 (with padding).

    Rows 0-4 are full length; row 5's target has 8 tokens and its negative 10 (a longer entity), both right-padded.
    """
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(2, vocab_size, (6, LENGTH), generator=generator)
    mask = torch.ones_like(ids)
    negatives = ids.clone()
    for row, start in enumerate((0, 1, 3, 7)):
        negatives[row, start : start + 2] = (ids[row, start : start + 2] + 1) % vocab_size  # a two-token swap
    negative_mask = mask.clone()
    mask[5, 8:], ids[5, 8:] = 0, pad
    negatives[5, 5:10] = torch.randint(2, vocab_size, (5,), generator=generator)
    negatives[5, 5] = (ids[5, 5] + 1) % vocab_size  # first difference at 5 for sure
    negative_mask[5, 10:], negatives[5, 10:] = 0, pad
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": ids.masked_fill(mask == 0, -100),
        "negative_input_ids": negatives,
        "negative_attention_mask": negative_mask,
        "image_features": torch.randn(6, 3, FEATURE_DIM, generator=generator),
        "image_mask": torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 1, 1], [1, 1, 1]]).bool(),
        "review_features": torch.randn(6, 2, FEATURE_DIM, generator=generator),
        "review_mask": torch.tensor([[1, 1], [1, 0], [0, 0], [1, 1], [1, 1], [0, 1]]).bool(),
    }


def _step(model, batch, share: bool):
    """Loss parts, the negatives' outputs, every parameter gradient of one forward + backward, and how many tokens
    the decoder embedded."""
    model._negative_prefix_sharing = share
    model.zero_grad(set_to_none=True)
    embedded = []
    hook = model.decoder.transformer.wte.register_forward_hook(lambda module, args, out: embedded.append(args[0]))
    try:
        outputs = model(**batch)
    finally:
        hook.remove()
    loss, parts = total_loss(model.config, outputs, batch)
    loss.backward()
    negatives = {
        key: outputs[key].detach() for key in ("negative_embeds", "negative_log_likelihood") if key in outputs
    }
    gradients = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
    parts = {name: part.detach() for name, part in parts.items()}
    return parts, negatives, gradients, sum(ids.numel() for ids in embedded)


def _assert_equal_to_full_pass(model, batch):
    parts, negatives, gradients, tokens = _step(model, batch, share=True)
    full_parts, full_negatives, full_gradients, full_tokens = _step(model, batch, share=False)
    assert tokens < full_tokens  # the shared path ran (the reference embeds every negative in full)
    assert parts.keys() == full_parts.keys() and "loss_ccl" in parts
    for name in full_parts:
        torch.testing.assert_close(parts[name], full_parts[name], atol=1e-5, rtol=1e-5, msg=name)
    assert negatives.keys() == full_negatives.keys() and negatives
    for name in full_negatives:
        torch.testing.assert_close(negatives[name], full_negatives[name], atol=1e-5, rtol=1e-5, msg=name)
    assert gradients.keys() == full_gradients.keys()
    for name in full_gradients:
        torch.testing.assert_close(gradients[name], full_gradients[name], atol=1e-5, rtol=1e-5, msg=name)


def _model(tokenizer, **overrides):
    torch.manual_seed(0)
    config = tiny_config(tokenizer, image_contrastive="ccl", review_contrastive="pcl", **overrides)
    model = PC2LForConditionalGeneration(config).eval()  # dropout off: both paths see the same network
    model._negative_prefix_sharing = True
    return model


@pytest.mark.parametrize("pack_tokens", [1024, 2 * LENGTH], ids=["one-row", "rows-of-two"])
def test_shared_prefix_equals_the_full_negative_pass(tokenizer, pack_tokens):
    """Swaps at 0, 1, 3, 7, none, and a padded pair; all suffixes in one packed row, or in rows of two examples
    (the last row with one member slot unused)."""
    model = _model(tokenizer)
    model._negative_pack_tokens = pack_tokens
    _assert_equal_to_full_pass(model, _batch(len(tokenizer), tokenizer.eos_token_id))


def test_shared_prefix_equals_the_full_pass_with_likelihood_scores_and_eager_attention(tokenizer):
    """The negatives' log-likelihoods read the reassembled states through the LM head; eager attention gets its
    masks additive."""
    model = _model(tokenizer, contrastive_score="likelihood")
    model.decoder.config._attn_implementation = "eager"
    _assert_equal_to_full_pass(model, _batch(len(tokenizer), tokenizer.eos_token_id))


def test_only_the_suffixes_run_through_the_decoder(tokenizer):
    """The second decoder call embeds exactly the tokens from each negative's first difference to its end."""
    model = _model(tokenizer)
    batch = _batch(len(tokenizer), tokenizer.eos_token_id)
    embedded = []
    hook = model.decoder.transformer.wte.register_forward_hook(lambda module, args, out: embedded.append(args[0]))
    try:
        with torch.no_grad():
            model(**batch)
    finally:
        hook.remove()
    targets, suffixes = embedded
    assert targets.shape == (6, LENGTH)  # the targets alone: the negatives left the batched call
    # suffix lengths 12, 11, 9, 5, 0 and 10 - 5: one packed row, no padding
    assert suffixes.shape == (1, 12 + 11 + 9 + 5 + 0 + 5)
    expected = torch.cat([batch["negative_input_ids"][row, start:end] for row, start, end in
                          ((0, 0, 12), (1, 1, 12), (2, 3, 12), (3, 7, 12), (5, 5, 10))])  # fmt: skip
    assert torch.equal(suffixes[0], expected)


def test_identical_negatives_reuse_the_targets_states(tokenizer):
    """With nothing swapped anywhere there is no second call, and the negatives' embeddings are the targets'."""
    model = _model(tokenizer)
    batch = _batch(len(tokenizer), tokenizer.eos_token_id)
    batch["negative_input_ids"] = batch["input_ids"].clone()
    batch["negative_attention_mask"] = batch["attention_mask"].clone()
    _assert_equal_to_full_pass(model, batch)
    model._negative_prefix_sharing = True
    _, _, _, tokens = _step(model, batch, share=True)
    assert tokens == batch["input_ids"].numel()  # the targets' call only
    with torch.no_grad():
        outputs = model(**batch)
    torch.testing.assert_close(outputs.negative_embeds, outputs.target_embeds)
    assert outputs.cache is None
