"""A checkpoint folder of the wrong kind is one line naming the option, never a model with random weights
(session 15's audit: `finetune-lm --decoder <PC2L>`, `train-generator --model pepler --decoder <PC2L>` and
`push --selector <PC2L>` trained or staged a randomly initialised model; `showcase --selector <PC2L>` failed
with a shape traceback after loading everything)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gest_showcases import cli
from gest_showcases.errors import InputError
from gest_showcases.model_folders import check_model_output_dir, require_model_type
from gest_showcases.pipeline import ShowcasePipeline
from gest_showcases.testing.tiny_assets import save_tiny_checkpoints


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return save_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"))


def test_require_model_type_returns_the_config_of_the_right_kind_and_refuses_others(checkpoints, tmp_path):
    config = require_model_type(checkpoints["selector"], "dpp_image_selector", "--selector", "hint")
    assert config["model_type"] == "dpp_image_selector"
    assert (
        require_model_type(checkpoints["generator"], ("gpt2", "pc2l"), "-g", "hint")["model_type"] == "pc2l"
    )
    with pytest.raises(
        InputError, match=r"^--selector .*generator: holds a 'pc2l' model, not 'dpp_image_selector'; do"
    ):
        require_model_type(checkpoints["generator"], "dpp_image_selector", "--selector", "do this")
    with pytest.raises(InputError, match="not 'gpt2' or 'llama'"):
        require_model_type(checkpoints["selector"], ("gpt2", "llama"), "--decoder", "hint")
    with pytest.raises(InputError, match=r"^--decoder .*missing: no model config there"):
        require_model_type(tmp_path / "missing", "gpt2", "--decoder", "hint")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="no model config there"):
        require_model_type(tmp_path, "gpt2", "--decoder", "hint")


@pytest.mark.parametrize(
    "swap, message",
    [
        ({"selector": "generator"}, r"^selector .*: holds a 'pc2l' model, not 'dpp_image_selector'"),
        ({"generator": "selector"}, r"^generator .*: holds a 'dpp_image_selector' model, not 'pc2l'"),
    ],
)
def test_the_pipeline_refuses_a_selector_or_generator_of_the_wrong_kind(checkpoints, swap, message):
    parts = {name: checkpoints[swap.get(name, name)] for name in ("selector", "generator", "clip")}
    with pytest.raises(InputError, match=message):
        ShowcasePipeline.from_pretrained(**parts, device="cpu")


def test_push_refuses_a_generator_folder_as_selector_and_stages_nothing(checkpoints, tmp_path, capsys):
    out = tmp_path / "staged"
    argv = [
        "push",
        "--namespace",
        "me",
        "--selector",
        checkpoints["generator"],
        "--dry_run",
        "--output_dir",
        str(out),
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "--selector" in err and "holds a 'pc2l' model" in err and len(err.splitlines()) == 1
    assert not (out / "selector").exists()


def test_finetune_lm_refuses_a_non_gpt2_decoder_before_reading_data(checkpoints, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["finetune-lm", "--dataset", str(tmp_path / "no-dataset"), "--decoder", checkpoints["generator"],
            "--tokenizer", checkpoints["generator"], "--output_dir", str(out), "--report_to", "none"]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("holds a 'pc2l' model, not 'gpt2'; pass a GPT-2 checkpoint (Hub name or folder)")
    assert "--decoder" in err and not (out / "config.json").exists()


def test_train_generator_refuses_a_non_gpt2_decoder_for_pepler(checkpoints, tmp_path, capsys):
    argv = ["train-generator", "--model", "pepler", "--dataset", str(tmp_path / "no-dataset"), "--features", "none",
            "--tokenizer", checkpoints["generator"], "--decoder", checkpoints["selector"],
            "--output_dir", str(tmp_path / "run"), "--report_to", "none"]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "--decoder" in err and "holds a 'dpp_image_selector' model, not 'gpt2'" in err


def test_a_saved_config_without_a_model_type_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 4}))
    with pytest.raises(InputError, match=r"holds a config.json without a model_type \(not a model\), not 'gpt2'"):
        require_model_type(tmp_path, "gpt2", "--decoder", "hint")


def test_check_model_output_dir_allows_a_rerun_or_an_empty_folder_and_refuses_another_model(
    checkpoints, tmp_path
):
    check_model_output_dir(checkpoints["generator"], "pc2l", "train-pc2l")  # a rerun into its own folder
    check_model_output_dir(tmp_path, "pc2l", "train-pc2l")  # no model there
    check_model_output_dir(tmp_path / "new", "pc2l", "train-pc2l")
    with pytest.raises(
        InputError, match=r"holds a 'dpp_image_selector' model, which train-pc2l would overwrite"
    ):
        check_model_output_dir(checkpoints["selector"], "pc2l", "train-pc2l")
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(
        InputError, match="holds an unreadable config.json, which finetune-lm would overwrite"
    ):
        check_model_output_dir(tmp_path, "gpt2", "finetune-lm")


def test_a_lora_run_folder_is_refused_unless_a_lora_run_goes_back_into_it(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")  # a train-pc2l --lora run: no config.json at its root
    check_model_output_dir(tmp_path, "pc2l", "train-pc2l", lora=True)
    for types, command in (("pc2l", "train-pc2l"), ("gpt2", "finetune-lm")):
        with pytest.raises(
            InputError, match=f"holds a train-pc2l --lora run, which {command} would overwrite"
        ):
            check_model_output_dir(tmp_path, types, command)
    with pytest.raises(InputError, match="holds a train-pc2l --lora run"):
        check_model_output_dir(tmp_path, "gpt2", "finetune-lm", lora=True)


NO_REPORTS = ["--report_to", "none"]


def _unchanged(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


@pytest.mark.parametrize(
    "argv, victim, message",
    [
        (["finetune-lm", "--dataset", "none", "--tokenizer", "none", *NO_REPORTS], "selector",
         "holds a 'dpp_image_selector' model, which finetune-lm would overwrite with a 'gpt2' one; give a new folder"),
        (["train-pc2l", "--dataset", "none", "--features", "none", "--tokenizer", "none", *NO_REPORTS], "clip",
         "which train-pc2l would overwrite with a 'pc2l' one"),
        (["train-generator", "--model", "peter", "--dataset", "none", "--features", "none", "--tokenizer", "none",
          *NO_REPORTS],
         "generator", "holds a 'pc2l' model, which train-generator --model peter would overwrite with a 'peter' one"),
        (["train-generator", "--model", "pc2l", "--dataset", "none", "--features", "none", "--tokenizer", "none",
          *NO_REPORTS],
         "selector", "which train-generator --model pc2l would overwrite with a 'pc2l' one"),
        (["train-clip", "--dataset", "none"], "generator",
         "holds a 'pc2l' model, which train-clip would overwrite with a 'clip' or 'vision-text-dual-encoder' one"),
        (["distill", "--annotations", "a", "--features", "f", "--images", "i"], "clip",
         "holds a 'clip' model, which distill would overwrite with a 'explanation_classifier' one"),
    ],
)  # fmt: skip
def test_a_training_command_refuses_an_output_dir_holding_another_model(
    checkpoints, argv, victim, message, capsys
):
    folder = Path(checkpoints[victim])
    before = _unchanged(folder)
    assert cli.main([*argv, "--output_dir", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert _unchanged(folder) == before


@pytest.mark.parametrize(
    "command", [["train-pc2l"], ["finetune-lm"], ["train-generator", "--model", "peter"]]
)
def test_a_training_command_without_output_dir_is_refused_not_saved_to_trainer_output(
    command, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--dataset", "none", "--features", "none", "--tokenizer", "none"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "the following arguments are required: --output_dir" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "trainer_output").exists()


def test_the_pipeline_refuses_a_selector_trained_on_another_clips_features(checkpoints, tmp_path):
    from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig

    config = DPPSelectorConfig(
        text_dim=7, image_dim=9, user_hidden_sizes=[16], image_hidden_sizes=[16], embed_dim=8
    )
    DPPImageSelector(config).save_pretrained(tmp_path / "selector")
    with pytest.raises(InputError, match="the selector reads 7-d review and 9-d image features but the CLIP"):
        ShowcasePipeline.from_pretrained(
            selector=tmp_path / "selector",
            generator=checkpoints["generator"],
            clip=checkpoints["clip"],
            device="cpu",
        )


@pytest.mark.parametrize("part", ["selector", "generator", "clip"])
def test_weights_cut_by_a_killed_save_are_one_line_naming_the_folder(checkpoints, tmp_path, part):
    """Session 26's audit: a save killed halfway through `model.safetensors` left a folder every loader failed on
    with a SafetensorError traceback (`incomplete metadata, file not fully covered`)."""
    import shutil

    cut = tmp_path / part
    shutil.copytree(checkpoints[part], cut)
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(InputError, match=rf"^{part} {cut}: .*Error while deserializing header"):
        ShowcasePipeline.from_pretrained(**(checkpoints | {part: str(cut)}), device="cpu")


def test_a_config_describing_more_weights_than_the_files_hold_is_refused_before_any_allocation(
    checkpoints, tmp_path, monkeypatch
):
    """Session 43's review: a generator whose config.json named Llama's default sizes for its decoder made
    from_pretrained fill 27 GB of missing weights with random values before load_whole could refuse the folder.
    Now the config is built on the meta device and counted against the weights files' headers first."""
    import shutil

    from gest_showcases.generation import PC2LForConditionalGeneration

    edited = tmp_path / "generator"
    shutil.copytree(checkpoints["generator"], edited)
    config = json.loads((edited / "config.json").read_text())
    config["decoder"]["n_layer"] *= 16  # far more layers than the weights hold
    (edited / "config.json").write_text(json.dumps(config))

    def never(*args, **kwargs):
        raise AssertionError("from_pretrained was called: the weights would have been allocated first")

    monkeypatch.setattr(PC2LForConditionalGeneration, "from_pretrained", never)
    with pytest.raises(InputError, match=rf"^generator {edited}: its config.json describes [\d,]+ weights, more "
                                         rf"than twice the [\d,]+ its weights files hold: the config is not"):  # fmt: skip
        ShowcasePipeline.from_pretrained(**(checkpoints | {"generator": str(edited)}), device="cpu")


