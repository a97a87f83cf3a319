"""Where a command writes, and what it reads, named in one line before any work (session 15's audit): a file given
as `--output_dir` failed with a FileExistsError traceback after the work; `diversity --plot DIR` wrote `DIR.png`
beside it; `--output` with `--output_dir` silently used one; two datasets with one folder name made one row; a
corrupt Parquet file was a pyarrow traceback; a missing dataset folder was reported as "has no README.md"."""

from __future__ import annotations

import pytest

from gest_showcases import cli
from gest_showcases.commands.arguments import (
    OWNER_FILE,
    LegacyOutputArguments,
    OutputArguments,
    claim_output_folder,
)
from gest_showcases.commands.diversity import DiversityArguments, DiversityOutputArguments
from gest_showcases.commands.showcase import ShowcaseOutputArguments
from gest_showcases.data.folder import read_card, read_rows
from gest_showcases.errors import InputError
from gest_showcases.testing.built_folder import write_built_dataset
from gest_showcases.testing.images import write_jpegs

REVIEWS = [
    ("u1_b1", "u1", "b1", "Great ramen.", ["pic0"], "train"),
    ("u2_b1", "u2", "b1", "Rich.", ["pic1"], "test"),
]


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("keep")
    return path


@pytest.mark.parametrize("arguments", [OutputArguments, LegacyOutputArguments, DiversityOutputArguments])
def test_a_file_as_output_dir_is_refused_at_parse_time(arguments, a_file, tmp_path):
    with pytest.raises(InputError, match=f"^--output_dir {a_file}: a file, not a folder"):
        arguments(output_dir=str(a_file))
    assert arguments(output_dir=str(tmp_path / "new")).output_dir == str(tmp_path / "new")
    assert a_file.read_text() == "keep"


def test_a_folder_where_one_file_is_written_is_refused(tmp_path):
    with pytest.raises(InputError, match=f"^--plot {tmp_path}: a folder"):
        DiversityArguments(dataset=["d"], features=["f"], plot=str(tmp_path))
    with pytest.raises(InputError, match=f"^--html {tmp_path}: a folder"):
        ShowcaseOutputArguments(html=str(tmp_path))
    with pytest.raises(InputError, match=f"^--output {tmp_path}: a folder"):
        DiversityOutputArguments(output=str(tmp_path))
    assert DiversityArguments(dataset=["d"], features=["f"], plot=str(tmp_path / "chart.png")).plot


def test_diversity_refuses_output_with_output_dir_and_two_datasets_of_one_name(tmp_path, capsys):
    refused = pytest.raises(InputError, match="name different places: give --output_dir only")
    with pytest.warns(FutureWarning, match="--output is deprecated"), refused:
        DiversityOutputArguments(output=str(tmp_path / "x.json"), output_dir=str(tmp_path / "out"))
    argv = ["diversity", "--dataset", "a/world", "b/world", "--features", "f", "g"]
    assert cli.main(argv) == 2
    assert "two datasets are named world: give each its own with --names" in capsys.readouterr().err


