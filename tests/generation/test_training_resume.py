"""A long training command cut off mid-run resumes from its last checkpoint (`--resume_from_checkpoint`).

Oracle: the same command run without interruption. A run is "cut off" by keeping only a mid-epoch checkpoint of a
finished run in its folder (what a run killed after that save leaves); the rerun must then write the same weights
as the uninterrupted run, which needs the optimizer, scheduler, random states and the data position restored.
"""

import json
import logging
import os
import shutil

import pytest
import torch
from pc2l_fixtures import train_pc2l_argv
from safetensors.torch import load_file
from test_train_pc2l_any_decoder import GGUF_FILE, write_tiny_llama_gguf
from transformers import TrainingArguments

from gest_showcases import cli
from gest_showcases.commands import finetune_lm, train_pc2l
from gest_showcases.errors import InputError
from gest_showcases.experiments.world import SMOLLM2_TRAINING_OPTIONS
from gest_showcases.generation.trainer import PC2LTrainer
from gest_showcases.trainer_utils import FiniteTrainer, checkpoint_to_resume, last_complete_checkpoint

# 6 training examples at batch 3: 2 steps an epoch, 6 steps in all; checkpoint-3 falls inside the second epoch.
CHECKPOINTS = ["--save_strategy", "steps", "--save_steps", "3"]


def _cut_off_after(run, step: int) -> None:
    """Leave in `run` only checkpoint-`step`, as a run killed after saving it would."""
    for path in run.iterdir():
        if path.name != f"checkpoint-{step}":
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _weights(run, file: str) -> dict[str, torch.Tensor]:
    return load_file(str(run / file))


STEPS = []  # one entry per optimisation step that a counted trainer ran in this test


def _counting(trainer_class):
    """`trainer_class`, counting its optimisation steps in STEPS."""

    class Counting(trainer_class):
        def training_step(self, *args, **kwargs):
            STEPS.append(self.state.global_step + 1)
            return super().training_step(*args, **kwargs)

    return Counting


@pytest.fixture
def counted(monkeypatch):
    STEPS.clear()
    monkeypatch.setattr(train_pc2l, "PC2LTrainer", _counting(PC2LTrainer))
    monkeypatch.setattr(finetune_lm, "FiniteTrainer", _counting(FiniteTrainer))
    return STEPS


def _llama_gguf_options(assets) -> list[str]:
    """SmolLM2's path in the experiment: a Llama from a GGUF file, LoRA, a gated cross-attention block."""
    (assets / "lm").mkdir()
    write_tiny_llama_gguf(assets / "lm" / GGUF_FILE)
    lm = str(assets / "lm")
    return ["--decoder", lm, "--decoder_gguf_file", GGUF_FILE, "--tokenizer", lm,
            "--cross_attention_every_n_layers", "2", "--lora"]  # fmt: skip


@pytest.mark.parametrize("decoder", ["gpt2, PC2L's losses", "gpt2, LoRA", "llama gguf, LoRA, gated"])
def test_train_pc2l_cut_off_resumes_to_the_uninterrupted_weights(command_assets, decoder, caplog, counted):
    options = {
        "gpt2, PC2L's losses": ["--image_contrastive", "ccl", "--review_contrastive", "pcl"],
        "gpt2, LoRA": ["--lora"],
        "llama gguf, LoRA, gated": [],
    }[decoder]
    argv = [*train_pc2l_argv(command_assets, *options, *CHECKPOINTS), "--output_dir"]
    if decoder.startswith("llama"):
        argv = [*argv[:-1], *_llama_gguf_options(command_assets), "--output_dir"]  # the later flags win
    whole = command_assets / "whole"
    assert train_pc2l.main([*argv, str(whole)]) == 0
    assert counted == [1, 2, 3, 4, 5, 6]
    cut = command_assets / "cut"
    shutil.copytree(whole, cut)
    _cut_off_after(cut, 3)
    with caplog.at_level(logging.WARNING):
        assert train_pc2l.main([*argv, str(cut), "--resume_from_checkpoint", "last"]) == 0
    assert f"resuming from {cut / 'checkpoint-3'}" in caplog.text
    assert counted[6:] == [4, 5, 6]  # the resumed run ran steps 4-6 only

    file = "model.safetensors" if decoder == "gpt2, PC2L's losses" else "adapter_model.safetensors"
    expected, resumed = _weights(whole, file), _weights(cut, file)
    assert expected.keys() == resumed.keys()
    for name in expected:
        torch.testing.assert_close(resumed[name], expected[name], rtol=0, atol=1e-6, msg=name)
    # The checkpoint holds weights that the last three steps changed: resuming from it is not a copy of the end.
    at_step_3 = _weights(whole / "checkpoint-3", file)
    assert any(not torch.equal(at_step_3[name], expected[name]) for name in expected)


