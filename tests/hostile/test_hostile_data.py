"""Hostile and careless inputs to the data layer (issue 13, items 3, 5, 6 and 8): each is one counted
drop or one clear refusal, never a crash, a silent loss or a deleted input."""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from gest_showcases import cli
from gest_showcases.commands.synth import main as synth_main
from gest_showcases.data import (
    DropReport,
    Review,
    build_dataset,
    detect_format,
    read_gest_raw,
    read_reviews,
    readers,
)
from gest_showcases.data.build import load_built
from gest_showcases.data.folder import read_rows
from gest_showcases.data.readers import read_gest_filtered, read_google_local
from gest_showcases.data.records import make_review_id
from gest_showcases.errors import InputError
from gest_showcases.synth.world import SynthConfig, generate_world
from gest_showcases.synth.write import write_world
from gest_showcases.testing.built_folder import write_built_folder

TEXT = "the broth was rich and the noodles were fresh"  # 9 words
RESTAURANT = "0x80c2c:0x1a"


def pic(i: int) -> str:
    return "AF1Qip" + hashlib.sha256(str(i).encode()).hexdigest()[:38]


def user(i: int) -> str:
    return f"1{i:020d}"


def business(i: int) -> str:
    return f"{i:024x}"


def record(u, b, text=TEXT, pics=(), **extra) -> dict:
    pics = list(pics) if isinstance(pics, (list, tuple)) else pics  # anything else as given (hostile)
    return {"business_id": b, "user_id": u, "rating": 5, "review_text": text, "pics": pics, **extra}


def google(u: str, pics: tuple[str, ...], **extra) -> dict:
    urls = [{"url": [f"https://lh5.googleusercontent.com/p/{p}=w150-h150-k-no-p"]} for p in pics]
    return {"user_id": u, "name": "N", "time": 1_000, "rating": 4, "text": TEXT, "pics": urls, "gmap_id": RESTAURANT,
            **extra}  # fmt: skip


def lines(path: Path, rows: list, gz: bool = False) -> Path:
    """JSON Lines: dicts are dumped, bytes/str written as they are."""
    data = b"".join(
        (
            row
            if isinstance(row, bytes)
            else row.encode()
            if isinstance(row, str)
            else json.dumps(row).encode()
        )
        + b"\n"
        for row in rows
    )
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def jpeg(folder: Path, pic_id: str, seed: int = 0) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / f"{pic_id}.jpg", "JPEG")


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(40):
        jpeg(folder, pic(i), seed=i)
    return folder


def meta(tmp_path: Path, rows=None) -> Path:
    return lines(
        tmp_path / "meta-Test.json", rows or [{"gmap_id": RESTAURANT, "category": ["Thai restaurant"]}]
    )


def s1_rows(folder: Path) -> list[dict]:
    return [
        row for path in sorted((folder / "s1").glob("*.parquet")) for row in pq.read_table(path).to_pylist()
    ]


# ---------------------------------------------------------------------------------------------
# Item 5: one bad record is a counted drop with its place, never the end of the run.

DEEP = b"[" * 200_000 + b"]" * 200_000  # RecursionError in json.loads


def test_every_kind_of_bad_line_is_one_counted_drop_with_its_place(tmp_path):
    good = record(user(1), business(1), pics=[pic(1)])
    path = lines(tmp_path / "image_review_all.json", [
        good,
        "{not json",  # 2 malformed
        "[1, 2]",  # 3 not an object
        b'{"business_id": "b", "user_id": "1", "review_text": "caf\xe9"}',  # 4 Latin-1
        DEEP,  # 5
        b'{"user_id": "1", "business_id": "b", "pics": ' + b'{"id": ' * 900 + b'"x"' + b"}" * 900 + b"}",  # 6
        record(user(2), business(2), pics=5),  # 7 wrong types
        record(user(2), business(2), pics=[{"url": 5}]),  # 8
        record([1], business(2)),  # 9
        record(user(2), business(2), rating="5"),  # 10
        record(user(3), business(3)),  # 11 good
    ])  # fmt: skip
    report = DropReport()
    reviews = list(read_gest_raw(path, report))
    assert [review.user_id for review in reviews] == [user(1), user(3)]
    places = {reason: entry["examples"] for reason, entry in report.to_dict().items()}
    name = "image_review_all.json"
    assert places == {
        "malformed JSON": [f"{name}:2", f"{name}:3"],
        "non-UTF-8 bytes": [f"{name}:4"],
        "nested too deep": [f"{name}:5"],
        # line 6: nested `{"id": ...}` pics are unwrapped in a loop, not by recursion
        "invalid field": [f"{name}:{line}" for line in (6, 7, 8, 9, 10)],
    }
    assert report.total == 9


