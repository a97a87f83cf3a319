"""Cache keys, resume after interruption, refusal of another checkpoint's cache, corrupt images."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from gest_showcases import files
from gest_showcases.features.cache import CacheMismatchError, CorruptCacheError, FeatureCache, load_features
from gest_showcases.features.clip import (
    extract_image_features,
    extract_text_features,
    load_clip,
    load_vision_backbone,
)
from gest_showcases.features.inputs import image_items, read_config_rows
from gest_showcases.features.loading import ImagePreprocessing


def _items(image_dir, names):
    return [(name, image_dir / f"{name}.jpg") for name in names]


def test_cache_keys_and_embeddings_match_direct_forward(tmp_path, tiny_clip, image_dir):
    image_model, _ = load_clip(tiny_clip)
    names = [f"pic{i}" for i in range(8)]
    report = extract_image_features(
        _items(image_dir, names), image_model, tmp_path / "f", batch_size=3, num_workers=0
    )
    assert (report.total, report.written, report.failed) == (8, 8, 0)
    table = load_features(tmp_path / "f", "image")
    assert sorted(table.ids) == sorted(names)
    manifest = json.loads((tmp_path / "f" / "image" / "manifest.json").read_text())
    assert manifest["checkpoint"] == tiny_clip and manifest["fingerprint"] == image_model.fingerprint
    # Oracle: CLIPModel's own image features on the processor's pixels.
    from PIL import Image
    from transformers import AutoImageProcessor, CLIPModel

    model = CLIPModel.from_pretrained(tiny_clip).eval()
    processor = AutoImageProcessor.from_pretrained(tiny_clip)
    pixels = processor(images=[Image.open(image_dir / f"{n}.jpg") for n in names], return_tensors="pt")[
        "pixel_values"
    ]
    with torch.no_grad():
        expected = torch.nn.functional.normalize(
            model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output), dim=-1
        )
    got, found = table.lookup(names + ["nope"])
    assert found.tolist() == [True] * 8 + [False]
    torch.testing.assert_close(got[:8], expected, atol=1e-5, rtol=1e-4)
    assert torch.all(got[8] == 0)


def test_preprocessing_matches_image_processor(tiny_clip, image_dir):
    from PIL import Image
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(tiny_clip)
    prep = ImagePreprocessing.from_image_processor(processor)
    for i in range(8):
        image = Image.open(image_dir / f"pic{i}.jpg")
        ours = prep.normalize(prep.pil_to_uint8(image)[None])
        theirs = processor(images=image, return_tensors="pt")["pixel_values"]
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_corrupt_and_missing_images_are_skipped_and_counted(tmp_path, tiny_clip, image_dir):
    image_model, _ = load_clip(tiny_clip)
    items = _items(image_dir, ["pic0", "corrupt", "pic1", "missing"])
    report = extract_image_features(items, image_model, tmp_path / "f", batch_size=2, num_workers=1)
    assert (report.written, report.failed) == (2, 2)
    assert sorted(load_features(tmp_path / "f", "image").ids) == ["pic0", "pic1"]


def test_resume_after_interruption(tmp_path, tiny_clip, image_dir, monkeypatch):
    image_model, _ = load_clip(tiny_clip)
    items = _items(image_dir, [f"pic{i}" for i in range(8)])
    full = load_features(_run(extract_image_features, items, image_model, tmp_path / "full"), "image")

    calls = []
    encode = type(image_model).encode

    def crash_on_third(self, pixels):
        calls.append(len(pixels))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return encode(self, pixels)

    monkeypatch.setattr(type(image_model), "encode", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        extract_image_features(items, image_model, tmp_path / "f", batch_size=2, shard_size=2, num_workers=0)
    # A shard half-written when the process died is a temporary file, never read as done; the rerun removes it.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / "f" / "image" / f".shard-00002.safetensors.{files._WRITER_TAG}-{int(dead.stdout)}-0.tmp"
    leftover.write_bytes(b"garbage")
    never_rewritten = leftover.with_name(f".shard-09999.safetensors.{files._WRITER_TAG}-{int(dead.stdout)}-0.tmp")
    never_rewritten.write_bytes(b"garbage")  # removed when the cache opens, not only when its shard is written
    # The stopped run's 4 of 8 features are not the dataset's (session 26's audit: train-selector and train-pc2l
    # read them and silently dropped the other photos from every example).
    with pytest.raises(CorruptCacheError, match="stopped before it finished; rerun it with the same --output_dir"):
        load_features(tmp_path / "f", "image")
    monkeypatch.setattr(type(image_model), "encode", encode)
    calls.clear()
    report = extract_image_features(
        items, image_model, tmp_path / "f", batch_size=2, shard_size=2, num_workers=0
    )
    assert (report.cached, report.written) == (4, 4)
    resumed = load_features(tmp_path / "f", "image")
    assert not list((tmp_path / "f" / "image").glob(".*tmp*"))
    got, found = resumed.lookup(full.ids)
    assert found.all()
    torch.testing.assert_close(got, full.embeddings)
    # Nothing left to do: a third run computes nothing.
    again = extract_image_features(items, image_model, tmp_path / "f", batch_size=2, num_workers=0)
    assert (again.cached, again.written) == (8, 0)


def _run(extract, items, model, output):
    extract(items, model, output, batch_size=4, num_workers=0)
    return output


def test_cache_from_another_checkpoint_is_refused(tmp_path, tiny_clip, other_tiny_clip, image_dir):
    first, _ = load_clip(tiny_clip)
    second, _ = load_clip(other_tiny_clip)
    items = _items(image_dir, ["pic0"])
    extract_image_features(items, first, tmp_path / "f", num_workers=0)
    with pytest.raises(CacheMismatchError, match="other-clip|tiny-clip"):
        extract_image_features(items, second, tmp_path / "f", num_workers=0)
    # The same weights loaded in another precision are the same checkpoint.
    same_in_bf16, _ = load_clip(tiny_clip, dtype=torch.bfloat16)
    assert same_in_bf16.fingerprint == first.fingerprint


def test_a_cache_resumed_in_another_precision_is_refused(tmp_path, tiny_clip, image_dir):
    # The fingerprint leaves the precision out, so the manifest records it: a float32 folder resumed in bf16 (a run
    # started on a CPU, finished on a GPU with `--dtype auto`) would otherwise mix the two in one kind.
    fp32, text_fp32 = load_clip(tiny_clip)
    bf16, text_bf16 = load_clip(tiny_clip, dtype=torch.bfloat16)
    extract_image_features(_items(image_dir, ["pic0"]), fp32, tmp_path / "f", num_workers=0)
    extract_text_features([("r0", "Good soup.")], text_fp32, tmp_path / "f")
    assert {kind: load_features(tmp_path / "f", kind).dtype for kind in ("image", "review", "sentence")} == {
        "image": "float32", "review": "float32", "sentence": "float32",
    }  # fmt: skip
    before = (tmp_path / "f" / "image" / "manifest.json").read_bytes()
    with pytest.raises(CacheMismatchError, match="computed in float32, not bfloat16: pass --dtype float32"):
        extract_image_features(_items(image_dir, ["pic0", "pic1"]), bf16, tmp_path / "f", num_workers=0)
    with pytest.raises(CacheMismatchError, match="'review' features computed in float32, not bfloat16"):
        extract_text_features([("r1", "Cold tea.")], text_bf16, tmp_path / "f")
    assert (tmp_path / "f" / "image" / "manifest.json").read_bytes() == before  # nothing written
    assert load_features(tmp_path / "f", "image").ids == ["pic0"]
    # The same precision resumes.
    extract_image_features(_items(image_dir, ["pic0", "pic1"]), fp32, tmp_path / "f", num_workers=0)
    assert load_features(tmp_path / "f", "image").ids == ["pic0", "pic1"]


def test_folders_written_before_precisions_were_recorded_still_resume(tmp_path, tiny_clip, image_dir):
    bf16, _ = load_clip(tiny_clip, dtype=torch.bfloat16)
    extract_image_features(_items(image_dir, ["pic0"]), bf16, tmp_path / "f", num_workers=0)
    manifest_path = tmp_path / "f" / "image" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["dtype"]
    manifest_path.write_text(json.dumps(manifest))
    assert load_features(tmp_path / "f", "image").dtype is None
    extract_image_features(_items(image_dir, ["pic0", "pic1"]), bf16, tmp_path / "f", num_workers=0)
    # Its older rows' precision is unknown: the manifest does not start vouching for them.
    assert "dtype" not in json.loads(manifest_path.read_text())
    assert load_features(tmp_path / "f", "image").ids == ["pic0", "pic1"]
    manifest["dtype"] = "int8"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptCacheError, match="is not a feature cache manifest"):
        load_features(tmp_path / "f", "image")


def test_feature_cache_validates_kind_and_rows(tmp_path):
    with pytest.raises(ValueError, match="unknown feature kind"):
        FeatureCache(tmp_path, "audio", "x", "y", True)
    cache = FeatureCache(tmp_path, "image", "x", "y", True)
    with pytest.raises(ValueError, match="2 ids for 3"):
        cache.write(["a", "b"], torch.zeros(3, 4))


def test_vision_backbone_features(tmp_path, tiny_clip, image_dir):
    backbone = load_vision_backbone(tiny_clip)
    extract_image_features(
        _items(image_dir, ["pic0", "pic1"]), backbone, tmp_path / "f", kind="vision", num_workers=0
    )
    table = load_features(tmp_path / "f", "vision")
    assert table.embeddings.shape == (2, 32) and not table.normalized  # hidden size, unprojected


def test_dataset_items_cover_every_image(built_dataset, image_dir):
    rows = read_config_rows(built_dataset, "s1")
    items = dict(image_items(built_dataset, rows, image_dir))
    assert sorted(items) == sorted(f"pic{i}" for i in range(8))
    assert all(path.resolve() == (image_dir / f"{key}.jpg").resolve() for key, path in items.items())


def test_device_resize_path_agrees_with_pil(image_dir):
    """The GPU path's resize/crop (run here on CPU tensors) stays within a few grey levels of PIL's."""
    import numpy as np
    from PIL import Image

    prep = ImagePreprocessing(
        shortest_edge=24, size=None, crop=(24, 24), mean=(0.5,) * 3, std=(0.5,) * 3, resample=3
    )
    images = [Image.open(image_dir / f"pic{i}.jpg").convert("RGB") for i in (0, 1, 2, 0)]
    decoded = [torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1) for image in images]
    on_device = prep.resize_on_device(decoded)
    with_pil = torch.stack([prep.pil_to_uint8(image) for image in images])
    assert on_device.shape == with_pil.shape == (4, 3, 24, 24) and on_device.dtype == torch.uint8
    assert (on_device.float() - with_pil.float()).abs().mean() < 4.0
    assert on_device[0].equal(on_device[3])  # same-size images are resized together, consistently


def test_gpu_decode_plumbing_with_a_cpu_decoder(image_dir, monkeypatch):
    """The raw-bytes path (workers read bytes, one tensor per batch, decoded where the model runs),
    with nvJPEG replaced by PIL so it runs without torchvision or a GPU."""
    from gest_showcases.features import loading

    monkeypatch.setattr(
        loading,
        "decode_on_device",
        lambda encoded, device: [loading._decode_with_pil(d, device) for d in encoded],
    )
    prep = ImagePreprocessing(
        shortest_edge=24, size=None, crop=(24, 24), mean=(0.5,) * 3, std=(0.5,) * 3, resample=3
    )
    items = _items(image_dir, ["pic0", "corrupt", "missing", "pic1", "pic2"])
    batches = list(
        loading.iterate_pixel_batches(
            items, prep, torch.device("cpu"), batch_size=3, num_workers=1, decode_on_gpu=True
        )
    )
    assert [b.ids for b in batches] == [["pic0"], ["pic1", "pic2"]]
    assert [sorted(b.failed) for b in batches] == [["corrupt", "missing"], []]
    reference = list(
        loading.iterate_pixel_batches(items, prep, torch.device("cpu"), batch_size=3, num_workers=0)
    )
    assert (batches[1].pixels.float() - reference[1].pixels.float()).abs().mean() < 4.0


def test_text_features_of_a_stopped_run_are_refused_until_it_finishes(tmp_path, tiny_clip, monkeypatch):
    _, text_model = load_clip(tiny_clip)
    reviews = [(f"r{i}", f"Soup number {i}. Good.") for i in range(6)]
    encode = type(text_model).encode_reviews
    calls = []

    def crash_on_second(self, texts, batch_size):
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return encode(self, texts, batch_size)

    monkeypatch.setattr(type(text_model), "encode_reviews", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        extract_text_features(reviews, text_model, tmp_path / "f", shard_size=3)
    for kind in ("review", "sentence"):
        with pytest.raises(CorruptCacheError, match="stopped before it finished"):
            load_features(tmp_path / "f", kind)
    monkeypatch.setattr(type(text_model), "encode_reviews", encode)
    report, _ = extract_text_features(reviews, text_model, tmp_path / "f", shard_size=3)
    assert (report.cached, report.written) == (3, 3)
    assert len(load_features(tmp_path / "f", "review")) == 6 and len(load_features(tmp_path / "f", "sentence")) == 12


def test_a_run_killed_after_its_last_shard_is_finished_by_a_rerun_with_nothing_to_compute(
    tmp_path, tiny_clip, image_dir, monkeypatch
):
    """Session 26's review: killed between its last shard and recording that it finished, a run left the flag unset
    for good, since the rerun found nothing pending and returned before recording anything."""
    image_model, _ = load_clip(tiny_clip)
    items = _items(image_dir, ["pic0", "pic1"])

    def killed(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(FeatureCache, "finish_run", killed)
    with pytest.raises(KeyboardInterrupt):
        extract_image_features(items, image_model, tmp_path / "f", num_workers=0)
    monkeypatch.undo()
    with pytest.raises(CorruptCacheError, match="stopped before it finished"):
        load_features(tmp_path / "f", "image")
    report = extract_image_features(items, image_model, tmp_path / "f", num_workers=0)
    assert (report.cached, report.written) == (2, 0)
    assert len(load_features(tmp_path / "f", "image")) == 2
