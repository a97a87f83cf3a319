"""Hostile inputs to the showcase pipeline, the `showcase` command and `push --dry_run` (issue 13):

- `ShowcasePipeline` opens every photo with `open_image` (one pixel limit): a 0-pixel, broken or
  over-limit photo is dropped with a warning, and a business left with none is one `InputError`.
- Stored image paths go through the one path policy: a dataset row with an absolute path or one that
  leads outside the dataset and `--images` folders stops `showcase` with the review named (exit 2).
- What `push` stages names no folder of this machine (configs' `_name_or_path`, cards).
"""

import struct
import zlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image
from transformers import GPT2Config, GPT2LMHeadModel

from gest_showcases.cli import main as cli_main
from gest_showcases.data.images import MAX_IMAGE_PIXELS
from gest_showcases.dataset_requests import request_from_dataset
from gest_showcases.errors import InputError
from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.pipeline import ShowcaseInput, ShowcasePipeline
from tiny_assets import (
    CLIP_DIM,
    CORPUS,
    VISION_DIM,
    build_gpt2_tokenizer,
    few_threads,  # noqa: F401  (an autouse fixture: importing it applies it here)
    save_tiny_checkpoints,
    write_built_dataset,
    write_jpegs,
)

REVIEWS = [
    # review_id, user, business, text, pics, split
    ("u1_b1", "u1", "b1", "Great ramen! The broth was rich.", ["pic0", "pic1"], "train"),
    ("u1_b2", "u1", "b2", "Tiny place with good dumplings.", ["pic2"], "train"),
    ("u2_b1", "u2", "b1", "Cozy room with candles.", ["pic3"], "test"),
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return save_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def pipeline(checkpoints):
    return ShowcasePipeline.from_pretrained(**checkpoints, device="cpu", max_new_tokens=3, num_beams=1)


def big_png(path: Path, side: int) -> Path:
    """A valid grey PNG of side x side pixels, written row by row (a few KB on disk, side**2 bytes decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj()
    row = b"\x00" * (side + 1)  # filter byte + one grey byte per pixel
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def test_zero_pixel_broken_and_oversized_photos_are_dropped_with_a_warning(pipeline, tmp_path):
    photos = write_jpegs(tmp_path / "images", ["a", "b"])
    broken = tmp_path / "images" / "broken.jpg"
    broken.write_bytes(photos["a"].read_bytes()[:50])
    side = int(MAX_IMAGE_PIXELS**0.5) + 1  # just over the pixel limit: refused on its header, never decoded
    candidates = {
        "empty": Image.new("RGB", (0, 0)),  # divided by zero in the resize before
        "broken": broken,
        "huge": big_png(tmp_path / "images" / "huge.png", side),
        "a": photos["a"],
        "b": photos["b"],
    }

    result = pipeline(ShowcaseInput(candidates=candidates, history_texts=["Nice."]), k=2)

    assert result.skipped == ["empty", "broken", "huge"]
    assert sorted(photo.id for photo in result.photos) == ["a", "b"]
    assert any("skipped 3 unreadable or missing photos: empty, broken, huge" in w for w in result.warnings)


def test_a_business_without_one_usable_photo_is_one_input_error(pipeline, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    request = ShowcaseInput(
        candidates={"empty": Image.new("RGB", (0, 3)), "broken": broken}, business_id="b1"
    )
    with pytest.raises(InputError, match="b1: none of its 2 candidate photos could be read"):
        pipeline(request)


# -- the path policy in `showcase` ------------------------------------------------------------------


@pytest.fixture
def dataset(tmp_path):
    """A built dataset folder `dataset/` whose photos are in the sibling folder `images/`."""
    write_jpegs(tmp_path / "images", [f"pic{i}" for i in range(4)])
    return write_built_dataset(tmp_path / "dataset", tmp_path / "images", REVIEWS)


def tamper(dataset: Path, column: str, value: str) -> None:
    """Replace the first entry of `column` in the first row of the s1 train split (as a hostile file would)."""
    path = dataset / "s1" / "train-00000-of-00001.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows[0][column] = [value, *rows[0][column][1:]]
    pq.write_table(table.from_pylist(rows, schema=table.schema), path)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("candidate_paths", "/etc/passwd", "'/etc/passwd' is absolute"),
        ("candidate_paths", "../images/../../outside.jpg", "leads outside the dataset folder"),
        ("pic_paths", "../../../../../../etc/hostname", "leads outside the dataset folder"),
        # A history photo is named `<pic_id>.jpg` beside the others: its id cannot escape either.
        ("history_pics", "../../../../../../etc/passwd", "leads outside the dataset folder"),
    ],
)
def test_showcase_refuses_stored_paths_outside_the_dataset_and_images_folders(
    dataset, column, value, message, tmp_path
):
    images = tmp_path / "images"
    assert request_from_dataset(dataset, "s1", "u1", "b1", images=images).request.candidates  # clean: fine
    tamper(dataset, column, value)
    with pytest.raises(InputError, match=rf"review 'u1_b1': image path .*{message}"):
        request_from_dataset(dataset, "s1", "u1", "b1", images=images)


def test_a_photo_that_is_a_symlink_out_of_the_folders_is_refused(dataset, tmp_path):
    """Folders are resolved once for speed; a photo file that is itself a symlink is still followed."""
    outside = write_jpegs(tmp_path / "private", ["holiday"])["holiday"]
    photo = tmp_path / "images" / "pic1.jpg"
    photo.unlink()
    photo.symlink_to(outside)
    with pytest.raises(InputError, match=r"review 'u1_b1': image path '\.\./images/pic1\.jpg' leads outside"):
        request_from_dataset(dataset, "s1", "u1", "b1", images=tmp_path / "images")


def test_showcase_command_says_to_pass_images_in_one_line(dataset, checkpoints, capsys):
    """Photos beside the dataset are outside it: without `--images` the command stops, exit 2, one line."""
    argv = ["showcase", "--dataset", str(dataset), "--user", "u1", "--business", "b1",
            "--selector", checkpoints["selector"], "--generator", checkpoints["generator"],
            "--clip_model", checkpoints["clip"], "--device", "cpu"]  # fmt: skip
    assert cli_main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert (
        len(error.splitlines()) == 1 and "leads outside the dataset folder" in error and "--images" in error
    )


# -- push stages no local path ----------------------------------------------------------------------


def test_push_dry_run_stages_no_absolute_local_path(dataset, checkpoints, tmp_path):
    """A generator whose decoder came from a local folder (its config keeps that folder as `_name_or_path`),
    a dataset card naming local folders (as `distill` records its classifier), local `--clip` and
    `--base_model` folders: no staged text file may name the test machine's folders."""
    tokenizer = build_gpt2_tokenizer(CORPUS)
    lm = tmp_path / "runs" / "gpt2-ft"
    GPT2LMHeadModel(
        GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=32, vocab_size=len(tokenizer))
    ).save_pretrained(lm)
    model = PC2LForConditionalGeneration.from_decoder_pretrained(
        str(lm), image_feature_dim=VISION_DIM, review_feature_dim=CLIP_DIM, encoder_layers=1,
        encoder_attention_heads=2, encoder_ffn_dim=32, projection_dim=8,
    )  # fmt: skip
    assert model.config.decoder.name_or_path == str(lm)  # what leaked before
    generator = tmp_path / "runs" / "pc2l"
    model.save_pretrained(generator)
    tokenizer.save_pretrained(generator)
    card = dataset / "README.md"
    card.write_text(
        card.read_text()
        + f"\n## Explanation classifier (s2)\n\nclassifier in `{tmp_path}/runs/phi` over CLIP "
        f"`{checkpoints['clip']}`; features from {tmp_path}/features.\n"
    )
    out = tmp_path / "export"
    argv = ["push", "--namespace", "me", "--selector", checkpoints["selector"], "--generator", str(generator),
            "--dataset", str(dataset), "--dataset_images", str(tmp_path / "images"), "--clip_model", checkpoints["clip"],
            "--base_model", str(lm),
            "--output_dir", str(out), "--dry_run"]  # fmt: skip
    assert cli_main(argv) == 0

    local = [str(tmp_path), str(Path(checkpoints["clip"]).parent)]
    texts = {}
    for path in sorted(out.rglob("*")):
        try:
            texts[path.relative_to(out)] = path.read_text(encoding="utf-8")
        except (IsADirectoryError, UnicodeDecodeError):
            continue  # folders, weights and parquet: no text
    assert Path("generator/config.json") in texts and Path("dataset/README.md") in texts
    leaks = {str(name): folder for name, text in texts.items() for folder in local if folder in text}
    assert not leaks
    # The names survive, without their folders.
    readme = texts[Path("dataset/README.md")]
    assert "classifier in `phi` over CLIP `clip`; features from features." in readme
    assert PC2LForConditionalGeneration.from_pretrained(out / "generator").config.decoder.name_or_path == ""


