"""The shared flags of build, stats, features and diversity: `--config FILE.yaml`, `--output_dir`, and the old
spellings (`--output`, `--config s1`) that keep working for one release with a FutureWarning.

The commands' work is replaced by recorders where it is not the point (a build, a feature extraction), so each
test pins what the parsed options are; the existing tests of each command run the real work.
"""

from __future__ import annotations

import json
import warnings

import pytest
import yaml

from gest_showcases import cli
from gest_showcases.commands import build, diversity, features, stats
from gest_showcases.errors import InputError
from tiny_assets import write_built_dataset, write_jpegs

REVIEWS = [  # review_id, user, business, text, pics, split
    ("u1_b1", "u1", "b1", "Great ramen!", ["pic0"], "train"),
    ("u2_b1", "u2", "b1", "Cozy room.", ["pic1"], "test"),
]


def write_yaml(path, options: dict) -> str:
    path.write_text(yaml.safe_dump(options), encoding="utf-8")
    return str(path)


class Recorder:
    """Stands in for a library function: keeps its arguments, returns `result`."""

    def __init__(self, result=None):
        self.calls, self.result = [], result

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.result


class BuildResult:
    output_dir, num_rows = "out", {}

    def summary(self) -> str:
        return ""


@pytest.fixture
def built_dataset(tmp_path):
    images = tmp_path / "images"
    write_jpegs(images, ["pic0", "pic1"])
    return write_built_dataset(tmp_path / "dataset", images, REVIEWS)


@pytest.fixture
def build_dataset(monkeypatch):
    recorder = Recorder(BuildResult())
    monkeypatch.setattr(build, "build_dataset", recorder)
    return recorder


@pytest.fixture
def extract_features(monkeypatch):
    recorder = Recorder({})
    monkeypatch.setattr(features, "extract_features", recorder)
    return recorder


@pytest.fixture
def diversity_inputs(monkeypatch):
    """Records the config diversity reads; every dataset gets the same figures."""
    figures = {"intra_business": 0.5, "inter_user": 0.6, "intra_user": 0.2, "images": 3}
    figures |= {f"{level}_pairs": 1 for level in ("intra_business", "inter_user", "intra_user")}
    reads = Recorder([])
    monkeypatch.setattr(diversity, "read_config_rows", reads)
    monkeypatch.setattr(diversity, "load_features", Recorder(None))
    monkeypatch.setattr(diversity, "dataset_diversity", Recorder(figures))
    return reads