def test_activation_checkpointing_trains_the_same_weights_bit_for_bit(command_assets, monkeypatch):
    """The demo's SmolLM2 generators train with `--activation_checkpointing True` (`SMOLLM2_TRAINING_OPTIONS`) for half
    the memory (session 29): the gated LoRA decoder's run must write the same weights either way, PC2L's hard
    negatives and LoRA dropout included."""
    import transformers.modeling_utils

    options = [*_llama_gguf_options(command_assets), "--image_contrastive", "ccl", "--review_contrastive", "pcl"]
    argv = [*train_pc2l_argv(command_assets), *options, "--output_dir"]
    assert train_pc2l.main([*argv, str(command_assets / "plain")]) == 0
    recomputed = []
    checkpoint = transformers.modeling_utils.checkpoint

    def counted(function, *args, **kwargs):
        recomputed.append(function)
        return checkpoint(function, *args, **kwargs)

    monkeypatch.setattr(transformers.modeling_utils, "checkpoint", counted)
    assert train_pc2l.main([*argv, str(command_assets / "recomputed"), *SMOLLM2_TRAINING_OPTIONS]) == 0
    assert recomputed  # the layers did go through activation checkpointing
    expected = _weights(command_assets / "plain", "adapter_model.safetensors")
    got = _weights(command_assets / "recomputed", "adapter_model.safetensors")
    assert expected.keys() == got.keys() and len(expected) > 0
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0, msg=name)


def test_without_the_flag_a_run_starts_over_and_says_how_to_continue(command_assets, caplog, counted):
    argv = [*train_pc2l_argv(command_assets, *CHECKPOINTS), "--output_dir"]
    earlier = command_assets / "earlier"
    assert train_pc2l.main([*argv, str(earlier)]) == 0
    _cut_off_after(earlier, 3)
    # Another learning rate: resuming would keep steps 1-3 of the earlier run. (A run saving checkpoints of its own
    # is refused there: test_a_fresh_run_that_saves_checkpoints_is_refused_beside_an_earlier_runs.)
    counted.clear()
    with caplog.at_level(logging.WARNING):
        assert train_pc2l.main([*argv, str(earlier), "--learning_rate", "1e-3", "--save_strategy", "no"]) == 0
    assert "training from the start (give --resume_from_checkpoint last to continue that run)" in caplog.text
    assert "resuming" not in caplog.text and counted == [1, 2, 3, 4, 5, 6]
    fresh = command_assets / "fresh"  # the oracle: the same run in an empty folder
    assert train_pc2l.main([*argv, str(fresh), "--learning_rate", "1e-3"]) == 0
    expected, got = _weights(fresh, "model.safetensors"), _weights(earlier, "model.safetensors")
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0, msg=name)


@pytest.mark.slow
def test_finetune_lm_resumes_from_the_checkpoint_it_is_given(command_assets, counted):
    argv = ["--dataset", str(command_assets / "dataset"), "--tokenizer", str(command_assets / "tokenizer"),
            "--decoder", str(command_assets / "gpt2"), "--block_size", "8", "--max_steps", "6",
            "--per_device_train_batch_size", "2", "--report_to", "none", "--use_cpu", "True", "--disable_tqdm",
            "True", *CHECKPOINTS, "--output_dir"]  # fmt: skip
    whole, resumed = command_assets / "whole", command_assets / "resumed"
    assert finetune_lm.main([*argv, str(whole)]) == 0
    # Given explicitly, from another folder: the new folder starts empty.
    assert (
        finetune_lm.main([*argv, str(resumed), "--resume_from_checkpoint", str(whole / "checkpoint-3")]) == 0
    )
    assert counted == [1, 2, 3, 4, 5, 6, 4, 5, 6]
    expected, got = _weights(whole, "model.safetensors"), _weights(resumed, "model.safetensors")
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-6, msg=name)


