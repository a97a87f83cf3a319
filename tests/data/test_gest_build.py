import json
from collections import defaultdict
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from PIL import Image

from gest_showcases import cli
from gest_showcases.data import SPLITS, build_dataset
from gest_showcases.data import build as build_module

TEXT = "the broth was rich and the noodles were fresh"  # 9 words


def _world(files):
    """A Gest-raw file exercising every drop rule, and its image folder.

    Returns the path and the pics whose files are fine.
    """
    pic, rec = files.pic, files.record
    good = {pic(i) for i in range(100, 200)}
    for i, p in enumerate(sorted(good)):
        files.image(p, seed=i)
    files.truncated_image(pic(900))
    records = [
        # user 1: three good reviews, two businesses shared with others
        rec(1, 1, TEXT + ". Great spot!", [pic(100), pic(101)]),
        rec(1, 2, TEXT, [pic(102)]),
        rec(1, 3, TEXT + " indeed", []),  # text-only reviews stay
        # user 2: one review too short -> a single review left
        rec(2, 1, "too few words here", [pic(103)]),
        rec(2, 2, TEXT, [pic(104)]),
        # user 3: a single review
        rec(3, 1, TEXT, [pic(105)]),
        # user 4: one review with 11 images
        rec(4, 1, TEXT, [pic(110 + i) for i in range(11)]),
        rec(4, 3, TEXT, [pic(106)]),
        # user 5: one review whose only image is missing, two left
        rec(5, 1, TEXT, [pic(800)]),
        rec(5, 2, TEXT, [pic(107)]),
        rec(5, 3, TEXT, [pic(108), pic(801)]),  # one of two images missing: kept with one
        # user 6: one review's only image is unreadable -> a single review after the image check
        rec(6, 1, TEXT, [pic(900)]),
        rec(6, 2, TEXT, [pic(109)]),
        # user 7: two good reviews
        rec(7, 1, TEXT + ". The broth! Wow.", [pic(130)]),
        rec(7, 2, TEXT, [pic(131), pic(132)]),
        rec(7, 2, "a duplicate of the review above, dropped", [pic(133)]),
        "{not json",
    ]
    # users 10..39: two or three good reviews each, for the split
    for user in range(10, 40):
        for k in range(2 + user % 2):
            records.append(
                rec(user, 1 + (user + k) % 4, f"{TEXT} number {user} {k}", [pic(140 + (user + k) % 50)])
            )
    return files.jsonl("image_review_all.json", records), good


def _read_config(folder: Path, config: str) -> dict[str, list[dict]]:
    return {
        path.name.split("-")[0]: pq.read_table(path).to_pylist()
        for path in sorted((folder / config).glob("*.parquet"))
    }


@pytest.fixture
def built(gest_files):
    source, good = _world(gest_files)
    result = build_dataset([source], gest_files.images, gest_files.root / "gest")
    return result, gest_files, good


def test_drop_rules_and_report(built):
    result, files, _ = built
    report = json.loads((result.output_dir / "drop_report.json").read_text())
    assert report["raw"] == {
        "duplicate review": {"count": 1, "examples": ["image_review_all.json:16"]},
        "malformed JSON": {"count": 1, "examples": ["image_review_all.json:17"]},
    }
    s1 = report["s1"]
    assert s1["too short"] == {"count": 1, "examples": ["image_review_all.json:4"]}
    assert s1["too many images"] == {"count": 1, "examples": ["image_review_all.json:7"]}
    assert s1["missing image"] == {
        "count": 2,
        "examples": sorted([f"{files.pic(800)}.jpg", f"{files.pic(801)}.jpg"]),
    }
    assert s1["unreadable image"] == {"count": 1, "examples": [f"{files.pic(900)}.jpg"]}
    assert s1["no usable image"] == {
        "count": 2,
        "examples": ["image_review_all.json:9", "image_review_all.json:12"],
    }
    # users 2, 3 and 4 before the image check; user 6 after it
    assert s1["single-review user"]["count"] == 4
    assert s1["single-review user"]["examples"] == [f"image_review_all.json:{line}" for line in (5, 6, 8, 13)]
    assert report["s2"] == {}
    assert result.num_rows["raw"] == {"train": 15 + 75}

    rows = [row for split in _read_config(result.output_dir, "s1").values() for row in split]
    by_user = defaultdict(list)
    for row in rows:
        by_user[row["user_id"]].append(row)
    assert {files.user(u) for u in (2, 3, 4, 6)}.isdisjoint(by_user)
    assert len(by_user[files.user(1)]) == 3 and len(by_user[files.user(5)]) == 2
    kept = {row["business_id"]: row["pics"] for row in by_user[files.user(5)]}
    assert kept == {files.business(2): [files.pic(107)], files.business(3): [files.pic(108)]}
    assert sum(result.num_rows["s1"].values()) == 3 + 2 + 2 + 75


