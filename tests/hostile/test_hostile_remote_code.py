"""A folder's own code never runs, even where transformers would ask (session 15's audit).

transformers' Auto classes, given a folder whose config or tokenizer config names its own code (`auto_map`) for a
model type they do not know, ask "Do you wish to run the custom code? [y/N]" when stdin is a terminal: a user who
typed y ran the folder's code through `train-pc2l --decoder/--tokenizer`, `finetune-lm` or `showcase`. Every load
passes `trust_remote_code=False`, so the folder is refused without a question.
"""

from __future__ import annotations

import builtins
import json

import pytest

from gest_showcases.features.clip import load_clip
from gest_showcases.generation.training_run import PC2LModelArguments, load_tokenizer


@pytest.fixture
def folder_with_code(tmp_path, monkeypatch):
    """A model folder whose config and tokenizer config point at its own module, which leaves a marker when run;
    stdin answers y to any question (a user at a terminal who trusts the prompt)."""
    folder, marker = tmp_path / "model", tmp_path / "RAN"
    folder.mkdir()
    code = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    (folder / "tokenization_own.py").write_text(
        code
        + "from transformers import PreTrainedTokenizer\nclass OwnTokenizer(PreTrainedTokenizer):\n    pass\n"
    )
    (folder / "configuration_own.py").write_text(
        code + "from transformers import PretrainedConfig\nclass OwnConfig(PretrainedConfig):\n    pass\n"
    )
    auto_map = {
        "AutoConfig": "configuration_own.OwnConfig",
        "AutoTokenizer": ["tokenization_own.OwnTokenizer", None],
    }
    (folder / "config.json").write_text(json.dumps({"model_type": "own-unknown", "auto_map": auto_map}))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"auto_map": auto_map, "tokenizer_class": "OwnTokenizer"})
    )
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    questions = []
    monkeypatch.setattr(builtins, "input", lambda *args: questions.append(args) or "y")
    return folder, marker, questions


@pytest.mark.parametrize(
    "load",
    [
        lambda folder: load_tokenizer(PC2LModelArguments(tokenizer=str(folder))),
        lambda folder: load_clip(str(folder)),
    ],
    ids=["train-pc2l --tokenizer", "features --clip_model"],
)
def test_a_folder_that_names_its_own_code_is_refused_without_running_it(folder_with_code, load):
    folder, marker, questions = folder_with_code
    with pytest.raises(ValueError, match="custom code"):
        load(folder)
    assert not marker.exists() and not questions
