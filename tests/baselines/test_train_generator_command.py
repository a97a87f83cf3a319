"""`gest-showcases train-generator` on a tiny built s2 folder and fake feature tables: each model trains, logs its
loss parts, saves what generation needs, and writes the test generations `gest-showcases evaluate` reads."""

import json
import math

import pytest
import torch
import yaml
from generator_fixtures import (
    FEATURE_DIM,
    FakeFeatureTable,
    StandInBaseline,
    build_tokenizer,
    write_s2_dataset,
)
from transformers import GPT2Config, GPT2LMHeadModel, Trainer

import gest_showcases.features
from gest_showcases import cli
from gest_showcases.baselines.data import GeneratorDataArguments, feature_kinds, load_examples, read_rows
from gest_showcases.baselines.registry import BASELINES
from gest_showcases.baselines.training import GeneratorInputs, generate_baseline, load_generator
from gest_showcases.commands import evaluate
from gest_showcases.errors import InputError
from gest_showcases.metrics.generations import read_generations

TRAINING = ["--max_steps", "3", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
            "--learning_rate", "1e-2", "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none",
            "--use_cpu", "--disable_tqdm", "true", "--seed", "0", "--max_new_tokens", "8"]  # fmt: skip
# Tiny configurations of the real baselines (hidden 16, one layer), through --config_overrides.
TINY = {
    "st": "embedding_size=16,hidden_size=16",
    "r2gen": "hidden_size=16,ffn_dim=32,num_layers=1,num_attention_heads=2,memory_slots=1,memory_attention_heads=2",
    "ref2seq": "hidden_size=16,num_layers=1",
    "peter": "hidden_size=16,intermediate_size=32,num_layers=1,num_attention_heads=2",
    "pepler": "unknown_id_probability=0.2",  # and --decoder: a tiny GPT-2
}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets")
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(root / "tokenizer")
    write_s2_dataset(root / "dataset")
    torch.manual_seed(0)
    special = {"bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id}
    GPT2LMHeadModel(
        GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=80, vocab_size=len(tokenizer), **special)
    ).save_pretrained(root / "gpt2")
    return root


@pytest.fixture(autouse=True)
def fake_features(monkeypatch):
    monkeypatch.setattr(gest_showcases.features, "load_features", lambda root, kind: FakeFeatureTable())


def _argv(assets, model, output, *extra):
    model_option = ["--model", model] if model else []
    return ["train-generator", *model_option, "--dataset", str(assets / "dataset"), "--features", "unused",
            "--tokenizer", str(assets / "tokenizer"), "--output_dir", str(output), *TRAINING, *extra]  # fmt: skip


def _records(folder):
    return read_generations(folder / "generations-test.jsonl")


def test_an_id_model_trains_logs_its_loss_parts_and_writes_test_generations(assets, tmp_path, monkeypatch):
    monkeypatch.setitem(BASELINES, "peter", StandInBaseline(("ids",)))
    out = tmp_path / "run"
    assert cli.main(_argv(assets, "peter", out, "--config_overrides", "hidden_size=12")) == 0
    results = json.loads((out / "all_results.json").read_text())
    # The model's loss and its auxiliary part, on the validation split too.
    assert math.isfinite(results["train_loss"]) and math.isfinite(results["eval_loss_aux"])
    # The log history of every step, kept as HF's scripts keep it (the part logged beside the loss included).
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert any("loss_aux" in entry for entry in history)
    model, tokenizer, record = load_generator(out)
    # The package's small default (hidden 8) under the override; vocabulary and ids from the data.
    assert model.config.hidden_size == 12 and model.config.vocab_size == len(tokenizer)
    assert (model.config.num_users, model.config.num_items) == (4, 4)
    assert record.vocabulary == {"users": ["ua", "ub", "uc"], "items": ["b1", "b2", "b3"]}
    records = _records(out)
    assert [r.id for r in records] == ["r8", "r9", "r10"] and {r.system for r in records} == {"peter"}
    assert records[1].pic_ids == ("p9a",) and records[0].reference.startswith("We loved the ramen")
    assert all(r.generated for r in records)


@pytest.mark.slow
def test_evaluate_scores_the_generations_file(assets, tmp_path, monkeypatch):
    monkeypatch.setitem(BASELINES, "peter", StandInBaseline(("ids",)))
    out = tmp_path / "run"
    assert cli.main(_argv(assets, "peter", out, "--system", "PETER")) == 0
    assert evaluate.main(["--generations", str(out / "generations-test.jsonl"), "--output_dir",
                              str(tmp_path / "eval"), "--no_bertscore"]) == 0  # fmt: skip
    rows = json.loads((tmp_path / "eval" / "table2.json").read_text())["rows"]
    assert set(rows) == {"PETER", "GT"} and math.isfinite(rows["PETER"]["bleu_1"])