def test_an_unforeseen_error_while_converting_one_record_is_counted_not_raised(tmp_path, monkeypatch):
    """The backstop behind the field checks: a data error nobody foresaw still costs one record."""
    real = readers.normalize_pic_id

    def surprising(item):
        if item == "boom":
            raise OverflowError("a value of a size nobody checked")
        return real(item)

    monkeypatch.setattr(readers, "normalize_pic_id", surprising)
    path = lines(
        tmp_path / "x.json", [record(user(1), business(1), pics=["boom"]), record(user(2), business(2))]
    )
    report = DropReport()
    assert [r.user_id for r in read_gest_raw(path, report)] == [user(2)]
    assert report.to_dict() == {"invalid field": {"count": 1, "examples": ["x.json:1"]}}


def test_a_deeply_nested_first_line_does_not_break_format_detection(tmp_path):
    path = lines(tmp_path / "reviews.json", [DEEP[:5000] + DEEP[-5000:], record(user(1), business(1))])
    assert detect_format(path) == "gest_raw"


def test_google_local_time_beyond_int64_is_a_bad_record_not_a_failed_build(tmp_path, images):
    reviews = lines(tmp_path / "review-Test.json", [
        google(user(1), [pic(1)]),
        google(user(2), [pic(2)], time=2**70),  # line 2
        google(user(1), [pic(3)], gmap_id=RESTAURANT + "2"),
    ])  # fmt: skip
    metas = meta(tmp_path, [{"gmap_id": RESTAURANT, "category": ["Thai restaurant"]},
                            {"gmap_id": RESTAURANT + "2", "category": "Pho restaurant"},
                            {"gmap_id": "0x9:0x9", "category": 5}])  # fmt: skip
    report = DropReport()
    assert [r.user_id for r in read_google_local([reviews], [metas], report)] == [user(1), user(1)]
    assert report.to_dict()["invalid field"]["examples"] == ["meta-Test.json:3", "review-Test.json:2"]
    result = build_dataset([reviews], images, tmp_path / "out", [metas])
    assert result.num_rows["raw"] == {"train": 2}
    assert result.reports["raw"].counts == {"invalid field": 2}


