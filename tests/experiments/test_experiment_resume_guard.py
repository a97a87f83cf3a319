"""A resumed experiment never reuses cells made with other arguments under the new call's labels."""

import json

import pytest

from gest_showcases.commands import experiment as experiment_command
from gest_showcases.commands.experiment import (
    CELL_ARGUMENTS_FILE,
    Experiment,
    ExperimentArguments,
    cell_arguments,
    check_resumed_folder,
    run_experiment,
)
from gest_showcases.errors import InputError
from gest_showcases.experiments.grid import CE_ONLY, PC2L
from gest_showcases.experiments.world import QUICK


def _parts(**changes):
    args = ExperimentArguments(**changes)
    experiment = Experiment(args)
    return cell_arguments(args, experiment.size, experiment.suffix)


def _check(folder, **changes):
    """The check `run_experiment` makes first, for a call into `folder` with these arguments."""
    check_resumed_folder(Experiment(ExperimentArguments(output_dir=str(folder), **changes)))


def test_the_parts_name_what_decides_each_folder_part():
    assert _parts() == {
        "world": {"quick": False, "num_reviews": 3000, "clip_extra_reviews": 0, "world_seed": 0},
        "clip": {"pc2l_epochs": 10, "generator_batch_size": 16, "generator_learning_rate": 0.0, "max_test_examples": 0},
    }
    assert _parts(num_reviews=1000, clip_extra_reviews=2000)["world"]["clip_extra_reviews"] == 2000
    assert _parts(quick=True, clip_extra_reviews=2000)["world"]["clip_extra_reviews"] == 0  # QUICK has no such world
    oracle = _parts(features="oracle", oracle_noise=1.0, decoder="smollm2", smollm2_epochs=1)
    assert oracle["oracle"]["oracle_noise"] == 1.0 and oracle["oracle-smollm2"] == {"smollm2_epochs": 1}
    variant = _parts(variant="t", generator_args="--contrastive_target text")
    assert variant["clip-t"] == {"generator_args": "--contrastive_target text", "variant_ce_only": False}
    every_row = _parts(variant="n", generator_args="--image_feature_noise 0.5", variant_ce_only=True)
    assert every_row["clip-n"] == {"generator_args": "--image_feature_noise 0.5", "variant_ce_only": True}
    assert _parts(quick=True, num_reviews=3000)["world"]["num_reviews"] != 3000  # the size the world really has


def _finished_cells(folder, *parts):
    for part in parts:
        (folder / part / ".done").mkdir(parents=True)


def test_other_cell_arguments_are_refused_and_new_parts_are_added(tmp_path):
    _finished_cells(tmp_path, "world", "clip", "oracle")
    _check(tmp_path)
    _check(tmp_path, seeds=5, tables=["2"], num_threads=1)  # these do not change a cell
    with pytest.raises(InputError, match=r"clip cells made with --pc2l_epochs 10; this call asks for 30"):
        _check(tmp_path, pc2l_epochs=30)
    # The batch decides every generator's in-batch negatives and its steps.
    with pytest.raises(InputError, match=r"clip cells made with --generator_batch_size 16; this call asks for 32"):
        _check(tmp_path, generator_batch_size=32)
    with pytest.raises(InputError, match=r"clip cells made with --generator_learning_rate 0.0; this call asks for 0.0001"):
        _check(tmp_path, generator_learning_rate=1e-4)
    with pytest.raises(InputError, match=r"world cells made with --num_reviews 3000; this call asks for 1000"):
        _check(tmp_path, num_reviews=1000, features="oracle")
    _check(tmp_path, features="oracle", pc2l_epochs=30)  # its own part: 30 is fine there
    with pytest.raises(InputError, match=r"oracle cells made with --oracle_noise 0.5; this call asks for 1.0"):
        _check(tmp_path, features="oracle", pc2l_epochs=30, oracle_noise=1.0)
    recorded = json.loads((tmp_path / CELL_ARGUMENTS_FILE).read_text())
    assert recorded["clip"]["pc2l_epochs"] == 10 and recorded["oracle"] == {
        "pc2l_epochs": 30, "generator_batch_size": 16, "generator_learning_rate": 0.0, "max_test_examples": 0,
        "oracle_noise": 0.5,
    }  # fmt: skip


