"""`s2` built from `s1` by the trained explanation classifier, through the builder's explanation_filter."""

from __future__ import annotations

import json

import pytest
import torch

from gest_showcases.commands.distill import main
from gest_showcases.data.records import split_sentences
from gest_showcases.features.cache import load_features
from gest_showcases.features.clip import load_clip
from gest_showcases.features.inputs import read_config_rows
from gest_showcases.features.modeling_explanation import ExplanationClassifier


def _world(tmp_path):
    synth = pytest.importorskip("gest_showcases.synth")
    world_dir = tmp_path / "synth"
    synth.write_world(
        synth.generate_world(synth.SynthConfig(seed=1, num_reviews=120, num_annotated_reviews=60)),
        world_dir,
        image_size=32,
    )
    return world_dir


@pytest.mark.slow
def test_s2_from_s1_keeps_exactly_the_sentences_above_threshold(tmp_path, tiny_clip):
    world_dir = _world(tmp_path)
    dataset, classifier_dir, features = tmp_path / "dataset", tmp_path / "phi", tmp_path / "f"
    assert main(["--annotations", str(world_dir / "annotations.jsonl"), "--features", str(features),
                 "--output_dir", str(classifier_dir), "--clip_model", tiny_clip, "--num_train_epochs", "30", "--num_workers", "0",
                 "--dataset", str(dataset), "--build_inputs", str(world_dir / "image_review_all.json"),
                 "--build_images", str(world_dir / "images")]) == 0  # fmt: skip
    s1, s2 = read_config_rows(dataset, "s1"), read_config_rows(dataset, "s2")
    assert s2 and len(s2) <= len(s1)
    model = ExplanationClassifier.from_pretrained(classifier_dir)
    threshold = model.config.threshold
    card = (dataset / "README.md").read_text()
    assert f"{threshold:.4f}" in card
    # Oracle: recompute every s1 sentence's best probability over its review's images.
    _, text_model = load_clip(tiny_clip)
    images = load_features(features, "image")
    s2_by_id = {row["review_id"]: row for row in s2}
    for row in s1:
        sentences = split_sentences(row["review_text"])
        image_embeds, found = images.lookup(row["pics"])
        if not sentences or not found.any():
            assert row["review_id"] not in s2_by_id
            continue
        best = model.pair_probabilities(text_model.encode(sentences), image_embeds[found]).max(dim=1).values
        expected = [s for s, p in zip(sentences, best.tolist(), strict=True) if p >= threshold]
        if expected:
            kept = s2_by_id[row["review_id"]]
            assert kept["explanation_sentences"] == expected
            assert kept["explanation"] == " ".join(expected)
        else:
            assert row["review_id"] not in s2_by_id
    metrics = json.loads((classifier_dir / "distill_metrics.json").read_text())
    assert sum(metrics["s2_rows"].values()) == len(s2)
    assert len(images) > 60  # every s1 image was embedded before filtering, not only the annotated ones
    datasets = pytest.importorskip("datasets")
    assert datasets.load_dataset(str(dataset), "s2")["train"].num_rows == sum(
        r["split"] == "train" for r in s2
    )
    assert torch.isfinite(torch.tensor(metrics["test_auc"]))


@pytest.mark.slow
def test_distill_rebuilds_with_the_folders_own_build_options(tmp_path, tiny_clip):
    """Session 28's audit: `distill --dataset` rebuilt a `--seed 7 --copy_images` dataset with the default options:
    its users were split again (a selector trained before was scored on users it trained on) and images/ was gone."""
    from gest_showcases.data.build import BUILD_OPTIONS_FILE, build_dataset

    world_dir = _world(tmp_path)
    dataset = tmp_path / "dataset"
    build_dataset([world_dir / "image_review_all.json"], world_dir / "images", dataset, seed=7, copy_images=True)
    options = json.loads((dataset / BUILD_OPTIONS_FILE).read_text())
    assert options["seed"] == 7 and options["copy_images"] is True
    splits = {row["review_id"]: row["split"] for row in read_config_rows(dataset, "s1")}
    assert main(["--annotations", str(world_dir / "annotations.jsonl"), "--features", str(tmp_path / "f"),
                 "--output_dir", str(tmp_path / "phi"), "--clip_model", tiny_clip, "--num_train_epochs", "5", "--num_workers", "0",
                 "--dataset", str(dataset), "--build_inputs", str(world_dir / "image_review_all.json"),
                 "--build_images", str(world_dir / "images")]) == 0  # fmt: skip
    assert {row["review_id"]: row["split"] for row in read_config_rows(dataset, "s1")} == splits
    assert json.loads((dataset / BUILD_OPTIONS_FILE).read_text()) == options
    assert (dataset / "images").is_dir() and read_config_rows(dataset, "s2")