def _cut_gzip(tmp_path: Path, name: str, count: int) -> tuple[Path, int]:
    """A gzip file of `count` good lines cut in the middle of its compressed stream."""
    noise = np.random.default_rng(0).integers(0, 16, size=(count, 200))  # incompressible: the cut is mid-file
    data = b"".join(
        json.dumps(record(user(i), business(i), TEXT + " " + "".join(f"{d:x}" for d in noise[i]))).encode()
        + b"\n"
        for i in range(count)
    )
    packed = gzip.compress(data, mtime=0)
    path = tmp_path / name
    path.write_bytes(packed[: len(packed) // 2])
    return path, count


def test_a_truncated_gzip_keeps_the_records_before_the_cut_and_counts_the_cut(tmp_path):
    path, count = _cut_gzip(tmp_path, "image_review_all.json.gz", 2000)
    report = DropReport()
    reviews = list(read_reviews([path], report=report))  # format detection reads the head too
    assert 0 < len(reviews) < count
    assert [r.user_id for r in reviews] == [user(i) for i in range(len(reviews))]
    assert report.counts == {"truncated file": 1}
    assert report.examples["truncated file"][0].startswith("image_review_all.json.gz:")
    # a file so short that the cut is inside the part read to detect the format
    short, _ = _cut_gzip(tmp_path, "short.json.gz", 6)
    assert detect_format(short) == "gest_raw"
    report = DropReport()
    assert len(list(read_gest_raw(short, report))) >= 1 and report.counts == {"truncated file": 1}


def test_a_corrupt_gzip_is_counted_not_raised(tmp_path):
    data = b"".join(json.dumps(record(user(i), business(i))).encode() + b"\n" for i in range(50))
    packed = bytearray(gzip.compress(data, mtime=0))
    packed[-6] ^= 0xFF  # the CRC/length trailer: every line decodes, the end check fails
    path = tmp_path / "crc.json.gz"
    path.write_bytes(bytes(packed))
    report = DropReport()
    assert len(list(read_gest_raw(path, report))) == 50 and report.counts == {"corrupt compressed file": 1}
    deflate_broken = bytearray(gzip.compress(data, mtime=0))
    deflate_broken[12:40] = b"\xff" * 28  # inside the deflate stream
    path.write_bytes(bytes(deflate_broken))
    report = DropReport()
    list(read_gest_raw(path, report))
    assert report.total == 1 and set(report.counts) <= {"corrupt compressed file", "truncated file"}
    assert issubclass(zlib.error, Exception)


def test_filtered_file_truncated_gzip_deep_record_and_odd_key(tmp_path):
    noise = np.random.default_rng(0).integers(0, 16, size=(400, 100))
    records = [{**record(user(i), business(1), "".join(f"{d:x}" for d in noise[i])), "history_reviews": []}
               for i in range(400)]  # fmt: skip
    good = records[0]
    text = json.dumps({"train": records, "val": [good]})
    packed = gzip.compress(text.encode(), mtime=0)
    path = tmp_path / "filter_all_t.json.gz"
    path.write_bytes(packed[: len(packed) * 3 // 4])
    report = DropReport()
    reviews = list(read_gest_filtered(path, report))
    assert 0 < len(reviews) < 400 and [r.user_id for r in reviews] == [user(i) for i in range(len(reviews))]
    assert report.counts == {"truncated file": 1}

    deep = '{"train": [' + json.dumps(good) + ", " + "[" * 100_000 + "]" * 100_000 + "]}"
    plain = tmp_path / "filter_all_t.json"
    plain.write_text(deep)
    report = DropReport()
    assert len(list(read_gest_filtered(plain, report))) == 1
    assert report.to_dict() == {"nested too deep": {"count": 1, "examples": ["filter_all_t.json:train[1]"]}}

    plain.write_text('{"train": [' + json.dumps(good) + "], [1]: []}")  # a key that is no string
    report = DropReport()
    assert len(list(read_gest_filtered(plain, report))) == 1 and report.counts == {"malformed JSON": 1}


# ---------------------------------------------------------------------------------------------
# Item 6: review ids cannot collide.


def test_review_ids_of_different_pairs_never_collide(tmp_path, images):
    assert Review("a_b", "c", 5, "", ()).review_id != Review("a", "b_c", 5, "", ()).review_id
    assert make_review_id("a%5Fb", "c") != make_review_id("a_b", "c")
    # real ids are unchanged, so filter_all_t.json's published history ids still match
    assert make_review_id(user(1), business(2)) == f"{user(1)}_{business(2)}"
    path = lines(tmp_path / "image_review_all.json", [
        record("a_b", "c", pics=[pic(1)]), record("a", "b_c", pics=[pic(2)]),
        record("a_b", "d", pics=[pic(3)]), record("a", "e", pics=[pic(4)]),
    ])  # fmt: skip
    result = build_dataset([path], images, tmp_path / "out")
    assert "duplicate review" not in result.reports["raw"].counts
    assert result.num_rows["raw"] == {"train": 4}
    rows = s1_rows(tmp_path / "out")
    assert len(rows) == 4 and len({row["review_id"] for row in rows}) == 4
    # a history never names a review of somebody else
    by_id = {row["review_id"]: row for row in rows}
    for row in rows:
        assert all(by_id[rid]["user_id"] == row["user_id"] for rid in row["history_review_ids"])


# ---------------------------------------------------------------------------------------------
# Item 3: a build never deletes its inputs; synth never overwrites what it did not write;
# interrupted builds' folders are cleaned.


def _raw_input(path: Path) -> Path:
    rows = [record(user(u), business(b), pics=[pic(u * 4 + b)]) for u in range(1, 5) for b in range(2)]
    return lines(path, rows)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_refuses_an_output_that_holds_or_is_inside_an_input(tmp_path, images, capsys):
    gest = tmp_path / "gest"
    build_dataset(
        [_raw_input(tmp_path / "in.json")], images, gest
    )  # a built dataset: replacing it is allowed
    # the case: inputs moved into a built dataset folder, then rebuilt into that folder
    source = _raw_input(gest / "image_review_all.json")
    os.rename(images, gest / "images")
    before = _snapshot(gest)
    argv = ["build", "--input", str(source), "--images", str(gest / "images"), "--output_dir", str(gest)]
    assert cli.main(argv) == 2  # the command: it used to exit 0 with its inputs gone
    assert "delete its own inputs" in capsys.readouterr().err
    for inputs, image_folder, output in [
        ([source], gest / "images", gest),  # output holds both inputs
        ([tmp_path / "in.json"], gest / "images", gest),  # output holds the image folder
        ([source], gest / "images", gest / "images" / "dataset"),  # output inside the image folder
        ([source], gest / "images", gest / "images"),  # output is the image folder
        ([source], gest / "images", tmp_path / "elsewhere" / ".." / "gest"),  # the same, spelt with ..
    ]:
        with pytest.raises(InputError, match="delete its own inputs"):
            build_dataset(inputs, image_folder, output)
    link = tmp_path / "link"
    link.symlink_to(gest)
    with pytest.raises(InputError, match="delete its own inputs"):
        build_dataset([source], gest / "images", link)
    assert _snapshot(gest) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gest", "in.json", "link"]  # no temporary folder


def test_next_build_removes_stale_temporary_folders_of_its_output_only(tmp_path, images):
    source = _raw_input(tmp_path / "in.json")
    stale = [tmp_path / ".gest.tmp-abcd_123", tmp_path / ".gest.old-zz99zz99"]
    live = tmp_path / ".gest.tmp-livelive"
    foreign = [tmp_path / ".other.tmp-abcd_123", tmp_path / ".gest.tmp-x", tmp_path / "gest.tmp-abcd_123"]
    for folder in [*stale, live, *foreign]:
        (folder / "raw").mkdir(parents=True)
        (folder / "raw" / "part.parquet").write_bytes(b"x" * 100)
    (stale[1] / "gest").mkdir()  # an .old folder holds the previous output
    holder = os.open(live, os.O_RDONLY)  # a build still running holds its folder's lock
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        build_dataset([source], images, tmp_path / "gest")
    finally:
        os.close(holder)
    assert not any(folder.exists() for folder in stale)
    assert live.exists() and all(folder.exists() for folder in foreign)
    assert (tmp_path / "gest" / "drop_report.json").is_file()


@pytest.fixture(scope="module")
def small_world():
    return generate_world(SynthConfig(seed=0, num_reviews=40, num_annotated_reviews=3))


def test_synth_refuses_a_folder_holding_files_it_did_not_write(tmp_path, small_world):
    real = tmp_path / "gest"
    real.mkdir()
    (real / "image_review_all.json").write_text("real data\n")
    with pytest.raises(InputError, match="--overwrite"):
        synth_main(["--output_dir", str(real), "--num_reviews", "40", "--image_size", "8"])
    with pytest.raises(InputError, match="--overwrite"):
        write_world(small_world, real, image_size=8)
    assert sorted(os.listdir(real)) == ["image_review_all.json"]
    assert (real / "image_review_all.json").read_text() == "real data\n"
    (real / "image_review_all.json").unlink()
    (real / "images").mkdir()  # a real image folder is not synth's either
    (real / "images" / "photo.jpg").write_bytes(b"real")
    with pytest.raises(InputError):
        write_world(small_world, real, image_size=8)
    # a folder with other files, an earlier synth output, and --overwrite are fine
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep")
    write_world(small_world, tmp_path / "notes", image_size=8)
    write_world(small_world, tmp_path / "notes", image_size=8)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep"
    write_world(small_world, real, image_size=8, overwrite=True)
    assert (real / "ground_truth.json").is_file() and (real / "images" / "photo.jpg").read_bytes() == b"real"


# ---------------------------------------------------------------------------------------------
# The builder's image check applies the one pixel limit (data/images.py).


def test_builder_drops_an_image_over_the_pixel_limit(tmp_path, images):
    big = Image.new("1", (6400, 6400))  # 41 MP, over MAX_IMAGE_PIXELS; a few KB as PNG
    buffer = io.BytesIO()
    big.save(buffer, "PNG")
    (images / f"{pic(900)}.jpg").write_bytes(buffer.getvalue())
    long_id = "A" * 300  # a pic id too long for a file name is a missing image, not an OSError
    path = lines(tmp_path / "image_review_all.json", [
        record(user(1), business(1), pics=[pic(900)]), record(user(1), business(2), pics=[pic(1)]),
        record(user(1), business(3), pics=[long_id]), record(user(1), business(4), pics=[pic(4)]),
        record(user(2), business(1), pics=[pic(2)]), record(user(2), business(2), pics=[pic(3)]),
    ])  # fmt: skip
    result = build_dataset([path], images, tmp_path / "out")
    assert result.reports["s1"].to_dict()["unreadable image"] == {"count": 1, "examples": [f"{pic(900)}.jpg"]}
    assert result.reports["s1"].counts["missing image"] == 1
    assert sorted(row["pics"][0] for row in s1_rows(tmp_path / "out")) == sorted(map(pic, (1, 2, 3, 4)))


# ---------------------------------------------------------------------------------------------
# Item 8: the builder's edges, with reviews exactly on them.


def test_review_filters_keep_exactly_min_words_and_exactly_max_images(tmp_path, images):
    five_words = "one two three four five"
    ten_pics = [pic(10 + i) for i in range(10)]
    path = lines(tmp_path / "image_review_all.json", [
        record(user(1), business(1), five_words, [pic(1)]),  # exactly 5 words: kept
        record(user(1), business(2), TEXT, ten_pics),  # exactly 10 images: kept
        record(user(2), business(1), "one two three four", [pic(2)]),  # 4 words: too short
        record(user(2), business(2), TEXT, [pic(20 + i) for i in range(11)]),  # 11 images: too many
        record(user(2), business(3), TEXT, [pic(3)]),
        record(user(2), business(4), TEXT, [pic(4)]),
    ])  # fmt: skip
    result = build_dataset([path], images, tmp_path / "out")
    assert result.reports["s1"].to_dict()["too short"]["examples"] == ["image_review_all.json:3"]
    assert result.reports["s1"].to_dict()["too many images"]["examples"] == ["image_review_all.json:4"]
    kept = {(row["user_id"], row["business_id"]): row for row in s1_rows(tmp_path / "out")}
    assert set(kept) == {
        (user(1), business(1)),
        (user(1), business(2)),
        (user(2), business(3)),
        (user(2), business(4)),
    }
    assert kept[user(1), business(1)]["review_text"] == five_words
    assert kept[user(1), business(2)]["pics"] == ten_pics


def test_extreme_aspect_ratio_is_refused_before_any_resize(tmp_path):
    """A 1 x 20000 strip passes the pixel limit but would be resized to 224 x 4.5M pixels (10 GB)."""
    from PIL import Image

    from gest_showcases.data.images import ImageStatus, UnreadableImageError, open_image, probe_image

    strip = tmp_path / "strip.png"
    Image.new("1", (20000, 1)).save(strip)
    with pytest.raises(UnreadableImageError, match="wider than tall"):
        open_image(strip)
    assert probe_image(strip) == ImageStatus.UNREADABLE
    panorama = tmp_path / "panorama.png"
    Image.new("RGB", (400, 40)).save(panorama)  # 10:1, a real panorama, is kept
    assert open_image(panorama).size == (400, 40)


def test_a_rebuild_refuses_to_delete_what_no_build_wrote(tmp_path, images, capsys):
    gest = tmp_path / "gest"
    source = _raw_input(tmp_path / "in.json")
    build_dataset([source], images, gest)
    (gest / "my_notes.txt").write_text("mine")
    (gest / "features").mkdir()
    (gest / "s1" / "extra.txt").write_text("mine too")
    before = _snapshot(gest)
    argv = ["build", "--input", str(source), "--images", str(images), "--output_dir", str(gest)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "also holds what no build wrote (features, my_notes.txt, s1/extra.txt)" in err
    assert _snapshot(gest) == before
    (gest / "my_notes.txt").unlink()
    (gest / "s1" / "extra.txt").unlink()
    (gest / "features").rmdir()
    build_dataset([source], images, gest)  # a build's own files only: the rebuild replaces them
    assert (gest / "drop_report.json").is_file()


@pytest.mark.parametrize("photo_less", [False, True], ids=["every-review-has-photos", "some-have-none"])
def test_a_build_whose_photos_are_all_missing_leaves_the_previous_build_as_it_was(
    tmp_path, images, capsys, photo_less
):
    """Session 26's audit: with reviews that have no photos (which s1 keeps), the guard saw a non-empty s1 and
    replaced a 2,589-row build with 2 rows."""
    gest = tmp_path / "gest"
    source = _raw_input(tmp_path / "in.json")
    if photo_less:
        rows = [record(user(u), business(b), pics=[pic(u * 4 + b)] if b else []) for u in range(1, 5) for b in range(3)]
        source = lines(tmp_path / "in.json", rows)
    build_dataset([source], images, gest)
    before = _snapshot(gest)
    elsewhere = tmp_path / "other-images"
    elsewhere.mkdir()
    argv = ["build", "--input", str(source), "--images", str(elsewhere), "--output_dir", str(gest)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"photos is usable in {elsewhere}" in err and f"{gest} was left as it was" in err
    assert _snapshot(gest) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["gest", "images", "in.json", "other-images"]


def test_build_names_a_folder_or_a_missing_path_given_as_input(tmp_path, images):
    for given, says in ((tmp_path, "is a folder, not a file"), (tmp_path / "missing.json", "does not exist")):
        with pytest.raises(InputError, match=f"^input file {given} {says}; pass the JSON Lines file"):
            build_dataset([given], images, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"pic_id": "/home/u/Pictures/private", "sentence": "s", "label": 1}', "image URL has no /p/<id> part"),
        ('{"pic_id": "../../etc/passwd", "sentence": "s", "label": 1}', "image URL has no /p/<id> part"),
        ('{"pic_id": {"x": 1}, "sentence": "s", "label": 1}', "pics item has no image id"),
        ('{"pic_id": "a b", "sentence": "s", "label": 1}', "expected URL-safe characters only"),
        ("[1]", "not a JSON object"),
        ('{"pic_id": "p1", "label": 1}', "lacks ['sentence']"),
        ('{"pic_id": "p1", "sentence": ["s"], "label": 1}', "`sentence` must be text"),
        ('{"pic_id": "p1", "sentence": "s", "label": "yes"}', "`label` must be 0 or 1"),
        ("{", "not valid JSON"),
    ],
)
def test_annotations_name_only_photos_of_the_images_folder(line, message, tmp_path):
    """Session 24's audit: an annotation's `pic_id` was joined to `--images` as it stood, so `/home/u/x` or
    `../../x` read a photo outside it, and bad lines were tracebacks."""
    from gest_showcases.features.distill import read_annotations

    path = tmp_path / "pairs.jsonl"
    path.write_text('{"pic_id": "p0", "sentence": "Good.", "label": 0}\n' + line + "\n")
    with pytest.raises(InputError, match=f"^{path}:2"):
        read_annotations(path)
    with pytest.raises(InputError) as caught:
        read_annotations(path)
    assert message in str(caught.value)


def test_an_annotation_photo_url_becomes_its_id(tmp_path):
    from gest_showcases.features.distill import read_annotations

    path = tmp_path / "pairs.jsonl"
    url = "https://lh5.googleusercontent.com/p/AF1QipPic=w100"
    path.write_text(json.dumps({"pic_id": url, "sentence": "Good.", "label": True}) + "\n\n")
    assert [row["pic_id"] for row in read_annotations(path)] == ["AF1QipPic"]


def test_builder_drops_a_photo_that_links_out_of_the_images_folder(tmp_path, images):
    """Session 24's audit: the build followed `X.jpg -> ~/private.jpg`, and `--copy_images` put the private file into
    the dataset, which `push` would then publish. A link inside the folder is a photo like any other."""
    private = tmp_path / "private"
    private.mkdir()
    jpeg(private, "secret", seed=99)
    (images / f"{pic(900)}.jpg").symlink_to(private / "secret.jpg")
    (images / f"{pic(901)}.jpg").symlink_to(images / f"{pic(5)}.jpg")
    path = lines(tmp_path / "image_review_all.json", [
        record(user(1), business(1), pics=[pic(900)]), record(user(1), business(2), pics=[pic(901)]),
        record(user(1), business(3), pics=[pic(1)]), record(user(1), business(4), pics=[pic(4)]),
        record(user(2), business(1), pics=[pic(2)]), record(user(2), business(2), pics=[pic(3)]),
    ])  # fmt: skip
    result = build_dataset([path], images, tmp_path / "out", copy_images=True)
    assert result.reports["s1"].to_dict()["image linking out of the images folder"] == {
        "count": 1, "examples": [f"{pic(900)}.jpg"]
    }  # fmt: skip
    assert sorted(row["pics"][0] for row in s1_rows(tmp_path / "out")) == sorted(map(pic, (901, 1, 2, 3, 4)))
    copied = {path.name for path in (tmp_path / "out").rglob("*.jpg")}
    assert f"{pic(900)}.jpg" not in copied and f"{pic(901)}.jpg" in copied


# ---------------------------------------------------------------------------------------------
# A built folder's parquet files must hold what `build` writes (load_built checks; session 25).


def _explanation_null(table):
    return table.set_column(table.schema.get_field_index("explanation"), "explanation", pa.array([None], pa.string()))


def _pics_with_a_null(table):
    return table.set_column(table.schema.get_field_index("pics"), "pics", pa.array([["p", None]], pa.list_(pa.string())))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda table: table.drop_columns(["explanation"]), "no column 'explanation', which `build` writes"),
        (lambda table: table.set_column(3, "rating", pa.array(["5"])), "column 'rating' holds string, not int64"),
        (_explanation_null, "column 'explanation' has 1 empty \\(null\\) value"),
        (_pics_with_a_null, "column 'pics' has 1 empty \\(null\\) value"),
    ],
    ids=["missing-column", "wrong-type", "null-value", "null-in-a-list"],
)
def test_a_built_split_not_in_the_builders_schema_is_one_line(tmp_path, change, message):
    """A hand-edited or foreign parquet file failed as a traceback deep in training (KeyError, TypeError on None)."""
    folder = write_built_folder(tmp_path / "dataset", {"s2": {"train": [{"review_id": "a", "explanation": "x",
                                                                         "pics": ["p"], "rating": 5}]}})  # fmt: skip
    path = folder / "s2" / "train-00000-of-00001.parquet"
    assert load_built(folder, "s2", split="train")["explanation"] == ["x"]  # as written, it loads
    pq.write_table(change(pq.read_table(path)), path)
    with pytest.raises(InputError, match=rf"{folder} \(s2, train\): {message}.*rebuild it with `gest-showcases build`"):
        load_built(folder, "s2", split="train")


@pytest.mark.parametrize("content", [b"", b"not parquet at all"], ids=["empty", "not-parquet"])
def test_a_corrupt_parquet_file_is_one_line_from_load_built(tmp_path, content):
    """load_built read each file's row count outside the reader's guard: an ArrowInvalid traceback (session 43)."""
    folder = write_built_folder(tmp_path / "dataset", {"s1": {"train": [{"review_id": "a"}]}})
    path = folder / "s1" / "train-00000-of-00001.parquet"
    assert load_built(folder, "s1", split="train")["review_id"] == ["a"]
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"^{path}: cannot be read as this dataset's Parquet .*; rebuild it$"):
        load_built(folder, "s1", split="train")


