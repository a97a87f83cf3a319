"""Where a command writes, and what it reads, named in one line before any work (session 15's audit): a file given
as `--output_dir` failed with a FileExistsError traceback after the work; `diversity --plot DIR` wrote `DIR.png`
beside it; `--output` with `--output_dir` silently used one; two datasets with one folder name made one row; a
corrupt Parquet file was a pyarrow traceback; a missing dataset folder was reported as "has no README.md"."""

from __future__ import annotations

import pytest

from gest_showcases import cli
from gest_showcases.commands.arguments import LegacyOutputArguments, OutputArguments
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
    with pytest.raises(InputError, match="name different places: give --output_dir only"):
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
