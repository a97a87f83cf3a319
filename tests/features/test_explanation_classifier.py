"""The explanation classifier: AUC/F1 against oracles, training, save/load, Gest-Synth annotations."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from transformers import AutoModel

from gest_showcases.commands.distill import main
from gest_showcases.features.distill import (
    ExplanationFilter,
    best_f1_threshold,
    f1_score,
    roc_auc,
    split_indices,
    train_explanation_classifier,
)
from gest_showcases.features.modeling_explanation import ExplanationClassifier, ExplanationClassifierConfig


def _brute_force_auc(scores, labels):
    positives = [s for s, y in zip(scores.tolist(), labels.tolist(), strict=True) if y]
    negatives = [s for s, y in zip(scores.tolist(), labels.tolist(), strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(positives, negatives))
    return wins / (len(positives) * len(negatives))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_matches_brute_force_and_sklearn(seed):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 12, (80,), generator=generator).float() / 11  # many ties
    labels = torch.rand(80, generator=generator) < 0.4
    assert roc_auc(scores, labels) == pytest.approx(_brute_force_auc(scores, labels), abs=1e-12)
    sklearn = pytest.importorskip("sklearn.metrics")
    assert roc_auc(scores, labels) == pytest.approx(
        sklearn.roc_auc_score(labels.numpy(), scores.numpy()), abs=1e-12
    )


def test_roc_auc_is_nan_with_one_class():
    assert torch.isnan(torch.tensor(roc_auc(torch.rand(5), torch.ones(5))))


def test_best_f1_threshold_matches_exhaustive_search():
    generator = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 20, (60,), generator=generator).float() / 19
    labels = torch.rand(60, generator=generator) < 0.3
    threshold, best = best_f1_threshold(scores, labels)
    exhaustive = max(f1_score(scores, labels, t) for t in scores.unique().tolist())
    assert best == pytest.approx(exhaustive)
    assert f1_score(scores, labels, threshold) == pytest.approx(best)
    sklearn = pytest.importorskip("sklearn.metrics")
    assert best == pytest.approx(sklearn.f1_score(labels.numpy(), (scores >= threshold).numpy()))


def test_split_is_8_1_1_seeded_and_disjoint():
    train, validation, test = split_indices(1000, seed=5)
    assert (len(train), len(validation), len(test)) == (800, 100, 100)
    assert torch.cat([train, validation, test]).sort().values.equal(torch.arange(1000))
    assert split_indices(1000, seed=5)[2].equal(test) and not split_indices(1000, seed=6)[2].equal(test)


def test_training_learns_a_separable_rule_and_round_trips(tmp_path):
    generator = torch.Generator().manual_seed(0)
    text, image = torch.randn(600, 6, generator=generator), torch.randn(600, 5, generator=generator)
    labels = (text[:, 0] + image[:, 1] > 0.3).float()
    result = train_explanation_classifier(text, image, labels, epochs=60, learning_rate=5e-2, batch_size=128)
    assert result.metrics["test_auc"] > 0.97 and result.metrics["test_f1"] > 0.85
    model = result.model
    assert model.config.threshold == pytest.approx(result.metrics["threshold"])
    model.save_pretrained(tmp_path / "phi")
    for loaded in (
        ExplanationClassifier.from_pretrained(tmp_path / "phi"),
        AutoModel.from_pretrained(tmp_path / "phi"),
    ):
        assert isinstance(loaded, ExplanationClassifier)
        assert loaded.config.threshold == model.config.threshold
        torch.testing.assert_close(loaded(text, image).probabilities, model(text, image).probabilities)
    # Shipped as remote code too (what push_to_hub uploads).
    assert (tmp_path / "phi" / "modeling_explanation.py").exists()
    assert json.loads((tmp_path / "phi" / "config.json").read_text())["auto_map"]["AutoModel"].endswith(
        "ExplanationClassifier"
    )


def test_pair_probabilities_equal_forward_on_every_pair():
    model = ExplanationClassifier(ExplanationClassifierConfig(text_dim=4, image_dim=3))
    text, image = torch.randn(5, 4), torch.randn(2, 3)
    every_pair = model(text.repeat_interleave(2, 0), image.repeat(5, 1)).probabilities.view(5, 2)
    torch.testing.assert_close(model.pair_probabilities(text, image), every_pair)


def test_filter_keeps_sentences_describing_any_image():
    from gest_showcases.features.cache import FeatureTable

    model = ExplanationClassifier(ExplanationClassifierConfig(text_dim=2, image_dim=2, clip_fingerprint="f"))
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor([[4.0, 0.0, 0.0, 4.0]]))
        model.classifier.bias.fill_(-4.0)

    class Texts:  # sentence -> embedding, by a fixed table
        table = {
            "yes": torch.tensor([2.0, 0.0]),
            "no": torch.tensor([0.0, 0.0]),
            "maybe": torch.tensor([0.5, 0.0]),
        }

        def encode(self, texts, batch_size):
            return torch.stack([self.table[t] for t in texts])

    images = FeatureTable(["bright", "dark"], torch.tensor([[0.0, 1.0], [0.0, -1.0]]), "c", "f", True)
    keep = ExplanationFilter(model, Texts(), images, threshold=0.5)
    # logit = 4 t0 + 4 v1 - 4: "yes" + bright = 12 -> kept; "maybe" + bright = 2 -> kept; "no" + bright = 0 -> 0.5
    assert keep(["yes", "no", "maybe"], ["dark"]) == ["yes"]
    assert keep(["yes", "no", "maybe"], ["/data/images/bright.jpg", "dark"]) == ["yes", "no", "maybe"]
    assert keep(["yes"], ["unknown"]) == []


@pytest.fixture(scope="module")
def synth_world(tmp_path_factory):
    synth = pytest.importorskip("gest_showcases.synth")
    folder = tmp_path_factory.mktemp("synth")
    world = synth.generate_world(synth.SynthConfig(seed=0, num_reviews=200, num_annotated_reviews=100))
    synth.write_world(world, folder, image_size=32)
    return folder


def test_distill_on_gest_synth_annotations(tmp_path, synth_world, tiny_clip):
    out = tmp_path / "phi"
    assert main(["--annotations", str(synth_world / "annotations.jsonl"), "--features", str(tmp_path / "f"),
                 "--output", str(out), "--model", tiny_clip, "--num_workers", "0"]) == 0  # fmt: skip
    metrics = json.loads((out / "distill_metrics.json").read_text())
    annotations = [json.loads(line) for line in (synth_world / "annotations.jsonl").read_text().splitlines()]
    assert metrics["pairs"] == len(annotations)
    assert metrics["train_pairs"] + metrics["validation_pairs"] + metrics["test_pairs"] == len(annotations)
    # A random tiny CLIP still separates the pairs better than chance on the data it was fit to
    # (300 epochs: 60 left train AUC near 0.58 on this world).
    assert metrics["train_auc"] > 0.6, metrics
    assert 0.0 <= metrics["test_f1"] <= 1.0 and 0.0 <= metrics["test_auc"] <= 1.0
    model = ExplanationClassifier.from_pretrained(out)
    assert model.config.threshold == pytest.approx(metrics["threshold"])
    assert model.config.clip_checkpoint == tiny_clip
