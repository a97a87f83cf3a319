"""Hostile feature caches and images: NaN rows, flipped or cut bytes, broken manifests, an 11000x11000 PNG.

Each case must end in an error that names the file or the ids (an `InputError`, one line from the CLI) or, on
a rerun of the extraction, in the damaged part being computed again; a huge image must be skipped before its
pixels are decoded.
"""

from __future__ import annotations

import json
import logging
import re
import resource
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from gest_showcases.errors import InputError
from gest_showcases.features.cache import CorruptCacheError, FeatureCache, load_features
from gest_showcases.features.clip import extract_image_features, load_clip
from gest_showcases.features.loading import ImageBytesDataset, _decode_with_pil
from gest_showcases.features.tiny import save_tiny_clip
from gest_showcases.numerics import NonFiniteError
from tiny_assets import (
    few_threads,  # noqa: F401  (an autouse fixture: importing it applies it here)
    write_jpegs,
)

NAMES = [f"pic{i}" for i in range(6)]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return str(save_tiny_clip(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture
def images(tmp_path):
    return write_jpegs(tmp_path / "images", NAMES)


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    """A valid 11000x11000 PNG of 15 KB (1-bit, all black): 121 MP, about 0.5 GB once decoded as RGB."""
    path = tmp_path_factory.mktemp("huge") / "huge.jpg"  # named as the image folder names every file
    Image.new("1", (11000, 11000)).save(path, format="PNG")
    return path


def _write_cache(root: Path, shards: list[tuple[list[str], torch.Tensor]]) -> Path:
    cache = FeatureCache(root, "image", "ckpt", "fingerprint", normalized=True)
    for ids, embeddings in shards:
        cache.write(ids, embeddings)
    return root / "image"


def _extract(items, model, output):
    return extract_image_features(items, model, output, batch_size=2, shard_size=2, num_workers=0)


def _flip_byte(path: Path, offset_from_end: int = 5) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x40
    path.write_bytes(bytes(data))


def test_nan_and_inf_rows_are_refused_at_load_naming_the_ids(tmp_path):
    embeddings = torch.ones(10, 4)
    bad = [1, 2, 4, 5, 7, 8, 9]
    embeddings[bad[:4], 0] = float("nan")
    embeddings[bad[4:], 3] = float("inf")
    _write_cache(tmp_path, [([f"id{i}" for i in range(10)], embeddings)])
    with pytest.raises(NonFiniteError) as caught:
        load_features(tmp_path, "image")
    message = str(caught.value)
    assert isinstance(caught.value, InputError)
    assert "7 of 10" in message and "'id1', 'id2', 'id4', 'id5', 'id7' and 2 more (7 in all)" in message
    assert "id0" not in message and "re-extract" in message


def test_flipped_bytes_in_a_shard_fail_its_checksum_naming_it(tmp_path):
    directory = _write_cache(tmp_path, [(["a", "b"], torch.ones(2, 4)), (["c", "d"], torch.ones(2, 4))])
    # The last bytes are tensor data: the shard still parses, only its checksum can tell.
    _flip_byte(directory / "shard-00001.safetensors")
    with pytest.raises(CorruptCacheError, match=r"shard-00001\.safetensors: checksum mismatch"):
        load_features(tmp_path, "image")


@pytest.mark.parametrize("damage", ["flipped bytes", "truncated", "unrecorded"])
def test_a_rerun_recomputes_a_damaged_shard(tmp_path, tiny_clip, images, damage, caplog):
    model, _ = load_clip(tiny_clip)
    items = list(images.items())
    output = tmp_path / "features"
    _extract(items, model, output)
    before = load_features(output, "image")
    shard = output / "image" / "shard-00001.safetensors"
    if damage == "flipped bytes":
        _flip_byte(shard)
    elif damage == "truncated":
        shard.write_bytes(shard.read_bytes()[:40])
    else:  # the run stopped between writing the shard and recording it in the manifest
        manifest = json.loads((output / "image" / "manifest.json").read_text())
        del manifest["shards"][shard.name]
        (output / "image" / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="gest_showcases.features.cache"):
        report = _extract(items, model, output)
    assert (report.cached, report.written) == (4, 2)
    assert "shard-00001.safetensors" in caplog.text
    after = load_features(output, "image")
    got, found = after.lookup(before.ids)
    assert found.all()
    torch.testing.assert_close(got, before.embeddings)


def test_a_truncated_shard_is_an_error_naming_it(tmp_path):
    directory = _write_cache(tmp_path, [(["a", "b"], torch.ones(2, 4))])
    shard = directory / "shard-00000.safetensors"
    shard.write_bytes(shard.read_bytes()[:30])
    with pytest.raises(InputError, match=r"shard-00000\.safetensors"):
        load_features(tmp_path, "image")


OUTSIDE = (
    '{"kind": "image", "checkpoint": "ckpt", "fingerprint": "fingerprint", "normalized": true, "shards": '
)
OUTSIDE += '{"../../outside.safetensors": "0"}}'


@pytest.mark.parametrize(
    "contents", ['{"kind": "image", "checkp', "[]", '{"kind": "image"}', "\xff\xfe", OUTSIDE]
)
def test_a_truncated_or_invalid_manifest_is_an_error_naming_it(tmp_path, contents):
    directory = _write_cache(tmp_path, [(["a"], torch.ones(1, 4))])
    (directory / "manifest.json").write_bytes(contents.encode("latin-1"))
    with pytest.raises(InputError, match=r"image/manifest\.json"):
        load_features(tmp_path, "image")
    # A rerun of the extraction refuses it too, instead of overwriting a folder it can't read.
    with pytest.raises(InputError, match=r"image/manifest\.json"):
        FeatureCache(tmp_path, "image", "ckpt", "fingerprint", normalized=True)


def test_a_cache_written_without_checksums_loads_and_a_rerun_records_them(tmp_path, caplog):
    directory = _write_cache(tmp_path, [(["a", "b"], torch.ones(2, 4))])
    manifest = json.loads((directory / "manifest.json").read_text())
    recorded = manifest.pop("shards")
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="gest_showcases.features.cache"):
        assert load_features(tmp_path, "image").ids == ["a", "b"]
    assert "without shard checksums" in caplog.text
    FeatureCache(tmp_path, "image", "ckpt", "fingerprint", normalized=True)
    assert json.loads((directory / "manifest.json").read_text())["shards"] == recorded


def _peak_rss_mb() -> float:
    # ru_maxrss is in KB on Linux and in bytes on macOS.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (
        1024 if sys.platform != "darwin" else 1024**2
    )


