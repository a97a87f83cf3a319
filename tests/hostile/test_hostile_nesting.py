"""Inputs nested deeper than a parser's stack, and other YAML/JSON a reader took for granted (session 43's review).

`json.loads` and `yaml.safe_load` raise `RecursionError` on `[[[...]]]` a few thousand levels deep; the readers of the
published formats already counted it as a parse error (`data.readers`), these did not and printed a traceback.
"""

from __future__ import annotations

import json

import pytest

from gest_showcases import cli
from gest_showcases.commands.running import user_error_message
from gest_showcases.data.folder import read_card
from gest_showcases.errors import InputError
from gest_showcases.features.distill import read_annotations
from gest_showcases.metrics.synth_truth import SynthTruth
from gest_showcases.testing.built_folder import write_built_folder

DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_YAML = "[" * 5_000 + "]" * 5_000


@pytest.fixture
def dataset(tmp_path):
    return write_built_folder(tmp_path / "dataset", {"s1": {"train": [{"review_id": "a"}]}})


def _front_matter(folder, yaml_text: str) -> None:
    card = folder / "README.md"
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    card.write_text(f"---\nx: {yaml_text}\n{text[4:]}", encoding="utf-8")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [(DEEP_YAML, "is nested too deep to read"), ("[unclosed", r"is not valid YAML \(.*\)")],
    ids=["nested-too-deep", "not-yaml"],
)
def test_a_dataset_card_that_is_no_readable_yaml_is_one_line_naming_the_card(dataset, yaml_text, message, capsys):
    assert read_card(dataset)["configs"]  # as written, it reads
    _front_matter(dataset, yaml_text)
    with pytest.raises(InputError, match=rf"^{dataset / 'README.md'}: the card's YAML front matter {message}"):
        read_card(dataset)
    assert cli.main(["stats", str(dataset)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{dataset / 'README.md'}" in err and len(err.strip().splitlines()) == 1


def test_a_ground_truth_nested_too_deep_is_one_line(tmp_path):
    path = tmp_path / "ground_truth.json"
    path.write_text(DEEP_JSON)
    with pytest.raises(InputError, match=f"^{path}: JSON nested too deep"):
        SynthTruth.load(path)


def test_an_annotation_line_nested_too_deep_names_its_line(tmp_path):
    path = tmp_path / "annotations.jsonl"
    good = {"pic_id": "p", "review_id": "r", "sentence": "s", "label": 1}
    path.write_text(json.dumps(good) + "\n" + DEEP_JSON + "\n")
    with pytest.raises(InputError, match=f"^{path}:2: JSON nested too deep"):
        read_annotations(path)


@pytest.mark.parametrize("command", ["stats", "train-generator"])
def test_a_config_file_nested_too_deep_is_one_line_naming_it(tmp_path, command, capsys):
    config = tmp_path / "options.yaml"
    config.write_text(f"model: {DEEP_YAML}\n")
    assert cli.main([command, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{config}: YAML nested too deep" in err


def test_a_train_generator_config_that_is_no_yaml_names_the_file(tmp_path, capsys):
    """`train-generator` reads `model:` from the file before its parser does: that read gave a message naming no file."""
    config = tmp_path / "options.yaml"
    config.write_text("model: [unclosed\n")
    assert cli.main(["train-generator", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{config}: not a YAML file of options" in err


def test_only_a_parsers_recursion_error_is_the_users(tmp_path):
    """A model folder's config.json and the like have no reader of their own: a RecursionError raised inside the json
    or yaml package is one line; any other one is a bug and keeps its traceback (None here)."""
    import yaml

    errors = []
    for parse in (lambda: json.loads(DEEP_JSON), lambda: yaml.safe_load(DEEP_YAML)):
        with pytest.raises(RecursionError) as caught:
            parse()
        errors.append(caught.value)
    assert [user_error_message(error) for error in errors] == ["a JSON or YAML file is nested too deep to read; "
                                                               "fix the file"] * 2  # fmt: skip

    def recurse(depth):
        return recurse(depth + 1)

    with pytest.raises(RecursionError) as caught:
        recurse(0)
    assert user_error_message(caught.value) is None
