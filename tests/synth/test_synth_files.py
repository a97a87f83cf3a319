"""Gest-Synth's files: determinism, the readers, the builder, annotations, ground truth, statistics."""

import gzip
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gest_showcases.commands.synth import main
from gest_showcases.data.readers import read_gest_filtered, read_gest_raw, read_google_local
from gest_showcases.data.records import DropReport, split_sentences
from gest_showcases.synth.world import SynthConfig, generate_world
from gest_showcases.synth.write import write_world

ARGS = ["--seed", "1", "--num_reviews", "400", "--num_annotated_reviews", "30", "--image_size", "32"]
PIC_ID = re.compile(r"AF1Qip[A-Za-z0-9_-]{38}")


def _names(text: str, alias: str) -> bool:
    return re.search(rf"\b{re.escape(alias)}\b", text, flags=re.IGNORECASE) is not None


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    assert main([*ARGS, "--output_dir", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def truth(synth) -> dict:
    return json.loads((synth / "ground_truth.json").read_text())


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(synth, tmp_path):
    """The CLI run (1 process) and a library run with 2 render processes write the same bytes."""
    config = SynthConfig(seed=1, num_reviews=400, num_annotated_reviews=30)
    write_world(generate_world(config), tmp_path / "again", image_size=32, num_workers=2)
    first, second = _files(synth), _files(tmp_path / "again")
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []
    assert {
        "image_review_all.json",
        "filter_all_t.json",
        "review-Synth.json.gz",
        "meta-Synth.json.gz",
        "annotations.jsonl",
        "ground_truth.json",
    } <= set(first)


def test_ids_look_real(synth, truth):
    for pic_id in truth["pics"]:
        assert PIC_ID.fullmatch(pic_id)
    for business_id, business in truth["businesses"].items():
        assert re.fullmatch(r"[0-9a-f]{24}", business_id)
        assert re.fullmatch(r"0x[0-9a-f]{16}:0x[0-9a-f]{16}", business["gmap_id"])
    for user_id in truth["users"]:
        assert re.fullmatch(r"\d{21}", user_id)


def test_images_are_jpegs_of_every_pic(synth, truth):
    files = sorted(p.stem for p in (synth / "images").glob("*.jpg"))
    assert files == sorted(truth["pics"])
    for name in files[:50]:
        with Image.open(synth / "images" / f"{name}.jpg") as image:
            assert image.format == "JPEG" and image.size == (32, 32) and image.mode == "RGB"


def test_gest_raw_parses_and_matches_ground_truth(synth, truth):
    report = DropReport()
    reviews = list(read_gest_raw(synth / "image_review_all.json", report))
    assert report.total == 0
    lines = (synth / "image_review_all.json").read_text().splitlines()
    assert len(reviews) == len(lines)
    assert len({r.review_id for r in reviews}) == len(reviews)
    for review in reviews:
        business = truth["businesses"][review.business_id]
        assert business["is_restaurant"]
        for pic in review.pics:
            assert truth["pics"][pic]["review_id"] == review.review_id
            assert truth["pics"][pic]["subject"] in business["menu"] or truth["pics"][pic]["kind"] == "aspect"


def test_filtered_parses_with_user_disjoint_splits_and_described_pics(synth, truth):
    report = DropReport()
    records = list(read_gest_filtered(synth / "filter_all_t.json", report))
    assert report.total == 0
    users = defaultdict(set)
    for record in records:
        users[record.split].add(record.user_id)
        assert record.history_reviews and record.review_id not in {rid for rid, _ in record.history_reviews}
        assert all(rid.startswith(record.user_id + "_") for rid, _ in record.history_reviews)
        assert record.pics
        # every kept sentence names the subject of one of the record's pics
        for sentence in split_sentences(record.review_text):
            names = [a for pic in record.pics for a in _aliases(truth, pic)]
            assert any(_names(sentence, a) for a in names), sentence
    assert set(users) == {"train", "validation", "test"}
    assert not users["train"] & users["validation"] and not users["train"] & users["test"]
    assert not users["validation"] & users["test"]
    sizes = {split: len(u) for split, u in users.items()}
    assert sizes["train"] > 6 * sizes["test"]


def _aliases(truth: dict, pic: str) -> list[str]:
    info = truth["pics"][pic]
    if info["variant"] is not None:  # drinks are named by the drink in the glass
        return [info["variant"]]
    return truth["subjects"][info["subject"]]["aliases"]


def test_google_local_keeps_exactly_the_restaurant_reviews_with_photos(synth, truth):
    report = DropReport()
    reviews = list(
        read_google_local([synth / "review-Synth.json.gz"], [synth / "meta-Synth.json.gz"], report)
    )
    assert report.counts.get("not a restaurant", 0) > 0 and report.counts.get("no image", 0) > 0
    gmap_to_business = {b["gmap_id"]: business_id for business_id, b in truth["businesses"].items()}
    converted = {(r.user_id, gmap_to_business[r.business_id], r.review_text, r.pics) for r in reviews}
    raw = {
        (r.user_id, r.business_id, r.review_text, r.pics)
        for r in read_gest_raw(synth / "image_review_all.json")
        if r.pics
    }
    assert converted == raw
    with gzip.open(synth / "review-Synth.json.gz", "rt") as handle:
        row = json.loads(handle.readline())
    assert set(row) == {"user_id", "name", "time", "rating", "text", "pics", "resp", "gmap_id"}
    assert 1_400_000_000_000 < row["time"] < 1_700_000_000_000
    assert all(r.time is not None for r in reviews)


def test_annotations_agree_with_texts_and_images(synth, truth):
    rows = [json.loads(line) for line in (synth / "annotations.jsonl").read_text().splitlines()]
    raw = {r.review_id: r for r in read_gest_raw(synth / "image_review_all.json")}
    per_review = Counter(row["review_id"] for row in rows)
    assert len(per_review) == 30
    assert 5 <= len(rows) / len(per_review) <= 15  # the paper: 9,930 pairs over 1,000 reviews
    labels = Counter(row["label"] for row in rows)
    assert labels[1] > 0 and labels[0] > labels[1]
    for row in rows:
        review = raw[row["review_id"]]
        assert row["pic_id"] in review.pics
        assert split_sentences(review.review_text)[row["sentence_index"]] == row["sentence"]
        assert truth["pics"][row["pic_id"]]["review_id"] == row["review_id"]
        named = any(_names(row["sentence"], a) for a in _aliases(truth, row["pic_id"]))
        assert named == bool(row["label"]), row


def test_statistics_are_shaped_like_table_1(synth, truth):
    reviews = list(read_gest_raw(synth / "image_review_all.json"))
    words = np.array([len(r.review_text.split()) for r in reviews])
    photos = np.array([len(r.pics) for r in reviews])
    assert 25 <= words.mean() <= 45
    assert 1.6 <= photos[photos > 0].mean() <= 2.3
    assert (photos == 0).any() and (photos > 10).any() and (words < 5).any()
    per_business = Counter()
    for r in reviews:
        per_business[r.business_id] += len(r.pics)
    assert min(per_business.values()) >= 10 and max(per_business.values()) <= 60
    assert 25 <= np.mean(list(per_business.values())) <= 45
    per_user = Counter(r.user_id for r in reviews)
    assert 2 <= np.mean(list(per_user.values())) <= 6


def test_ground_truth_users_and_pics(truth):
    assert len(truth["subjects"]) >= 65
    for user in truth["users"].values():
        assert 1 <= len(user["favourite_dishes"]) <= 5
        assert set(user["favourite_dishes"]) <= set(truth["subjects"])
        assert abs(sum(user["cuisine_prefs"].values()) - 1) < 1e-4
    kinds = Counter(p["kind"] for p in truth["pics"].values())
    assert kinds["dish"] > kinds["aspect"] > 0


def test_builds_into_every_config(synth, tmp_path):
    datasets = pytest.importorskip("datasets")
    from gest_showcases.data.build import build_dataset

    images = synth / "images"
    published = build_dataset([synth / "filter_all_t.json"], images, tmp_path / "published")
    assert set(published.num_rows) == {"raw", "s1", "s2"}
    raw = build_dataset([synth / "image_review_all.json"], images, tmp_path / "raw")
    google = build_dataset(
        [synth / "review-Synth.json.gz"], images, tmp_path / "google", meta=[synth / "meta-Synth.json.gz"]
    )
    for result in (raw, google):
        assert {"raw", "s1"} <= set(result.num_rows)
    assert sum(google.num_rows["s1"].values()) > 0.8 * sum(raw.num_rows["s1"].values())
    for config in ("raw", "s1", "s2"):
        loaded = datasets.load_dataset(str(tmp_path / "published"), config, cache_dir=str(tmp_path / "cache"))
        assert sum(len(split) for split in loaded.values()) == sum(published.num_rows[config].values())
    s1 = datasets.load_dataset(str(tmp_path / "raw"), "s1", cache_dir=str(tmp_path / "cache"))
    record = s1["train"][0]
    assert record["pics"] and set(record["pics"]) <= set(record["candidate_pics"])
    assert 10 <= np.mean([len(c) for c in s1["train"]["candidate_pics"]]) <= 60


def test_a_rerun_killed_while_rendering_leaves_no_reviews_of_another_world(synth, tmp_path, monkeypatch, capsys):
    """Session 26's audit: synth wrote in place, its reviews before its photos, so a run killed midway left a cut
    image_review_all.json (or the previous world's) beside missing photos, and `build` took it, dropping thousands of
    reviews as 'missing image' and exiting 0."""
    import shutil

    import gest_showcases.synth.write as write
    from gest_showcases import cli

    folder = tmp_path / "world"
    shutil.copytree(synth, folder)  # a finished world, rerun with another seed and killed in the photos
    render = write._render_files

    def killed_after_one_batch(task):
        render(task)
        raise KeyboardInterrupt

    monkeypatch.setattr(write, "_render_files", killed_after_one_batch)
    with pytest.raises(KeyboardInterrupt):
        main(["--seed", "2", *ARGS[2:], "--output_dir", str(folder)])
    monkeypatch.undo()
    assert not any((folder / name).exists() for name in write.REVIEW_FILES)
    argv = ["build", "--input", str(folder / "image_review_all.json"), "--images", str(folder / "images"),
            "--output_dir", str(tmp_path / "built")]  # fmt: skip
    assert cli.main(argv) == 2 and "does not exist" in capsys.readouterr().err
    # The same command again, without --overwrite, finishes the world as an uninterrupted run writes it.
    assert main([*ARGS, "--output_dir", str(folder)]) == 0
    rerun, expected = _files(folder), _files(synth)
    assert {name: rerun[name] for name in expected} == expected
    assert all(name.startswith("images/") for name in set(rerun) - set(expected))  # the other world's photos, unread