def test_raw_keeps_every_readable_review_without_names(built):
    result, files, _ = built
    raw = _read_config(result.output_dir, "raw")
    assert list(raw) == ["train"]
    first = raw["train"][0]
    assert first == {
        "review_id": f"{files.user(1)}_{files.business(1)}",
        "user_id": files.user(1),
        "business_id": files.business(1),
        "rating": 5,
        "review_text": TEXT + ". Great spot!",
        "pics": [files.pic(100), files.pic(101)],
        "time": None,
    }
    texts = [row["review_text"] for row in raw["train"]]
    assert "too few words here" in texts and "a duplicate of the review above, dropped" not in texts


def test_split_is_by_user_and_history_never_leaks_the_target(built):
    result, files, good = built
    splits = _read_config(result.output_dir, "s1")
    assert list(splits) == ["test", "train", "validation"]
    users = {split: {row["user_id"] for row in rows} for split, rows in splits.items()}
    assert not users["train"] & users["validation"] and not users["train"] & users["test"]
    assert not users["validation"] & users["test"]
    rows = [row for split in splits.values() for row in split]
    by_id = {row["review_id"]: row for row in rows}
    for row in rows:
        others = sorted(r["review_id"] for r in rows if r["user_id"] == row["user_id"] and r is not row)
        assert row["review_id"] not in row["history_review_ids"]
        assert sorted(row["history_review_ids"]) == others
        assert row["history_texts"] == [by_id[rid]["review_text"] for rid in row["history_review_ids"]]
        assert row["history_pics"] == [p for rid in row["history_review_ids"] for p in by_id[rid]["pics"]]
        # the candidate pool: every usable image of the business, this review's own included
        pool = sorted({p for r in rows if r["business_id"] == row["business_id"] for p in r["pics"]})
        assert row["candidate_pics"] == pool and set(row["pics"]) <= set(pool) <= good
        assert row["candidate_paths"] == [f"../images/{p}.jpg" for p in pool]
        assert row["pic_paths"] == [f"../images/{p}.jpg" for p in row["pics"]]
        assert all((result.output_dir / path).is_file() for path in row["pic_paths"])


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.5, 0.3, 0.2)])
def test_assign_splits_gives_validation_and_test_floor_of_n_times_ratio(ratios):
    # The paper's rule (95,270/11,908/11,908 of 119,086 users): validation and test get floor(n * ratio) users each,
    # train the rest; n * ratio is fractional for most n here, so rounding up or to nearest would differ.
    import math

    import numpy as np

    for num_users in range(1, 64):
        codes = build_module.assign_splits(num_users, seed=num_users, ratios=ratios)
        expected_val, expected_test = (math.floor(num_users * r + 1e-9) for r in ratios[1:])
        counts = np.bincount(codes, minlength=3).tolist()
        assert counts == [num_users - expected_val - expected_test, expected_val, expected_test], (num_users, counts)
    assert np.bincount(build_module.assign_splits(119_086, 0, (0.8, 0.1, 0.1))).tolist() == [95_270, 11_908, 11_908]


