"""Where a build puts its images, and `load_dataset` on what it writes, each loaded by a fresh process.

- `gest-showcases build` writes `./gest`: `load_dataset("gest", "s2")` works right after it.
- By default the path columns lead to the `--images` folder and there is no `Image()` column (one stored by path
  would be opened relative to the current directory and break on load).
- `--copy_images`: a self-contained folder whose `images` column decodes to the same pixels from anywhere,
  even moved and with the source image folder gone.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import datasets
import pytest
from PIL import Image

from gest_showcases import cli
from gest_showcases.data import build_dataset
from gest_showcases.features.inputs import dataset_image_paths, read_config_rows

TEXT = "the broth was rich and the noodles were fresh"  # 9 words, so s1 keeps the records too


def published_gest(files):
    """A `filter_all_t.json` whose users have two records each (so `s1` is not empty either), one photo that is
    missing, and an image file no record names. Returns the file and the photos whose files exist."""
    pic, rec = files.pic, files.record
    used = [pic(i) for i in range(8)]
    for i, p in enumerate(used):
        files.image(p, seed=i)
    files.image(pic(99), seed=99)  # in the folder, named by no record: never copied

    def record(user, business, pics):
        return {**rec(user, business, f"{TEXT} {user} {business}", pics), "history_reviews": []}

    splits = {
        "train": [record(1, 1, used[0:2]), record(1, 2, [used[2]]), record(2, 1, [used[3], pic(50)])],
        "val": [record(3, 2, [used[4]]), record(3, 3, [used[5]])],
        "test": [record(4, 3, [used[6]]), record(4, 1, [used[7]])],
    }
    splits["train"].append(record(2, 3, []))
    return files.filtered("filter_all_t.json", splits), used


def pixels(path) -> str:
    with Image.open(path) as image:
        return hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()


# Loads a folder in a process that cannot import gest_showcases, and prints every row's images as pixel hashes.
LOAD_IMAGES = """
import hashlib, json, sys
sys.modules["gest_showcases"] = None
import datasets
folder, config = sys.argv[1], sys.argv[2]
loaded = datasets.load_dataset(folder, config)
out = {"features": {name: repr(feature) for name, feature in loaded["train"].features.items()}, "rows": {}}
for split in loaded:
    for row in loaded[split]:
        out["rows"][row["review_id"]] = {
            "split": split,
            "pic_paths": row["pic_paths"],
            "images": [hashlib.sha256(image.convert("RGB").tobytes()).hexdigest() for image in row.get("images", [])],
        }