def test_a_resumed_run_with_other_epochs_stops_before_any_stage(tmp_path, monkeypatch):
    _finished_cells(tmp_path, "clip")
    _check(tmp_path)

    def no_stage(self):
        raise AssertionError("the run must stop before it touches the world")

    monkeypatch.setattr(experiment_command.Experiment, "prepare_world", no_stage)
    with pytest.raises(InputError, match="--pc2l_epochs 10"):
        run_experiment(ExperimentArguments(output_dir=str(tmp_path), pc2l_epochs=30))


def test_a_world_made_before_a_new_stage_runs_that_stage_alone(tmp_path, monkeypatch):
    """A world folder from before the alignment classifier existed gains it; its finished stages are not rerun."""
    from gest_showcases.commands.demo import world_stages

    calls = []
    real = world_stages(tmp_path / "world", QUICK, seed=0, threads=1)
    keys = [key for key, *_ in real]
    assert "alignment-classifier" in keys and keys.index("alignment-classifier") == keys.index("distill") + 1

    def fake_stages(work, size, seed, threads, lm_name):
        return [(key, label, lambda key=key: calls.append(key) or 0, ()) for key, label, *_ in real]

    monkeypatch.setattr(experiment_command, "world_stages", fake_stages)
    experiment = Experiment(ExperimentArguments(output_dir=str(tmp_path), quick=True, seeds=1, tables=["2"]))
    for key in keys:
        if key != "alignment-classifier":
            marker = experiment.world / ".done" / key
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("{}")
    experiment.prepare_world()
    assert calls == ["alignment-classifier"]
    experiment.prepare_world()
    assert calls == ["alignment-classifier"]  # marked done: not again


def _experiment(folder, **changes):
    return Experiment(ExperimentArguments(output_dir=str(folder), **changes))


@pytest.mark.parametrize("first", [True, False])
def test_a_variant_resumed_with_the_other_variant_ce_only_is_refused(tmp_path, first):
    # Its CE only row would be read from the cached scores of the other CE only.
    options = {"variant": "n", "generator_args": "--image_feature_noise 0.5"}
    cell = _experiment(tmp_path, **options, variant_ce_only=first).generator_dir(0, PC2L)
    (cell / "checkpoint-4").mkdir(parents=True)  # a cell to resume
    _check(tmp_path, **options, variant_ce_only=first)
    with pytest.raises(InputError, match=f"--variant_ce_only {first!r}; this call asks for {not first!r}"):
        _check(tmp_path, **options, variant_ce_only=not first)


def test_a_variant_recorded_before_variant_ce_only_existed_was_made_without_it(tmp_path):
    (tmp_path / CELL_ARGUMENTS_FILE).write_text(
        json.dumps({"clip-n": {"generator_args": "--image_feature_noise 0.5"}})
    )
    options = {"variant": "n", "generator_args": "--image_feature_noise 0.5"}
    (_experiment(tmp_path, **options).generator_dir(1, PC2L) / ".done").mkdir(parents=True)
    _check(tmp_path, **options)
    with pytest.raises(InputError, match="--variant_ce_only False"):
        _check(tmp_path, **options, variant_ce_only=True)


@pytest.mark.parametrize("where", ["cell", "scores"])
def test_a_decoder_or_variant_is_refused_where_the_experiment_keeps_its_cells(tmp_path, where):
    """Session 31's review: the guard looked for these parts' cells in `<features><suffix>/`, a folder the experiment
    never writes, so other --smollm2_epochs, --generator_args or --variant_ce_only reused the finished cells."""

    def finish(**changes):
        experiment = _experiment(tmp_path, **changes)
        if where == "cell":
            (experiment.generator_dir(0, CE_ONLY) / ".done").mkdir(parents=True)
        else:  # the seed's scores alone: its generations would be reused under the new call's labels
            experiment.seed_dir(0).mkdir(parents=True, exist_ok=True)
            (experiment.seed_dir(0) / f"scores{experiment.suffix}.json").write_text("{}")

    for features in ("clip", "oracle"):
        smollm2 = {"features": features, "decoder": "smollm2"}
        _check(tmp_path, **smollm2, smollm2_epochs=2)
        finish(**smollm2, smollm2_epochs=2)
        with pytest.raises(InputError, match=f"{features}-smollm2 cells made with --smollm2_epochs 2; this call asks for 1"):
            _check(tmp_path, **smollm2, smollm2_epochs=1)
    variant = {"variant": "n", "variant_ce_only": True}
    _check(tmp_path, **variant, generator_args="--image_feature_noise 0.3")
    finish(**variant, generator_args="--image_feature_noise 0.3")
    with pytest.raises(InputError, match="clip-n cells made with --generator_args .--image_feature_noise 0.3."):
        _check(tmp_path, **variant, generator_args="--image_feature_noise 0.2")
    # The same variant name on a SmolLM2 decoder is another part, with cells of its own.
    _check(tmp_path, **variant, decoder="smollm2", generator_args="--image_feature_noise 0.2")


