"""The world stages the demo and the experiment share: the separate world the stand-in CLIP also trains on."""

import dataclasses
import json

from gest_showcases.commands.demo import world_stages
from gest_showcases.commands.train_clip import METRICS_FILE
from gest_showcases.experiments.world import QUICK, DemoSize
from tiny_assets import few_threads  # noqa: F401  (an autouse fixture: importing it applies it here)


def _argv(stages, key):
    return next(call_args[0] for name, _, _, call_args in stages if name == key)


def test_the_demo_trains_its_clip_on_a_separate_world_too(tmp_path):
    stages = world_stages(tmp_path, DemoSize(), seed=4, threads=1)
    keys = [key for key, *_ in stages]
    assert keys[:5] == ["synth", "build", "clip-world-synth", "clip-world-build", "train-clip"]
    synth_argv = _argv(stages, "clip-world-synth")
    # Another seed than the world's (other users, businesses and photos), DemoSize's size.
    assert synth_argv[synth_argv.index("--seed") + 1] == "5"
    assert synth_argv[synth_argv.index("--num_reviews") + 1] == str(DemoSize().clip_extra_reviews)
    clip_argv = _argv(stages, "train-clip")
    built = _argv(stages, "clip-world-build")
    assert clip_argv[clip_argv.index("--extra_dataset") + 1] == built[built.index("--output_dir") + 1]
    # `--quick` and an experiment without --clip_extra_reviews: the world alone, as before.
    for size in (QUICK, DemoSize(clip_extra_reviews=0)):
        stages = world_stages(tmp_path, size, seed=4, threads=1)
        assert not any(key.startswith("clip-world") for key, *_ in stages)
        assert "--extra_dataset" not in _argv(stages, "train-clip")


def test_the_separate_world_reaches_the_clips_training(tmp_path):
    # A tiny run of the first stages, with and without the separate world: the CLIP trains on both worlds' photos.
    size = dataclasses.replace(QUICK, num_reviews=120)
    trained = {}
    for name, extra in (("alone", 0), ("joined", 40)):
        stages = world_stages(
            tmp_path / name, dataclasses.replace(size, clip_extra_reviews=extra), seed=0, threads=1
        )
        for key, _, function, call_args in stages:
            if key == "features":
                break
            assert function(*call_args) in (0, None)
        trained[name] = json.loads((tmp_path / name / "clip" / METRICS_FILE).read_text())
    other_world_photos = sum(1 for _ in (tmp_path / "joined" / "clip-world" / "synth" / "images").glob("*"))
    assert (
        trained["alone"]["train_images"]
        < trained["joined"]["train_images"]
        < (trained["alone"]["train_images"] + other_world_photos + 1)
    )
    # Validation is the world's own.
    assert trained["joined"]["validation_reviews"] == trained["alone"]["validation_reviews"]


def test_the_demos_features_stage_drops_features_of_another_clip(tmp_path, monkeypatch):
    """Session 28's resume audit: a demo rerun into the same folder retrains its CLIP; where that came out different
    (another --num_threads) the cache refused the new CLIP's features beside the previous one's, at every rerun."""
    import torch

    from gest_showcases.commands import demo
    from gest_showcases.features.cache import FeatureCache
    from gest_showcases.features.clip import load_clip
    from gest_showcases.features.tiny import save_tiny_clip

    clip = save_tiny_clip(tmp_path / "clip")
    fingerprint = load_clip(str(clip))[0].fingerprint
    monkeypatch.setattr(demo.extract, "main", lambda argv: 0)
    for written_by, kept in ((fingerprint, True), ("0" * 64, False)):
        features = tmp_path / f"features-{kept}"
        FeatureCache(features, "image", str(clip), written_by, normalized=True).write(["p1"], torch.ones(1, 4))
        assert demo.features_of_the_new_clip(clip, features, []) == 0
        assert features.exists() == kept
