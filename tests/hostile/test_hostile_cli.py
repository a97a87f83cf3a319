"""The CLI rule (issue 13): every error the user can fix is one stderr line saying what to do, exit
code 2, no traceback unless `--debug`; Ctrl-C is one line and exit 130; bugs keep their traceback."""

import json
import sys
import types

import pytest

from gest_showcases import cli
from gest_showcases.data.images import UnreadableImageError
from gest_showcases.errors import InputError


def _fake_command(monkeypatch, error: BaseException) -> list[list[str]]:
    """Register `gest-showcases fake`, whose main records its argv and raises `error`."""
    calls = []

    def main(argv, prog=None):
        calls.append(list(argv))
        raise error

    module = types.ModuleType("gest_showcases_fake_command")
    module.main = main
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli.SUBCOMMANDS, "fake", (module.__name__, "a test command"))
    return calls


def _one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"gest-showcases {command}: error: ")
    return lines[0]


@pytest.mark.parametrize(
    "error",
    [
        InputError("bad.jsonl:3: not a JSON object; fix or remove the line"),
        FileNotFoundError(2, "No such file or directory", "/no/such/file.jsonl"),
        IsADirectoryError(21, "Is a directory", "/some/folder"),
        NotADirectoryError(20, "Not a directory", "/some/file"),
        FileExistsError(17, "File exists", "/a/file/given/as/output_dir"),
        PermissionError(13, "Permission denied", "/root/secret"),
        json.JSONDecodeError("Expecting value", "{", 1),
        UnreadableImageError("/x.jpg: 20000x20000 pixels is over the limit of 40,000,000"),
        UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_user_errors_are_one_line_and_exit_2(error, monkeypatch, capsys):
    _fake_command(monkeypatch, error)
    assert cli.main(["fake", "--flag"]) == 2
    line = _one_error_line(capsys, "fake")
    if isinstance(error, OSError) and error.filename:
        assert error.filename in line and error.strerror in line


def test_a_multi_line_message_still_prints_as_one_line(monkeypatch, capsys):
    _fake_command(monkeypatch, InputError("first line\nsecond line"))
    assert cli.main(["fake"]) == 2
    assert _one_error_line(capsys, "fake").endswith("first line second line")


@pytest.mark.parametrize(
    "argv", [["--debug", "fake", "--flag"], ["fake", "--debug", "--flag"], ["fake", "--flag", "--debug"]]
)
def test_debug_reraises_and_is_stripped_before_dispatch(argv, monkeypatch):
    calls = _fake_command(monkeypatch, InputError("bad input"))
    with pytest.raises(InputError, match="bad input"):
        cli.main(argv)
    assert calls == [["--flag"]]


def test_keyboard_interrupt_is_one_line_and_exit_130(monkeypatch, capsys):
    _fake_command(monkeypatch, KeyboardInterrupt())
    assert cli.main(["fake"]) == 130
    err = capsys.readouterr().err
    assert err.splitlines() == ["gest-showcases fake: interrupted"]


def test_a_bug_keeps_its_traceback(monkeypatch):
    _fake_command(monkeypatch, ZeroDivisionError("division by zero"))
    with pytest.raises(ZeroDivisionError):
        cli.main(["fake"])


@pytest.fixture
def no_progress_bars(monkeypatch):
    """The generations reader's progress bar writes to stderr too; it is not part of the error."""
    monkeypatch.setattr("gest_showcases.data.readers.tqdm", lambda iterable, **_: iterable)


def _evaluate(tmp_path, generations, *extra) -> int:
    argv = ["evaluate", "--generations", str(generations), "--output_dir", str(tmp_path / "out")]
    return cli.main([*argv, "--no_bertscore", *extra])


def test_evaluate_missing_generations_file(tmp_path, capsys, no_progress_bars):
    assert _evaluate(tmp_path, tmp_path / "missing.jsonl") == 2
    assert "missing.jsonl" in _one_error_line(capsys, "evaluate")


def test_evaluate_generations_is_a_folder(tmp_path, capsys, no_progress_bars):
    assert _evaluate(tmp_path, tmp_path) == 2
    _one_error_line(capsys, "evaluate")


def test_evaluate_file_of_bad_lines(tmp_path, capsys, no_progress_bars):
    path = tmp_path / "g.jsonl"
    path.write_bytes(
        b"[1, 2]\n" + b'{"id": "1", "system": "x", "generated": "a", "reference": "b", "pic_ids": 5}\n'
    )
    assert _evaluate(tmp_path, path) == 2
    line = _one_error_line(capsys, "evaluate")
    assert f"{path} holds no usable generations (2 bad line(s)" in line
    assert "not a JSON object: 1 (first: g.jsonl:1)" in line and "pic_ids" in line and "g.jsonl:2" in line


def test_evaluate_system_named_gt(tmp_path, capsys, no_progress_bars):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"id": "1", "system": "GT", "generated": "a", "reference": "b"}) + "\n")
    assert _evaluate(tmp_path, path) == 2
    assert "'GT' is reserved" in _one_error_line(capsys, "evaluate")


