"""`review_pooling="shown_photos"` (H33): phi_R pools the history reviews weighted towards the photos shown.

Oracles: the weights by a loop over examples and reviews (softmax of each review's best cosine to a shown photo over
the temperature, padding left out); the review embedding by `review_head`'s layers applied by hand to the weighted
average of the encoder's review states; `"mean"` left exactly as it was.
"""

import math

import pytest
import torch
from pc2l_fixtures import assert_train_pc2l_records, assert_train_pc2l_refuses_in_one_line, tiny_config
from test_detached_negatives import ccl_pcl_model, negatives_batch

from gest_showcases.generation import PC2LConfig
from gest_showcases.generation.losses import total_loss
from gest_showcases.generation.modeling_pc2l import shown_photo_review_weights


def _weights_by_loop(images, image_mask, reviews, review_mask, temperature):
    weights = torch.zeros(review_mask.shape)
    for b in range(len(images)):
        shown = [images[b, i] for i in range(images.shape[1]) if image_mask[b, i]]
        kept = [r for r in range(reviews.shape[1]) if review_mask[b, r]]
        scores = []
        for r in kept:
            cosines = [float(torch.dot(reviews[b, r], v) / (reviews[b, r].norm() * v.norm())) for v in shown]
            scores.append(max(cosines) / temperature if shown else 0.0)
        total = sum(math.exp(score) for score in scores)
        for r, score in zip(kept, scores, strict=True):
            weights[b, r] = math.exp(score) / total
    return weights


def test_the_weights_are_the_softmax_of_each_reviews_best_cosine_to_a_shown_photo():
    generator = torch.Generator().manual_seed(0)
    images, reviews = torch.randn(4, 3, 8, generator=generator), torch.randn(4, 5, 8, generator=generator)
    image_mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.bool)
    review_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    weights = shown_photo_review_weights(images, image_mask, reviews, review_mask, temperature=0.2)
    torch.testing.assert_close(weights, _weights_by_loop(images, image_mask, reviews, review_mask, 0.2))
    # no photo: uniform over the reviews; no review: nothing (as masked_mean of an empty mask)
    torch.testing.assert_close(weights[2], torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0]))
    assert not weights[3].any() and torch.isfinite(weights).all()
    # A padded photo that would be the best match is not read.
    images[0, 2] = reviews[0, 0]
    torch.testing.assert_close(shown_photo_review_weights(images, image_mask, reviews, review_mask, 0.2), weights)
    # Nothing padded: every photo and review is read.
    everything = shown_photo_review_weights(images, torch.ones(4, 3), reviews, torch.ones(4, 5), 0.2)
    torch.testing.assert_close(everything, _weights_by_loop(images, torch.ones(4, 3), reviews, torch.ones(4, 5), 0.2))


def test_the_review_embedding_pools_the_review_states_with_those_weights(tokenizer):
    batch = negatives_batch(tokenizer)
    mean_model = ccl_pcl_model(tokenizer, "gpt2")
    model = ccl_pcl_model(tokenizer, "gpt2", review_pooling="shown_photos", review_pooling_temperature=0.05)
    model.load_state_dict(mean_model.state_dict())
    outputs, mean_outputs = model(**batch), mean_model(**batch)
    num_images = batch["image_features"].shape[1]
    states = outputs.encoder_last_hidden_state[:, num_images:]
    weights = shown_photo_review_weights(
        batch["image_features"], batch["image_mask"], batch["review_features"], batch["review_mask"], 0.05
    )
    pooled = (states * weights[..., None]).sum(1)
    head = model.review_head
    expected = head.fc2(torch.relu(head.fc1(pooled)))
    torch.testing.assert_close(outputs.review_embeds, expected, atol=1e-5, rtol=1e-5)
    # Everything else is the paper's model's, and the paper's review embedding is the plain mean.
    for name in ("image_embeds", "target_embeds", "negative_embeds", "loss"):
        torch.testing.assert_close(outputs[name], mean_outputs[name])
    mask = batch["review_mask"].float()
    mean = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    torch.testing.assert_close(mean_outputs.review_embeds, head.fc2(torch.relu(head.fc1(mean))), atol=1e-5, rtol=1e-5)
    with_reviews = batch["review_mask"].sum(1) > 1
    assert not torch.allclose(outputs.review_embeds[with_reviews], mean_outputs.review_embeds[with_reviews])
    # PCL reads the new embedding and trains through it.
    loss, parts = total_loss(model.config, outputs, batch)
    assert torch.isfinite(loss) and parts["loss_pcl"] != total_loss(mean_model.config, mean_outputs, batch)[1]["loss_pcl"]
    loss.backward()
    assert model.review_head.fc1.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"review_pooling": "photos"}, "review_pooling must be one of"),
        ({"review_pooling": "shown_photos", "input_mode": "text", "image_contrastive": "none"}, "needs input_mode"),
        ({"review_pooling": "shown_photos", "review_contrastive": "none"}, "needs input_mode"),
        ({"review_pooling": "shown_photos", "contrastive_score": "likelihood"}, "needs input_mode"),
        ({"review_pooling_temperature": 0}, "review_pooling_temperature must be a finite number > 0"),
        ({"review_pooling_temperature": float("nan")}, "review_pooling_temperature must be a finite number > 0"),
    ],
)
def test_the_config_refuses_what_the_pooling_cannot_do(tokenizer, overrides, message):
    with pytest.raises(ValueError, match=message):
        PC2LConfig(**{**tiny_config(tokenizer).to_dict(), **overrides})


def test_train_pc2l_pools_towards_the_shown_photos_and_records_it(command_assets, capsys):
    assert_train_pc2l_records(command_assets, review_pooling="shown_photos", review_pooling_temperature=0.2)
    assert_train_pc2l_refuses_in_one_line(command_assets, capsys, "--review_pooling_temperature", "0")