def test_a_variant_is_not_locked_by_the_cells_it_shares(tmp_path):
    """A variant without --variant_ce_only takes CE only from the run without --variant: that cell is not the
    variant's, and does not fix its options."""
    variant = {"variant": "v", "generator_args": "--lambda1 0.3"}
    _check(tmp_path, **variant)
    shared = _experiment(tmp_path, **variant).generator_dir(0, CE_ONLY)
    assert shared == _experiment(tmp_path).generator_dir(0, CE_ONLY)
    (shared / ".done").mkdir(parents=True)
    _check(tmp_path, variant="v", generator_args="--lambda1 0.2")


def test_a_world_recorded_before_clip_extra_reviews_existed_has_no_separate_world(tmp_path):
    (tmp_path / CELL_ARGUMENTS_FILE).write_text(json.dumps({"world": {"quick": False, "num_reviews": 1000}}))
    _finished_cells(tmp_path, "world")
    _check(tmp_path, num_reviews=1000)
    # Its CLIP trained on the world alone: a call asking for the demo's separate world must not reuse it.
    with pytest.raises(InputError, match="world cells made with --clip_extra_reviews 0; this call asks for 2000"):
        _check(tmp_path, num_reviews=1000, clip_extra_reviews=2000)


def test_a_separate_clip_world_too_small_to_make_is_refused_before_any_stage():
    with pytest.raises(InputError, match="--clip_extra_reviews 5: give 0"):
        ExperimentArguments(clip_extra_reviews=5)


def test_another_world_seed_makes_another_world_and_is_never_mixed_with_the_first(tmp_path, monkeypatch):
    (tmp_path / CELL_ARGUMENTS_FILE).write_text(json.dumps({"world": {"quick": False, "num_reviews": 1000}}))
    _finished_cells(tmp_path, "world")
    _check(tmp_path, num_reviews=1000)  # recorded before --world_seed: world seed 0
    with pytest.raises(InputError, match="world cells made with --world_seed 0; this call asks for 1"):
        _check(tmp_path, num_reviews=1000, world_seed=1)
    seeds = []

    def fake_stages(work, size, seed, threads, lm_name):
        seeds.append(seed)
        return []

    monkeypatch.setattr(experiment_command, "world_stages", fake_stages)
    Experiment(ExperimentArguments(output_dir=str(tmp_path / "other"), quick=True, world_seed=7)).prepare_world()
    assert seeds == [7]
    with pytest.raises(InputError, match="--world_seed"):
        ExperimentArguments(world_seed=-1)


def test_a_part_without_cells_takes_the_new_arguments(tmp_path):
    """Session 24's audit: a variant whose options failed before its first cell recorded them, and the corrected
    call into the same folder was refused, after the world had been made for it. (Its example, `--encoder_attention_heads
    3`, is refused before the world since session 25; a cell can still fail at run time, e.g. out of memory.)"""
    bad, good = "--lambda1 0.3", "--lambda1 0.2"
    _check(tmp_path, variant="v", generator_args=bad)
    cell = _experiment(tmp_path, variant="v", generator_args=good).generator_dir(0, PC2L)
    cell.mkdir(parents=True)  # made, but no cell finished or checkpointed
    _check(tmp_path, variant="v", generator_args=good)
    assert json.loads((tmp_path / CELL_ARGUMENTS_FILE).read_text())["clip-v"]["generator_args"] == good
    (cell / ".done").mkdir()
    with pytest.raises(InputError, match="--generator_args"):
        _check(tmp_path, variant="v", generator_args=bad)