def test_a_huge_png_is_skipped_by_feature_extraction_without_decoding_it(
    tmp_path, tiny_clip, images, huge_png
):
    model, _ = load_clip(tiny_clip)
    peak = _peak_rss_mb()
    report = extract_image_features(
        [("pic0", images["pic0"]), ("huge", huge_png)], model, tmp_path / "f", batch_size=2, num_workers=0
    )
    assert (report.written, report.failed) == (1, 1)
    assert load_features(tmp_path / "f", "image").ids == ["pic0"]
    # Decoded, it would take about 0.5 GB (more once resized): nothing near that was allocated.
    assert _peak_rss_mb() - peak < 200


def test_the_gpu_decode_path_drops_a_huge_png_before_nvjpeg_and_in_the_pil_fallback(huge_png, images):
    dataset = ImageBytesDataset([("huge", huge_png), ("pic0", images["pic0"])])
    assert dataset[0] == ("huge", None)  # never shipped to the GPU
    assert dataset[1][1] is not None
    assert (
        _decode_with_pil(torch.frombuffer(bytearray(huge_png.read_bytes()), dtype=torch.uint8), "cpu") is None
    )


def test_train_clip_skips_a_huge_png(tmp_path, images, huge_png):
    from transformers import CLIPImageProcessor

    from gest_showcases.features.clip_training import read_paired_reviews
    from gest_showcases.features.loading import ImagePreprocessing
    from tiny_assets import write_built_dataset

    image_dir = images["pic0"].parent
    (image_dir / "huge.jpg").write_bytes(huge_png.read_bytes())
    reviews = [("u1_b1", "u1", "b1", "Rich ramen. Chewy noodles.", ["pic0", "huge"], "train"),
               ("u2_b1", "u2", "b1", "Crispy fries.", ["pic1"], "train")]  # fmt: skip
    dataset = write_built_dataset(tmp_path / "dataset", image_dir, reviews)
    processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    paired = read_paired_reviews(
        dataset, "train", ImagePreprocessing.from_image_processor(processor), image_dir
    )
    assert paired.pixels.shape[0] == 2 and paired.image_review.tolist() == [0, 1]