def test_user_split_follows_ratios_and_seed(gest_files):
    records = [gest_files.record(user, b, f"{TEXT} {user} {b}") for user in range(200) for b in range(2)]
    source = gest_files.jsonl("image_review_all.json", records)

    def split_users(seed, ratios=(0.8, 0.1, 0.1)):
        out = gest_files.root / f"out-{seed}-{ratios[0]}"
        build_dataset([source], gest_files.images, out, seed=seed, split_ratios=ratios)
        return {split: {row["user_id"] for row in rows} for split, rows in _read_config(out, "s1").items()}

    first = split_users(0)
    assert {split: len(users) for split, users in first.items()} == {
        "train": 160,
        "validation": 20,
        "test": 20,
    }
    assert split_users(0) == first
    assert split_users(1) != first
    assert {split: len(users) for split, users in split_users(0, (0.5, 0.25, 0.25)).items()} == {
        "train": 100,
        "validation": 50,
        "test": 50,
    }
    with pytest.raises(ValueError, match="split_ratios"):
        build_dataset([source], gest_files.images, gest_files.root / "bad", split_ratios=(0.8, 0.1))


def test_rebuild_is_idempotent_and_atomic(gest_files, monkeypatch):
    source, _ = _world(gest_files)
    out = gest_files.root / "gest"

    def snapshot():
        return {path.relative_to(out): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}

    build_dataset([source], gest_files.images, out)
    before = snapshot()
    assert {str(path) for path in before} == {
        "README.md",
        "build_options.json",
        "drop_report.json",
        "raw/train-00000-of-00001.parquet",
        *(f"s1/{split}-00000-of-00001.parquet" for split in SPLITS),
    }
    build_dataset([source], gest_files.images, out)
    assert snapshot() == before

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "_dataset_card", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_dataset([source], gest_files.images, out, seed=5)
    assert snapshot() == before  # the previous build is untouched
    with pytest.raises(KeyboardInterrupt):
        build_dataset([source], gest_files.images, gest_files.root / "fresh")
    assert sorted(path.name for path in gest_files.root.iterdir()) == sorted(
        ["images", "image_review_all.json", "gest"]
    )  # no half-written folder, no temporary folder left


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(gest_files):
    source, _ = _world(gest_files)
    precious = gest_files.root / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("...")
    with pytest.raises(ValueError, match="not a built dataset"):
        build_dataset([source], gest_files.images, precious)
    with pytest.raises(ValueError, match="image folder"):
        build_dataset([source], gest_files.root / "nowhere", gest_files.root / "out")
    assert (precious / "thesis.tex").read_text() == "..."


def test_card_loads_every_config_and_explains_missing_s2(built, hf_cache):
    result, files, _ = built
    card = (result.output_dir / "README.md").read_text()
    assert "`s2` (the explanation subset) is absent" in card
    s1 = datasets.load_dataset(str(result.output_dir), "s1", cache_dir=hf_cache)
    assert {split: s1[split].num_rows for split in s1} == result.num_rows["s1"]
    assert s1["train"].features["history_pics"] == datasets.List(datasets.Value("string"))
    raw = datasets.load_dataset(str(result.output_dir), "raw", cache_dir=hf_cache)
    assert raw["train"].num_rows == result.num_rows["raw"]["train"]
    default = datasets.load_dataset(str(result.output_dir), cache_dir=hf_cache)  # s1 stands in for s2
    assert default["train"].num_rows == s1["train"].num_rows
    with pytest.raises(ValueError):
        datasets.load_dataset(str(result.output_dir), "s2", cache_dir=hf_cache)