def test_evaluate_images_folder_that_does_not_exist(tmp_path, capsys, no_progress_bars):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"id": "1", "system": "a", "generated": "a", "reference": "b"}) + "\n")
    assert (
        _evaluate(tmp_path, path, "--images", str(tmp_path / "nope"), "--clip_model", str(tmp_path / "nope"))
        == 2
    )
    assert "--images" in _one_error_line(capsys, "evaluate")


def test_evaluate_clip_model_that_does_not_load(tmp_path, capsys, no_progress_bars):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"id": "1", "system": "a", "generated": "a", "reference": "b"}) + "\n")
    (tmp_path / "images").mkdir()
    (tmp_path / "clip").mkdir()
    assert (
        _evaluate(
            tmp_path, path, "--images", str(tmp_path / "images"), "--clip_model", str(tmp_path / "clip")
        )
        == 2
    )
    assert "--clip_model" in _one_error_line(capsys, "evaluate")


def test_evaluate_bertscore_model_that_does_not_load(tmp_path, capsys, no_progress_bars):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"id": "1", "system": "a", "generated": "a", "reference": "b"}) + "\n")
    argv = ["evaluate", "--generations", str(path), "--output_dir", str(tmp_path / "out")]
    assert cli.main([*argv, "--bertscore_model", str(tmp_path / "no-such-encoder")]) == 2
    assert "--bertscore_model" in _one_error_line(capsys, "evaluate")


def test_evaluate_images_folder_holding_none_of_the_photos(tmp_path, capsys, no_progress_bars):
    from gest_showcases.testing.tiny_assets import save_tiny_checkpoints

    clip = save_tiny_checkpoints(tmp_path / "checkpoints")["clip"]
    path = tmp_path / "g.jsonl"
    row = {"id": "1", "system": "a", "generated": "a dish", "reference": "b dish", "pic_ids": ["p1", "p2"]}
    path.write_text(json.dumps(row) + "\n")
    (tmp_path / "images").mkdir()  # the wrong folder: it used to print CLIP-Score 0.00 as if measured
    assert _evaluate(tmp_path, path, "--images", str(tmp_path / "images"), "--clip_model", clip) == 2
    # Exit 2 is the one-line path (a bug would raise); progress bars and log lines share stderr before it.
    err = capsys.readouterr().err
    line = err.strip().split("\r")[-1].splitlines()[-1].split("  ")[-1]
    assert line.startswith("gest-showcases evaluate: error: none of the 2 photos the generations name")
    assert f"is a readable <pic_id>.jpg in {tmp_path / 'images'}: check --images" in line
    assert not (tmp_path / "out" / "table2.json").exists()


def test_evaluate_refuses_a_bertscore_layer_past_the_encoders_depth_before_scoring(tmp_path):
    from transformers import BertConfig

    from gest_showcases.commands.evaluate import _check_bertscore_model
    from gest_showcases.errors import InputError

    BertConfig(num_hidden_layers=2, hidden_size=8, num_attention_heads=2, intermediate_size=16).save_pretrained(tmp_path)
    _check_bertscore_model(tmp_path, 2)
    _check_bertscore_model(tmp_path, None)
    with pytest.raises(InputError, match=f"^--bertscore_layers 99: {tmp_path} has 2 layers; give 0 to 2$"):
        _check_bertscore_model(tmp_path, 99)


def test_evaluate_refuses_systems_that_disagree_on_an_examples_reference(tmp_path, capsys, no_progress_bars):
    path = tmp_path / "g.jsonl"
    rows = [{"id": "1", "system": "a", "generated": "x", "reference": "the ramen"},
            {"id": "1", "system": "b", "generated": "y", "reference": "the dumplings"}]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert _evaluate(tmp_path, path) == 2
    line = _one_error_line(capsys, "evaluate")
    assert "example '1' has another reference for system 'b' than for 'a'" in line


def test_evaluate_reads_the_synth_truth_before_any_metric_runs(tmp_path, capsys, no_progress_bars, monkeypatch):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"id": "1", "system": "a", "generated": "x", "reference": "y"}) + "\n")
    truth = tmp_path / "ground_truth.json"
    truth.write_text("{not json")
    monkeypatch.setattr("gest_showcases.commands.evaluate.score_generations", lambda *a, **k: pytest.fail("scored"))
    assert _evaluate(tmp_path, path, "--synth_truth", str(truth)) == 2
    assert f"cannot read the Gest-Synth ground truth {truth}" in _one_error_line(capsys, "evaluate")
