"""Option values no run can use are one line before any work (session 15's audit of the commands' numbers).

Before, `train-selector --history_prior inf` saved a model with an infinite weight and exited 0, `train-clip
--num_train_epochs 0` saved an untrained checkpoint and then died on an IndexError, a NaN learning rate was a torch
traceback at the first step, `experiment --seeds 0` failed after the world was built, and a variant's
`--generator_args '--output_dir X'` was silently overridden while its tables claimed it.
"""

from __future__ import annotations

import math
import re

import pytest

from gest_showcases import cli
from gest_showcases.commands import evaluate, synth, train_clip, train_selector
from gest_showcases.commands.arguments import parse_args
from gest_showcases.commands.experiment import ExperimentArguments, variant_options
from gest_showcases.errors import InputError, check_at_least
from gest_showcases.generation import PC2LConfig
from gest_showcases.selection import DPPSelectorConfig
from gest_showcases.synth.world import SynthConfig


def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("[transformers]")]
    assert "Traceback" not in err and "usage:" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"gest-showcases {command}: error: "), err
    return lines[0]


VARIANT = "--generator_args="
# (command, argv, what the line must say). The paths need not exist: each value is refused before anything is read.
REFUSED = [
    ("train-clip", ["--learning_rate", "nan"], "--learning_rate nan: give a finite number"),
    ("train-clip", ["--learning_rate", "-1"], "--learning_rate -1.0: give a number >= 0"),
    ("train-clip", ["--num_train_epochs", "0"], "--num_train_epochs 0: give a number >= 1"),
    ("train-clip", ["--batch_size", "0"], "--batch_size 0"),
    ("train-clip", ["--warmup_fraction", "2"], "--warmup_fraction 2.0"),
    ("train-clip", ["--bag_of_tokens_weight", "-5"], "--bag_of_tokens_weight -5.0"),
    ("train-clip", ["--num_heads", "3"], "not a multiple of --num_heads 3"),
    ("train-clip", ["--image_size", "0"], "--image_size 0"),
    (
        "train-selector",
        ["--features", "f", "--history_prior", "inf"],
        "--history_prior inf: give a finite number",
    ),
    (
        "train-selector",
        ["--features", "f", "--history_prior", "-5"],
        "--history_prior -5.0: give a number >= 0",
    ),
    ("train-selector", ["--features", "f", "--num_train_epochs", "0"], "--num_train_epochs 0"),
    ("train-selector", ["--features", "f", "--top_k", "0"], "--top_k 0"),
    ("train-pc2l", ["--lambda1", "nan"], "--lambda1 nan: give a finite number"),
    ("train-pc2l", ["--learning_rate", "-1"], "--learning_rate -1.0"),
    (
        "train-pc2l",
        ["--mined_negative_candidates", "-1"],
        "--mined_negative_candidates -1: give a number >= 0",
    ),
    ("features", ["--clip_model", "c", "--batch_size", "0"], "--batch_size 0"),
    ("evaluate", ["--generations", "g.jsonl", "--num_resamples", "0"], "--num_resamples 0"),
    ("distill", ["--annotations", "a", "--features", "f", "--threshold", "nan"], "--threshold nan"),
    ("distill", ["--annotations", "a", "--features", "f", "--threshold", "1.5"], "--threshold 1.5"),
    ("synth", ["--num_reviews", "10"], "--num_reviews 10: give a number >= 20"),
    ("synth", ["--seed", "-1"], "--seed -1: give a number >= 0"),
    ("synth", ["--num_annotated_reviews", "-1"], "--num_annotated_reviews -1"),
    ("synth", ["--other_business_fraction", "nan"], "--other_business_fraction nan"),
    ("synth", ["--image_size", "0"], "--image_size 0"),
    # Session 25: what failed as a traceback (a Hub lookup of a missing folder) or after the work.
    ("train-generator", ["--gradient_checkpointing", "True"], "--gradient_checkpointing / --activation_checkpointing: "
                                                              "peter has no activation checkpointing (these do: pepler)"),
    ("train-generator", ["--activation_checkpointing", "True"], "--activation_checkpointing: peter has no"),
    ("diversity", ["--dataset", "d", "--features", "f", "--plot", "x.xyz"], "--plot x.xyz: no chart format .xyz"),
    # Session 25's TrainingArguments audit: tracebacks once the data and the model were ready, or silently ignored.
    ("train-pc2l", ["--label_smoothing_factor", "0.1"], "--label_smoothing_factor 0.1: not applied to a generator's"),
    ("train-generator", ["--label_smoothing_factor", "0.1"], "--label_smoothing_factor 0.1: not applied"),
    ("train-pc2l", ["--train_sampling_strategy", "group_by_length"], "group_by_length: the generators' examples"),
    ("train-generator", ["--train_sampling_strategy", "group_by_length"], "group_by_length: the generators'"),
    ("train-pc2l", ["--report_to", "no_such_tracker"], "--report_to no_such_tracker: not installed here"),
    ("finetune-lm", ["--push_to_hub", "True"], "--push_to_hub: the Hub is off (HF_HUB_OFFLINE is set)"),
    # Session 28's audit: numbers torch, NumPy or itertools refused with a traceback, after the data was read.
    ("train-selector", ["--features", "f", "--seed", "-1"], "--seed -1: give a whole number from 0 to 4294967295"),
    ("distill", ["--annotations", "a", "--features", "f", "--seed", "4294967296"], "--seed 4294967296: give a whole"),
    ("train-clip", ["--seed", "99999999999999999999"], "--seed 99999999999999999999: give a whole number from 0"),
    ("train-pc2l", ["--seed", "-1"], "--seed -1: give a whole number from 0 to 4294967295"),
    ("train-clip", ["--learning_rate", "1e39"], "--learning_rate 1e+39: give a number below 3.4e+38"),
    ("train-selector", ["--features", "f", "--learning_rate", "1e39"], "--learning_rate 1e+39: give a number below"),
    ("train-selector", ["--features", "f", "--batch_size", "99999999999999999999"], "--batch_size 99999999999999999999: too large"),
    # Session 25: sizes whose typo hung or ran out of memory.
    ("synth", ["--other_business_fraction", "1e300"], "--other_business_fraction 1e+300: give a number <= 10"),
    ("synth", ["--num_reviews", "3000000000"], "--num_reviews 3000000000: give a number <= 2,000,000"),
    ("synth", ["--num_reviews", "100", "--num_users", "500"], "--num_users 500: give a number <= 100"),
    ("experiment", ["--num_reviews", "3000000000"], "--num_reviews 3000000000: give a number <= 2,000,000"),
    ("build", ["--input", "x.json", "--images", "i", "--max_images", "-1"], "--max_images -1"),
    ("build", ["--input", "x.json", "--images", "i", "--seed", "-1"], "--seed -1"),
    ("experiment", ["--seeds", "0"], "--seeds 0: give a number >= 1"),
    ("experiment", ["--generator_learning_rate", "-0.001"], "--generator_learning_rate -0.001: give a number >= 0"),
    ("experiment", ["--num_reviews", "5"], "--num_reviews 5: give a number >= 20"),
    ("experiment", ["--variant", "../../escape", VARIANT + "--lambda1 0.1"], "--variant '../../escape'"),
    # Session 32's review: these shared the folders of `--decoder smollm2` and of a 128 x 4 stand-in.
    ("experiment", ["--variant", "smollm2", VARIANT + "--lambda1 0.1"], "--variant 'smollm2': a variant's cells"),
    ("experiment", ["--variant", "gpt2-128x4", VARIANT + "--lambda1 0.1"], "--variant 'gpt2-128x4': a variant's"),
    ("experiment", ["--variant", "v", VARIANT + "--output_dir /tmp/x"], "--output_dir is a Trainer option"),
    (
        "experiment",
        ["--variant", "v", VARIANT + "--num_train_epochs 7"],
        "--num_train_epochs is a Trainer option",
    ),
    ("experiment", ["--variant", "v", VARIANT + "--features /other"], "--features is set by the experiment"),
    ("experiment", ["--variant", "v", VARIANT + "--no_such 3"], "train-pc2l takes no --no_such 3"),
    ("experiment", ["--variant", "v", VARIANT + "--lambda1 '0.1"], "No closing quotation"),
    (
        "experiment",
        ["--variant", "v", VARIANT + "--lambda1 -1"],
        "--generator_args: --lambda1 -1.0: give a number >= 0",
    ),
    ("experiment", ["--variant", "v", VARIANT + "--encoder_layers 0"], "--encoder_layers 0"),
    # Session 25: parsed, but only PC2LConfig refused them, at the first generator cell after the world was made.
    (
        "experiment",
        ["--variant", "v", VARIANT + "--contrastive_target textx"],
        "--generator_args: the PC2L options do not fit together: contrastive_target must be one of",
    ),
    (
        "experiment",
        ["--variant", "v", VARIANT + "--encoder_attention_heads 3"],
        "the encoder width (64) must be divisible by encoder_attention_heads=3",
    ),
    ("experiment", ["--variant", "v", VARIANT + "--lambda2 abc"], "invalid float value: 'abc'"),
    ("experiment", ["--variant", "v", VARIANT + "--lambda2 nan"], "--lambda2 nan: give a finite number"),
    ("experiment", ["--variant", "v", VARIANT + "-h"], "train-pc2l takes no -h"),
    ("train-pc2l", ["--lambda1", "-1"], "--lambda1 -1.0: give a number >= 0"),
    ("train-pc2l", ["--num_train_epochs", "0"], "--num_train_epochs 0.0"),
    (
        "build",
        ["--input", "x.json", "--images", "i", "--split_ratios", "nan", "0.1", "0.1"],
        "--split_ratios nan",
    ),
    # Session 16: values that failed only after loading every model, or after a whole training run.
    ("showcase", ["--k", "0"], "--k 0: give a number >= 1"),
    ("showcase", ["--k", "-1"], "--k -1: give a number >= 1"),
    ("showcase", ["--num_beams", "0"], "--num_beams 0: give a number >= 1"),
    ("showcase", ["--max_new_tokens", "0"], "--max_new_tokens 0: give a number >= 1"),
    ("showcase", ["--device", "bogus"], "--device 'bogus': not a torch device"),
    ("features", ["--clip_model", "c", "--device", "bogus"], "--device 'bogus': not a torch device"),
    ("evaluate", ["--generations", "g.jsonl", "--device", "gpu"], "--device 'gpu': not a torch device"),
    ("distill", ["--annotations", "a", "--features", "f", "--device", "bogus"], "--device 'bogus'"),
    ("train-generator", ["--max_references", "-2"], "--max_references -2: give a number >= 1"),
    ("train-generator", ["--generation_batch_size", "0"], "--generation_batch_size 0: give a number >= 1"),
    ("train-generator", ["--no_repeat_ngram_size", "-1"], "--no_repeat_ngram_size -1: give a number >= 0"),
    ("train-generator", ["--max_new_tokens", "0"], "--max_new_tokens 0: give a number >= 1"),
    ("finetune-lm", ["--block_size", "0"], "--block_size 0: give a number >= 1"),
    ("finetune-lm", ["--warmup_steps", "-3"], "Expected value warmup_steps >= 0"),
    ("demo", ["--num_threads", "0"], "--num_threads 0: give a number >= 1"),
    ("demo", ["--num_examples", "-1"], "--num_examples -1: give a number >= 0"),
    ("experiment", ["--baselines", "none", "st"], "--baselines none st: none means no baseline; give it alone"),
    ("showcase", ["--user", " "], "--user is empty: give the user's id as the dataset writes it"),
    # Session 26's audit: sizes that ran out of memory (a MemoryError in PIL, a 22 TB tensor, a 67 GB array after
    # every metric had run).
    ("train-clip", ["--image_size", "100000"], "--image_size 100000: give a number <= 1,024"),
    ("train-clip", ["--hidden_size", "4000000000", "--num_heads", "1"], "--hidden_size 4000000000: give a number <="),
    ("evaluate", ["--generations", "g.jsonl", "--num_resamples", "1000000000"], "--num_resamples 1000000000: give"),
    ("showcase", ["--k", "1000000000000"], "--k 1000000000000: give a number <= 1,000"),
    ("showcase", ["--num_beams", "100000000"], "--num_beams 100000000: give a number <= 64"),
    ("showcase", ["--max_new_tokens", "1000000000"], "--max_new_tokens 1000000000: give a number <= 1,024"),
    ("train-generator", ["--max_new_tokens", "1000000000"], "--max_new_tokens 1000000000: give a number <= 1,024"),
]
# The folder every case names: nothing may be written there.
COMMON = {
    "train-clip": ["--dataset", "d"],
    "train-selector": ["--dataset", "d"],
    "train-pc2l": ["--dataset", "d", "--tokenizer", "t", "--features", "f", "--decoder", "d"],
    "features": ["--dataset", "d"],
    "distill": ["--images", "i"],
    "showcase": ["--dataset", "d", "--user", "u", "--business", "b", "--selector", "s", "--generator", "g",
                 "--clip_model", "c"],
    "train-generator": ["--model", "peter", "--dataset", "d", "--features", "f", "--tokenizer", "t"],
    "finetune-lm": ["--dataset", "d", "--tokenizer", "t"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("command", "argv", "says"), REFUSED, ids=[f"{c} {' '.join(a)}" for c, a, _ in REFUSED]
)
def test_an_unusable_value_is_one_line_before_any_work(command, argv, says, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([command, *COMMON.get(command, []), *argv, "--output_dir", str(out)]) == 2
    assert says in _one_line(capsys, command)
    assert not out.exists()


def test_a_wrong_type_is_one_line_without_the_usage(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train-pc2l", "--image_feature_noise", "abc", "--output_dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    line = _one_line(capsys, "train-pc2l")
    assert "invalid float value: 'abc'" in line and line.endswith("see gest-showcases train-pc2l --help")


def test_a_tracker_that_is_not_installed_is_one_line(tmp_path, capsys, monkeypatch):
    """`--report_to tensorboard` without tensorboard: a RuntimeError traceback when the Trainer was built."""
    import transformers.integrations

    monkeypatch.setattr(transformers.integrations, "get_available_reporting_integrations", lambda: ["wandb"])
    out = tmp_path / "out"
    assert cli.main(["finetune-lm", *COMMON["finetune-lm"], "--report_to", "tensorboard", "--output_dir", str(out)]) == 2
    assert "--report_to tensorboard: not installed here (installed: wandb)" in _one_line(capsys, "finetune-lm")
    assert not out.exists()


@pytest.mark.parametrize("command", ["train-generator", "train-pc2l"])
def test_an_unknown_image_kind_is_one_line(command, tmp_path, capsys):
    """It was a ValueError traceback from `load_features` once the data was read (session 25's audit)."""
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, *COMMON[command], "--image_kind", "nope", "--output_dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert "--image_kind/--image-kind: invalid choice: 'nope'" in _one_line(capsys, command)


def test_an_unknown_option_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["synth", "--output_dir", str(tmp_path / "out"), "--num_reviewz", "30"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --num_reviewz 30" in _one_line(capsys, "synth")
    assert not (tmp_path / "out").exists()


# Each bound's own value, and values that mean "off" or "in this process": still accepted.
ACCEPTED = [
    (
        (evaluate.EvaluateArguments, evaluate.EvaluateOutputArguments),
        ["--generations", "g", "--bertscore_layers", "0"],
    ),
    (
        (synth.SynthConfig, synth.SynthOutputArguments),
        ["--output_dir", "o", "--num_workers", "0", "--image_size", "8"],
    ),
    (
        (synth.SynthConfig, synth.SynthOutputArguments),
        ["--output_dir", "o", "--num_reviews", "20", "--seed", "0"],
    ),
    (
        (train_selector.SelectorScriptArguments, train_selector.SelectorCommandTrainingArguments),
        ["--dataset", "d", "--features", "f", "--history_prior", "0", "--learning_rate", "0", "--top_k", "1"],
    ),
    (
        (train_clip.TrainClipArguments,),
        [
            "--num_train_epochs",
            "1",
            "--learning_rate",
            "0",
            "--warmup_fraction",
            "1",
            "--bag_of_tokens_weight",
            "0",
        ],
    ),
    ((ExperimentArguments,), ["--max_test_examples", "0", "--oracle_noise", "0", "--seeds", "1"]),
]


@pytest.mark.parametrize(("types", "argv"), ACCEPTED, ids=[" ".join(argv) for _, argv in ACCEPTED])
def test_boundary_values_are_still_accepted(types, argv):
    parsed = parse_args(types, argv)
    flags = dict(zip(argv[::2], argv[1::2], strict=True))
    for instance in parsed:
        for name, value in vars(instance).items():
            if f"--{name}" in flags:
                given = flags[f"--{name}"]
                assert str(value) == given or value == float(given)


# Every --generator_args an experiment of this repository ran with (docs/experiments.md), and a negated bool flag.
PAST_VARIANTS = [
    "--contrastive_target text --lambda1 0.05 --lambda2 0.05",
    "--contrastive_score likelihood --likelihood_image_negatives entity --review_contrastive none",
    "--contrastive_score likelihood --likelihood_image_negatives entity --review_contrastive none "
    "--mined_negative_candidates 4",
    "--contrastive_score likelihood --likelihood_image_negatives entity --review_contrastive none "
    "--image_feature_noise 0.5",
    "--image_feature_noise 0.5",
    "--contrastive_score likelihood --image_contrastive cl --review_contrastive none",
    "--no_lora_self_attention --lora",
    "--cross_attention_gate none",
    "--contrastive_warmup_ratio 0.5",
    "--in_batch_labels noun_chunks",
    "--decoder_contrastive_gradients none",
    "--encoder_contrastive_gradients none",
    "--gradient_conflicts projected",
    "--contrastive_normaliser separate --contrastive_step_scale 1.0",
    "--contrastive_normaliser separate --review_contrastive none",
    "--contrastive_normaliser separate --image_contrastive none --review_pooling shown_photos",
    "--contrastive_normaliser separate --image_contrastive none --contrastive_target text",
    "--contrastive_normaliser separate --contrastive_target text",
    "--contrastive_normaliser separate --image_contrastive none --contrastive_target text --review_pooling shown_photos",
    "--cross_attention_gate none --contrastive_normaliser separate",
]


@pytest.mark.parametrize("options", PAST_VARIANTS)
def test_past_variants_are_still_accepted(options):
    assert variant_options(options) == options.split()


def test_check_at_least_names_the_flag_and_refuses_nan():
    class Options:
        epochs, weight, unset = 0, math.nan, None

    check_at_least(Options(), unset=1)  # an option left unset is not checked
    with pytest.raises(InputError, match=r"^--epochs 0: give a number >= 1$"):
        check_at_least(Options(), epochs=1)
    with pytest.raises(InputError, match=r"^--weight nan: give a finite number$"):
        check_at_least(Options(), weight=0)
    Options.epochs = [3]  # what a YAML --config can hold
    with pytest.raises(InputError, match=r"^--epochs \[3\]: give a number$"):
        check_at_least(Options(), epochs=1)


def test_variant_options_keep_model_and_loss_options():
    assert variant_options("--lambda1 0.1 --contrastive_score=likelihood") == [
        "--lambda1", "0.1", "--contrastive_score=likelihood",
    ]  # fmt: skip
    assert variant_options("") == []
    with pytest.raises(InputError, match="--seed is a Trainer option"):
        variant_options("--seed=3")
    with pytest.raises(InputError, match="--image_kind is set by the experiment"):
        variant_options("--image-kind vision")  # the dashed spelling is the same option


@pytest.mark.parametrize(
    "options",
    [
        {"lambda1": -3.0},
        {"lambda2": math.inf},
        {"pcl_alpha": math.nan},
        {"contrastive_temperature": math.nan},
    ],
    ids=str,
)
def test_pc2l_config_refuses_negative_and_non_finite_loss_settings(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        PC2LConfig(**options)


@pytest.mark.parametrize("prior", [-1.0, math.inf, math.nan])
def test_selector_config_refuses_a_negative_or_non_finite_history_prior(prior):
    with pytest.raises(ValueError, match="history_prior"):
        DPPSelectorConfig(history_prior=prior)


def test_synth_config_refuses_what_the_world_cannot_be_drawn_from():
    with pytest.raises(InputError, match="--num_users 5"):
        SynthConfig(num_reviews=100, num_users=5)
    with pytest.raises(InputError, match="--seed -1"):
        SynthConfig(seed=-1)


def _file_options(tmp_path, types, options: dict):
    config = tmp_path / "options.yaml"
    config.write_text(options if isinstance(options, str) else __import__("yaml").safe_dump(options))
    return parse_args(types, ["--config", str(config)])


def test_a_config_file_id_written_without_quotes_stays_its_digits(tmp_path):
    from gest_showcases.commands.showcase import PipelineArguments, ShowcaseArguments

    text = "user: 150986734859420931935\nbusiness: 2024\nselector: s\ngenerator: g\nclip_model: c\n"
    parsed = _file_options(tmp_path, (ShowcaseArguments, PipelineArguments), text)
    assert parsed[0].user == "150986734859420931935" and parsed[0].business == "2024"


@pytest.mark.parametrize(
    ("types", "options", "says"),
    [
        ((evaluate.EvaluateArguments, evaluate.EvaluateOutputArguments), {"generations": ["a.jsonl", "b.jsonl"]},
         "generations: ['a.jsonl', 'b.jsonl'] is not a valid value (give one value)"),
        ((evaluate.EvaluateArguments, evaluate.EvaluateOutputArguments), {"generations": "g", "num_resamples": 1.5},
         "num_resamples: 1.5 is not a valid value (give a whole number)"),
        ((ExperimentArguments,), {"seeds": True}, "seeds: True is not a valid value (true/false where"),
        ((evaluate.EvaluateArguments, evaluate.EvaluateOutputArguments), {"generations": 1.5},
         "generations: 1.5 is not a valid value (a number where text goes: quote it)"),
        # Session 24's audit: a number or a date where a switch goes was taken as true, a date as a float.
        ((ExperimentArguments,), "quick: 5\n", "quick: 5 is not a valid value (give true or false)"),
        ((ExperimentArguments,), "quick: 2020-01-01\n", "quick: datetime.date(2020, 1, 1) is not a valid value"),
        ((ExperimentArguments,), "oracle_noise: 2020-01-01\n", "(give a number)"),
    ],
)  # fmt: skip
def test_a_config_file_value_of_the_wrong_type_is_one_line_naming_it(tmp_path, types, options, says):
    with pytest.raises(InputError, match=re.escape(says)):
        _file_options(tmp_path, types, options)


def test_a_config_file_switch_takes_true_false_and_their_words(tmp_path):
    assert _file_options(tmp_path, (ExperimentArguments,), "quick: true\n")[0].quick is True
    assert _file_options(tmp_path, (ExperimentArguments,), "quick: 'no'\n")[0].quick is False
    assert _file_options(tmp_path, (ExperimentArguments,), "oracle_noise: 1\n")[0].oracle_noise == 1.0


def test_a_config_file_scalar_for_a_list_option_is_a_list_of_one(tmp_path):
    (parsed,) = _file_options(tmp_path, (ExperimentArguments,), {"tables": "2", "baselines": "none"})
    assert parsed.tables == ["2"] and parsed.baselines == ["none"]


@pytest.mark.parametrize("tables", ["5", "2,3", ""])
def test_experiment_refuses_a_table_it_does_not_have(tables, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["experiment", "--tables", tables, "--output_dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert f"argument --tables: invalid choice: '{tables}'" in _one_line(capsys, "experiment")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("splits", "says"),
    [
        ({"eval_split": "bogus"}, "--eval_split bogus: the dataset's s1 splits are ['train', 'validation', 'test']"),
        ({"train_split": "trian"}, "--train_split trian: the dataset's s1 splits are"),
        ({"validation_split": "valdation"}, "--validation_split valdation: the dataset's s1 splits are"),
        ({"train_split": "test"}, "--train_split and --eval_split are both test"),
    ],
)  # fmt: skip
def test_train_selector_refuses_a_split_it_cannot_use(splits, says):
    arguments = train_selector.SelectorScriptArguments(dataset="d", features="f", **splits)
    with pytest.raises(InputError, match=re.escape(says)):
        train_selector.check_splits(arguments, ["train", "validation", "test"])
    train_selector.check_splits(train_selector.SelectorScriptArguments(dataset="d", features="f"), ["train", "test"])


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--image_size", "1000000"], "--image_size 1000000: give a number <= 1,024"),  # was a 3.64 TiB array
        (["--num_workers", "100000"], "--num_workers 100000: give a number <= 256"),
    ],
)
def test_synth_refuses_photo_sizes_and_worker_counts_no_machine_has(tmp_path, capsys, argv, says):
    assert cli.main(["synth", "--output_dir", str(tmp_path / "world"), *argv]) == 2
    assert capsys.readouterr().err.strip().endswith(says)
    assert not (tmp_path / "world").exists()


@pytest.mark.parametrize("model", ["[pc2l]", "{a: 1}", "3"])
def test_train_generator_config_whose_model_is_not_a_name_is_one_line(tmp_path, capsys, model):
    """Session 26's audit: `model: [pc2l]` in a --config file was `TypeError: unhashable type: 'list'`."""
    config = tmp_path / "options.yaml"
    config.write_text(f"model: {model}\n")
    assert cli.main(["train-generator", "--config", str(config)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"gest-showcases train-generator: error: --config {config}: model: ") and "\n" not in error


def test_train_generator_refuses_more_new_tokens_than_the_decoder_has_positions_before_training(tmp_path, capsys):
    """Session 26's audit: `--model gpt2-ce --max_new_tokens 130` on a 128-position decoder trained, then failed with
    an IndexError decoding the test split."""
    from transformers import GPT2Config, GPT2LMHeadModel

    decoder = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_embd=8, n_layer=1, n_head=2, n_positions=32, vocab_size=50)).save_pretrained(decoder)
    capsys.readouterr()  # the save's progress bar
    out = tmp_path / "out"
    argv = ["train-generator", "--model", "gpt2-ce", "--dataset", "d", "--features", "f", "--tokenizer", "t",
            "--decoder", str(decoder), "--max_new_tokens", "40", "--output_dir", str(out)]  # fmt: skip
    assert cli.main(argv) == 2
    assert "--max_new_tokens 40: the decoder has 32 positions (n_positions); give at most 32" in _one_line(
        capsys, "train-generator"
    )
    assert not out.exists()


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8", b"key: [unclosed"])
def test_a_config_file_that_is_not_yaml_is_one_line_naming_the_file(tmp_path, capsys, content):
    """Session 28's audit: the line said "'utf-8' codec can't decode byte 0xff" or "not valid YAML", not which file."""
    path = tmp_path / "options.yaml"
    path.write_bytes(content)
    assert cli.main(["evaluate", "--config", str(path)]) == 2
    assert _one_line(capsys, "evaluate").startswith(f"gest-showcases evaluate: error: {path}: not a YAML file of options")