# -- sizes that would allocate without bound (session 26's audit) ------------------------------------------------


def test_a_huge_k_or_beam_count_is_one_line_before_any_allocation(pipeline, tmp_path):
    """`k=10**12` made the selection's (batch, k) index tensor (8 TB); `num_beams=10**8` a 51 GB cache; a saved
    generation_config.json of `num_beams: 10**9` the same with nothing on the command line."""
    photos = write_jpegs(tmp_path / "images", ["a", "b"])
    request = ShowcaseInput(candidates=photos, history_texts=["Nice."])
    with pytest.raises(InputError, match=r"k \(photos per showcase\) must be a whole number in \[1, 1000\]"):
        pipeline(request, k=10**12)
    with pytest.raises(InputError, match=r"^num_beams must be a whole number in \[1, 64\], got 100000000$"):
        pipeline(request, k=2, num_beams=10**8)
    from transformers import GenerationConfig

    saved = pipeline.generator.generation_config.num_beams
    pipeline.num_beams = None  # the generator's own generation config decides
    pipeline.generator.generation_config.num_beams = 10**9
    try:
        with pytest.raises(InputError, match="num_beams must be a whole number in"):
            pipeline(request, k=2)
        with pytest.raises(InputError, match="num_beams must be a whole number in"):  # a call's own config
            pipeline(request, k=2, generation_config=GenerationConfig(num_beams=200, max_new_tokens=3))
    finally:
        pipeline.num_beams, pipeline.generator.generation_config.num_beams = 1, saved
    assert len(pipeline(request, k=2).photos) == 2  # the bounds leave ordinary calls alone


def test_a_selector_config_with_a_huge_top_k_is_refused():
    from gest_showcases.selection import DPPSelectorConfig

    with pytest.raises(ValueError, match=r"top_k must be at most 1000"):
        DPPSelectorConfig(top_k=10**12)
    assert DPPSelectorConfig(top_k=1000).top_k == 1000