@pytest.mark.parametrize("command", ["train-pc2l", "finetune-lm", "train-generator"])
@pytest.mark.parametrize("resume", ["a model folder", "last"])
def test_a_checkpoint_that_is_not_there_is_one_line(command_assets, command, resume, capsys):
    run = command_assets / "run"
    given = (
        str(command_assets / "gpt2") if resume == "a model folder" else "last"
    )  # no trainer_state.json; no run
    argv = {
        "train-pc2l": train_pc2l_argv(command_assets),
        "finetune-lm": ["--dataset", str(command_assets / "dataset"), "--tokenizer", str(command_assets / "tokenizer"),
                        "--use_cpu", "True", "--report_to", "none"],
        "train-generator": ["--model", "st", "--dataset", str(command_assets / "dataset"), "--features",
                            "unused", "--tokenizer", str(command_assets / "tokenizer"), "--use_cpu", "True",
                            "--report_to", "none"],
    }[command]  # fmt: skip
    assert cli.main([command, *argv, "--resume_from_checkpoint", given, "--output_dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    expected = (
        "not a checkpoint folder that Trainer saved"
        if resume == "a model folder"
        else "no complete checkpoint"
    )
    assert err.count("\n") == 0 and expected in err, err
    assert not run.exists() or not any(run.iterdir())


def test_a_finished_runs_folder_is_not_resumed(command_assets, capsys):
    """The run folder keeps its trainer_state.json (the log history, `save_state`), as a checkpoint does: resuming it
    trained nothing and rewrote its results without train_loss (session 30's review). Refused, the results kept."""
    run = command_assets / "run"
    assert train_pc2l.main(train_pc2l_argv(command_assets)) == 0
    results = (run / "all_results.json").read_text()
    capsys.readouterr()  # the training run's own output
    argv = train_pc2l_argv(command_assets, "--resume_from_checkpoint", str(run))
    assert cli.main(["train-pc2l", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "a finished run's folder, not a checkpoint" in err, err
    assert (run / "all_results.json").read_text() == results


def _args(output_dir, **kwargs) -> TrainingArguments:
    return TrainingArguments(output_dir=str(output_dir), report_to="none", use_cpu=True, **kwargs)


def test_the_last_complete_checkpoint_is_chosen(tmp_path, caplog):
    logger = logging.getLogger("test")
    assert last_complete_checkpoint(tmp_path / "absent") is None
    assert checkpoint_to_resume(_args(tmp_path), logger) is None
    for step in (2, 10, 12):
        (tmp_path / f"checkpoint-{step}").mkdir()
    for step in (2, 10):
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()  # not a checkpoint name
    # checkpoint-12 was being saved when the run was cut off (no trainer_state.json yet): the last complete one is
    # checkpoint-10, by step number (a text sort would put checkpoint-2 last).
    with caplog.at_level(logging.WARNING):
        for given in ("last", "True"):
            assert checkpoint_to_resume(_args(tmp_path, resume_from_checkpoint=given), logger) == str(
                tmp_path / "checkpoint-10"
            )
    assert "checkpoint-12 is incomplete" in caplog.text
    # Cut off while its trainer_state.json was written (Trainer writes it in place): not complete either.
    (tmp_path / "checkpoint-12" / "trainer_state.json").write_text('{"global_step": 1')
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    (tmp_path / "checkpoint-12" / "trainer_state.json").write_text('{"global_step": 12}')
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-12"
    (tmp_path / "checkpoint-12" / "trainer_state.json").unlink()
    # No flag: from the start, with a warning, for a run that saves no checkpoint of its own.
    assert checkpoint_to_resume(_args(tmp_path, save_strategy="no"), logger) is None
    given = tmp_path / "checkpoint-2"
    assert checkpoint_to_resume(_args(tmp_path, resume_from_checkpoint=str(given)), logger) == str(given)
    with pytest.raises(InputError, match="checkpoint-12: not a checkpoint folder"):
        checkpoint_to_resume(_args(tmp_path, resume_from_checkpoint=str(tmp_path / "checkpoint-12")), logger)


def test_a_fresh_run_that_saves_checkpoints_is_refused_beside_an_earlier_runs(command_assets, capsys):
    """Session 28's resume audit: a fresh `train-pc2l` into a folder holding an earlier run's `checkpoint-6` saved its
    own `checkpoint-3` beside it; killed, `--resume_from_checkpoint last` resumed the earlier run (the highest step)."""
    run = command_assets / "run"
    argv = [*train_pc2l_argv(command_assets), "--output_dir", str(run), *CHECKPOINTS]
    assert train_pc2l.main(argv) == 0
    assert last_complete_checkpoint(run) == run / "checkpoint-6"
    before = sorted(path.name for path in run.iterdir())
    capsys.readouterr()
    assert cli.main(["train-pc2l", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"holds {run / 'checkpoint-6'}, an earlier run's checkpoint" in err, err
    assert sorted(path.name for path in run.iterdir()) == before  # nothing written, nothing removed
    # Continuing it is allowed (the earlier run is finished: nothing left to train, and its train_loss stays, where
    # Trainer's 0.0 for no step overwrote it: session 28's resume audit), and so is a run saving none.
    results = json.loads((run / "all_results.json").read_text())
    assert train_pc2l.main([*argv, "--resume_from_checkpoint", "last"]) == 0
    assert json.loads((run / "all_results.json").read_text())["train_loss"] == results["train_loss"] > 0
    # An all_results.json older than the checkpoint may be another run's (the review's case: a run killed after its
    # last checkpoint, beside an earlier run's results): no train_loss then, rather than the other run's.
    state = run / "checkpoint-6" / "trainer_state.json"
    os.utime(run / "all_results.json", (state.stat().st_mtime - 60,) * 2)
    assert train_pc2l.main([*argv, "--resume_from_checkpoint", "last"]) == 0
    assert "train_loss" not in json.loads((run / "all_results.json").read_text())
    assert train_pc2l.main([*train_pc2l_argv(command_assets), "--output_dir", str(run), "--save_strategy", "no"]) == 0


def test_saving_checkpoints_does_not_change_the_model(command_assets):
    # The experiment saves checkpoints in its long cells only: a cell must train the same model either way.
    argv = [*train_pc2l_argv(command_assets, "--image_contrastive", "ccl"), "--output_dir"]
    assert train_pc2l.main([*argv, str(command_assets / "without")]) == 0
    assert train_pc2l.main([*argv, str(command_assets / "with"), *CHECKPOINTS]) == 0
    assert (command_assets / "with" / "checkpoint-3").is_dir()
    expected = _weights(command_assets / "without", "model.safetensors")
    got = _weights(command_assets / "with", "model.safetensors")
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(
    ("damaged", "cut"),
    [("model.safetensors", 100), ("optimizer.pt", 0), ("scheduler.pt", 10)],
)
def test_a_checkpoint_whose_files_do_not_read_is_one_line_naming_an_earlier_one(tmp_path, damaged, cut):
    """Session 26's audit: `--resume_from_checkpoint last` on a checkpoint whose weights or optimizer state were cut
    (a full disk) failed with a SafetensorError or EOFError traceback once the data and model were ready."""
    from safetensors.torch import save_file

    logger = logging.getLogger("test")
    for step in (5, 10):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text("{}")
        save_file({"weight": torch.ones(4, 4)}, folder / "model.safetensors")
        torch.save({"state": {0: {"exp_avg": torch.zeros(4)}}}, folder / "optimizer.pt")
        torch.save({"last_epoch": 3}, folder / "scheduler.pt")
        torch.save({"python": (3, (1, 2), None)}, folder / "rng_state.pth")  # a pickle Trainer reads itself
    # Whole files resume (the random states are not opened here).
    assert checkpoint_to_resume(_args(tmp_path, resume_from_checkpoint="last"), logger) == str(tmp_path / "checkpoint-10")
    path = tmp_path / "checkpoint-10" / damaged
    path.write_bytes(path.read_bytes()[:cut])
    for given in ("last", str(tmp_path / "checkpoint-10")):
        with pytest.raises(InputError) as caught:
            checkpoint_to_resume(_args(tmp_path, resume_from_checkpoint=given), logger)
        message = str(caught.value)
        assert message.startswith(f"--resume_from_checkpoint {given}: {path} does not read (") and "\n" not in message
        assert message.endswith(f"give --resume_from_checkpoint {tmp_path / 'checkpoint-5'}")