def test_an_image_model_reads_the_users_photos_and_records_its_inputs(assets, tmp_path, monkeypatch):
    monkeypatch.setitem(BASELINES, "st", StandInBaseline(("image",)))
    out = tmp_path / "run"
    argv = _argv(assets, "st", out, "--max_images", "1", "--system", "ST", "--no_repeat_ngram_size", "2")
    assert cli.main(argv) == 0
    model, _, record = load_generator(out)
    assert model.config.image_feature_dim == FEATURE_DIM and model.config.max_images == 1
    assert record.conditioning_inputs == ["image"] and record.max_images == 1
    assert record.feature_models == {"image": {"checkpoint": "fake-clip", "fingerprint": "f" * 64}}
    assert record.vocabulary is None
    records = _records(out)
    assert [r.id for r in records] == ["r8", "r9", "r10"] and {r.system for r in records} == {"ST"}
    assert records[2].pic_ids == ("missing-too", "p10a")


def test_options_come_from_a_yaml_file_that_the_command_line_overrides(assets, tmp_path, monkeypatch):
    monkeypatch.setitem(BASELINES, "ref2seq", StandInBaseline(("references",)))
    config = tmp_path / "generator.yaml"
    config.write_text(yaml.safe_dump({"model": "ref2seq", "max_references": 1, "generate_test": False}))
    out = tmp_path / "run"
    argv = _argv(assets, None, out, "--config", str(config), "--max_reference_length", "3")
    assert cli.main(argv) == 0
    record = GeneratorInputs.load(out)
    assert (record.max_references, record.max_reference_length) == (1, 3)
    assert not (out / "generations-test.jsonl").exists()


def test_help_lists_every_model_and_the_baseline_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train-generator", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--config_overrides" in text and "--max_references" in text
    assert "pc2l,gpt2-ce,st,r2gen,ref2seq,peter,pepler" in text
    # With a PC2L model, the options it takes: train-pc2l's (session 25's README check found them unlisted).
    with pytest.raises(SystemExit):
        cli.main(["train-generator", "--model", "pc2l", "--help"])
    text = capsys.readouterr().out
    assert "--lambda1" in text and "--encoder_attention_heads" in text and "--config_overrides" not in text


@pytest.mark.slow
def test_gpt2_ce_is_pc2l_without_contrastive_losses_and_writes_generations(assets, tmp_path):
    out = tmp_path / "run"
    argv = _argv(assets, "gpt2-ce", out, "--decoder", str(assets / "gpt2"), "--image_kind", "image",
                 "--encoder_layers", "1", "--encoder_attention_heads", "2", "--projection_dim", "8")  # fmt: skip
    assert cli.main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["image_contrastive"], config["review_contrastive"]) == ("none", "none")
    records = _records(out)
    assert [r.id for r in records] == ["r8", "r9", "r10"] and {r.system for r in records} == {"gpt2-ce"}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BASELINES))
def test_each_baseline_trains_saves_reloads_and_writes_generations(assets, tmp_path, name):
    out = tmp_path / name
    decoder = ["--decoder", str(assets / "gpt2")] if BASELINES[name].pretrained_decoder else []
    assert cli.main(_argv(assets, name, out, "--config_overrides", TINY[name], *decoder)) == 0
    results = json.loads((out / "all_results.json").read_text())
    assert math.isfinite(results["train_loss"]) and math.isfinite(results["eval_loss"])
    model, tokenizer, record = load_generator(out)
    assert type(model) is BASELINES[name].model_class()
    assert record.conditioning_inputs == list(model.conditioning_inputs)
    if BASELINES[name].pretrained_decoder:
        assert model.config.decoder.n_embd == 16  # the checkpoint's GPT-2, not the package's default
    # Every part of the loss the model returns is logged (PETER's context loss).
    context = record.context(read_rows(assets / "dataset", "train"))
    data_args = GeneratorDataArguments(dataset=str(assets / "dataset"), features="unused")
    tables = {
        kind: FakeFeatureTable() for kind in feature_kinds(model.conditioning_inputs, record.image_kind)
    }
    examples = load_examples(data_args, "validation", model.conditioning_inputs, tables, context)
    parts = {key for key in model(**record.collator(tokenizer)(examples)) if key.startswith("loss_")}
    assert {f"eval_{part}" for part in parts} <= set(results)
    records = _records(out)
    assert [r.id for r in records] == ["r8", "r9", "r10"] and {r.system for r in records} == {name}
    # The reloaded model writes the file's texts again (beam search is deterministic).
    rows = read_rows(assets / "dataset", "test")
    _, texts = generate_baseline(out, assets / "dataset", rows, tables, max_new_tokens=8)
    assert texts == [r.generated for r in records]