def test_a_missing_folder_and_a_corrupt_parquet_file_are_one_line(tmp_path, capsys):
    with pytest.raises(InputError, match=f"^{tmp_path / 'nowhere'}: no such folder"):
        read_card(tmp_path / "nowhere")
    write_jpegs(tmp_path / "images", ["pic0", "pic1"], size=(36, 48))
    folder = write_built_dataset(tmp_path / "dataset", tmp_path / "images", REVIEWS)
    assert len(read_rows(folder, "s1")) == 2
    victim = sorted((folder / "s1").glob("*.parquet"))[0]
    victim.write_bytes(b"not parquet at all")
    with pytest.raises(
        InputError, match=f"^{victim}: cannot be read as this dataset's Parquet .*; rebuild it$"
    ):
        read_rows(folder, "s1")
    assert cli.main(["stats", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{victim}: cannot be read" in err


@pytest.mark.parametrize("command", ["demo", "experiment"])
def test_a_folder_of_the_users_own_work_is_not_taken_by_the_demo_or_the_experiment(command, tmp_path, capsys):
    """Both write fixed subfolders (`dataset/`, `clip/`, ...) and replace them when they run again: pointed at a
    folder of the user's own work (session 24's audit), the demo's build stage would have replaced a real `dataset/`."""
    work = tmp_path / "project"
    (work / "dataset").mkdir(parents=True)
    (work / "dataset" / "README.md").write_text("a real dataset")
    assert cli.main([command, "--quick", "--output_dir", str(work)]) == 2
    line = capsys.readouterr().err.strip()
    assert line == (
        f"gest-showcases {command}: error: --output_dir {work} holds files written by something else, not by "
        f"`{command}`, which replaces the folders it writes there; give a new or empty folder"
    )
    assert sorted(path.name for path in work.rglob("*")) == ["README.md", "dataset"]
    assert (work / "dataset" / "README.md").read_text() == "a real dataset"


def test_a_claimed_folder_is_taken_back_by_its_command_only(tmp_path):
    work = tmp_path / "runs" / "demo-output"
    claim_output_folder(work, "demo")  # new: made and marked
    (work / "dataset").mkdir()
    claim_output_folder(work, "demo")  # a rerun, or a run after an interruption
    with pytest.raises(InputError, match="holds files written by `demo`, not by `experiment`"):
        claim_output_folder(work, "experiment")
    empty = tmp_path / "empty"
    empty.mkdir()
    claim_output_folder(empty, "experiment")
    assert (empty / OWNER_FILE).read_text() == "experiment\n"


def test_a_folder_made_before_the_mark_is_taken_by_what_it_holds(tmp_path):
    old = tmp_path / "old-demo"
    for name in ("summary.json", "report.html", "synth/ground_truth.json"):
        (old / name).parent.mkdir(parents=True, exist_ok=True)
        (old / name).write_text("{}")
    earlier = ("summary.json", "report.html", "synth/ground_truth.json")
    claim_output_folder(old, "demo", earlier_outputs=earlier)
    assert (old / OWNER_FILE).read_text() == "demo\n"
    (old / OWNER_FILE).unlink()
    (old / "report.html").unlink()  # not every earlier output: someone else's folder
    with pytest.raises(InputError, match="written by something else"):
        claim_output_folder(old, "demo", earlier_outputs=earlier)


def _card_with(folder, configs: str) -> None:
    card = folder / "README.md"
    body = card.read_text().split("---\n", 2)[2]
    card.write_text(f"---\n{configs}---\n{body}")


def test_a_card_reads_only_files_inside_its_folder(tmp_path, capsys):
    """A dataset's card is data: its `configs:` globs named files anywhere (session 24's audit), and `stats`,
    `showcase` or `serve` would have read and shown another folder's rows."""
    write_jpegs(tmp_path / "images", ["pic0", "pic1"], size=(36, 48))
    private = write_built_dataset(tmp_path / "private", tmp_path / "images", REVIEWS)
    folder = write_built_dataset(tmp_path / "dataset", tmp_path / "images", REVIEWS[:1])
    card = folder / "README.md"
    for path, why in [
        ("../private/s1/*.parquet", "leads out of the folder"),
        (f"{private}/s1/*.parquet", "leads out of the folder"),
    ]:
        _card_with(folder, f"configs:\n- config_name: s1\n  data_files:\n  - split: train\n    path: {path}\n")
        with pytest.raises(InputError, match=f"^{card}: data file path '.*' {why}; rebuild it$"):
            read_rows(folder, "s1")
    _card_with(folder, "configs:\n- config_name: s1\n  data_files:\n  - split: train\n    path: s1/*.parquet\n")
    assert len(read_rows(folder, "s1")) == 1  # the card's own files still read


@pytest.mark.parametrize(
    "configs",
    ["configs: 5\n", "configs:\n- config_name: s1\n", "configs:\n- config_name: s1\n  data_files:\n  - split: train\n"],
    ids=["not-a-list", "no-data-files", "no-path"],
)
def test_a_card_of_the_wrong_shape_is_one_line(configs, tmp_path, capsys):
    write_jpegs(tmp_path / "images", ["pic0"], size=(36, 48))
    folder = write_built_dataset(tmp_path / "dataset", tmp_path / "images", REVIEWS[:1])
    _card_with(folder, configs)
    assert cli.main(["stats", str(folder)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"gest-showcases stats: error: {folder / 'README.md'}: `configs:` is not a list of "
        "{config_name, data_files: [{split, path}]}; rebuild the folder"
    )


@pytest.mark.parametrize("path", [".", "''", "s1/***", "s1"], ids=["dot", "empty", "bad-glob", "a-folder"])
def test_a_card_glob_that_names_no_files_is_one_line(tmp_path, capsys, path):
    """Session 26's audit: `path: '.'` was an IndexError, `path: s1/***` a ValueError ("Invalid pattern"), from every
    command that reads a built folder."""
    write_jpegs(tmp_path / "images", ["pic0"], size=(36, 48))
    folder = write_built_dataset(tmp_path / "dataset", tmp_path / "images", REVIEWS[:1])
    _card_with(folder, f"configs:\n- config_name: s1\n  data_files:\n  - split: train\n    path: {path}\n")
    assert cli.main(["stats", str(folder)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"gest-showcases stats: error: {folder}")
    assert "rebuild" in error and "\n" not in error