def test_nan_features_from_the_model_are_counted_as_failed_not_cached(
    tmp_path, tiny_clip, images, monkeypatch
):
    model, _ = load_clip(tiny_clip)
    encode = type(model).encode

    def nan_for_the_second_row(self, pixels):
        embeddings = encode(self, pixels).clone()
        embeddings[1] = float("nan")  # an fp16 overflow, a broken checkpoint
        return embeddings

    monkeypatch.setattr(type(model), "encode", nan_for_the_second_row)
    report = extract_image_features(
        list(images.items())[:2], model, tmp_path / "f", batch_size=2, num_workers=0
    )
    assert (report.written, report.failed) == (1, 1)
    assert load_features(tmp_path / "f", "image").ids == ["pic0"]


def test_a_model_computing_only_nan_features_stops_the_run_naming_the_model(tmp_path, tiny_clip, images, monkeypatch):
    """Session 28's audit: a diverged CLIP made every feature NaN; `features` exited 0 with an empty cache, blaming
    340 of 340 photos as missing or unreadable."""
    model, _ = load_clip(tiny_clip)
    monkeypatch.setattr(type(model), "encode", lambda self, pixels: torch.full((len(pixels), 8), float("nan")))
    with pytest.raises(NonFiniteError, match=rf"every one of the 2 image features {re.escape(model.checkpoint)} computed is NaN"):
        extract_image_features(list(images.items())[:2], model, tmp_path / "f", batch_size=2, num_workers=0)


def test_a_rerun_recomputes_the_sentences_of_a_damaged_sentence_shard(tmp_path, tiny_clip):
    from gest_showcases.features.clip import extract_text_features

    _, text_model = load_clip(tiny_clip)
    reviews = [("r1", "Rich broth. Chewy noodles."), ("r2", "Crispy fries!")]
    extract_text_features(reviews, text_model, tmp_path / "f")
    before = load_features(tmp_path / "f", "sentence")
    _flip_byte(tmp_path / "f" / "sentence" / "shard-00000.safetensors")
    review_report, sentence_report = extract_text_features(reviews, text_model, tmp_path / "f")
    assert (review_report.cached, sentence_report.written) == (0, 3)
    after = load_features(tmp_path / "f", "sentence")
    got, found = after.lookup(before.ids)
    assert found.all()
    torch.testing.assert_close(got, before.embeddings)


def _replace_shard(directory: Path, name: str, ids: list, embeddings: torch.Tensor) -> None:
    """Write a shard as the writer lays it out, and record its checksum: only what it holds can tell."""
    import hashlib

    from safetensors.torch import save

    data = save({"embeddings": embeddings}, metadata={"ids": json.dumps(ids)})
    (directory / name).write_bytes(data)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["shards"][name] = hashlib.sha256(data).hexdigest()
    (directory / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("ids", "embeddings", "message"),
    [
        (["c", "d"], torch.ones(2, 5), r"shards hold features of different widths \[4, 5\]"),
        ([1, 2], torch.ones(2, 4), "shard-00001.safetensors holds ids that are not all strings"),
        (["c", "d"], torch.ones(2, 4, dtype=torch.int64), "shard-00001.safetensors holds torch.int64"),
    ],
    ids=["other-width", "integer-ids", "integer-embeddings"],
)
def test_a_shard_the_writer_did_not_make_is_named_even_with_a_matching_checksum(tmp_path, ids, embeddings, message):
    """Session 24's audit: such shards were a RuntimeError from torch.cat, or rows no lookup could find."""
    directory = _write_cache(tmp_path, [(["a", "b"], torch.ones(2, 4)), (["c", "d"], torch.ones(2, 4))])
    _replace_shard(directory, "shard-00001.safetensors", ids, embeddings)
    with pytest.raises(CorruptCacheError, match=message):
        load_features(tmp_path, "image")


def test_a_clip_whose_weights_do_not_fit_is_one_line_not_random_features(tmp_path, tiny_clip):
    """The architecture audit (session 27): `load_clip_model` used plain `from_pretrained`, which fills a weight the
    file lacks with random values after a warning; every feature and CLIP-Align score came from that model."""
    import shutil

    from safetensors.torch import load_file, save_file

    from gest_showcases.features.clip import load_vision_backbone

    folder = tmp_path / "clip"
    shutil.copytree(tiny_clip, folder)
    assert load_clip(str(folder))[0] is not None
    weights = load_file(folder / "model.safetensors")
    dropped = next(name for name in weights if name.startswith("vision_model."))
    save_file({k: v for k, v in weights.items() if k != dropped}, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(InputError, match=rf"^--clip_model {folder}: its weights do not fit the model \(missing: "):
        load_clip(str(folder))
    with pytest.raises(InputError, match=rf"^--vision_model {folder}: its weights do not fit the model"):
        load_vision_backbone(str(folder))