print(json.dumps(out))
"""


def run_fresh(args, cwd, tmp_path):
    # A cache of its own: the process must read the folder, not rows an earlier load left.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": tempfile.mkdtemp(dir=tmp_path)}
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def load_fresh(folder, config, cwd, tmp_path) -> dict:
    return json.loads(run_fresh(["-c", LOAD_IMAGES, str(folder), config], cwd, tmp_path).splitlines()[-1])


def decoded(folder, config, cache_dir) -> dict[str, list[str]]:
    """review_id -> pixel hashes of its `images`, loaded in this process."""
    loaded = datasets.load_dataset(str(folder), config, cache_dir=cache_dir)
    return {
        row["review_id"]: [
            hashlib.sha256(image.convert("RGB").tobytes()).hexdigest() for image in row["images"]
        ]
        for split in loaded
        for row in loaded[split]
    }


def test_build_writes_gest_by_default(gest_files, monkeypatch, hf_cache):
    source, _ = published_gest(gest_files)
    monkeypatch.chdir(gest_files.root)
    assert cli.main(["build", "--input", source.name, "--images", "images"]) == 0
    s2 = datasets.load_dataset("gest", "s2", cache_dir=hf_cache)
    assert {split: s2[split].num_rows for split in s2} == {"train": 4, "validation": 2, "test": 2}
    # The default keeps the images where they are: paths into --images, and no Image() column that would break.
    assert "images" not in s2["train"].features and not (gest_files.root / "gest" / "images").exists()
    assert all(path.startswith("../images/") for path in s2["train"]["pic_paths"][0])
    assert "`--copy_images`" in (gest_files.root / "gest" / "README.md").read_text()


@pytest.mark.slow
def test_build_then_load_dataset_gest_in_fresh_processes(gest_files, tmp_path):
    source, _ = published_gest(gest_files)
    root = gest_files.root
    run_fresh(
        ["-m", "gest_showcases.cli", "build", "--input", source.name, "--images", "images"], root, tmp_path
    )
    script = textwrap.dedent(
        """
        import json, datasets
        s2 = datasets.load_dataset("gest", "s2")
        print(json.dumps({"rows": {split: s2[split].num_rows for split in s2},
                          "columns": sorted(s2["train"].features), "pic_paths": s2["train"][0]["pic_paths"]}))
        """
    )
    loaded = json.loads(run_fresh(["-c", script], root, tmp_path).splitlines()[-1])
    assert loaded["rows"] == {"train": 4, "validation": 2, "test": 2}
    assert "images" not in loaded["columns"] and loaded["pic_paths"][0].startswith("../images/")


def test_output_is_a_deprecated_spelling_of_output_dir(gest_files, capsys):
    source, _ = published_gest(gest_files)
    argv = ["build", "--input", str(source), "--images", str(gest_files.images)]
    assert cli.main([*argv, "--output_dir", str(gest_files.root / "new")]) == 0
    with pytest.warns(FutureWarning, match="--output is deprecated.*--output_dir"):
        assert cli.main([*argv, "--output", str(gest_files.root / "old")]) == 0
    for name in ("new", "old"):
        assert (gest_files.root / name / "s2" / "train-00000-of-00001.parquet").is_file()
    capsys.readouterr()
    with pytest.warns(FutureWarning):
        code = cli.main(
            [*argv, "--output", str(gest_files.root / "a"), "--output_dir", str(gest_files.root / "b")]
        )
    assert code == 2 and "name different folders" in capsys.readouterr().err


def test_copy_images_makes_a_self_contained_folder(gest_files, tmp_path, hf_cache):
    source, used = published_gest(gest_files)
    expected = {pic: pixels(gest_files.images / f"{pic}.jpg") for pic in used}
    built = build_dataset([source], gest_files.images, gest_files.root / "gest", copy_images=True).output_dir
    images = built / "images"
    # Exactly the photos the rows use, hard links of the originals (the same file: no extra disk).
    assert sorted(p.name for p in images.iterdir()) == sorted(f"{pic}.jpg" for pic in used)
    assert all((images / f"{p}.jpg").samefile(gest_files.images / f"{p}.jpg") for p in used)
    shutil.rmtree(gest_files.images)  # the folder needs nothing outside it
    for config in ("s1", "s2"):
        rows = read_config_rows(built, config)
        assert rows and all(row["pic_paths"] == [f"images/{p}.jpg" for p in row["pics"]] for row in rows)
        assert all(
            row["candidate_paths"] == [f"images/{p}.jpg" for p in row["candidate_pics"]] for row in rows
        )
        # The package's own readers need no --images folder any more.
        assert dataset_image_paths(built, rows) == {p: (images / f"{p}.jpg").resolve() for p in used}
        # `images` decodes to the photos' pixels.
        assert decoded(built, config, hf_cache) == {
            row["review_id"]: [expected[p] for p in row["pics"]] for row in rows
        }


@pytest.mark.slow
def test_copied_folder_decodes_anywhere_in_a_fresh_process(gest_files, tmp_path):
    source, used = published_gest(gest_files)
    expected = {pic: pixels(gest_files.images / f"{pic}.jpg") for pic in used}
    built = build_dataset([source], gest_files.images, gest_files.root / "gest", copy_images=True).output_dir

    # Moved, with the source image folder gone, loaded from elsewhere by a process without the package.
    moved = tmp_path / "elsewhere" / "gest"
    shutil.move(built, moved)
    shutil.rmtree(gest_files.images)
    (tmp_path / "cwd").mkdir()
    for config in ("s2", "s1"):
        loaded = load_fresh(moved, config, tmp_path / "cwd", tmp_path)
        assert loaded["features"]["images"] == "List(Image(mode=None, decode=True))"
        rows = {row["review_id"]: row for row in read_config_rows(moved, config)}
        assert sorted(loaded["rows"]) == sorted(rows)
        for review_id, row in loaded["rows"].items():
            assert row["images"] == [expected[p] for p in rows[review_id]["pics"]]
        assert sum(len(row["images"]) for row in loaded["rows"].values()) == 8
