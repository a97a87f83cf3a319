"""`ShowcasePipeline.save_pretrained` / `from_pretrained(folder or repo)` / `push_to_hub`, and the transformers task
`pipeline("personalized-showcase", model=folder)` (from a fresh process). Oracle: the showcases of the pipeline that
was saved."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import torch

from gest_showcases.errors import InputError
from gest_showcases.pipeline import ShowcasePipeline
from tiny_assets import save_tiny_clip

HISTORY = ["Great ramen! The broth was rich.", "Tiny place.\nGood dumplings"]


@pytest.fixture(scope="module")
def original(checkpoints):
    return ShowcasePipeline.from_pretrained(**checkpoints, device="cpu", max_new_tokens=5, k=2, num_beams=1)


@pytest.fixture(scope="module")
def saved(original, tmp_path_factory):
    return original.save_pretrained(tmp_path_factory.mktemp("showcase") / "saved")


def requests(photos):
    return [
        {"candidates": [str(photos[f"pic{i}"]) for i in range(6)], "history_texts": HISTORY},
        {
            "candidates": [str(photos[f"pic{i}"]) for i in (1, 3, 5, 7)],
            "history_images": [str(photos["pic0"])],
        },
    ]


def assert_same_showcases(got, expected):
    for result, oracle in zip(got, expected, strict=True):
        assert [photo.id for photo in result.photos] == [photo.id for photo in oracle.photos]
        assert result.explanation == oracle.explanation
        torch.testing.assert_close(
            torch.tensor([p.score for p in result.photos]), torch.tensor([p.score for p in oracle.photos])
        )


def test_saved_folder_loads_back_the_same_pipeline(original, saved, photos):
    config = json.loads((saved / "showcase_config.json").read_text())
    assert config == {
        "format": 1, "library": "gest-showcases", "generator": ".", "selector": "selector", "clip": "clip",
        "vision": "clip", "image_kind": "vision", "k": 2, "batch_size": 8, "num_beams": 1, "max_new_tokens": 5,
    }  # fmt: skip
    # The root is a plain generator checkpoint; each part is its own loadable checkpoint.
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {path.name for path in saved.iterdir()}
    assert (saved / "selector" / "config.json").is_file() and (saved / "clip" / "tokenizer.json").is_file()
    loaded = ShowcasePipeline.from_pretrained(saved, device="cpu")
    assert (loaded.k, loaded.num_beams, loaded.max_new_tokens, loaded.image_kind) == (2, 1, 5, "vision")
    for part in ("clip_image", "clip_text", "vision"):
        assert getattr(loaded, part).fingerprint == getattr(original, part).fingerprint
    assert_same_showcases(loaded(requests(photos)), original(requests(photos)))
    # Arguments override what the folder records.
    assert ShowcasePipeline.from_pretrained(str(saved), device="cpu", k=3, max_new_tokens=2).k == 3


def test_a_backbone_of_another_checkpoint_is_saved_in_its_own_subfolder(checkpoints, tmp_path, photos):
    vision = save_tiny_clip(tmp_path / "backbone", projection_dim=16)
    original = ShowcasePipeline.from_pretrained(**checkpoints, vision=vision, device="cpu", max_new_tokens=4)
    saved = original.save_pretrained(tmp_path / "saved")
    shutil.rmtree(vision)  # the saved folder must not need the source
    assert json.loads((saved / "showcase_config.json").read_text())["vision"] == "vision"
    loaded = ShowcasePipeline.from_pretrained(saved, device="cpu")
    assert loaded.vision.checkpoint == str(saved / "vision")
    assert loaded.vision.fingerprint == original.vision.fingerprint
    assert_same_showcases(loaded(requests(photos)), original(requests(photos)))


def test_a_cnn_stand_in_clip_is_saved_and_loaded_back(checkpoints, tmp_path, photos):
    # The stand-in CLIP with its CNN tower (`train-clip --image_tower cnn`) is a VisionTextDualEncoderModel.
    clip = save_tiny_clip(tmp_path / "cnn-clip", projection_dim=16, image_tower="cnn")
    original = ShowcasePipeline.from_pretrained(
        **checkpoints | {"clip": str(clip)}, vision=checkpoints["clip"], device="cpu", max_new_tokens=4
    )
    saved = original.save_pretrained(tmp_path / "saved")
    shutil.rmtree(clip)  # the saved folder must not need the source
    config = json.loads((saved / "clip" / "config.json").read_text())
    assert config["vision_config"]["model_type"] == "gest_conv_image_tower"
    loaded = ShowcasePipeline.from_pretrained(saved, device="cpu")
    for part in ("clip_image", "clip_text", "vision"):
        assert getattr(loaded, part).fingerprint == getattr(original, part).fingerprint
    assert_same_showcases(loaded(requests(photos)), original(requests(photos)))


def test_a_hub_repo_id_is_downloaded_with_snapshot_download(original, saved, photos, monkeypatch):
    calls = []

    def snapshot_download(repo_id, revision=None, token=None):
        calls.append((repo_id, revision, token))
        return str(saved)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    loaded = ShowcasePipeline.from_pretrained("org/showcase", revision="v1", token="hf_x", device="cpu")
    assert calls == [("org/showcase", "v1", "hf_x")]
    assert_same_showcases(loaded(requests(photos)), original(requests(photos)))


def test_push_to_hub_uploads_the_saved_folder(original, saved, monkeypatch, tmp_path):
    uploaded = tmp_path / "uploaded"
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, private=None, exist_ok=False, repo_type=None):
            calls.append(("create_repo", repo_id, private, exist_ok, repo_type))
            return SimpleNamespace(repo_id=repo_id)

        def upload_folder(self, repo_id, folder_path, repo_type=None, **kwargs):
            calls.append(("upload_folder", repo_id, repo_type))
            shutil.copytree(folder_path, uploaded)  # the temporary folder is gone after the call
            return "commit"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert original.push_to_hub("org/showcase", private=True, token="hf_x") == "commit"
    assert calls == [
        ("init", "hf_x"),
        ("create_repo", "org/showcase", True, True, "model"),
        ("upload_folder", "org/showcase", "model"),
    ]

    def files(folder: Path) -> dict[str, bytes]:
        return {
            str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()
        }

    assert files(uploaded) == files(saved)


def test_folders_that_are_no_saved_pipeline_are_refused(checkpoints, saved, tmp_path):
    with pytest.raises(InputError, match="showcase_config.json"):
        ShowcasePipeline.from_pretrained(checkpoints["generator"], device="cpu")
    with pytest.raises(TypeError, match="selector="):
        ShowcasePipeline.from_pretrained(generator=checkpoints["generator"], clip=checkpoints["clip"])
    hostile = tmp_path / "hostile"
    shutil.copytree(saved, hostile)
    config = json.loads((hostile / "showcase_config.json").read_text())
    (hostile / "showcase_config.json").write_text(json.dumps(config | {"selector": "../../elsewhere"}))
    with pytest.raises(InputError, match="must name a subfolder"):
        ShowcasePipeline.from_pretrained(hostile, device="cpu")
    (hostile / "showcase_config.json").write_text(json.dumps(config | {"format": 2}))
    with pytest.raises(InputError, match="format 2"):
        ShowcasePipeline.from_pretrained(hostile, device="cpu")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"k": 0}, "'k' must be a whole number >= 1, got 0"),
        ({"num_beams": "2"}, "'num_beams' must be a whole number >= 1, got '2'"),
        ({"max_new_tokens": True}, "'max_new_tokens' must be a whole number >= 1, got True"),
        ({"selector": "no-such-part"}, "'selector' names 'no-such-part', which is no subfolder of"),
        ({"selector": "outside"}, "'selector' names 'outside', which is no subfolder of"),
        ({"image_kind": "pixels"}, "'image_kind' must be one of"),
        ([], "is not a JSON object"),
    ],
)
def test_a_saved_config_is_checked_before_anything_loads(saved, tmp_path, monkeypatch, change, message):
    """Session 24's audit: a part missing from a folder given by a relative path was looked up on the Hub (its
    namespace the folder's name), and the saved settings were used unchecked."""
    hostile = tmp_path / "showcase"
    shutil.copytree(saved, hostile)
    (tmp_path / "elsewhere").mkdir()
    (hostile / "outside").symlink_to(tmp_path / "elsewhere")  # a link out of the folder
    config = json.loads((hostile / "showcase_config.json").read_text())
    (hostile / "showcase_config.json").write_text(json.dumps(config | change if change else change))
    monkeypatch.chdir(tmp_path)

    def no_download(*args, **kwargs):
        raise AssertionError("nothing may be downloaded")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    with pytest.raises(InputError, match=message):
        ShowcasePipeline.from_pretrained("showcase", device="cpu")


