"""`push --evaluate_modules --dry_run` stages each module as the Space `evaluate.load("ORG/<name>")` downloads
from; every staged folder loads and computes in a fresh process with evaluate offline."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from huggingface_hub import SpaceCard
from test_evaluate_modules import TEXTS, _probabilities, _real_clip, save_tiny_classifier

from gest_showcases import __version__
from gest_showcases.data.images import open_image
from gest_showcases.features.tiny import save_tiny_clip
from gest_showcases.metrics import EVALUATE_MODULES, grounding
from gest_showcases.metrics.selection import diversity_at_k
from gest_showcases.metrics.synth_truth import SynthTruth, score_texts
from gest_showcases.metrics.text import distinct
from gest_showcases.push import PushArguments, push
from tiny_assets import CLIP_DIM, write_jpegs

MEASUREMENTS = {"distinct", "div_at_k"}
TRUTH = {
    "subjects": {
        "ramen": {"kind": "dish", "aliases": ["ramen"]},
        "gyoza": {"kind": "dish", "aliases": ["gyoza", "potstickers"]},
    },
    "pics": {
        "p1": {"subject": "ramen", "business_id": "b1"},
        "p2": {"subject": "gyoza", "business_id": "b1"},
    },
    "users": {"u1": {"favourite_dishes": ["gyoza"]}},
    "businesses": {"b1": {}},
}
FEATURES = [[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[0.5, 0.5], [1.0, -1.0], [0.0, 2.0]]]


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    out = tmp_path_factory.mktemp("push") / "export"
    push(PushArguments(namespace="me", evaluate_modules=list(EVALUATE_MODULES), dry_run=str(out)))
    return out / "evaluate"


def test_each_module_is_staged_as_a_space_folder(staged):
    for name in EVALUATE_MODULES:
        folder = staged / name
        assert {p.name for p in folder.iterdir()} == {f"{name}.py", "app.py", "requirements.txt", "README.md"}
        assert f'evaluate.load("{name}.py")' in (folder / "app.py").read_text()
        assert (folder / "requirements.txt").read_text().split() == [f"gest-showcases>={__version__}"]
        card = SpaceCard.load(folder / "README.md")
        assert card.data.sdk == "gradio" and card.data.app_file == "app.py", name
        kind = "measurement" if name in MEASUREMENTS else "metric"
        assert card.data.tags == ["evaluate", kind], name
        assert f'"me/{name}"' in card.text and "<org>" not in card.text, name  # the Space's own id


@pytest.mark.slow
def test_staged_modules_load_and_compute_in_a_fresh_offline_process(staged, tmp_path):
    clip = str(save_tiny_clip(tmp_path / "clip", projection_dim=CLIP_DIM))
    classifier = save_tiny_classifier(tmp_path / "classifier")
    photos = {k: str(v) for k, v in write_jpegs(tmp_path / "photos", ["a", "b", "c", "d"]).items()}
    images = [[photos["a"], photos["b"]], [photos["c"]], [photos["d"]]]
    calls = {
        "clip_align": (
            {"clip_model": clip, "classifier": classifier, "device": "cpu"},
            {"predictions": TEXTS, "images": images},
        ),
        "clip_score": ({"clip_model": clip, "device": "cpu"}, {"predictions": TEXTS, "images": images}),
        "distinct": ({}, {"predictions": TEXTS}),
        "div_at_k": ({}, {"selected": [[0, 2], [1]], "features": FEATURES, "k": 2}),
        "synth_grounding": (
            {},
            {
                "predictions": ["The ramen and potstickers were great."],
                "user_ids": ["u1"],
                "business_ids": ["b1"],
                "pic_ids": [["p1"]],
                "ground_truth": TRUTH,
            },
        ),
    }
    script = textwrap.dedent(
        """
        import json, sys
        import torch
        torch.set_num_threads(1)
        import evaluate
        root, calls = sys.argv[1], json.loads(sys.argv[2])
        out = {}
        for name, (load_kwargs, compute_kwargs) in calls.items():
            module = evaluate.load(f"{root}/{name}", **load_kwargs)
            out[name] = {"module_type": module.module_type, "homepage": module.homepage,
                         "result": module.compute(**compute_kwargs)}
        print(json.dumps(out))
        """
    )
    env = dict(os.environ, HF_EVALUATE_OFFLINE="1", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               HF_MODULES_CACHE=str(tmp_path / "modules"), HF_METRICS_CACHE=str(tmp_path / "metrics"))  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", script, str(staged), json.dumps(calls)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert {name: (v["module_type"], v["homepage"]) for name, v in got.items()} == {
        name: ("measurement" if name in MEASUREMENTS else "metric", "https://arxiv.org/abs/2207.00422")
        for name in EVALUATE_MODULES
    }

    # The same numbers as the package's plain functions, computed here.
    pil = [[open_image(p) for p in example] for example in images]
    model, processor = _real_clip(clip)
    expected = {
        "clip_align": grounding.clip_align(pil, TEXTS, model, processor, _probabilities(classifier)),
        "clip_score": grounding.clip_score(pil, TEXTS, model, processor),
        "distinct": distinct(TEXTS),
        "div_at_k": {
            "div@2": float(diversity_at_k(torch.tensor([[0, 2], [1, -1]]), torch.tensor(FEATURES), 2).mean())
        },
        "synth_grounding": score_texts(
            ["The ramen and potstickers were great."], ["u1"], ["b1"], [["p1"]], SynthTruth.load(TRUTH)
        ).metrics(),
    }
    for name, values in expected.items():
        assert got[name]["result"] == pytest.approx(values, abs=1e-6, nan_ok=True), name
    assert 0.0 < got["clip_align"]["result"]["clip_align"] < 1.0
