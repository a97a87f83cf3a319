"""The shared flags of train-clip, distill and synth: `--config FILE.yaml`, `--output_dir`, `--clip_model`,
`--num_train_epochs`, and the old spellings (`--output`, `--model`, `--epochs`) that keep working for one release
with a FutureWarning.

The commands' work is replaced by recorders (a training, a world), so each test pins what the parsed options
are; the existing tests of each command run the real work.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import yaml

from gest_showcases import cli
from gest_showcases.commands import distill, synth, train_clip
from gest_showcases.errors import InputError


def write_yaml(path, options: dict) -> str:
    path.write_text(yaml.safe_dump(options), encoding="utf-8")
    return str(path)


SUMMARY = {
    "parameters": 1,
    "train_images": 2,
    "train_reviews": 2,
    "epoch_losses": [1.0, 0.5],
    "validation_image_to_review": {
        "recall_at_1": 0.5, "chance_at_1": 0.5, "recall_at_5": 1.0, "chance_at_5": 1.0, "candidates": 2,
    },
}  # fmt: skip


@pytest.fixture
def clip_train(monkeypatch):
    """Stands in for `features.clip_training.train`: keeps its keyword arguments, makes the output folder."""
    calls = []

    def fake_train(**kwargs):
        calls.append(kwargs)
        Path(kwargs["output_dir"]).mkdir(parents=True, exist_ok=True)
        return dict(SUMMARY)

    monkeypatch.setattr(train_clip, "train", fake_train)
    return calls


@pytest.fixture
def distill_run(monkeypatch):
    calls = []

    def fake_run(args, output_dir):
        calls.append((args, output_dir))
        return {"pairs": 0}

    monkeypatch.setattr(distill, "run", fake_run)
    return calls


@pytest.fixture
def synth_world(monkeypatch):
    """Records the world's config and where it would be written; writes nothing."""
    calls = []
    monkeypatch.setattr(synth, "check_output_folder", lambda folder, overwrite: None)
    monkeypatch.setattr(synth, "generate_world", lambda config: config)
    monkeypatch.setattr(
        synth, "write_world", lambda world, folder, *args: calls.append((world, folder, args)) or {}
    )
    return calls


@pytest.mark.parametrize("name", ["train-clip", "distill", "synth"])
def test_help_lists_config_and_output_dir(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--config FILE.yaml" in out and "YAML file of this command's options" in out
    assert "--output_dir OUTPUT_DIR" in out


@pytest.mark.parametrize("name", ["train-clip", "distill"])
def test_help_lists_num_train_epochs(name, capsys):
    with pytest.raises(SystemExit):
        cli.main([name, "--help"])
    out = capsys.readouterr().out
    assert "--num_train_epochs NUM_TRAIN_EPOCHS" in out
    assert ("--clip_model CLIP_MODEL" in out) == (name == "distill")


def test_train_clip_reads_config_yaml_and_flags_override_it(tmp_path, clip_train):
    out = tmp_path / "clip"
    config = write_yaml(
        tmp_path / "clip.yaml",
        {"dataset": "built", "output_dir": str(out), "num_train_epochs": 3, "hidden_size": 32, "seed": 5},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated spelling here: no warning
        assert train_clip.main(["--config", config, "--hidden_size", "16"]) == 0
    (kwargs,) = clip_train
    assert kwargs["dataset"] == "built" and kwargs["output_dir"] == str(out)
    assert kwargs["hidden_size"] == 16  # the flag wins
    assert kwargs["num_train_epochs"] == 3 and kwargs["seed"] == 5  # the file's
    assert kwargs["image_size"] == 64  # neither: the default
    # The metrics file records the options the training ran with.
    arguments = json.loads((out / train_clip.METRICS_FILE).read_text())["arguments"]
    assert arguments["num_train_epochs"] == 3 and arguments["hidden_size"] == 16
    assert arguments["output_dir"] == str(out)


def test_train_clip_old_spellings_warn_and_still_work(tmp_path, clip_train):
    with pytest.warns(FutureWarning) as record:
        assert train_clip.main(["--dataset", "built", "--output", str(tmp_path / "old"), "--epochs", "4"]) == 0
    messages = [str(warning.message) for warning in record]
    assert any("--output is deprecated" in m and "--output_dir" in m for m in messages)
    assert any("--epochs is deprecated" in m and "--num_train_epochs" in m for m in messages)
    (kwargs,) = clip_train
    assert kwargs["output_dir"] == str(tmp_path / "old") and kwargs["num_train_epochs"] == 4


def test_train_clip_refuses_disagreeing_spellings_and_a_config_that_is_not_yaml(tmp_path, clip_train):
    argv = ["--dataset", "built", "--output_dir", str(tmp_path / "clip")]
    with pytest.warns(FutureWarning), pytest.raises(InputError, match="--epochs 4 and --num_train_epochs 7"):
        train_clip.main([*argv, "--epochs", "4", "--num_train_epochs", "7"])
    with pytest.raises(InputError, match="--output_dir"):
        train_clip.main(["--dataset", "built"])
    with pytest.raises(SystemExit):
        train_clip.main([*argv, "--config", "s1"])  # train-clip reads no dataset config by name
    assert clip_train == []


def test_distill_reads_config_yaml_and_flags_override_it(tmp_path, distill_run):
    config = write_yaml(
        tmp_path / "distill.yaml",
        {"annotations": "a.jsonl", "features": "feats", "output_dir": "classifier", "clip_model": "clip-a",
         "num_train_epochs": 20, "build_inputs": ["x.json"]},
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert distill.main(["--config", config, "--clip_model", "clip-b", "--seed", "3"]) == 0
    ((args, output_dir),) = distill_run
    assert output_dir == "classifier" and args.annotations == "a.jsonl" and args.features == "feats"
    assert args.clip_model == "clip-b" and args.seed == 3  # the flags win
    assert args.num_train_epochs == 20 and args.build_inputs == ["x.json"]  # the file's


def test_distill_old_spellings_warn_and_still_work(distill_run):
    argv = ["--annotations", "a.jsonl", "--features", "feats"]
    with pytest.warns(FutureWarning) as record:
        assert distill.main([*argv, "--output", "old", "--model", "clip-old", "--epochs", "9"]) == 0
    messages = " | ".join(str(warning.message) for warning in record)
    for old, new in (("output", "output_dir"), ("model", "clip_model"), ("epochs", "num_train_epochs")):
        assert f"--{old} is deprecated and will be removed in the next release; use --{new}" in messages
    ((args, output_dir),) = distill_run
    assert output_dir == "old" and args.clip_model == "clip-old" and args.num_train_epochs == 9
    with pytest.warns(FutureWarning), pytest.raises(InputError, match="--model clip-old and --clip_model c"):
        distill.main([*argv, "--output_dir", "o", "--model", "clip-old", "--clip_model", "c"])


def test_synth_reads_config_yaml_and_flags_override_it(tmp_path, synth_world, capsys):
    config = write_yaml(
        tmp_path / "synth.yml",
        {"output_dir": "world", "seed": 3, "num_reviews": 120, "image_size": 16},
    )
    assert synth.main(["--config", config, "--num_reviews", "80"]) == 0
    ((world_config, folder, (image_size, _, overwrite)),) = synth_world
    assert folder == "world" and image_size == 16 and overwrite is False
    assert world_config.seed == 3 and world_config.num_reviews == 80
    assert "Gest-Synth (seed 3) written to world" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        synth.main(["--config", write_yaml(tmp_path / "no-folder.yaml", {"seed": 1})])  # --output_dir nowhere
