"""`experiment --decoder smollm2 --generators ...`: which cells run, where they live, what train-pc2l is given."""

from dataclasses import replace
from pathlib import Path

import pytest

from gest_showcases.commands import experiment as experiment_command
from gest_showcases.commands.experiment import Experiment, ExperimentArguments
from gest_showcases.errors import InputError
from gest_showcases.experiments import grid, world
from gest_showcases.experiments.grid import CE_ONLY, PC2L


def test_generators_choose_table2_rows_and_table4_keeps_all_five(tmp_path):
    only_pc2l = ExperimentArguments(output_dir=str(tmp_path), tables=["2"], generators=["pc2l"])
    assert grid.pc2l_systems(only_pc2l) == [PC2L]
    both = ExperimentArguments(output_dir=str(tmp_path), tables=["2"])
    assert grid.pc2l_systems(both) == [CE_ONLY, PC2L]
    ablation = ExperimentArguments(output_dir=str(tmp_path), tables=["4"], generators=["pc2l"])
    assert grid.pc2l_systems(ablation) == list(grid.LOSS_CONFIGS)


def test_another_decoder_keeps_every_cell_apart_ce_only_included(tmp_path):
    default = Experiment(ExperimentArguments(output_dir=str(tmp_path)))
    smollm2 = Experiment(ExperimentArguments(output_dir=str(tmp_path), decoder="smollm2"))
    variant = Experiment(ExperimentArguments(output_dir=str(tmp_path), variant="v", generator_args="--lambda1 0.3"))
    assert smollm2.suffix == "-smollm2"
    for system in (CE_ONLY, PC2L):
        assert smollm2.generator_dir(0, system) != default.generator_dir(0, system)
    # A variant changes what the losses see: its CE-only cell is the default run's.
    assert variant.generator_dir(0, CE_ONLY) == default.generator_dir(0, CE_ONLY)
    assert variant.generator_dir(0, PC2L) != default.generator_dir(0, PC2L)


@pytest.mark.parametrize("decoder", ["gpt2", "smollm2"])
def test_train_generator_passes_the_decoders_options_epochs_and_rate(tmp_path, monkeypatch, decoder):
    from gest_showcases.commands import train_pc2l

    seen = []
    monkeypatch.setattr(train_pc2l, "main", lambda argv: seen.append(argv) or 0)
    wheel = tmp_path / "wheel"
    monkeypatch.setattr(
        experiment_command, "generator_decoder_argv",
        lambda name, work, lm_name: ["--decoder", str(wheel if name == "smollm2" else Path(work) / lm_name), "--lora"][
            : 3 if name == "smollm2" else 2
        ],
    )  # fmt: skip
    args = ExperimentArguments(
        output_dir=str(tmp_path), decoder=decoder, smollm2_epochs=3, pc2l_epochs=7, generator_batch_size=32
    )
    Experiment(args).train_generator(1, PC2L)
    # The paper's learning rate, given: it replaces either decoder's own.
    Experiment(replace(args, output_dir=str(tmp_path / "paper"), generator_learning_rate=1e-4)).train_generator(1, PC2L)
    argv, paper_rate = seen
    value = dict(zip(argv, argv[1:], strict=False))
    assert float(dict(zip(paper_rate, paper_rate[1:], strict=False))["--learning_rate"]) == 1e-4
    assert value["--per_device_train_batch_size"] == "32"
    if decoder == "smollm2":
        assert value["--decoder"] == str(wheel) and "--lora" in argv
        # Activations recomputed in the backward pass, as the demo's SmolLM2 (half the memory, the same weights).
        assert value["--activation_checkpointing"] == "True"
        assert value["--num_train_epochs"] == "3"
        assert float(value["--learning_rate"]) == world.SMOLLM2_LEARNING_RATE
    else:
        assert value["--decoder"] == str(tmp_path.resolve() / "world" / "gpt2") and "--lora" not in argv
        assert "--activation_checkpointing" not in argv and "--gradient_checkpointing" not in argv
        assert value["--num_train_epochs"] == "7"
        assert float(value["--learning_rate"]) == world.PC2L_LEARNING_RATE


def test_variant_ce_only_trains_ce_only_with_the_variants_options_in_its_own_cell(tmp_path, monkeypatch):
    from gest_showcases.commands import train_pc2l

    seen = []
    monkeypatch.setattr(train_pc2l, "main", lambda argv: seen.append(argv) or 0)
    default = Experiment(ExperimentArguments(output_dir=str(tmp_path)))
    options = "--image_feature_noise 0.5"
    losses_only = Experiment(
        ExperimentArguments(output_dir=str(tmp_path), variant="n", generator_args=options)
    )
    every_row = Experiment(
        ExperimentArguments(
            output_dir=str(tmp_path), variant="n", generator_args=options, variant_ce_only=True
        )
    )
    assert every_row.generator_dir(0, CE_ONLY) not in (
        default.generator_dir(0, CE_ONLY),
        every_row.generator_dir(0, PC2L),
    )
    assert every_row.generator_dir(0, PC2L) == losses_only.generator_dir(0, PC2L)
    losses_only.train_generator(0, CE_ONLY)
    every_row.train_generator(0, CE_ONLY)
    plain, noisy = seen
    assert "--image_feature_noise" not in plain
    assert noisy[noisy.index("--image_feature_noise") + 1] == "0.5"
    assert noisy.index("--image_feature_noise") > noisy.index(
        "--image_contrastive"
    )  # the variant's options win


