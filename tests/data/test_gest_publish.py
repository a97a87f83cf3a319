"""`gest-showcases push --dataset`: the staged dataset repository loads offline with its images, from a fresh process
without the package, and names no folder of this machine."""

import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from test_gest_build_layout import decoded, load_fresh, pixels, published_gest

from gest_showcases import cli
from gest_showcases.cards import CITATION, split_front_matter
from gest_showcases.data import build_dataset
from gest_showcases.features.inputs import dataset_image_paths, read_config_rows
from tiny_assets import rewrite_s1_rows, write_built_dataset, write_jpegs


def stage(built: Path, out: Path, *extra: str) -> int:
    return cli.main(["push", "--namespace", "me", "--dataset", str(built), "--output_dir", str(out), "--dry_run", *extra])


@pytest.mark.parametrize("layout", ["by_reference", "copy_images"])
def test_staged_dataset_loads_with_its_images_and_names_no_local_path(gest_files, tmp_path, layout, hf_cache):
    source, used = published_gest(gest_files)
    expected = {pic: pixels(gest_files.images / f"{pic}.jpg") for pic in used}
    built = build_dataset(
        [source], gest_files.images, gest_files.root / "gest", copy_images=layout == "copy_images"
    ).output_dir
    extra = ["--dataset_images", str(gest_files.images)] if layout == "by_reference" else []
    assert stage(built, tmp_path / "export", *extra) == 0
    staged = tmp_path / "export" / "dataset"

    # Every photo the rows name, once, as images/<pic_id>.jpg; the path columns name them.
    assert sorted(p.name for p in (staged / "images").iterdir()) == sorted(f"{pic}.jpg" for pic in used)
    for config in ("s1", "s2"):
        rows = read_config_rows(staged, config)
        assert rows and all(row["pic_paths"] == [f"images/{p}.jpg" for p in row["pics"]] for row in rows)
        assert dataset_image_paths(staged, rows) == {
            p: (staged / "images" / f"{p}.jpg").resolve() for p in used
        }
        # `load_dataset` decodes the photos' pixels.
        assert decoded(staged, config, hf_cache) == {
            row["review_id"]: [expected[p] for p in row["pics"]] for row in rows
        }
    assert pq.read_table(staged / "raw" / "train-00000-of-00001.parquet") == pq.read_table(
        built / "raw" / "train-00000-of-00001.parquet"
    )

    # No local path anywhere in what would be uploaded (card, parquet, drop report).
    for path in staged.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert str(tmp_path).encode() not in data and str(gest_files.root).encode() not in data, path
            assert b"../" not in data, path

    front, body = split_front_matter((staged / "README.md").read_text())
    assert front["license"] == "other" and front["license_name"] and front["citation"] == CITATION
    assert front["pretty_name"] == "gest: personalized showcases"
    assert {config["config_name"] for config in front["configs"]} == {"raw", "s1", "s2"}
    assert "`images/<pic_id>.jpg`" in body and "Stored by reference" not in body


@pytest.mark.slow
def test_staged_dataset_loads_offline_in_a_fresh_process_without_the_package(gest_files, tmp_path):
    source, used = published_gest(gest_files)
    expected = {pic: pixels(gest_files.images / f"{pic}.jpg") for pic in used}
    built = build_dataset([source], gest_files.images, gest_files.root / "gest").output_dir
    assert stage(built, tmp_path / "export", "--dataset_images", str(gest_files.images)) == 0
    staged = tmp_path / "export" / "dataset"
    shutil.rmtree(gest_files.images)
    (tmp_path / "cwd").mkdir()
    for config in ("s2", "s1"):
        loaded = load_fresh(staged, config, tmp_path / "cwd", tmp_path)
        assert loaded["features"]["images"] == "List(Image(mode=None, decode=True))"
        rows = {row["review_id"]: row for row in read_config_rows(staged, config)}
        assert {rid: row["images"] for rid, row in loaded["rows"].items()} == {
            rid: [expected[p] for p in row["pics"]] for rid, row in rows.items()
        }


def test_staging_a_dataset_whose_photos_lie_outside_it_needs_their_folder(gest_files, tmp_path, capsys):
    source, _ = published_gest(gest_files)
    built = build_dataset([source], gest_files.images, gest_files.root / "gest").output_dir
    assert stage(built, tmp_path / "export") == 2
    assert "pass --dataset_images" in capsys.readouterr().err


def test_staging_refuses_files_that_lead_outside_the_dataset(gest_files, tmp_path, capsys):
    source, _ = published_gest(gest_files)
    built = build_dataset([source], gest_files.images, gest_files.root / "gest", copy_images=True).output_dir
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the Hub")
    os.remove(built / "drop_report.json")
    (built / "drop_report.json").symlink_to(secret)
    assert stage(built, tmp_path / "export") == 2
    assert "leads outside the dataset folder" in capsys.readouterr().err


def test_license_can_be_given(gest_files, tmp_path):
    source, _ = published_gest(gest_files)
    built = build_dataset([source], gest_files.images, gest_files.root / "gest", copy_images=True).output_dir
    assert stage(built, tmp_path / "export", "--dataset_license", "apache-2.0") == 0
    text = (tmp_path / "export" / "dataset" / "README.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert (
        front["license"] == "apache-2.0" and "license_name" not in front and "License: `apache-2.0`" in text
    )


def test_staging_refuses_a_photo_id_that_is_not_a_file_name(tmp_path, capsys):
    write_jpegs(tmp_path / "images", ["pic0", "pic1"])
    reviews = [("u1_b1", "u1", "b1", "Great ramen here.", ["pic0"], "train"),
               ("u1_b2", "u1", "b2", "Good dumplings too.", ["pic1"], "train")]  # fmt: skip
    dataset = write_built_dataset(tmp_path / "dataset", tmp_path / "images", reviews)
    # A hand-made file whose id would name a file outside the published folder; its stored path is a fine one.
    rewrite_s1_rows(
        dataset, lambda row: row | {"pics": ["../../escaped" if p == "pic0" else p for p in row["pics"]]}
    )
    out = tmp_path / "export"
    assert stage(dataset, out, "--dataset_images", str(tmp_path / "images")) == 2
    assert "'../../escaped' cannot name a file" in capsys.readouterr().err
    assert not list(tmp_path.rglob("escaped*"))