def test_bad_model_options_are_one_line_errors(assets, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(BASELINES, "peter", StandInBaseline(("ids",)))
    assert cli.main(_argv(assets, "peter", tmp_path / "a", "--config_overrides", "hidden_sise=4")) == 2
    assert "--config_overrides 'hidden_sise=4'" in capsys.readouterr().err
    assert cli.main(_argv(assets, "peter", tmp_path / "b", "--decoder", str(assets / "gpt2"))) == 2
    assert "peter has no GPT-2 decoder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("model", "overrides", "extra"),
    [
        ("peter", "hidden_size=-4", []),
        ("peter", "hidden_size=0", []),  # a ZeroDivisionError traceback before session 25
        ("pepler", "decoder=7", ["--decoder", "gpt2"]),  # a TypeError traceback before session 25
    ],
)
def test_config_overrides_that_build_no_model_are_one_line(assets, tmp_path, capsys, model, overrides, extra):
    extra = [str(assets / value) if value == "gpt2" else value for value in extra]
    argv = _argv(assets, model, tmp_path / "run", "--config_overrides", overrides, *extra)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"gest-showcases train-generator: error: --config_overrides "
                                                   f"'{overrides}': "), err  # fmt: skip
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_dataset_that_is_not_a_built_folder_is_one_line(assets, tmp_path, capsys):
    """`datasets` looked a missing folder up on the Hub: a ConnectionError traceback offline (session 25's audit)."""
    (tmp_path / "a-file").write_text("x")
    for dataset in (tmp_path / "missing", tmp_path / "a-file"):
        argv = _argv(assets, "peter", tmp_path / "run", "--config_overrides", TINY["peter"])
        argv[argv.index("--dataset") + 1] = str(dataset)
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert f"error: {dataset}: no such folder; pass a folder `build` wrote" in err and "Traceback" not in err


def test_a_tokenizer_past_the_decoders_vocabulary_is_one_line(assets, tmp_path, capsys):
    """It failed mid-training with `IndexError: index out of range in self` (session 25's audit)."""
    GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=80, vocab_size=10)).save_pretrained(
        tmp_path / "small-gpt2"
    )
    for argv in (
        _argv(assets, "pepler", tmp_path / "run", "--decoder", str(tmp_path / "small-gpt2")),
        ["finetune-lm", "--dataset", str(assets / "dataset"), "--dataset_config_name", "s2", "--tokenizer",
         str(assets / "tokenizer"), "--decoder", str(tmp_path / "small-gpt2"), "--output_dir", str(tmp_path / "run")],
    ):  # fmt: skip
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "past the vocabulary of decoder" in err and "(10): pass the decoder's own tokenizer" in err, err
        assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_run_cut_off_resumes_with_resume_from_checkpoint_last(assets, tmp_path, monkeypatch):
    """Oracle: the same run without interruption; the resumed one runs only the steps after its checkpoint."""
    import shutil

    from gest_showcases.generation import trainer

    steps = []

    class Counting(trainer.GeneratorTrainer):
        def training_step(self, *args, **kwargs):
            steps.append(self.state.global_step + 1)
            return super().training_step(*args, **kwargs)

    monkeypatch.setattr(trainer, "GeneratorTrainer", Counting)
    extra = ["--config_overrides", TINY["st"], "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert cli.main(_argv(assets, "st", whole, *extra)) == 0
    cut.mkdir()
    shutil.copytree(whole / "checkpoint-2", cut / "checkpoint-2")  # what a run killed after step 2's save leaves
    assert cli.main(_argv(assets, "st", cut, *extra, "--resume_from_checkpoint", "last")) == 0
    assert steps == [1, 2, 3, 4, 3, 4]
    expected, resumed = load_generator(whole)[0].state_dict(), load_generator(cut)[0].state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=1e-6, msg=name)
    assert _records(cut) == _records(whole)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda saved: saved | {"extra": 1}, "is not a generator_inputs.json that `train-generator` writes"),
        (lambda saved: {k: v for k, v in saved.items() if k != "max_length"}, "is not a generator_inputs.json"),
        (lambda saved: [saved], "is not a generator_inputs.json"),
        (lambda saved: saved | {"model": "gpt-9"}, "unknown model 'gpt-9'; expected one of"),
    ],
    ids=["unknown-key", "missing-key", "not-an-object", "unknown-model"],
)
def test_a_damaged_inputs_file_is_one_line(assets, tmp_path, monkeypatch, change, message):
    """Session 24's audit: these were a TypeError or KeyError traceback from `load_generator`."""
    monkeypatch.setitem(BASELINES, "st", StandInBaseline(("image",)))
    out = tmp_path / "run"
    assert cli.main(_argv(assets, "st", out, "--max_images", "1", "--generate_test", "False")) == 0
    path = out / "generator_inputs.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    with pytest.raises(InputError, match=message):
        GeneratorInputs.load(out)