def test_variant_ce_only_needs_the_variants_options(tmp_path):
    with pytest.raises(InputError, match="--variant_ce_only"):
        Experiment(ExperimentArguments(output_dir=str(tmp_path), variant="n", variant_ce_only=True))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ("--image_feature_noise 0.5 --image_contrastive cl", "--image_contrastive"),
        ("--contrastive-score=likelihood", "--contrastive_score"),  # either spelling, either form
        ("--lambda1 0.05", "--lambda1"),
    ],
)
def test_variant_ce_only_refuses_loss_options_that_would_make_ce_only_contrastive(tmp_path, options, named):
    with pytest.raises(InputError, match=named):
        Experiment(
            ExperimentArguments(
                output_dir=str(tmp_path), variant="n", generator_args=options, variant_ce_only=True
            )
        )
    # Without the flag the same options are a plain variant of the contrastive rows.
    Experiment(ExperimentArguments(output_dir=str(tmp_path), variant="n", generator_args=options))


@pytest.mark.parametrize("decoder", ["gpt2", "smollm2"])
def test_a_smollm2_cell_keeps_checkpoints_resumes_from_them_and_removes_them_when_done(
    tmp_path, monkeypatch, decoder
):
    from gest_showcases.commands import train_pc2l

    seen = []

    def fake_train(argv):
        seen.append(argv)
        out = Path(dict(zip(argv, argv[1:], strict=False))["--output_dir"])
        (out / "checkpoint-50").mkdir(parents=True, exist_ok=True)  # what a training that saves checkpoints leaves
        (out / "checkpoint-50" / "trainer_state.json").write_text("{}")
        (out / "model.safetensors").write_text("")
        return 0

    monkeypatch.setattr(train_pc2l, "main", fake_train)
    monkeypatch.setattr(experiment_command, "generator_decoder_argv", lambda name, work, lm_name: [])
    experiment = Experiment(ExperimentArguments(output_dir=str(tmp_path), decoder=decoder))
    out = experiment.generator_dir(0, PC2L)
    # A cell cut off earlier: a complete checkpoint, and a later one whose save was cut off.
    for step, complete in ((25, True), (50, False)):
        (out / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (out / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    if decoder == "gpt2":
        # Minutes-long cells save no checkpoints and resume nothing: a cut-off one trains again from the start.
        monkeypatch.setattr(train_pc2l, "main", lambda argv: seen.append(argv) or 0)
    assert experiment.train_generator(0, PC2L) == out
    (argv,) = seen
    value = dict(zip(argv, argv[1:], strict=False))
    if decoder == "smollm2":
        # trainer_argv's "no", then the cell's, which wins (the last one given: the dict keeps it too).
        assert argv.count("--save_strategy") == 2 and value["--save_strategy"] == "steps"
        assert value["--save_steps"] == str(experiment_command.CHECKPOINT_STEPS)
        assert value["--save_total_limit"] == "1" and value["--resume_from_checkpoint"] == "last"
        assert not list(out.glob("checkpoint-*")) and (out / "model.safetensors").exists()
    else:
        assert "--resume_from_checkpoint" not in argv and "--save_steps" not in argv
        assert value["--save_strategy"] == "no"
    assert (out / ".done").exists()


@pytest.mark.parametrize(
    ("decoder", "options", "refusal"),
    [
        # Options that contradict each other whatever the decoder: once checked for the GPT-2 stand-in only.
        ("smollm2", "--contrastive_score likelihood --hard_negative_gradients detached", "detached"),
        ("smollm2", "--cross_attention_every_n_layers 31", r"\[1, 30\]"),  # SmolLM2 has 30 layers
        ("gpt2", "--cross_attention_every_n_layers 2", "GPT-2 has cross-attention in every block"),
        ("gpt2", "--contrastive_target textx", "contrastive_target"),
    ],
)
def test_a_variant_is_checked_against_the_cells_decoder_before_any_work(tmp_path, decoder, options, refusal):
    args = ExperimentArguments(output_dir=str(tmp_path), decoder=decoder, variant="v", generator_args=options)
    with pytest.raises(InputError, match=refusal):
        Experiment(args)
    assert list(tmp_path.iterdir()) == []  # refused before the world was made


def test_a_smollm2_variant_that_fits_its_decoder_is_accepted(tmp_path):
    options = "--cross_attention_every_n_layers 5 --cross_attention_gate none"
    experiment = Experiment(
        ExperimentArguments(output_dir=str(tmp_path), decoder="smollm2", variant="v", generator_args=options)
    )
    assert experiment.variant_options == options.split()


def test_baselines_train_at_the_grids_batch_on_the_runs_stand_in(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(
        experiment_command, "train_baseline", lambda name, model, data, training: seen.append((model, training))
    )
    args = ExperimentArguments(output_dir=str(tmp_path), generator_batch_size=32, lm_hidden_size=96, lm_layers=3)
    experiment = Experiment(args)
    stand_in = experiment.world / "gpt2-96x3"
    stand_in.mkdir(parents=True)
    (stand_in / "config.json").write_text('{"n_embd": 96}')
    experiment.train_baseline(0, "peter")
    (experiment.baseline_dir(0, "peter") / ".done").unlink()  # trained again, at the paper's learning rate
    Experiment(replace(args, generator_learning_rate=1e-4)).train_baseline(0, "peter")
    (model_args, training_args), (_, paper_rate) = seen
    assert training_args.per_device_train_batch_size == 32
    assert training_args.learning_rate == world.PC2L_LEARNING_RATE and paper_rate.learning_rate == 1e-4
    assert model_args.tokenizer == str(stand_in) and "hidden_size=96" in model_args.config_overrides