def _set(name, values, data_type):
    def change(table):
        return table.set_column(table.schema.get_field_index(name), name, pa.array(values, data_type))

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("candidate_pics", [None], pa.list_(pa.string())), "column 'candidate_pics' has 1 empty \\(null\\) value"),
        (_set("pic_paths", [None], pa.list_(pa.string())), "column 'pic_paths' has 1 empty \\(null\\) value"),
        (lambda table: table.drop_columns(["business_id"]), "no column 'business_id', which `build` writes"),
        (_set("pics", ["p.jpg"], pa.string()), "column 'pics' holds string, not list<string>"),
        (_set("review_text", [7], pa.int64()), "column 'review_text' holds int64, not string"),
    ],
    ids=["null-list", "null-paths", "missing-column", "string-for-list", "int-for-text"],
)
def test_every_reader_of_a_built_folder_checks_the_builders_schema(tmp_path, change, message, capsys):
    """read_rows / read_table skipped load_built's check: showcase, serve, push and stats failed as a TypeError,
    KeyError or ArrowNotImplementedError deep in their work (session 43's review)."""
    folder = write_built_folder(tmp_path / "dataset", {"s1": {"train": [{"review_id": "a", "business_id": "b",
                                                                         "pics": ["p"], "review_text": "t"}]}})  # fmt: skip
    path = folder / "s1" / "train-00000-of-00001.parquet"
    assert read_rows(folder, "s1")[0]["business_id"] == "b"  # as written, it reads
    pq.write_table(change(pq.read_table(path)), path)
    expected = rf"^{path} \(s1\): {message}.*rebuild it with `gest-showcases build`$"
    with pytest.raises(InputError, match=expected):
        read_rows(folder, "s1")
    with pytest.raises(InputError, match=rf"^{folder} \(s1, train\): {message}"):
        load_built(folder, "s1", split="train")  # the same check, the same words
    # stats reads four columns (read_table): a null in another column is not its business.
    stats_reads = any(name in message for name in ("'pics'", "'review_text'", "'business_id'"))
    assert cli.main(["stats", str(folder)]) == (2 if stats_reads else 0)
    assert "Traceback" not in capsys.readouterr().err


