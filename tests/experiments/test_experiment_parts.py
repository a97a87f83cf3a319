"""The experiment's building blocks against oracles: per-example metric parts, the input-reliance probe, oracle features."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "generation"))
from pc2l_fixtures import build_tokenizer, synthetic_examples, tiny_config  # noqa: E402

from gest_showcases.generation import PC2LForConditionalGeneration  # noqa: E402
from gest_showcases.generation.collator import PC2LCollator, PC2LDataset  # noqa: E402
from gest_showcases.generation.probe import derangement, input_reliance, per_example_loss  # noqa: E402
from gest_showcases.metrics.per_example import (  # noqa: E402
    bleu1_parts,
    bleu1_statistic,
    distinct_outputs_statistic,
    distinct_statistic,
)
from gest_showcases.metrics.text import bleu, distinct  # noqa: E402

HYPOTHESES = [
    "the pad thai was great",
    "great pad thai",
    "the soup was cold and the soup was salty",
    "",
    "ok",
]
REFERENCES = ["pad thai was great here", "the green curry", "the soup was hot", "nice place", "ok ok ok ok"]


def test_bleu1_parts_give_corpus_bleu1_on_the_full_set_and_any_subset():
    statistic = bleu1_statistic(bleu1_parts(HYPOTHESES, REFERENCES))
    assert statistic(np.arange(5)[None])[0] == pytest.approx(bleu(HYPOTHESES, REFERENCES)["bleu_1"])
    subset = np.array([[0, 0, 2, 4]])  # a resample: example 0 twice
    expected = bleu([HYPOTHESES[i] for i in subset[0]], [REFERENCES[i] for i in subset[0]])["bleu_1"]
    assert statistic(subset)[0] == pytest.approx(expected)


def test_distinct_parts_give_corpus_distinct_and_distinct_outputs():
    texts = [*HYPOTHESES, HYPOTHESES[0], "  the pad thai   was great "]
    for n in (1, 2):
        assert distinct_statistic(texts, n)(np.arange(len(texts))[None])[0] == pytest.approx(
            distinct(texts, orders=(n,))[f"distinct_{n}"]
        )
    # "the pad thai was great" three times (whitespace collapsed) + 4 others: 5 different texts.
    assert distinct_outputs_statistic(texts)(np.arange(len(texts))[None])[0] == pytest.approx(5.0)


def test_derangement_is_a_permutation_without_fixed_points():
    for n in (2, 3, 10, 101):
        mapping = derangement(n, seed=n)
        assert sorted(mapping.tolist()) == list(range(n))
        assert (mapping != np.arange(n)).all()
    with pytest.raises(ValueError):
        derangement(1)


@pytest.fixture(scope="module")
def tiny_model_and_data():
    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    model = PC2LForConditionalGeneration(
        tiny_config(tokenizer, image_contrastive="none", review_contrastive="none")
    )
    examples = [e for e in synthetic_examples(7, seed=3, with_negatives=False) if len(e["review_features"])]
    dataset = PC2LDataset(
        [e["target"] for e in examples],
        [e["image_features"] for e in examples],
        [e["review_features"] for e in examples],
    )
    return model.eval(), dataset, PC2LCollator(tokenizer)


def test_per_example_loss_matches_the_model_loss_one_example_at_a_time(tiny_model_and_data):
    model, dataset, collator = tiny_model_and_data
    losses = per_example_loss(model, dataset, collator, batch_size=3)
    for index in range(len(dataset)):
        with torch.no_grad():
            expected = model(**collator([dataset[index]])).loss.item()
        assert losses[index] == pytest.approx(expected, rel=1e-5)


def test_input_reliance_swaps_one_input_at_a_time(tiny_model_and_data):
    model, dataset, collator = tiny_model_and_data
    result = input_reliance(model, dataset, collator, batch_size=4, seed=1)
    mapping = derangement(len(dataset), 1)
    for name, column in (("images", "image_features"), ("reviews", "review_features")):
        swapped = [dict(dataset[i]) | {column: dataset[int(mapping[i])][column]} for i in range(len(dataset))]
        expected = [model(**collator([example])).loss.item() for example in swapped]
        assert result[f"swapped_{name}"] == pytest.approx(expected, rel=1e-5)
        assert result[f"delta_{name}"] == pytest.approx(np.asarray(expected) - result["own"], abs=1e-5)
        # The model reads both inputs at random init: swapping changes the losses.
        assert np.abs(result[f"delta_{name}"]).max() > 1e-4


def test_oracle_features_carry_exactly_the_ground_truth_at_zero_noise(tmp_path):
    from gest_showcases.commands import build
    from gest_showcases.experiments.oracle import write_oracle_features
    from gest_showcases.features import load_features
    from gest_showcases.features.inputs import read_config_rows, review_texts
    from gest_showcases.metrics.synth_truth import SynthTruth
    from gest_showcases.synth import SynthConfig, generate_world, write_world

    world = tmp_path / "world"
    write_world(generate_world(SynthConfig(seed=0, num_reviews=150)), world, image_size=16)
    dataset = tmp_path / "dataset"
    assert build.main(["--input", str(world / "image_review_all.json"), "--images", str(world / "images"),
                       "--output_dir", str(dataset)]) == 0  # fmt: skip
    features = write_oracle_features(
        world / "ground_truth.json", dataset, tmp_path / "oracle", noise=0.0, dim=16
    )
    images, reviews = load_features(features, "image"), load_features(features, "review")
    truth = json.loads((world / "ground_truth.json").read_text())
    subjects = [truth["pics"][pic]["subject"] for pic in images.ids]
    similarity = images.embeddings @ images.embeddings.T
    same = torch.tensor([[a == b for b in subjects] for a in subjects])
    assert torch.allclose(
        similarity[same], torch.ones(int(same.sum())), atol=1e-5
    )  # same subject: same vector
    assert similarity[~same].max() < 0.99  # different subjects: different vectors
    # A review's feature is the mean of the vectors of the subjects it names (normalised).
    parsed = SynthTruth.load(world / "ground_truth.json")
    by_subject = {subject: images.embeddings[i] for i, subject in enumerate(subjects)}
    texts = dict(review_texts(read_config_rows(dataset, "s1")))
    checked = 0
    for row, review_id in enumerate(reviews.ids):
        named = parsed.named_subjects(texts[review_id])
        if named and all(subject in by_subject for subject in named):
            expected = torch.nn.functional.normalize(
                torch.stack([by_subject[s] for s in named]).mean(0), dim=0
            )
            assert torch.allclose(reviews.embeddings[row], expected, atol=1e-5)
            checked += 1
    assert checked > 10
