"""ExplanationClassifierConfig as a `@strict` config, classifiers saved before it loading unchanged, the init pinned
and leaving loaded tensors alone, `output_hidden_states`, and the shipped code without the package."""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from huggingface_hub.errors import StrictDataclassFieldValidationError
from safetensors.torch import save_file
from transformers import AutoModel

from gest_showcases.features.modeling_explanation import ExplanationClassifier, ExplanationClassifierConfig

# config.json as `ExplanationClassifier(ExplanationClassifierConfig(text_dim=3, image_dim=3, interaction=True,
# threshold=0.4, clip_checkpoint="tiny-clip", clip_fingerprint="abc")).save_pretrained(...)` wrote it with the
# `PretrainedConfig.__init__` config (commit 15f3755, transformers 5.24).
LEGACY_CONFIG = {
    "architectures": ["ExplanationClassifier"],
    "auto_map": {
        "AutoConfig": "configuration_explanation.ExplanationClassifierConfig",
        "AutoModel": "modeling_explanation.ExplanationClassifier",
    },
    "clip_checkpoint": "tiny-clip",
    "clip_fingerprint": "abc",
    "dtype": "float32",
    "image_dim": 3,
    "interaction": True,
    "model_type": "explanation_classifier",
    "text_dim": 3,
    "threshold": 0.4,
    "transformers_version": "5.24.0",
}
# What that code computed with the weights `wave(shape, i)` (i: the key's rank in sorted order) on
# `wave((2, 3), 20)` sentences and `wave((2, 3), 21)` images.
LEGACY_LOGITS = [1.0675171613693237, -0.306893914937973]
LEGACY_PAIR_PROBABILITIES = [
    [0.7441245317459106, 0.9285867810249329],
    [0.34379833936691284, 0.42387309670448303],
]
# (sum, sum of squares) of the weight of `text_dim=6, image_dim=6, interaction=True` after `torch.manual_seed(0)`,
# by the same code: `distill`'s starting point for a seed.
SEED_0_WEIGHT = (0.021761, 0.006303)


def wave(shape, offset: float) -> torch.Tensor:
    """Fixed values without a random generator (the same on every machine and torch version)."""
    values = torch.sin(torch.arange(math.prod(shape), dtype=torch.float64) * 0.7 + offset) * 0.8
    return values.reshape(shape).float()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"text_dim": -1}, "text_dim must be a positive integer, got -1"),
        ({"image_dim": 0}, "image_dim must be a positive integer, got 0"),
        ({"text_dim": 4, "image_dim": 6, "interaction": True}, "text_dim == image_dim"),
    ],
)
def test_bad_values_are_refused_at_construction(settings, message):
    with pytest.raises(ValueError, match=message):
        ExplanationClassifierConfig(**settings)


@pytest.mark.parametrize(
    ("field", "value"),
    [("text_dim", "512"), ("interaction", "yes"), ("threshold", "0.5"), ("clip_checkpoint", 3)],
)
def test_wrong_types_are_refused_by_strict(field, value):
    with pytest.raises(StrictDataclassFieldValidationError, match=field):
        ExplanationClassifierConfig(**{field: value})


def _write_legacy_checkpoint(folder) -> dict[str, torch.Tensor]:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LEGACY_CONFIG))
    shapes = {"classifier.bias": (1,), "classifier.weight": (1, 9)}
    weights = {name: wave(shape, rank) for rank, (name, shape) in enumerate(sorted(shapes.items()))}
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return weights


def test_classifier_saved_before_loads_with_the_same_outputs(tmp_path):
    weights = _write_legacy_checkpoint(tmp_path / "legacy")
    text, image = wave((2, 3), 20), wave((2, 3), 21)
    for model in (
        ExplanationClassifier.from_pretrained(tmp_path / "legacy"),
        AutoModel.from_pretrained(tmp_path / "legacy"),
    ):
        assert isinstance(model, ExplanationClassifier)
        config = model.config
        assert (config.text_dim, config.image_dim, config.interaction, config.threshold) == (3, 3, True, 0.4)
        assert (config.clip_checkpoint, config.clip_fingerprint) == ("tiny-clip", "abc")
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, weights[name]), name  # loaded, not re-initialised
        with torch.no_grad():
            torch.testing.assert_close(model(text, image).logits, torch.tensor(LEGACY_LOGITS))
        torch.testing.assert_close(
            model.pair_probabilities(text, image), torch.tensor(LEGACY_PAIR_PROBABILITIES)
        )


