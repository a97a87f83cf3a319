"""A model that cannot be loaded is one line naming the option (session 15's audit): transformers' paragraph
("We couldn't connect to 'https://huggingface.co'...", "Repo id must be in the form...") names neither the flag
nor the path, and came with a traceback from `train-pc2l --tokenizer`, `finetune-lm --tokenizer`, `train-pc2l
--decoder` and `showcase --clip_model`. Also the showcase options that failed only after loading every model."""

from __future__ import annotations

import pytest
import torch

from gest_showcases import cli
from gest_showcases.dataset_requests import request_from_dataset
from gest_showcases.errors import InputError
from gest_showcases.model_folders import loading
from gest_showcases.testing.built_folder import write_built_dataset
from gest_showcases.testing.images import write_jpegs
from gest_showcases.testing.tokenizers import gpt2_tokenizer


def test_loading_names_the_option_for_an_os_error_and_lets_everything_else_through():
    one_line = r"^--tokenizer /x/y: cannot be loaded \(no such thing\)$"
    with pytest.raises(InputError, match=one_line), loading("--tokenizer", "/x/y"):
        raise OSError("no   such\n thing")
    with (
        pytest.raises(InputError, match=r"^--tokenizer /x/y: not a tokenizer$"),
        loading("--tokenizer", "/x/y"),
    ):
        raise InputError("not a tokenizer")  # the loader's own line gets the option
    with pytest.raises(InputError, match=r"^--tokenizer /x/y: named$"), loading("--tokenizer", "/x/y"):
        raise InputError("--tokenizer /x/y: named")  # once
    unrecognized = r"^--tokenizer /x/y: cannot be loaded \(Unrecognized\)$"
    with pytest.raises(InputError, match=unrecognized), loading("--tokenizer", "/x/y"):
        raise ValueError("Unrecognized")  # transformers, for a folder holding no such thing
    with pytest.raises(KeyError), loading("--tokenizer", "/x/y"):  # a bug keeps its traceback
        raise KeyError("bug")


@pytest.mark.parametrize(
    ("command", "argv", "option"),
    [
        ("train-pc2l", ["--dataset", "d", "--features", "f", "--tokenizer", "{missing}"], "--tokenizer"),
        ("finetune-lm", ["--dataset", "d", "--tokenizer", "{missing}"], "--tokenizer"),
        ("train-generator", ["--model", "peter", "--dataset", "d", "--features", "f", "--tokenizer", "{missing}"],
         "--tokenizer"),
    ],
)  # fmt: skip
def test_a_tokenizer_that_is_not_there_is_one_line_naming_the_flag(command, argv, option, tmp_path, capsys):
    missing = str(tmp_path / "no-such-tokenizer")
    argv = [value.format(missing=missing) for value in argv]
    assert cli.main([command, *argv, "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"error: {option} {missing}: cannot be loaded (" in err


def test_a_decoder_that_is_not_there_is_one_line(tmp_path, capsys):
    tokenizer = tmp_path / "tok"
    gpt2_tokenizer(["a tiny corpus of words"]).save_pretrained(tokenizer)
    missing = tmp_path / "no-such-decoder"
    argv = ["train-pc2l", "--dataset", "d", "--features", "f", "--tokenizer", str(tokenizer), "--decoder",
            str(missing), "--output_dir", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 2
    assert f"error: --decoder {missing}: cannot be loaded (" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: --device cuda is valid here")
def test_a_cuda_device_on_a_machine_without_cuda_is_one_line(tmp_path, capsys):
    argv = ["showcase", "--dataset", "d", "--user", "u", "--business", "b", "--selector", "s", "--generator", "g",
            "--clip_model", "c", "--device", "cuda:0", "--output_dir", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 2
    assert "--device cuda:0: this machine has no CUDA device; give --device cpu" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["0", "65536"])
def test_serve_refuses_a_port_out_of_range_before_loading(port, capsys):
    argv = [
        "serve",
        "--dataset",
        "d",
        "--selector",
        "s",
        "--generator",
        "g",
        "--clip_model",
        "c",
        "--port",
        port,
    ]
    assert cli.main(argv) == 2
    assert f"error: --port {port}: give a" in capsys.readouterr().err


def test_a_showcase_request_names_the_raw_config_and_an_unknown_business(tmp_path):
    write_jpegs(tmp_path / "images", ["pic0", "pic1"], size=(36, 48))
    reviews = [
        ("u1_b1", "u1", "b1", "Great ramen.", ["pic0"], "train"),
        ("u2_b1", "u2", "b1", "Rich broth.", ["pic1"], "test"),
    ]
    built_dataset = write_built_dataset(tmp_path / "dataset", tmp_path / "images", reviews)
    with pytest.raises(InputError, match="--dataset_config_name raw: a showcase reads s1 or s2"):
        request_from_dataset(built_dataset, "raw", "u1", "b1")
    with pytest.raises(InputError, match="business 'nobody' has no photos in .*; check --business"):
        request_from_dataset(built_dataset, "s1", "u1", "nobody", images=tmp_path / "images")


def test_a_file_given_as_output_dir_is_one_line(tmp_path, capsys):
    file = tmp_path / "a-file"
    file.write_text("keep me")
    argv = [
        "finetune-lm",
        "--dataset",
        str(tmp_path),
        "--tokenizer",
        str(tmp_path),
        "--output_dir",
        str(file),
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"error: --output_dir {file}: a file, not a folder" in err
    assert file.read_text() == "keep me"


def test_a_folder_that_holds_no_tokenizer_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["finetune-lm", "--dataset", "d", "--tokenizer", str(empty), "--output_dir", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"error: --tokenizer {empty}: cannot be loaded (" in err


def test_the_showcase_commands_name_their_flags_for_a_clip_that_is_missing_or_another_model(tmp_path):
    from gest_showcases.commands.showcase import PIPELINE_FLAGS
    from gest_showcases.pipeline import ShowcasePipeline
    from gest_showcases.testing.tiny_assets import save_tiny_checkpoints

    parts = save_tiny_checkpoints(tmp_path / "checkpoints")
    cases = [(tmp_path / "missing", "no model config there"),
             (parts["selector"], "holds a 'dpp_image_selector' model, not 'clip' or 'vision-text-dual-encoder'")]  # fmt: skip
    for clip, says in cases:
        with pytest.raises(InputError, match=f"^--clip_model {clip}: {says}"):
            ShowcasePipeline.from_pretrained(
                selector=parts["selector"],
                generator=parts["generator"],
                clip=clip,
                option_names=PIPELINE_FLAGS,
            )
