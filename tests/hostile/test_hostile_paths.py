"""One path policy for stored image paths, in every command that reads a built dataset's photos (issue 13).

`features`, `train-clip` and `distill` read photos through `gest_showcases.features.inputs.image_items` /
`dataset_image_paths`, as `showcase` and `serve` do (tests/hostile/test_hostile_serve.py, test_hostile_pipeline.py):
a stored path must be relative and lead, once resolved, inside the dataset folder or the `--images` folder.

- an absolute stored path, one that escapes with `..`, and a photo that is a symlink out of both folders stop
  the command with one line on stderr, exit 2, before anything is written;
- photos beside the dataset (the builder's usual layout) need `--images`: without it the line says to pass
  the folder the dataset was built with; with it the command runs;
- `distill` reads the dataset's photos from `--build_images`, and its dataset card names no folder of this
  machine.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gest_showcases.cli import main as cli_main
from gest_showcases.errors import InputError
from gest_showcases.features.cache import load_features
from gest_showcases.features.inputs import image_items, read_config_rows
from gest_showcases.features.tiny import save_tiny_clip
from tiny_assets import (
    CORPUS,
    few_threads,  # noqa: F401  (an autouse fixture: importing it applies it here)
    write_built_dataset,
    write_jpegs,
)
from tiny_assets import (
    rewrite_s1_rows as rewrite,
)

NAMES = [f"pic{i}" for i in range(4)]
REVIEWS = [
    # review_id, user, business, text, pics, split
    ("u1_b1", "u1", "b1", CORPUS[0], ["pic0", "pic1"], "train"),
    ("u2_b1", "u2", "b1", CORPUS[1], ["pic2"], "train"),
    ("u3_b2", "u3", "b2", CORPUS[2], ["pic3"], "validation"),
]
PASS_IMAGES = "pass --images <the folder the dataset was built with>"


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return str(save_tiny_clip(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture
def dataset(tmp_path):
    """A dataset in the builder's usual layout: `dataset/` and its photos in the sibling `images/`."""
    write_jpegs(tmp_path / "images", NAMES)
    return write_built_dataset(tmp_path / "dataset", tmp_path / "images", REVIEWS)


@pytest.fixture(params=["photos inside", "photos beside"])
def layout(request, tmp_path):
    """(dataset, the --images arguments it needs, where a photo path leads): photos in `dataset/photos/`
    (stored as `photos/<id>.jpg`, no --images) or in the sibling `images/` (`../images/<id>.jpg`)."""
    if request.param == "photos beside":
        write_jpegs(tmp_path / "images", NAMES)
        dataset = write_built_dataset(tmp_path / "dataset", tmp_path / "images", REVIEWS)
        return dataset, ["--images", str(tmp_path / "images")], "../images"
    dataset = write_built_dataset(tmp_path / "dataset", tmp_path / "photos", REVIEWS)
    write_jpegs(dataset / "photos", NAMES)
    rewrite(dataset, lambda row: row | {
        key: [path.replace("../photos/", "photos/") for path in row[key]] for key in ("pic_paths", "candidate_paths")
    })  # fmt: skip
    return dataset, [], "photos"


@pytest.fixture
def secret(tmp_path) -> Path:
    """A readable photo outside the dataset and its photo folder: no command may read it."""
    return write_jpegs(tmp_path / "private", ["secret"])["secret"]


def tamper(dataset: Path, value: str) -> None:
    """Store `value` as the first photo path of the first review (as a hostile or hand-made file would)."""
    rewrite(
        dataset,
        lambda row: (
            row | {"pic_paths": [value, *row["pic_paths"][1:]]} if row["review_id"] == "u1_b1" else row
        ),
    )


def features_argv(dataset: Path, output: Path, clip: str) -> list[str]:
    return ["features", "--dataset", str(dataset), "--output_dir", str(output), "--clip_model", clip,
            "--kinds", "image", "--num_workers", "0", "--device", "cpu"]  # fmt: skip


def train_clip_argv(dataset: Path, output: Path, clip: str) -> list[str]:
    return ["train-clip", "--dataset", str(dataset), "--output_dir", str(output), "--image_size", "16",
            "--patch_size", "8", "--hidden_size", "16", "--num_layers", "1", "--num_heads", "2",
            "--projection_dim", "8", "--vocab_size", "300", "--num_train_epochs", "1", "--batch_size", "4"]  # fmt: skip


COMMANDS = {"features": features_argv, "train-clip": train_clip_argv}