def test_seeded_init_is_unchanged():
    torch.manual_seed(0)
    model = ExplanationClassifier(ExplanationClassifierConfig(text_dim=6, image_dim=6, interaction=True))
    weight = model.classifier.weight.detach().double()
    assert (float(weight.sum()), float(weight.square().sum())) == pytest.approx(SEED_0_WEIGHT, abs=1e-6)
    assert torch.equal(model.classifier.bias, torch.zeros(1))


def test_init_weights_leaves_loaded_tensors_alone():
    model = ExplanationClassifier(ExplanationClassifierConfig(text_dim=2, image_dim=2))
    loaded = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    with torch.no_grad():
        model.classifier.weight.copy_(loaded)
        model.classifier.bias.fill_(5.0)
    # What `from_pretrained` marks on the tensors it filled from the checkpoint.
    model.classifier.weight._is_hf_initialized = True
    model.classifier.bias._is_hf_initialized = True
    model._init_weights(model.classifier)
    assert torch.equal(model.classifier.weight, loaded) and model.classifier.bias.item() == 5.0


@pytest.mark.parametrize("interaction", [False, True])
def test_output_hidden_states_is_the_scored_feature_vector(interaction):
    torch.manual_seed(0)
    model = ExplanationClassifier(
        ExplanationClassifierConfig(text_dim=3, image_dim=3, interaction=interaction)
    )
    text, image = torch.randn(4, 3), torch.randn(4, 3)
    assert model(text, image).hidden_states is None  # not asked for
    output = model(text, image, output_hidden_states=True)
    expected = torch.cat([text, image, *([text * image] if interaction else [])], dim=-1)
    assert len(output.hidden_states) == 1
    torch.testing.assert_close(output.hidden_states[0], expected)
    # The single layer scores exactly that vector.
    torch.testing.assert_close(output.logits, expected @ model.classifier.weight[0] + model.classifier.bias)
    model.config.output_hidden_states = True  # the config's default answers a caller who does not say
    torch.testing.assert_close(model(text, image).hidden_states[0], expected)
    assert model(text, image, output_hidden_states=False).hidden_states is None


@pytest.mark.slow
def test_trust_remote_code_load_without_our_package(tmp_path):
    torch.manual_seed(0)
    model = ExplanationClassifier(ExplanationClassifierConfig(text_dim=3, image_dim=3, interaction=True))
    model.save_pretrained(tmp_path / "model")
    assert {"configuration_explanation.py", "modeling_explanation.py"} <= {
        p.name for p in (tmp_path / "model").iterdir()
    }
    text, image = torch.randn(4, 3), torch.randn(4, 3)
    with torch.no_grad():
        expected = model(text, image, output_hidden_states=True)
    torch.save({"text": text, "image": image, "logits": expected.logits, "features": expected.hidden_states[0]},
               tmp_path / "inputs.pt")  # fmt: skip
    script = textwrap.dedent(
        """
        import sys
        import torch
        from transformers import AutoModel

        model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
        saved = torch.load(sys.argv[2])
        with torch.no_grad():
            output = model(saved["text"], saved["image"], output_hidden_states=True)
        torch.testing.assert_close(output.logits, saved["logits"])
        torch.testing.assert_close(output.hidden_states[0], saved["features"])
        assert not any(name.startswith("gest_showcases") for name in sys.modules), "our package was imported"
        print(type(model).__module__, type(model.config).__module__)
        """
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "model"), str(tmp_path / "inputs.pt")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    model_module, config_module = result.stdout.split()
    assert model_module.startswith("transformers_modules") and config_module.startswith(
        "transformers_modules"
    )
