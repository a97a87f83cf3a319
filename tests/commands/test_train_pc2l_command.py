"""`gest-showcases train-pc2l` (and `train-generator --model pc2l|gpt2-ce`) read `--config FILE.yaml` through
`commands.arguments`, as every command does: shown in `--help`, the file's options overridden by the command line,
its text read as the same text on the command line is, and a wrong key one line naming the file.

The training itself (`train_pc2l.run`) is replaced by a recorder, so each test pins the parsed options; the real
runs are in tests/generation/test_pc2l_scripts.py and tests/baselines/test_train_generator_command.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from transformers import TrainingArguments

from gest_showcases import cli
from gest_showcases.commands import train_pc2l
from gest_showcases.generation.training_run import PC2LDataArguments, PC2LModelArguments

TABLE4_PC2L = Path(__file__).parents[2] / "examples" / "configs" / "pc2l.yaml"


def write_yaml(path, options: dict) -> str:
    path.write_text(yaml.safe_dump(options), encoding="utf-8")
    return str(path)


@pytest.fixture
def runs(monkeypatch):
    """The arguments each training run was given, instead of training."""
    calls = []
    monkeypatch.setattr(train_pc2l, "run", lambda *args, **kwargs: calls.append(args))
    return calls


def test_help_lists_config_file_and_output_dir(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train-pc2l", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--config FILE.yaml" in out and "YAML file of this command's options" in out
    assert "--output_dir OUTPUT_DIR" in out and "--lambda1 LAMBDA1" in out


def test_a_table4_file_gives_the_options_and_flags_override_it(tmp_path, runs):
    argv = ["train-pc2l", f"--config={TABLE4_PC2L}", "--dataset", "d", "--features", "f",
            "--output_dir", str(tmp_path), "--image_contrastive", "cl", "--learning_rate", "3e-4"]  # fmt: skip
    assert cli.main(argv) == 0
    ((model_args, data_args, training_args),) = runs
    assert isinstance(model_args, PC2LModelArguments) and isinstance(data_args, PC2LDataArguments)
    assert isinstance(training_args, TrainingArguments)
    # The flags win over the file ...
    assert model_args.image_contrastive == "cl" and training_args.learning_rate == 3e-4
    # ... and the file's other options stand.
    assert model_args.review_contrastive == "pcl" and model_args.decoder == "gpt2"
    assert training_args.per_device_train_batch_size == 32 and training_args.num_train_epochs == 10
    assert (data_args.dataset, data_args.max_length) == ("d", 64)
    assert training_args.output_dir == str(tmp_path)


def test_file_text_is_read_as_the_command_line_reads_it(tmp_path, runs):
    # YAML reads `1e-4` (no dot) and quoted values as strings; train-pc2l's old pre-parser passed them to the flags'
    # types, so a float, int or bool option given so must still be one.
    config = tmp_path / "run.yaml"
    config.write_text(
        "tokenizer: t\ndataset: d\nfeatures: f\nlearning_rate: 1e-4\nmax_steps: '2'\n"
        "lora_self_attention: 'false'\nreport_to: [none]\n",
        encoding="utf-8",
    )
    assert train_pc2l.main(["--config", str(config), "--output_dir", str(tmp_path)]) == 0
    ((model_args, _, training_args),) = runs
    assert training_args.learning_rate == 1e-4 and isinstance(training_args.learning_rate, float)
    assert training_args.max_steps == 2
    assert model_args.lora_self_attention is False
    assert training_args.report_to == []


@pytest.mark.parametrize(
    ("options", "named"), [({"lamda1": 0.3}, "lamda1"), ({"learning_rate": "fast"}, "learning_rate")]
)
def test_a_wrong_key_or_value_in_the_file_is_one_line_naming_it(tmp_path, runs, capsys, options, named):
    config = write_yaml(tmp_path / "bad.yaml", {"tokenizer": "t", "dataset": "d", "features": "f", **options})
    assert cli.main(["train-pc2l", "--config", config, "--output_dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "bad.yaml" in error and named in error
    assert runs == []


def test_train_generator_reads_pc2l_options_from_the_file_and_keeps_the_runs_own(tmp_path, runs):
    # --model in the file decides which options the rest are; gpt2-ce's options come last and win.
    config = write_yaml(
        tmp_path / "generator.yaml",
        {"model": "gpt2-ce", "generate_test": False, "tokenizer": "t", "dataset": "d", "features": "f",
         "lambda1": 0.5, "image_contrastive": "ccl"},
    )  # fmt: skip
    argv = ["train-generator", "--config", config, "--output_dir", str(tmp_path), "--lambda1", "0.7"]
    assert cli.main(argv) == 0
    ((model_args, data_args, training_args),) = runs
    assert (model_args.image_contrastive, model_args.review_contrastive) == ("none", "none")
    assert model_args.lambda1 == 0.7 and data_args.dataset == "d"
    assert training_args.output_dir == str(tmp_path)