@pytest.mark.parametrize("name", list(cli.SUBCOMMANDS))  # every subcommand (issue 14's done-when)
def test_help_lists_config_and_output_dir(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--config FILE.yaml" in out and "YAML file of this command's options" in out
    assert "--output_dir OUTPUT_DIR" in out


def test_build_reads_config_yaml_and_flags_override_it(tmp_path, build_dataset):
    config = write_yaml(
        tmp_path / "build.yaml",
        {
            "input": ["a.json", "b.json"],
            "images": "photos",
            "seed": 7,
            "min_words": 3,
            "output_dir": "from-yaml",
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated spelling here: no warning
        assert build.main(["--config", config, "--min_words", "9", "--input", "c.json"]) == 0
    ((args, kwargs),) = build_dataset.calls
    # The command line's --input replaces the file's list: it does not extend it.
    assert args == (["c.json"], "photos", "from-yaml", [])
    assert kwargs["seed"] == 7 and kwargs["min_words"] == 9 and kwargs["max_images"] == 10


def test_build_config_file_may_leave_required_options_to_the_command_line(tmp_path, build_dataset, capsys):
    config = write_yaml(tmp_path / "build.yml", {"images": "photos", "copy_images": True})
    assert build.main(["--config", config, "--input", "a.json"]) == 0
    ((args, kwargs),) = build_dataset.calls
    assert args[:3] == (["a.json"], "photos", "gest") and kwargs["copy_images"] is True
    with pytest.raises(SystemExit):
        build.main(["--config", config])  # --input is nowhere
    err = capsys.readouterr().err
    assert "required" in err and "--input" in err
    # `input: null` in the file is no value either (session 24's audit: it reached the reader as None).
    nulled = write_yaml(tmp_path / "nulled.yml", {"images": "photos", "input": None})
    with pytest.raises(SystemExit):
        build.main(["--config", nulled])
    err = capsys.readouterr().err
    assert "required" in err and "--input" in err
    assert len(build_dataset.calls) == 1


def test_build_refuses_unknown_config_keys_and_a_config_that_is_not_yaml(tmp_path, build_dataset):
    config = write_yaml(tmp_path / "build.yaml", {"input": ["a.json"], "images": "photos", "sed": 1})
    with pytest.raises(InputError, match="unknown options sed"):
        build.main(["--config", config])
    with pytest.raises(SystemExit):
        build.main(
            ["--config", "s1", "--input", "a.json", "--images", "photos"]
        )  # build reads no dataset config
    assert build_dataset.calls == []


def test_build_output_is_a_deprecated_spelling_of_output_dir(tmp_path, build_dataset):
    with pytest.warns(FutureWarning, match="--output is deprecated.*--output_dir"):
        assert build.main(["--input", "a.json", "--images", "photos", "--output", "old"]) == 0
    assert build_dataset.calls[0][0][2] == "old"


def test_stats_reads_config_yaml_and_flags_override_it(tmp_path, built_dataset, capsys):
    config = write_yaml(
        tmp_path / "stats.yaml", {"folder": str(tmp_path / "nowhere"), "output_dir": str(tmp_path / "t")}
    )
    assert stats.main(["--config", config, "--folder", str(built_dataset)]) == 0
    table = capsys.readouterr().out.strip()
    assert table.startswith("| Config | Split |")
    assert (tmp_path / "t" / stats.TABLE_FILE).read_text().strip() == table
    rows = json.loads((tmp_path / "t" / stats.ROWS_FILE).read_text())
    assert {row["Config"] for row in rows} == {"s1"}


def test_stats_folder_from_the_config_file_alone(tmp_path, built_dataset, capsys):
    config = write_yaml(tmp_path / "stats.yaml", {"folder": str(built_dataset)})
    assert stats.main(["--config", config]) == 0
    assert capsys.readouterr().out.startswith("| Config | Split |")


def test_features_reads_config_yaml_and_flags_override_it(tmp_path, extract_features):
    config = write_yaml(
        tmp_path / "features.yaml",
        {"dataset": "built", "output_dir": "feats", "clip_model": "clip-a", "kinds": ["image"], "batch_size": 8,
         "dataset_config_name": "s2"},
    )  # fmt: skip
    assert features.main(["--config", config, "--clip_model", "clip-b", "--batch_size", "16"]) == 0
    ((args, kwargs),) = extract_features.calls
    assert args == ("built", "feats")
    assert kwargs["model"] == "clip-b" and kwargs["batch_size"] == 16  # the flags win
    assert kwargs["kinds"] == ["image"] and kwargs["config"] == ["s2"]  # the file's


@pytest.mark.parametrize("name", ["features", "diversity"])
def test_config_name_is_a_deprecated_spelling_of_dataset_config_name(
    name, tmp_path, extract_features, diversity_inputs
):
    argv = {
        "features": ["--dataset", "built", "--output_dir", "feats"],
        "diversity": ["--dataset", "built", "--features", "feats"],
    }[name]
    command = {"features": features, "diversity": diversity}[name]
    with pytest.warns(FutureWarning, match="--config s2 is deprecated.*--dataset_config_name s2"):
        assert command.main([*argv, "--config", "s2"]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert command.main([*argv, "--dataset_config_name", "raw"]) == 0
    if name == "features":
        assert [kwargs["config"] for _, kwargs in extract_features.calls] == [["s2"], ["raw"]]
    else:
        assert [args[1] for args, _ in diversity_inputs.calls] == ["s2", "raw"]


def test_features_model_is_a_deprecated_spelling_of_clip_model(extract_features):
    argv = ["--dataset", "built", "--output_dir", "feats"]
    with pytest.warns(FutureWarning, match="--model is deprecated.*--clip_model"):
        assert features.main([*argv, "--model", "clip-old"]) == 0
    assert extract_features.calls[0][1]["model"] == "clip-old"
    with pytest.warns(FutureWarning), pytest.raises(InputError, match="disagree"):
        features.main([*argv, "--model", "clip-old", "--clip_model", "clip-new"])


def test_features_output_is_a_deprecated_spelling_of_output_dir(extract_features):
    with pytest.warns(FutureWarning, match="--output is deprecated.*--output_dir"):
        assert features.main(["--dataset", "built", "--output", "feats"]) == 0
    assert extract_features.calls[0][0] == ("built", "feats")
    with pytest.raises(InputError, match="--output_dir"):
        features.main(["--dataset", "built"])


def test_diversity_reads_config_yaml_and_flags_override_it(tmp_path, diversity_inputs, capsys):
    config = write_yaml(
        tmp_path / "diversity.yaml",
        {
            "dataset": ["d1", "d2"],
            "features": ["f1", "f2"],
            "names": ["one", "two"],
            "output_dir": str(tmp_path / "a"),
        },
    )
    assert diversity.main(["--config", config, "--names", "uno", "dos"]) == 0
    out = capsys.readouterr().out
    assert "| uno |" in out and "| dos |" in out and "| one |" not in out
    assert [args[:2] for args, _ in diversity_inputs.calls] == [("d1", "s1"), ("d2", "s1")]
    assert set(json.loads((tmp_path / "a" / diversity.RESULTS_FILE).read_text())) == {"uno", "dos"}


def test_diversity_output_file_still_works_with_a_warning(tmp_path, diversity_inputs):
    argv = ["--dataset", "d1", "--features", "f1", "--names", "one"]
    with pytest.warns(FutureWarning, match="--output is deprecated.*--output_dir"):
        assert diversity.main([*argv, "--output", str(tmp_path / "old.json")]) == 0
    assert set(json.loads((tmp_path / "old.json").read_text())) == {"one"}  # the file itself, as before