def test_a_config_that_is_no_json_object_and_a_pickle_that_would_run_code_are_one_line(checkpoints, tmp_path):
    """Session 43's review: `config.json` holding `[1, 2]` was an AttributeError traceback; a folder holding only a
    pickled `pytorch_model.bin` whose unpickling would run a command was refused by torch's weights-only loader,
    but as an UnpicklingError traceback. Nothing in it runs."""
    import os
    import shutil

    import torch
    from safetensors.torch import load_file

    listed = tmp_path / "listed"
    shutil.copytree(checkpoints["selector"], listed)
    (listed / "config.json").write_text("[1, 2]")
    with pytest.raises(InputError, match=rf"^--selector {listed}: its config.json is not a JSON object"):
        require_model_type(listed, "dpp_image_selector", "--selector", "pass a selector")

    pickled, marker = tmp_path / "pickled", tmp_path / "ran"
    shutil.copytree(checkpoints["selector"], pickled)
    weights = load_file(pickled / "model.safetensors")
    (pickled / "model.safetensors").unlink()

    class RunsACommand:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({**weights, "payload": RunsACommand()}, pickled / "pytorch_model.bin")
    with pytest.raises(InputError, match=rf"^selector {pickled}: cannot be loaded \(Weights only load failed"):
        ShowcasePipeline.from_pretrained(**(checkpoints | {"selector": str(pickled)}), device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("change", [{"max_images": 0}, {"max_images": -1}, {"max_reviews": -1}])
def test_a_generator_config_keeping_no_photos_or_reviews_is_one_line(checkpoints, tmp_path, change):
    """Session 43's review: max_images 0 stopped generation with `stack expects a non-empty TensorList`, -1 dropped
    a photo without a word, max_reviews -1 was a ValueError of itertools deep in the collator."""
    import shutil

    from gest_showcases.generation import PC2LConfig

    edited = tmp_path / "generator"
    shutil.copytree(checkpoints["generator"], edited)
    config = json.loads((edited / "config.json").read_text())
    (edited / "config.json").write_text(json.dumps(config | change))
    (name, value), = change.items()
    message = rf"{name} must be a whole number >= 1 \(the most per example the collator keeps\), got {value}"
    with pytest.raises(ValueError, match=message):
        PC2LConfig(**change)
    with pytest.raises(InputError, match=rf"^generator {edited}: .*{message}"):
        ShowcasePipeline.from_pretrained(**(checkpoints | {"generator": str(edited)}), device="cpu")


def test_a_saved_generation_config_asking_for_several_explanations_is_one_line(checkpoints, tmp_path):
    """Session 43's review: generation_config.json with num_return_sequences 2 (the call's own was refused) failed
    after generating, as `zip() argument 4 is longer`."""
    import shutil

    from gest_showcases.pipeline import ShowcaseInput
    from gest_showcases.testing.images import write_jpegs

    edited = tmp_path / "generator"
    shutil.copytree(checkpoints["generator"], edited)
    decoding = json.loads((edited / "generation_config.json").read_text())
    decoding |= {"num_return_sequences": 2, "num_beams": max(2, decoding.get("num_beams") or 1)}
    (edited / "generation_config.json").write_text(json.dumps(decoding))
    pipeline = ShowcasePipeline.from_pretrained(**(checkpoints | {"generator": str(edited)}), device="cpu")
    photos = write_jpegs(tmp_path / "photos", ["p0", "p1", "p2"], size=(32, 32))
    request = ShowcaseInput(candidates=photos, history_texts=["Great ramen."])
    with pytest.raises(InputError, match="num_return_sequences must be 1"):
        pipeline(request, k=2)


def test_a_saved_generation_config_that_is_not_json_is_one_line_not_greedy_decoding(checkpoints, tmp_path):
    """Session 43's review: from_pretrained skipped an unreadable generation_config.json without a word, and the
    pipeline decoded greedily instead of as the generator was saved to."""
    import shutil

    edited = tmp_path / "generator"
    shutil.copytree(checkpoints["generator"], edited)
    (edited / "generation_config.json").write_text('{"num_beams": ')
    with pytest.raises(InputError, match=rf"^generator {edited}: cannot be loaded .*generation_config.json"):
        ShowcasePipeline.from_pretrained(**(checkpoints | {"generator": str(edited)}), device="cpu")
