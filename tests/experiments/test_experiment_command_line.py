"""The command printed above the experiment's tables reproduces the run's arguments (parsed back, it is equal)."""

import shlex
from dataclasses import replace

from transformers import HfArgumentParser

from gest_showcases.commands.experiment import ExperimentArguments
from gest_showcases.experiments.summary import command_line


def _parse(line: str) -> ExperimentArguments:
    argv = shlex.split(line)
    assert argv[:2] == ["gest-showcases", "experiment"]
    (parsed,) = HfArgumentParser(ExperimentArguments).parse_args_into_dataclasses(argv[2:])
    return parsed


def test_every_non_default_option_round_trips():
    args = ExperimentArguments(
        features="oracle", oracle_noise=0.25, seeds=2, pc2l_epochs=30, num_reviews=1500, tables=["2", "4"],
        variant="text", generator_args="--contrastive_target text --lambda1 0.05", quick=True,
        max_test_examples=40, num_resamples=200, baselines=["st", "peter"], generator_batch_size=32,
        generator_learning_rate=1e-4,
    )  # fmt: skip
    parsed = _parse(command_line(args))
    # Where the run wrote and how many threads it used do not change a result, so they are left out.
    assert parsed == replace(args, output_dir=parsed.output_dir, num_threads=parsed.num_threads)


def test_defaults_are_not_spelled_out():
    assert command_line(ExperimentArguments()) == "gest-showcases experiment --features clip"


def test_no_baselines_round_trips():
    args = ExperimentArguments(baselines=["none"])
    assert command_line(args) == "gest-showcases experiment --features clip --baselines none"
    assert _parse(command_line(args)).baselines == ["none"]