def test_a_baseline_whose_weights_do_not_fit_is_one_line_not_a_random_model(assets, tmp_path, monkeypatch):
    """The architecture audit (session 27): `load_generator` used plain `from_pretrained`, which fills a weight the
    file lacks with random values after a warning, and generated from that model."""
    from safetensors.torch import load_file, save_file

    monkeypatch.setitem(BASELINES, "st", StandInBaseline(("image",)))
    out = tmp_path / "run"
    assert cli.main(_argv(assets, "st", out, "--max_images", "1", "--generate_test", "False")) == 0
    assert load_generator(out)[0] is not None
    weights = load_file(out / "model.safetensors")
    save_file(dict(list(weights.items())[1:]), out / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(InputError, match=rf"^baseline {out}: its weights do not fit the model \(missing: "):
        load_generator(out)


@pytest.mark.parametrize("model", ["st", "gpt2-ce"])
def test_test_rows_without_any_feature_are_one_line_before_training(assets, tmp_path, monkeypatch, capsys, model):
    """Session 28's formats audit: features of s1 alone held none of a published s2's test photos; train-generator
    wrote 0 test generations and exited 0. Then (session 28) it refused, but only after the whole training run."""

    class TrainPhotosOnly(FakeFeatureTable):
        def lookup(self, ids):
            features, found = super().lookup(ids)
            test = torch.tensor([key.startswith(("p8", "p9", "p10")) for key in ids], dtype=torch.bool)
            return features * ~test[:, None], found & ~test

    monkeypatch.setattr(gest_showcases.features, "load_features", lambda root, kind: TrainPhotosOnly())
    monkeypatch.setitem(BASELINES, "st", StandInBaseline(("image",)))
    pc2l = ["--decoder", str(assets / "gpt2"), "--image_kind", "image", "--encoder_layers", "1",
            "--encoder_attention_heads", "2", "--projection_dim", "8", "--input_mode", "img"]  # fmt: skip
    extra = pc2l if model == "gpt2-ce" else []
    trained = []
    monkeypatch.setattr(Trainer, "train", lambda self, *args, **kwargs: trained.append(self))
    assert cli.main(_argv(assets, model, tmp_path / "run", *extra)) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after datasets' progress bars
    assert error.startswith("gest-showcases train-generator: error: ") and "no s2 test example has its image " \
        "features in unused" in error, error
    assert not trained and not (tmp_path / "run").exists()
    # The model itself does not need them: without the test generations it trains.
    monkeypatch.undo()
    monkeypatch.setattr(gest_showcases.features, "load_features", lambda root, kind: TrainPhotosOnly())
    monkeypatch.setitem(BASELINES, "st", StandInBaseline(("image",)))
    assert cli.main(_argv(assets, model, tmp_path / "run", *extra, "--generate_test", "false")) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_a_rerun_stopped_while_generating_leaves_no_generations_of_the_previous_model(assets, tmp_path, monkeypatch):
    """Session 28's resume audit: a rerun killed while generating left the previous model's generations beside the new
    model, and `evaluate` would have scored them as its."""
    from gest_showcases.commands import train_generator

    monkeypatch.setitem(BASELINES, "peter", StandInBaseline(("ids",)))
    out = tmp_path / "run"
    assert cli.main(_argv(assets, "peter", out)) == 0
    assert (out / "generations-test.jsonl").is_file()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_generator, "write_test_generations", killed)
    assert cli.main(_argv(assets, "peter", out, "--seed", "1")) == 130
    assert not (out / "generations-test.jsonl").exists() and (out / "model.safetensors").is_file()
