"""`contrastive_score="likelihood"`: the contrastive losses score with the decoder's own log-likelihood.

Oracle: each log-likelihood recomputed by a separate plain forward call (the swapped inputs or the hard negative
passed as ordinary inputs), and the losses by their formulas.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from pc2l_fixtures import build_tokenizer, synthetic_examples, tiny_config

from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.generation.collator import PC2LCollator
from gest_showcases.generation.losses import total_loss
from gest_showcases.generation.modeling_pc2l import masked_mean

FEATURES = ("image_features", "image_mask", "review_features", "review_mask")


def _batch(tokenizer, count=4, seed=0):
    return PC2LCollator(tokenizer, with_negatives=True)(synthetic_examples(count, seed=seed))


def _plain_log_likelihood(model, batch, ids, mask, **features):
    """Sum of log p(token) over the masked positions, from a forward without any contrastive loss."""
    inputs = {key: batch[key] for key in FEATURES} | features
    logits = model(input_ids=ids, attention_mask=mask, **inputs).logits
    log_probs = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (log_probs * mask[:, 1:]).sum(-1)


def _rolled(batch, keys):
    return {key: batch[key].roll(-1, dims=0) for key in keys}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_log_likelihoods_equal_separate_forward_calls(tokenizer):
    torch.manual_seed(0)
    model = PC2LForConditionalGeneration(tiny_config(tokenizer, contrastive_score="likelihood")).eval()
    batch = _batch(tokenizer)
    with torch.no_grad():
        out = model(**batch)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        own = _plain_log_likelihood(model, batch, ids, mask)
        photos = _plain_log_likelihood(model, batch, ids, mask, **_rolled(batch, FEATURES[:2]))
        reviews = _plain_log_likelihood(model, batch, ids, mask, **_rolled(batch, FEATURES[2:]))
        negative = _plain_log_likelihood(
            model, batch, batch["negative_input_ids"], batch["negative_attention_mask"]
        )
    torch.testing.assert_close(out.target_log_likelihood, own, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(out.image_swapped_log_likelihood, photos, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(out.review_swapped_log_likelihood, reviews, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(out.negative_log_likelihood, negative, atol=1e-4, rtol=1e-5)
    # The swaps are real: another example's inputs change the likelihood of the target.
    assert not torch.allclose(own, photos) and not torch.allclose(own, reviews)
    # No projection heads, no embeddings.
    assert not hasattr(model, "target_head") and out.target_embeds is None


def test_losses_follow_their_formulas(tokenizer):
    torch.manual_seed(1)
    config = tiny_config(tokenizer, contrastive_score="likelihood", lambda1=0.3, lambda2=0.7)
    model = PC2LForConditionalGeneration(config).eval()
    batch = _batch(tokenizer, seed=3)
    with torch.no_grad():
        out = model(**batch)
        loss, parts = total_loss(config, out, batch)
    t, s_img, s_rev, n = (
        out.target_log_likelihood,
        out.image_swapped_log_likelihood,
        out.review_swapped_log_likelihood,
        out.negative_log_likelihood,
    )
    ccl = -(t - torch.logsumexp(torch.stack([t, s_img, n]), dim=0)).mean()
    means = masked_mean(batch["review_features"], batch["review_mask"])
    similarity = F.cosine_similarity(means, means.roll(-1, dims=0), dim=-1)
    weight = config.pcl_alpha ** (1 - similarity)  # f(i, i + 1) of eq. 10
    pcl = -(t - torch.logaddexp(t, weight.log() + s_rev)).mean()  # log(p + f q), stably
    torch.testing.assert_close(parts["loss_ccl"], ccl)
    torch.testing.assert_close(parts["loss_pcl"], pcl)
    torch.testing.assert_close(loss, out.loss + 0.3 * ccl + 0.7 * pcl)


def test_lm_loss_and_logits_equal_the_paper_mode(tokenizer):
    torch.manual_seed(0)
    paper = PC2LForConditionalGeneration(tiny_config(tokenizer)).eval()
    likelihood = PC2LForConditionalGeneration(tiny_config(tokenizer, contrastive_score="likelihood")).eval()
    missing, unexpected = likelihood.load_state_dict(paper.state_dict(), strict=False)
    assert not missing and all(name.split(".")[0].endswith("_head") for name in unexpected)
    batch = _batch(tokenizer, seed=2)
    with torch.no_grad():
        a, b = paper(**batch), likelihood(**batch)
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.loss, b.loss)


def test_a_training_step_sends_finite_gradients_to_encoder_and_decoder(tokenizer):
    torch.manual_seed(0)
    config = tiny_config(tokenizer, contrastive_score="likelihood", lambda1=1.0, lambda2=1.0)
    model = PC2LForConditionalGeneration(config).train()
    batch = _batch(tokenizer, seed=4)
    out = model(**batch)
    _, parts = total_loss(config, out, batch)
    (parts["loss_ccl"] + parts["loss_pcl"]).backward()  # the contrastive parts alone
    for name in ("encoder.image_projection.weight", "encoder.review_projection.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    grad = model.decoder.get_input_embeddings().weight.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_single_example_batch_gives_the_constant_loss(tokenizer):
    """With one example the swap is the example itself: each loss is log(1 + number of negatives)."""
    torch.manual_seed(0)
    config = tiny_config(tokenizer, contrastive_score="likelihood", review_contrastive="cl")
    model = PC2LForConditionalGeneration(config).eval()
    batch = _batch(tokenizer, count=1)
    batch["negative_input_ids"] = batch["input_ids"].clone()
    batch["negative_attention_mask"] = batch["attention_mask"].clone()
    with torch.no_grad():
        _, parts = total_loss(config, model(**batch), batch)
    torch.testing.assert_close(parts["loss_ccl"], torch.tensor(math.log(3.0)), atol=1e-4, rtol=0)
    torch.testing.assert_close(parts["loss_text_cl"], torch.tensor(math.log(2.0)), atol=1e-4, rtol=0)


def test_bad_scores_are_refused():
    with pytest.raises(ValueError, match="contrastive_score"):
        PC2LConfig(contrastive_score="cosine")
    with pytest.raises(ValueError, match="contrastive_target"):
        PC2LConfig(contrastive_score="likelihood", contrastive_target="text")


def test_entity_negatives_alone_score_the_target_against_its_swapped_subject(tokenizer):
    torch.manual_seed(2)
    config = tiny_config(
        tokenizer, contrastive_score="likelihood", likelihood_image_negatives="entity", review_contrastive="none"
    )
    model = PC2LForConditionalGeneration(config).eval()
    batch = _batch(tokenizer, seed=5)
    with torch.no_grad():
        out = model(**batch)
        _, parts = total_loss(config, out, batch)
        own = _plain_log_likelihood(model, batch, batch["input_ids"], batch["attention_mask"])
        negative = _plain_log_likelihood(
            model, batch, batch["negative_input_ids"], batch["negative_attention_mask"]
        )
    assert out.image_swapped_log_likelihood is None  # no photo-swapped copy is encoded or scored
    torch.testing.assert_close(out.target_log_likelihood, own, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(out.negative_log_likelihood, negative, atol=1e-4, rtol=1e-5)
    # -log sigmoid(log p(Y | X) - log p(Y_ent | X)): the posterior of the written subject against the swapped one.
    torch.testing.assert_close(parts["loss_ccl"], -F.logsigmoid(own - negative).mean(), atol=1e-4, rtol=1e-5)
    assert set(parts) == {"loss_ce", "loss_ccl"}


def test_entity_negatives_need_the_likelihood_score_and_ccl():
    with pytest.raises(ValueError, match="likelihood_image_negatives"):
        PC2LConfig(likelihood_image_negatives="photos")
    for settings in ({}, {"contrastive_score": "likelihood", "image_contrastive": "cl"}):
        with pytest.raises(ValueError, match="needs contrastive_score='likelihood' and image_contrastive='ccl'"):
            PC2LConfig(likelihood_image_negatives="entity", **settings)