def test_explanation_filter_builds_s2_from_s1(gest_files, hf_cache):
    source, _ = _world(gest_files)
    calls = []

    def mentions_broth(sentences, image_paths):
        calls.append(image_paths)
        return [sentence for sentence in sentences if "broth" in sentence.lower() and "!" in sentence]

    result = build_dataset(
        [source], gest_files.images, gest_files.root / "gest", explanation_filter=mentions_broth
    )
    assert all(Path(path).is_file() for paths in calls for path in paths)
    s1 = {row["review_id"]: row for rows in _read_config(result.output_dir, "s1").values() for row in rows}
    s2 = _read_config(result.output_dir, "s2")
    s2_rows = [row for rows in s2.values() for row in rows]
    assert sorted(row["review_id"] for row in s2_rows) == [f"{gest_files.user(7)}_{gest_files.business(1)}"]
    row = s2_rows[0]
    assert row["explanation_sentences"] == ["The broth!"] and row["explanation"] == "The broth!"
    assert row["history_review_ids"] == s1[row["review_id"]]["history_review_ids"]
    assert row["pics"] == s1[row["review_id"]]["pics"]
    assert result.reports["s2"].counts == {"no explanation": len(s1) - 1}
    # s2 is the default config now; its empty splits are left out so that it loads
    default = datasets.load_dataset(str(result.output_dir), cache_dir=hf_cache)
    assert list(default) == list(s2) and default[list(s2)[0]]["explanation"] == ["The broth!"]

    with pytest.raises(ValueError, match="not in the review"):
        build_dataset(
            [source], gest_files.images, gest_files.root / "x", explanation_filter=lambda s, p: ["made up"]
        )


def test_published_filter_all_t_keeps_its_splits_and_history(gest_files, hf_cache):
    files = gest_files
    pic = files.pic
    for i in range(6):
        files.image(pic(i), seed=i)

    def record(user, business, text, pics, history=()):
        return {**files.record(user, business, text, pics), "history_reviews": [list(h) for h in history]}

    hist = [(f"{files.user(1)}_{files.business(9)}", "an older review not in the file")]
    path = files.filtered(
        "filter_all_t.json",
        {
            "train": [
                record(1, 1, "Short one.", [pic(0)], hist),  # under 5 words: still in s2 as published
                record(1, 2, "The dumplings were juicy and hot.", [pic(1), pic(7)]),
            ],
            "val": [record(2, 1, "Crispy duck skin, sweet sauce on the side.", [pic(2)])],
            "test": [
                record(3, 2, "Missing photo only here.", [pic(8)]),
                record(3, 1, "Tea was fine. Cakes too.", []),
            ],
        },
    )
    result = build_dataset([path], files.images, files.root / "gest")
    s2 = _read_config(result.output_dir, "s2")
    assert {split: [row["user_id"] for row in rows] for split, rows in s2.items()} == {
        "train": [files.user(1), files.user(1)],
        "validation": [files.user(2)],
        "test": [files.user(3)],
    }
    short = next(row for row in s2["train"] if row["business_id"] == files.business(1))
    assert short["history_review_ids"] == [hist[0][0]] and short["history_texts"] == [hist[0][1]]
    assert short["history_pics"] == [pic(1)]  # the user's other record in the file, missing image removed
    assert short["explanation"] == "Short one." and short["explanation_sentences"] == ["Short one."]
    assert short["candidate_pics"] == sorted([pic(0), pic(2)])
    assert s2["test"][0]["explanation_sentences"] == ["Tea was fine.", "Cakes too."]
    assert result.reports["s2"].counts == {"missing image": 2, "no usable image": 1}
    # s1 applies the paper's filters to the same records, within the published splits
    # (here every user has a single review of 5 words or more: nothing is left)
    assert result.num_rows["s1"] == {} and _read_config(result.output_dir, "s1") == {}
    assert "No review is left in `s1`" in (result.output_dir / "README.md").read_text()
    loaded = datasets.load_dataset(str(result.output_dir), "s2", cache_dir=hf_cache)
    assert {split: loaded[split].num_rows for split in loaded} == {"train": 2, "validation": 1, "test": 1}