def one_line_error(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return error


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("stored", ["absolute", "escaping"])
def test_a_stored_path_outside_the_folders_is_refused(
    command, stored, layout, secret, tmp_path, tiny_clip, capsys
):
    dataset, images, prefix = layout
    value = str(secret) if stored == "absolute" else f"{prefix}/../../private/secret.jpg"
    tamper(dataset, value)
    output = tmp_path / "out"
    assert cli_main([*COMMANDS[command](dataset, output, tiny_clip), *images]) == 2
    error = one_line_error(capsys)
    assert error.startswith(f"gest-showcases {command}: error: ")
    reason = "is absolute" if stored == "absolute" else "leads outside the dataset folder"
    assert f"review 'u1_b1': image path '{value}' {reason}" in error
    assert not output.exists()  # refused before any model is loaded or anything written


@pytest.mark.parametrize("command", COMMANDS)
def test_a_photo_that_is_a_symlink_out_of_the_folders_is_refused(
    command, layout, secret, tmp_path, tiny_clip, capsys
):
    """Folders are resolved once for speed; a photo file that is itself a symlink is still followed."""
    dataset, images, prefix = layout
    photo = (dataset / prefix / "pic1.jpg").resolve()
    photo.unlink()
    photo.symlink_to(secret)
    output = tmp_path / "out"
    assert cli_main([*COMMANDS[command](dataset, output, tiny_clip), *images]) == 2
    assert f"image path '{prefix}/pic1.jpg' leads outside" in one_line_error(capsys)
    assert not output.exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_photos_beside_the_dataset_need_images(command, dataset, tmp_path, tiny_clip, capsys):
    output = tmp_path / "out"
    argv = COMMANDS[command](dataset, output, tiny_clip)
    assert cli_main(argv) == 2
    assert PASS_IMAGES in one_line_error(capsys)
    assert not output.exists()
    assert cli_main([*argv, "--images", str(tmp_path / "images")]) == 0
    if command == "features":
        assert sorted(load_features(output, "image").ids) == NAMES
    else:
        assert (output / "config.json").exists()


def test_image_items_follow_the_policy(dataset, tmp_path):
    rows = read_config_rows(dataset, "s1")
    with pytest.raises(InputError, match="leads outside the dataset folder .*pass --images"):
        image_items(dataset, rows)
    items = image_items(dataset, rows, tmp_path / "images")
    assert items == [(name, (tmp_path / "images" / f"{name}.jpg").resolve()) for name in NAMES]
    # With the photos inside the dataset folder, no --images is needed.
    inside = write_built_dataset(tmp_path / "inside", tmp_path / "photos", REVIEWS)
    write_jpegs(inside / "photos", NAMES)
    rewrite(inside, lambda row: row | {"pic_paths": [p.replace("../", "") for p in row["pic_paths"]],
                                       "candidate_paths": [p.replace("../", "") for p in row["candidate_paths"]]})  # fmt: skip
    assert image_items(inside, read_config_rows(inside, "s1")) == [
        (name, (inside / "photos" / f"{name}.jpg").resolve()) for name in NAMES
    ]


# -- distill --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    synth = pytest.importorskip("gest_showcases.synth")
    root = tmp_path_factory.mktemp("paths-world")
    synth.write_world(
        synth.generate_world(synth.SynthConfig(seed=2, num_reviews=60, num_annotated_reviews=30)),
        root,
        image_size=16,
    )
    return root


def distill_argv(world: Path, work: Path, clip: str) -> list[str]:
    return ["distill", "--annotations", str(world / "annotations.jsonl"), "--features", str(work / "f"),
            "--output_dir", str(work / "phi"), "--clip_model", clip, "--num_train_epochs", "3", "--num_workers", "0",
            "--dataset", str(work / "dataset"), "--build_inputs", str(world / "image_review_all.json"),
            "--build_images", str(world / "images")]  # fmt: skip


def test_distill_card_names_no_folder_of_this_machine(world, tmp_path, tiny_clip):
    assert cli_main(distill_argv(world, tmp_path, tiny_clip)) == 0
    card = (tmp_path / "dataset" / "README.md").read_text()
    section = card[card.index("## Explanation classifier (s2)") :]
    assert "classifier in `phi` over CLIP `tiny-clip" in section
    assert str(tmp_path) not in card and str(Path(tiny_clip).parent) not in card


def test_distill_reads_the_dataset_photos_through_the_policy(world, tmp_path, tiny_clip, secret, capsys):
    from gest_showcases.data.build import build_dataset

    dataset = tmp_path / "dataset"
    build_dataset([world / "image_review_all.json"], world / "images", dataset)
    path = sorted((dataset / "s1").glob("train-*.parquet"))[0]
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows[0]["candidate_paths"] = [str(secret), *rows[0]["candidate_paths"][1:]]
    pq.write_table(table.from_pylist(rows, schema=table.schema), path)
    capsys.readouterr()
    assert cli_main(distill_argv(world, tmp_path, tiny_clip)) == 2
    # The classifier trains first (progress bars on stderr); the dataset's photos stop the command in one line.
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        error.startswith("gest-showcases distill: error: ") and f"image path '{secret}' is absolute" in error
    )
    with pytest.raises(InputError, match=r"leads outside the dataset folder and the --build_images folder"):
        image_items(dataset, read_config_rows(dataset, "s1"), tmp_path / "private", option="--build_images")


def test_distill_reads_no_annotated_photo_that_links_out_of_its_images_folder(
    world, tmp_path, tiny_clip, caplog, monkeypatch
):
    """Session 26's audit: distill's annotated photos, and evaluate's (`photo_files`, the same helper), were read
    through a link out of `--images`; the secret's embedding was cached under real pic ids."""
    import json
    import shutil

    images = tmp_path / "images"
    shutil.copytree(world / "images", images)
    pics = list(dict.fromkeys(json.loads(line)["pic_id"] for line in (world / "annotations.jsonl").open()))
    outside = tmp_path / "outside.jpg"
    shutil.copy2(images / f"{pics[0]}.jpg", outside)
    (images / f"{pics[0]}.jpg").unlink()
    (images / f"{pics[0]}.jpg").symlink_to(outside)
    (images / f"{pics[1]}.jpg").unlink()
    (images / f"{pics[1]}.jpg").symlink_to(images / f"{pics[2]}.jpg")  # a link inside the folder is the folder's
    from PIL import Image

    opened, open_image = [], Image.open
    monkeypatch.setattr(Image, "open", lambda path, *args, **kwargs: opened.append(str(path)) or open_image(path, *args, **kwargs))
    argv = distill_argv(world, tmp_path, tiny_clip) + ["--images", str(images)]
    assert cli_main(argv) == 0
    assert str(images / f"{pics[0]}.jpg") not in opened and str(images / f"{pics[1]}.jpg") in opened
    assert f"1 photo file(s) in {images} link outside it and are not read: {pics[0]}" in caplog.text
