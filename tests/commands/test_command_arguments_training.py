"""The shared flags of train-selector, finetune-lm and evaluate: `--config FILE.yaml`, `--output_dir`,
`--num_train_epochs`, `--use_cpu`, `--dataset_config_name`, and the old spellings (`--num_epochs`, `--cpu`,
`--config_name`, `--config s1`) that keep working for one release with a FutureWarning.

Each command's work (`run`) is replaced by a recorder, so each test pins what the parsed options are; the existing
tests of each command (tests/selection, tests/generation, tests/hostile, tests/baselines) run the real work.
"""

from __future__ import annotations

import warnings

import pytest
import yaml

from gest_showcases import cli
from gest_showcases.commands import evaluate, finetune_lm, train_selector
from gest_showcases.errors import InputError
from gest_showcases.selection.training import SelectorTrainingArguments


def write_yaml(path, options: dict) -> str:
    path.write_text(yaml.safe_dump(options), encoding="utf-8")
    return str(path)


@pytest.fixture
def recorded(monkeypatch):
    """Each command's `run` keeps its arguments instead of training or scoring."""
    calls = {}
    for module in (train_selector, finetune_lm, evaluate):
        monkeypatch.setattr(module, "run", lambda *args, name=module.__name__: calls.setdefault(name, args))
    return calls


@pytest.mark.parametrize("name", ["train-selector", "finetune-lm", "evaluate"])
def test_help_lists_config_and_output_dir(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--config FILE.yaml" in out and "YAML file of this command's options" in out
    assert "--output_dir OUTPUT_DIR" in out


def test_help_lists_transformers_spellings(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train-selector", "--help"])
    out = capsys.readouterr().out
    assert "--num_train_epochs NUM_TRAIN_EPOCHS" in out and "--use_cpu [USE_CPU]" in out
    with pytest.raises(SystemExit):
        cli.main(["finetune-lm", "--help"])
    assert "--dataset_config_name DATASET_CONFIG_NAME" in capsys.readouterr().out


def test_train_selector_reads_config_yaml_and_flags_override_it(tmp_path, recorded):
    config = write_yaml(
        tmp_path / "selector.yaml",
        {"dataset": "built", "features": "feats", "output_dir": "runs", "num_train_epochs": 7,
         "methods": ["random", "img"], "use_cpu": True, "top_k": 2},
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated spelling here: no warning
        assert train_selector.main(["--config", config, "--top_k", "5", "--seed", "3"]) == 0
    script_args, train_args, output_dir = recorded[train_selector.__name__]
    assert output_dir == "runs" and script_args.dataset == "built" and script_args.features == "feats"
    assert script_args.methods == ["random", "img"] and script_args.use_cpu is True  # the file's
    assert train_args.top_k == 5 and train_args.seed == 3  # the flags win
    # The library's training reads `num_train_epochs`; the deprecated `num_epochs` was not given.
    assert isinstance(train_args, SelectorTrainingArguments)
    assert train_args.num_train_epochs == 7 and train_args.num_epochs is None
    with pytest.raises(InputError, match="--output_dir"):
        train_selector.main(["--dataset", "built", "--features", "feats"])


def test_train_selector_old_spellings_warn_and_still_work(recorded):
    argv = ["--dataset", "built", "--features", "feats", "--output_dir", "runs"]
    with pytest.warns(FutureWarning) as record:
        assert train_selector.main([*argv, "--cpu", "--num_epochs", "4"]) == 0
    messages = " | ".join(str(warning.message) for warning in record)
    for old, new in (("cpu", "use_cpu"), ("num_epochs", "num_train_epochs")):
        assert f"--{old} is deprecated and will be removed in the next release; use --{new}" in messages
    script_args, train_args, _ = recorded[train_selector.__name__]
    assert script_args.use_cpu is True
    assert train_args.num_train_epochs == 4 and train_args.num_epochs == 4
    with (
        pytest.warns(FutureWarning),
        pytest.raises(InputError, match="--num_epochs 4 and --num_train_epochs 9"),
    ):
        train_selector.main([*argv, "--num_epochs", "4", "--num_train_epochs", "9"])


def test_finetune_lm_reads_config_yaml_and_flags_override_it(tmp_path, recorded):
    config = write_yaml(
        tmp_path / "ft.yml",
        {"dataset": "built", "tokenizer": "tok", "output_dir": str(tmp_path / "ft"), "num_train_epochs": 3,
         "dataset_config_name": "s2", "block_size": 32, "use_cpu": True, "report_to": "none"},
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated spelling here
        assert finetune_lm.main(["--config", config, "--block_size", "16", "--num_train_epochs", "2"]) == 0
    args, config_name, training_args = recorded[finetune_lm.__name__]
    assert args.dataset == "built" and args.tokenizer == "tok" and config_name == "s2"  # the file's
    assert args.block_size == 16 and training_args.num_train_epochs == 2  # the flags win
    assert training_args.output_dir == str(tmp_path / "ft") and training_args.use_cpu is True


@pytest.mark.parametrize("old", [["--config_name", "raw"], ["--config", "raw"]])
def test_finetune_lm_old_dataset_config_spellings_warn_and_still_work(tmp_path, recorded, old):
    argv = [
        "--dataset",
        "built",
        "--tokenizer",
        "tok",
        "--output_dir",
        str(tmp_path / "ft"),
        "--report_to",
        "none",
    ]
    with pytest.warns(FutureWarning, match="--dataset_config_name"):
        assert finetune_lm.main([*argv, *old]) == 0
    _, config_name, _ = recorded[finetune_lm.__name__]
    assert config_name == "raw"


def test_finetune_lm_refuses_disagreeing_dataset_config_spellings(tmp_path, recorded):
    argv = [
        "--dataset",
        "built",
        "--tokenizer",
        "tok",
        "--output_dir",
        str(tmp_path / "ft"),
        "--report_to",
        "none",
    ]
    with (
        pytest.warns(FutureWarning),
        pytest.raises(InputError, match="--config_name raw and --dataset_config_name s2"),
    ):
        finetune_lm.main([*argv, "--config_name", "raw", "--dataset_config_name", "s2"])
    assert recorded == {}


def test_evaluate_reads_config_yaml_and_flags_override_it(tmp_path, recorded):
    config = write_yaml(
        tmp_path / "evaluate.yaml",
        {"generations": "g.jsonl", "output_dir": "report", "num_resamples": 10, "device": "cuda"},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluate.main(["--config", config, "--device", "cpu", "--no_bertscore"]) == 0
    args, output_dir = recorded[evaluate.__name__]
    assert output_dir == "report" and args.generations == "g.jsonl" and args.num_resamples == 10  # the file's
    assert args.device == "cpu" and args.bertscore is False  # the flags win
    with pytest.raises(InputError, match="--output_dir"):
        evaluate.main(["--generations", "g.jsonl"])
    with pytest.raises(SystemExit):
        evaluate.main(
            ["--generations", "g.jsonl", "--output_dir", "r", "--config", "s1"]
        )  # no dataset config
