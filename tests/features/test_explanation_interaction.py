"""The classifier's `interaction` option: `[t ; v ; t * v]` into the same single linear layer."""

from __future__ import annotations

import pytest
import torch

from gest_showcases.features.configuration_explanation import ExplanationClassifierConfig
from gest_showcases.features.distill import train_explanation_classifier
from gest_showcases.features.modeling_explanation import ExplanationClassifier


def _matching_pairs(num_classes=6, per_pair=12, seed=0):
    """Sentence and image of a random class each; label 1 iff the classes match. Every sentence and
    every image is positive as often as any other, so only their interaction carries the label."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.nn.functional.normalize(torch.randn(num_classes, 8, generator=generator), dim=-1)
    text_class = torch.arange(num_classes).repeat_interleave(num_classes).repeat(per_pair)
    image_class = torch.arange(num_classes).repeat(num_classes).repeat(per_pair)
    noise = 0.05 * torch.randn(2, len(text_class), 8, generator=generator)
    return (
        prototypes[text_class] + noise[0],
        prototypes[image_class] + noise[1],
        (text_class == image_class).float(),
    )


def test_pair_probabilities_match_forward_on_every_pair():
    torch.manual_seed(0)
    model = ExplanationClassifier(
        ExplanationClassifierConfig(text_dim=8, image_dim=8, interaction=True)
    ).eval()
    torch.nn.init.normal_(model.classifier.weight)
    text, image = torch.randn(5, 8), torch.randn(3, 8)
    expected = model(text.repeat_interleave(3, 0), image.repeat(5, 1)).probabilities.view(5, 3)  # brute force
    torch.testing.assert_close(model.pair_probabilities(text, image), expected)


def test_interaction_tells_which_image_a_sentence_describes_and_the_paper_form_cannot():
    text, image, labels = _matching_pairs()
    paper = train_explanation_classifier(text, image, labels, epochs=150, learning_rate=3e-2)
    product = train_explanation_classifier(
        text, image, labels, epochs=150, learning_rate=3e-2, interaction=True
    )
    assert product.metrics["test_auc"] > 0.95
    assert paper.metrics["test_auc"] < 0.75
    assert product.model.classifier.in_features == 24 and paper.model.classifier.in_features == 16


def test_interaction_config_round_trip_and_dimension_check(tmp_path):
    model = ExplanationClassifier(ExplanationClassifierConfig(text_dim=4, image_dim=4, interaction=True))
    model.save_pretrained(tmp_path)
    loaded = ExplanationClassifier.from_pretrained(tmp_path)
    assert loaded.config.interaction is True
    torch.testing.assert_close(loaded.classifier.weight, model.classifier.weight)
    assert ExplanationClassifierConfig().interaction is False  # the paper's form stays the default
    with pytest.raises(ValueError, match="text_dim == image_dim"):
        ExplanationClassifierConfig(text_dim=4, image_dim=6, interaction=True)