def test_saving_refuses_an_encoder_that_is_not_its_checkpoint(checkpoints, tmp_path):
    pipeline = ShowcasePipeline.from_pretrained(**checkpoints, device="cpu")
    # The encoders changed after loading: the checkpoint they name would compute other features.
    with torch.no_grad():
        pipeline.clip_image.encoder.projection.weight.add_(1.0)
    pipeline.clip_image.fingerprint = pipeline.clip_text.fingerprint = "0" * 64
    with pytest.raises(ValueError, match="is not the checkpoint it was loaded from"):
        pipeline.save_pretrained(tmp_path / "saved")


@pytest.mark.slow
def test_transformers_pipeline_factory_loads_the_saved_folder(original, saved, photos, tmp_path):
    """`pipeline("personalized-showcase", model=folder)` after `import gest_showcases`, in a fresh process."""
    script = f"""
        import json
        import gest_showcases
        from transformers import pipeline
        pipe = pipeline("personalized-showcase", model={str(saved)!r}, device="cpu", max_new_tokens=3)
        requests = {requests(photos)!r}
        out = {{
            "class": type(pipe).__name__,
            "one": pipe(requests[0]).to_dict(),
            "list": [result.to_dict() for result in pipe(requests, batch_size=2, k=3)],
            "stream": [result.to_dict() for result in pipe(iter(requests), batch_size=1)],
        }}
        print(json.dumps(out))
        """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["class"] == "ShowcaseTransformersPipeline"
    expected_short = [showcase.to_dict() for showcase in original(requests(photos), max_new_tokens=3)]
    expected_k3 = [showcase.to_dict() for showcase in original(requests(photos), max_new_tokens=3, k=3)]
    for got, expected in [(out["one"], expected_short[0]), *zip(out["stream"], expected_short, strict=True),
                          *zip(out["list"], expected_k3, strict=True)]:  # fmt: skip
        assert [p["id"] for p in got["photos"]] == [p["id"] for p in expected["photos"]]
        assert got["explanation"] == expected["explanation"]
        torch.testing.assert_close(
            torch.tensor([p["score"] for p in got["photos"]]),
            torch.tensor([p["score"] for p in expected["photos"]]),
        )
    assert [len(showcase["photos"]) for showcase in out["list"]] == [3, 3]
