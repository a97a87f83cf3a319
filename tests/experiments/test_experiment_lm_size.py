"""`experiment --lm_hidden_size/--lm_layers`: a stand-in GPT-2 of another size, trained beside the world's, whose
cells (CE only included) and tables are kept apart from the default's."""

import json

import pytest

from gest_showcases import cli
from gest_showcases.commands.demo import world_stages
from gest_showcases.commands.experiment import Experiment, ExperimentArguments
from gest_showcases.errors import InputError
from gest_showcases.experiments.grid import CE_ONLY, PC2L
from gest_showcases.experiments.world import QUICK, DemoSize, generator_decoder_argv, stand_in_lm_name


def test_another_size_keeps_its_stand_in_cells_and_baselines_apart(tmp_path):
    default = Experiment(ExperimentArguments(output_dir=str(tmp_path)))
    # The demo's size given explicitly is the default run, its folders included.
    explicit = Experiment(ExperimentArguments(output_dir=str(tmp_path), lm_hidden_size=64, lm_layers=2))
    sized = Experiment(ExperimentArguments(output_dir=str(tmp_path), lm_hidden_size=128, lm_layers=4))
    variant = Experiment(
        ExperimentArguments(
            output_dir=str(tmp_path), lm_hidden_size=128, lm_layers=4, variant="v", generator_args="--lambda1 0.3"
        )
    )
    assert (default.lm_name, default.suffix) == (explicit.lm_name, explicit.suffix) == ("gpt2", "")
    assert (sized.size.lm_hidden_size, sized.size.lm_layers) == (128, 4)
    assert (sized.lm_name, sized.suffix, variant.suffix) == ("gpt2-128x4", "-gpt2-128x4", "-gpt2-128x4-v")
    for system in (CE_ONLY, PC2L):
        assert explicit.generator_dir(0, system) == default.generator_dir(0, system)
        assert sized.generator_dir(0, system) != default.generator_dir(0, system)
    assert sized.baseline_dir(0, "st") != default.baseline_dir(0, "st") == explicit.baseline_dir(0, "st")
    # A variant on the sized stand-in shares the sized run's CE only, not the default's; a SmolLM2 variant trains its
    # own (its --smollm2_epochs is recorded per variant, so a shared cell could hold other epochs).
    assert variant.generator_dir(0, CE_ONLY) == sized.generator_dir(0, CE_ONLY)
    assert variant.generator_dir(0, PC2L) not in (sized.generator_dir(0, PC2L), default.generator_dir(0, PC2L))
    smollm2 = Experiment(ExperimentArguments(output_dir=str(tmp_path), decoder="smollm2"))
    smollm2_variant = Experiment(
        ExperimentArguments(output_dir=str(tmp_path), decoder="smollm2", variant="v", generator_args="--lambda1 0.3")
    )
    assert smollm2_variant.generator_dir(0, CE_ONLY) not in (
        smollm2.generator_dir(0, CE_ONLY), default.generator_dir(0, CE_ONLY)
    )
    assert smollm2.generator_dir(0, CE_ONLY) != default.generator_dir(0, CE_ONLY)
    # Only the width or only the depth: still another stand-in; --quick's own size is its default.
    assert Experiment(ExperimentArguments(output_dir=str(tmp_path), lm_layers=3)).lm_name == "gpt2-64x3"
    quick = Experiment(ExperimentArguments(output_dir=str(tmp_path), quick=True))
    assert quick.lm_name == "gpt2" and quick.size.lm_hidden_size == QUICK.lm_hidden_size
    assert stand_in_lm_name(DemoSize(lm_hidden_size=32, lm_layers=1), QUICK) == "gpt2"


def test_the_stand_ins_stage_and_the_cells_decoder_follow_its_name(tmp_path):
    size = DemoSize(lm_hidden_size=128, lm_layers=4)
    stages = world_stages(tmp_path, size, seed=0, threads=1, lm_name="gpt2-128x4")
    keys = [key for key, *_ in stages]
    assert keys[-1] == "gpt2-128x4" and "gpt2" not in keys
    assert generator_decoder_argv("gpt2", tmp_path, "gpt2-128x4") == [
        "--tokenizer", str(tmp_path / "gpt2-128x4"), "--decoder", str(tmp_path / "gpt2-128x4"),
    ]  # fmt: skip
    assert [key for key, *_ in world_stages(tmp_path, DemoSize(), seed=0, threads=1)][-1] == "gpt2"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--lm_hidden_size", "65"], "multiple of the stand-in's 2 attention heads"),
        (["--lm_layers", "-1"], "--lm_layers"),
        (["--lm_hidden_size", "8192"], "--lm_hidden_size"),
        (["--decoder", "smollm2", "--lm_layers", "4"], "size the stand-in GPT-2, not --decoder smollm2"),
    ],
)
def test_a_size_the_experiment_cannot_use_is_one_line(tmp_path, capsys, extra, message):
    assert cli.main(["experiment", "--output_dir", str(tmp_path / "out"), *extra]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="attention heads"):
        ExperimentArguments(output_dir=str(tmp_path), lm_hidden_size=33)


@pytest.mark.slow
def test_quick_experiment_trains_the_sized_stand_in_and_its_cells_on_it(tmp_path):
    argv = ["experiment", "--quick", "--seeds", "1", "--tables", "2", "--baselines", "none",
            "--output_dir", str(tmp_path), "--lm_hidden_size", "48", "--lm_layers", "2"]  # fmt: skip
    assert cli.main(argv) == 0
    world = tmp_path / "world"
    stand_in = json.loads((world / "gpt2-48x2" / "config.json").read_text())
    assert (stand_in["n_embd"], stand_in["n_layer"]) == (48, 2)
    assert not (world / "gpt2").exists()  # the demo's size was not asked for
    cells = sorted((tmp_path / "clip" / "seed-0" / "generators-gpt2-48x2").glob("*/config.json"))
    assert len(cells) == 2  # CE only and PC2L, both on the sized stand-in
    for cell in cells:
        decoder = json.loads(cell.read_text())["decoder"]
        assert (decoder["n_embd"], decoder["n_layer"]) == (48, 2)
    results = json.loads((tmp_path / "results-clip-gpt2-48x2.json").read_text())
    assert set(results["generation"]) >= {"CE only", "PC2L (CCL + PCL)"}
    assert "--lm_hidden_size 48 --lm_layers 2" in (tmp_path / "tables-clip-gpt2-48x2.md").read_text()


def test_a_runs_compute_time_counts_its_own_stand_in_only(tmp_path):
    default = Experiment(ExperimentArguments(output_dir=str(tmp_path), seeds=1))
    sized = Experiment(ExperimentArguments(output_dir=str(tmp_path), seeds=1, lm_hidden_size=128, lm_layers=4))
    markers = default.world / ".done"
    markers.mkdir(parents=True)
    for stage, seconds in (("synth", 1.0), ("gpt2", 10.0), ("gpt2-128x4", 100.0), ("gpt2-256x8", 1000.0)):
        (markers / stage).write_text(json.dumps({"seconds": seconds}))
    assert default.cell_seconds(range(1)) == {"world/synth": 1.0, "world/gpt2": 10.0}
    assert sized.cell_seconds(range(1)) == {"world/synth": 1.0, "world/gpt2-128x4": 100.0}
