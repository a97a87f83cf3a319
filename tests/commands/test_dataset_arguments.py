"""`DatasetArguments`, the one declaration of `--dataset` (the built folder) and `--images` (where its photos are):
the commands that read a built folder's photos take it, with the same flags and help, and pass both on."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gest_showcases import cli
from gest_showcases.commands import features, train_clip
from gest_showcases.commands.arguments import DatasetArguments

HELP = {name: field.metadata["help"] for name, field in DatasetArguments.__dataclass_fields__.items()}


def test_dataset_arguments_are_the_built_folder_and_its_image_folder():
    assert list(HELP) == ["dataset", "images"]
    fields = {field.name: field for field in dataclasses.fields(DatasetArguments)}
    assert fields["dataset"].default is dataclasses.MISSING  # required
    assert fields["images"].default is None


@pytest.mark.parametrize("name", ["features", "train-clip"])
def test_help_shows_dataset_and_images_with_the_shared_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines
    assert f"--dataset DATASET {HELP['dataset']}" in out
    assert f"--images IMAGES {HELP['images']}" in out


@pytest.mark.parametrize("options", [features.FeatureArguments, train_clip.TrainClipArguments])
def test_commands_declare_no_dataset_flags_of_their_own(options):
    assert not {"dataset", "images"} & {field.name for field in dataclasses.fields(options)}


def test_features_passes_the_dataset_arguments_on(monkeypatch):
    calls = []
    monkeypatch.setattr(
        features, "extract_features", lambda *args, **kwargs: calls.append((args, kwargs)) or {}
    )
    assert features.main(["--dataset", "built", "--images", "photos", "--output_dir", "feats"]) == 0
    ((args, kwargs),) = calls
    assert args == ("built", "feats") and kwargs["images"] == "photos"
    dataset, *_ = features.parse_feature_args(["--dataset", "built", "--output_dir", "feats"])
    assert dataset == DatasetArguments(dataset="built", images=None)


def test_train_clip_passes_the_dataset_arguments_on_and_records_them(monkeypatch, tmp_path):
    calls = []

    def fake_train(**kwargs):
        calls.append(kwargs)
        Path(kwargs["output_dir"]).mkdir(parents=True)
        return {
            "parameters": 1, "train_images": 1, "train_reviews": 1, "epoch_losses": [1.0],
            "validation_image_to_review": {"recall_at_1": 1.0, "chance_at_1": 1.0, "recall_at_5": 1.0,
                                           "chance_at_5": 1.0, "candidates": 1},
        }  # fmt: skip

    monkeypatch.setattr(train_clip, "train", fake_train)
    output = tmp_path / "clip"
    assert train_clip.main(["--dataset", "built", "--images", "photos", "--output_dir", str(output)]) == 0
    (kwargs,) = calls
    assert kwargs["dataset"] == "built" and kwargs["images"] == "photos"
    arguments = json.loads((output / train_clip.METRICS_FILE).read_text())["arguments"]
    assert arguments["dataset"] == "built" and arguments["images"] == "photos"