def test_the_builders_schema_is_the_datasets_features_it_always_was():
    """`dataset_features` now comes from `schema.built_columns`: the same Features as its literal definition."""
    from datasets import Features, List, Value

    from gest_showcases.data.build import dataset_features

    strings = List(Value("string"))
    s1 = {"review_id": Value("string"), "user_id": Value("string"), "business_id": Value("string"),
          "rating": Value("int64"), "review_text": Value("string"), "pics": strings, "time": Value("int64")}  # fmt: skip
    raw = Features(s1)
    s1 |= dict.fromkeys(["pic_paths", "history_review_ids", "history_texts", "history_pics", "candidate_pics",
                         "candidate_paths"], strings)  # fmt: skip
    s2 = s1 | {"explanation": Value("string"), "explanation_sentences": strings}
    for config, features in (("raw", raw), ("s1", Features(s1)), ("s2", Features(s2))):
        assert dataset_features(config) == features and list(dataset_features(config)) == list(features)
    assert dataset_features("s1", embed_images=True)["images"] is not None


def test_a_built_split_may_leave_rating_and_time_empty(tmp_path):
    """A source may have neither (`Review.rating`, `Review.time`): `build` writes them null."""
    folder = write_built_folder(tmp_path / "dataset", {"s1": {"train": [{"review_id": "a", "rating": None}]}})
    assert load_built(folder, "s1", split="train")[0]["rating"] is None


def test_a_build_killed_between_its_two_renames_gets_its_previous_build_back(tmp_path, images):
    """Session 26's audit: killed after moving the previous build into `.gest.old-*` and before moving the new one in,
    the next build (even one that then failed on its input) deleted the previous build with the stale folder."""
    source = _raw_input(tmp_path / "in.json")
    gest = tmp_path / "gest"
    build_dataset([source], images, gest)
    before = _snapshot(gest)
    old = tmp_path / ".gest.old-abcd1234"
    old.mkdir()
    os.rename(gest, old / "gest")  # where the kill left it
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a review"}\n')
    argv = ["build", "--input", str(bad), "--images", str(images), "--output_dir", str(gest)]
    assert cli.main(argv) == 2  # not a Gest file: one line
    assert _snapshot(gest) == before and not old.exists()
