"""`gest-showcases serve --output_dir DIR`: every showcase the page shows is also written into DIR as the
self-contained HTML report `gest-showcases showcase --output_dir` writes; file names come from the user and
business ids, sanitised so that no id leads out of DIR; without the flag nothing is written.

The page is driven through `ShowcaseApp.respond`, the function its Show button calls (no browser); the models are
replaced by a recorder that shows the first photos (tests/test_app.py runs the real pipeline in a browser).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gest_showcases import cli
from gest_showcases.app import DATASET_USER, DESCRIBED_USER, DatasetCatalog, ShowcaseApp, showcase_file_name
from gest_showcases.commands import serve, showcase
from gest_showcases.pipeline import Showcase, ShowcasePhoto
from tiny_assets import write_built_dataset, write_jpegs

EXPLANATION = "Rich broth, lovely noodles."
HOSTILE_USER, HOSTILE_BUSINESS = "../../x", "a/b"
REVIEWS = [  # review_id, user, business, text, pics, split
    ("u1_b1", "u1", "b1", "Great ramen!", ["pic0", "pic1"], "train"),
    ("u1_b2", "u1", "b2", "Tiny dumpling bar.", ["pic2"], "train"),
    ("u2_b1", "u2", "b1", "Cozy room.", ["pic3"], "test"),
    ("evil", HOSTILE_USER, HOSTILE_BUSINESS, "Sneaky review.", ["pic4"], "test"),
]


class RecordingPipeline:
    """Stands in for `ShowcasePipeline`: shows the first `k` candidates (default 2) and a fixed explanation."""

    def __init__(self):
        self.calls = []

    def __call__(self, request, k=None):
        self.calls.append(request)
        chosen = request.candidate_items()[: k or 2]
        photos = [ShowcasePhoto(id=pic, score=-1.0, path=str(path)) for pic, path in chosen]
        return Showcase(photos, EXPLANATION, user_id=request.user_id, business_id=request.business_id)


@pytest.fixture
def dataset(tmp_path):
    images = tmp_path / "images"
    write_jpegs(images, [f"pic{i}" for i in range(5)], size=(8, 16))
    return write_built_dataset(tmp_path / "dataset", images, REVIEWS)


@pytest.fixture
def catalog(dataset):
    return DatasetCatalog(dataset, "s1", images=dataset.parent / "images")


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


def test_each_showcase_shown_is_written_as_html_and_logged(catalog, tmp_path, caplog):
    out = tmp_path / "out"
    app = ShowcaseApp(RecordingPipeline(), catalog, output_dir=out, report_details={"selector": "sel-dir"})
    assert out.is_dir()  # created at startup, before the first request
    with caplog.at_level(logging.INFO, logger="gest_showcases.app"):
        view = app.respond(DATASET_USER, "u2", "", "b1")
    path = out / "showcase.u2.b1.html"
    assert files_under(out) == {path}
    html = path.read_text(encoding="utf-8")
    # The explanation the page shows, the user's review of the business (ground truth), the history, the
    # photos inlined (self-contained), and the details given to the app.
    assert view.explanation == EXPLANATION and EXPLANATION in html
    assert "Cozy room." in html and "sel-dir" in html
    assert html.count("data:image/jpeg;base64,") >= 3  # two selected photos and the truth's
    assert any(str(path) in record.getMessage() for record in caplog.records)
    # A described user: one file per business, replaced by the next description.
    app.respond(DESCRIBED_USER, None, "Loved the dumplings.", "b1")
    app.respond(DESCRIBED_USER, None, "Too loud.", "b1")
    described = out / "showcase-described-user.b1.html"
    assert files_under(out) == {path, described}
    text = described.read_text(encoding="utf-8")
    assert "Too loud." in text and "Loved the dumplings." not in text and EXPLANATION in text
    # Shown again: the same file, rewritten (no temporary file left beside it).
    path.write_text("stale", encoding="utf-8")
    app.respond(DATASET_USER, "u2", "", "b1")
    assert EXPLANATION in path.read_text(encoding="utf-8") and files_under(out) == {path, described}


def test_hostile_ids_stay_inside_the_folder(catalog, tmp_path):
    out = tmp_path / "out"
    before = files_under(tmp_path)
    app = ShowcaseApp(RecordingPipeline(), catalog, output_dir=out)
    app.respond(DATASET_USER, HOSTILE_USER, "", HOSTILE_BUSINESS)
    app.respond(DESCRIBED_USER, None, "Nice.", HOSTILE_BUSINESS)
    written = files_under(tmp_path) - before
    assert len(written) == 2 and all(path.parent == out for path in written)
    assert all(EXPLANATION in path.read_text(encoding="utf-8") for path in written)
    assert not (tmp_path.parent / "x").exists() and not (out / "a").exists()


@pytest.mark.parametrize(
    "user, business",
    [
        ("../../x", "b1"),
        ("u1", "a/b"),
        ("..", ".."),
        ("a\\..\\..\\b", "/etc/passwd"),
        ("", "b1"),
        ("x" * 400, "b1"),
        (None, "../../x"),
    ],
)
def test_a_file_name_never_leads_out_of_its_folder(user, business, tmp_path):
    name = showcase_file_name(user, business)
    assert "/" not in name and "\\" not in name and ".." not in name and len(name) < 200
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()


def test_ids_that_read_alike_name_different_files():
    names = [showcase_file_name(user, "b1") for user in ("a/b", "a_b", "a.b", "a\\b")]
    assert len(set(names)) == len(names)
    assert showcase_file_name("u1", "b1") == "showcase.u1.b1.html"  # plain ids stay readable
    # The dot between the parts is unambiguous: ids that hold one are renamed.
    assert showcase_file_name("a.b", "c") != showcase_file_name("a", "b.c")
    assert showcase_file_name(None, "b1") != showcase_file_name("described-user", "b1")


def test_without_output_dir_nothing_is_written(catalog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = files_under(tmp_path)
    app = ShowcaseApp(RecordingPipeline(), catalog)
    app.respond(DATASET_USER, "u2", "", "b1")
    app.respond(DESCRIBED_USER, None, "Nice.", "b1")
    assert app.output_dir is None and files_under(tmp_path) == before


@pytest.fixture
def served_apps(monkeypatch):
    """`serve`'s `main` up to Gradio's `launch` (recorded, not run); the `ShowcaseApp`s it built."""
    import gradio

    apps = []

    class RecordedApp(ShowcaseApp):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            apps.append(self)

    monkeypatch.setattr(gradio.Blocks, "launch", lambda page, **options: None)
    monkeypatch.setattr(serve, "check_can_listen", lambda host, port: None)  # nothing is served: no port is bound
    monkeypatch.setattr(showcase.PipelineArguments, "load_pipeline", lambda args: RecordingPipeline())
    monkeypatch.setattr(serve, "ShowcaseApp", RecordedApp)
    return apps


def test_the_serve_command_passes_output_dir_to_the_app(dataset, tmp_path, served_apps, caplog):
    argv = ["serve", "--dataset", str(dataset), "--images", str(dataset.parent / "images"),
            "--selector", "sel-dir", "--generator", "gen-dir", "--clip_model", "clip-dir"]  # fmt: skip
    out = tmp_path / "served"
    with caplog.at_level(logging.INFO, logger="gest_showcases.commands.serve"):
        assert cli.main([*argv, "--output_dir", str(out)]) == 0
    assert any(str(out) in record.getMessage() for record in caplog.records)
    served_apps[0].respond(DATASET_USER, "u1", "", "b2")
    html = (out / "showcase.u1.b2.html").read_text(encoding="utf-8")
    # The checkpoints are listed as `gest-showcases showcase --output_dir` lists them.
    assert EXPLANATION in html and "Tiny dumpling bar." in html
    assert all(name in html for name in ("sel-dir", "gen-dir", "clip-dir"))
    # Without the flag the command writes nothing.
    before = files_under(tmp_path)
    assert cli.main(argv) == 0
    served_apps[1].respond(DATASET_USER, "u1", "", "b2")
    assert served_apps[1].output_dir is None and files_under(tmp_path) == before