def test_google_local_build_orders_history_by_time(gest_files):
    files = gest_files
    restaurant = "0x80c2c:0x1a"
    meta = files.jsonl(
        "meta-Test.json", [{"gmap_id": f"{restaurant}{i}", "category": ["Thai restaurant"]} for i in range(4)]
    )
    reviews = []
    for i, when in enumerate([3_000, 1_000, 2_000, 4_000]):
        pic = files.pic(i)
        files.image(pic, seed=i)
        reviews.append(
            {
                "user_id": files.user(1),
                "name": "Somebody",
                "time": when,
                "rating": 4,
                "text": f"{TEXT} {i}",
                "pics": [{"url": [files.url(pic)]}],
                "resp": None,
                "gmap_id": f"{restaurant}{i}",
            }
        )
    source = files.jsonl("review-Test.json.gz", reviews, gz=True)
    result = build_dataset([source], files.images, files.root / "gest", [meta], max_history=2)
    rows = [row for split in _read_config(result.output_dir, "s1").values() for row in split]
    assert [row["time"] for row in rows] == [4_000, 3_000, 2_000, 1_000]  # most recent first
    history_times = [[int(rid.split("0x1a")[1]) for rid in row["history_review_ids"]] for row in rows]
    # capped at 2: the most recent other reviews (business suffix i <-> time above)
    assert history_times == [[0, 2], [3, 2], [3, 0], [3, 0]]
    raw = _read_config(result.output_dir, "raw")["train"]
    assert len(raw) == 4 and "Somebody" not in json.dumps(raw) and "Somebody" not in json.dumps(rows)


def test_embedded_images_decode(gest_files, hf_cache):
    source, _ = _world(gest_files)
    result = build_dataset(
        [source], gest_files.images, gest_files.root / "gest", embed_images=True, num_proc=2
    )
    s1 = datasets.load_dataset(str(result.output_dir), "s1", cache_dir=hf_cache)["train"]
    row = s1[0]
    assert len(row["images"]) == len(row["pics"])
    assert all(image.size == (16, 16) for image in row["images"])
    for image, pic in zip(row["images"], row["pics"], strict=True):  # the very pixels of the files
        with Image.open(gest_files.images / f"{pic}.jpg") as original:
            assert image.tobytes() == original.convert("RGB").tobytes()
    # Embedding alone leaves the photos where they are (`--copy_images` brings them into the folder).
    assert row["pic_paths"] == [f"../images/{pic}.jpg" for pic in row["pics"]]
    assert not (result.output_dir / "images").exists()


def test_cli_build_accepts_repeated_inputs_and_prints_the_report(gest_files, capsys):
    source, _ = _world(gest_files)
    extra = gest_files.jsonl("more.json", [gest_files.record(50, 1, TEXT), gest_files.record(50, 2, TEXT)])
    out = gest_files.root / "gest"
    code = cli.main(
        [
            "build",
            "--input",
            str(source),
            "--input",
            str(extra),
            "--images",
            str(gest_files.images),
            "--output_dir",
            str(out),
            "--seed",
            "3",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "duplicate review: 1" in printed and "single-review user: 4" in printed
    raw = _read_config(out, "raw")["train"]
    assert gest_files.user(50) in {row["user_id"] for row in raw}


def test_package_readers_leave_the_embedded_photos_out(gest_files, hf_cache):
    """`load_built` and `read_config_rows` feed the package's own stages, which read photos by path: decoding every
    photo of every row there would cost gigabytes at Gest scale, so the bytes column stays out unless asked for."""
    from gest_showcases.data.build import load_built
    from gest_showcases.features.inputs import read_config_rows

    source, _ = _world(gest_files)
    result = build_dataset([source], gest_files.images, gest_files.root / "gest", embed_images=True)
    assert "images" in datasets.load_dataset(str(result.output_dir), "s1", cache_dir=hf_cache)["train"].column_names
    split = load_built(result.output_dir, "s1", split="train")
    assert "images" not in split.column_names and "pic_paths" in split.column_names
    assert all("images" not in names for names in load_built(result.output_dir, "s1").column_names.values())
    with_images = load_built(result.output_dir, "s1", split="train", with_images=True)
    assert len(with_images[0]["images"]) == len(with_images[0]["pics"])
    rows = read_config_rows(result.output_dir, "s1")
    assert rows and all("images" not in row and "pic_paths" in row for row in rows)
