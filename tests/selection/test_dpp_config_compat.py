"""DPPSelectorConfig as a `@strict` config, selectors saved before it loading unchanged, the init pinned, and
`output_hidden_states` (the states of both MLPs)."""

import json
import math

import pytest
import torch
from huggingface_hub.errors import StrictDataclassFieldValidationError
from safetensors.torch import save_file
from transformers import AutoModel

from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig

# config.json as `DPPImageSelector(DPPSelectorConfig(text_dim=3, image_dim=4, user_hidden_sizes=[5],
# image_hidden_sizes=[5, 3], embed_dim=2, top_k=2)).save_pretrained(...)` wrote it before `initializer_range`
# went (commit 15f3755, transformers 5.24).
LEGACY_CONFIG = {
    "architectures": ["DPPImageSelector"],
    "auto_map": {
        "AutoConfig": "configuration_dpp.DPPSelectorConfig",
        "AutoModel": "modeling_dpp.DPPImageSelector",
    },
    "dtype": "float32",
    "embed_dim": 2,
    "image_dim": 4,
    "image_hidden_sizes": [5, 3],
    "initializer_range": 0.02,
    "input_mode": "img+text",
    "jitter": 1e-06,
    "max_log_quality": 5.0,
    "model_type": "dpp_image_selector",
    "similarity_eps": 0.001,
    "text_dim": 3,
    "top_k": 2,
    "transformers_version": "5.24.0",
    "user_hidden_sizes": [5],
}
LEGACY_SHAPES = {
    "image_encoder.layers.0.bias": [5],
    "image_encoder.layers.0.weight": [5, 4],
    "image_encoder.layers.1.bias": [3],
    "image_encoder.layers.1.weight": [3, 5],
    "image_encoder.layers.2.bias": [2],
    "image_encoder.layers.2.weight": [2, 3],
    "user_encoder.layers.0.bias": [5],
    "user_encoder.layers.0.weight": [5, 7],
    "user_encoder.layers.1.bias": [2],
    "user_encoder.layers.1.weight": [2, 5],
}
# What that code computed on `legacy_inputs()` with the weights `wave(shape, i)` (i: the key's rank in sorted order).
LEGACY_LOSS = 1.2965989112854004
LEGACY_LOG_QUALITY = [[3.4497580528259277, 3.54866886138916, 3.463887929916382],
                      [1.633394718170166, 2.003502368927002, 0.0]]  # fmt: skip
LEGACY_KERNEL = [
    [[992.78662109375, 1094.6380615234375, 1005.9029541015625],
     [1094.637939453125, 1209.9534912109375, 1110.2880859375],
     [1005.9029541015625, 1110.2882080078125, 1021.2426147460938]],
    [[26.253232955932617, 37.85387420654297, 0.0], [37.85387420654297, 55.03691864013672, 0.0], [0.0, 0.0, 0.0]],
]  # fmt: skip
LEGACY_PICKS = [[1, 0], [1, 0]]
# (sum, sum of squares) of each tensor of `tiny_config()`'s selector built after `torch.manual_seed(0)`, by the same
# code: the init (Kaiming for ReLU, zero biases) that the demo's and the experiments' numbers start from.
SEED_0_INIT = {
    "user_encoder.layers.0.weight": (-5.788605, 34.070717),
    "user_encoder.layers.1.weight": (10.616995, 25.321721),
    "user_encoder.layers.2.weight": (-2.267559, 8.174597),
    "image_encoder.layers.0.weight": (9.422092, 34.75821),
    "image_encoder.layers.1.weight": (-5.373275, 25.001957),
    "image_encoder.layers.2.weight": (0.398693, 7.347215),
}


def wave(shape, offset: float) -> torch.Tensor:
    """Fixed values without a random generator (the same on every machine and torch version)."""
    return (
        (torch.sin(torch.arange(math.prod(shape), dtype=torch.float64) * 0.7 + offset) * 0.8)
        .reshape(shape)
        .float()
    )


def legacy_inputs() -> dict:
    return {
        "profile_text": wave((2, 3), 10),
        "profile_image": wave((2, 4), 11),
        "candidate_features": wave((2, 3, 4), 12),
        "candidate_mask": torch.tensor([[True, True, True], [True, True, False]]),
        "target_mask": torch.tensor([[True, False, True], [False, True, False]]),
    }


def tiny_config(**overrides) -> DPPSelectorConfig:
    settings = {"text_dim": 6, "image_dim": 8, "user_hidden_sizes": [16, 12], "image_hidden_sizes": [16, 12],
                "embed_dim": 4, **overrides}  # fmt: skip
    return DPPSelectorConfig(**settings)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("text_dim", -1, "text_dim must be a positive integer, got -1"),
        ("image_dim", 0, "image_dim must be a positive integer, got 0"),
        ("embed_dim", -4, "embed_dim must be a positive integer"),
        ("top_k", 0, "top_k must be a positive integer"),
        ("user_hidden_sizes", [16, -2], r"user_hidden_sizes\[1\] must be a positive integer, got -2"),
        ("image_hidden_sizes", [0], r"image_hidden_sizes\[0\] must be a positive integer, got 0"),
        ("input_mode", "audio", "input_mode must be one of"),
    ],
)
def test_bad_values_are_refused_at_construction(field, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"), [("text_dim", "6"), ("embed_dim", 4.0), ("user_hidden_sizes", [16.5])]
)
def test_wrong_types_are_refused_by_strict(field, value):
    with pytest.raises(StrictDataclassFieldValidationError, match=field):
        tiny_config(**{field: value})


def test_selector_saved_with_initializer_range_loads_with_the_same_outputs(tmp_path):
    folder = tmp_path / "legacy"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LEGACY_CONFIG))
    weights = {name: wave(shape, rank) for rank, (name, shape) in enumerate(sorted(LEGACY_SHAPES.items()))}
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    for model in (DPPImageSelector.from_pretrained(folder), AutoModel.from_pretrained(folder)):
        assert isinstance(model, DPPImageSelector)
        model.eval()
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, weights[name]), name  # loaded, not re-initialised
        inputs = legacy_inputs()
        output = model(**inputs)
        torch.testing.assert_close(output.loss, torch.tensor(LEGACY_LOSS))
        torch.testing.assert_close(output.log_quality, torch.tensor(LEGACY_LOG_QUALITY))
        torch.testing.assert_close(output.kernel, torch.tensor(LEGACY_KERNEL))
        del inputs["target_mask"]
        assert model.select(**inputs).indices.tolist() == LEGACY_PICKS
    # The dead field is dropped on load, so it is not written back.
    assert not hasattr(model.config, "initializer_range")
    model.save_pretrained(tmp_path / "resaved")
    assert "initializer_range" not in json.loads((tmp_path / "resaved" / "config.json").read_text())


def test_seeded_init_is_unchanged():
    torch.manual_seed(0)
    model = DPPImageSelector(tiny_config())
    for name, tensor in model.state_dict().items():
        expected = SEED_0_INIT.get(name, (0.0, 0.0))  # biases start at zero
        total, squares = float(tensor.double().sum()), float(tensor.double().square().sum())
        assert (total, squares) == pytest.approx(expected, abs=1e-5), name


def _relu_mlp_states(layers, hidden: torch.Tensor) -> list[torch.Tensor]:
    """The oracle: the input, then each layer's output, ReLU after all but the last."""
    states = [hidden]
    for index, layer in enumerate(layers):
        hidden = hidden @ layer.weight.T + layer.bias
        if index < len(layers) - 1:
            hidden = hidden.clamp(min=0)
        states.append(hidden)
    return states


def _inputs(lengths=(3, 2, 4)) -> dict:
    generator = torch.Generator().manual_seed(0)
    size, num = len(lengths), max(lengths)
    return {
        "profile_text": torch.randn(size, 6, generator=generator),
        "profile_image": torch.randn(size, 8, generator=generator),
        "candidate_features": torch.randn(size, num, 8, generator=generator),
        "candidate_mask": torch.arange(num)[None] < torch.tensor(lengths)[:, None],
    }


@pytest.mark.parametrize("mode", ["img+text", "img"])
def test_output_hidden_states_are_the_states_of_both_mlps(mode):
    torch.manual_seed(0)
    model = DPPImageSelector(tiny_config(input_mode=mode)).eval()
    inputs = _inputs()
    plain = model(**inputs)
    assert plain.user_encoder_hidden_states is None and plain.image_encoder_hidden_states is None
    output = model(**inputs, output_hidden_states=True)
    profile_text = inputs["profile_text"] if mode == "img+text" else torch.zeros(3, 6)
    profile = torch.cat([profile_text, inputs["profile_image"]], dim=-1)
    expected_user = _relu_mlp_states(model.user_encoder.layers, profile)
    expected_image = _relu_mlp_states(model.image_encoder.layers, inputs["candidate_features"])
    assert len(output.user_encoder_hidden_states) == len(expected_user) == 4
    assert len(output.image_encoder_hidden_states) == len(expected_image) == 4
    for state, expected in zip(output.user_encoder_hidden_states, expected_user, strict=True):
        torch.testing.assert_close(state, expected)
    for state, expected in zip(output.image_encoder_hidden_states, expected_image, strict=True):
        torch.testing.assert_close(state, expected)
    torch.testing.assert_close(output.user_encoder_hidden_states[-1], output.user_embeds)
    torch.testing.assert_close(output.image_encoder_hidden_states[-1], output.image_embeds)
    torch.testing.assert_close(output.kernel, plain.kernel)  # asking changes nothing else
    # The config's default answers a caller who does not say.
    model.config.output_hidden_states = True
    assert len(model(**inputs).user_encoder_hidden_states) == 4
    assert model(**inputs, output_hidden_states=False).image_encoder_hidden_states is None


def test_distinct_images_give_the_same_hidden_states_on_real_candidates():
    torch.manual_seed(0)
    model = DPPImageSelector(tiny_config()).eval()
    inputs = _inputs()
    mask = inputs["candidate_mask"]
    # Every candidate's features as rows of one table; padded slots point nowhere (-1).
    image_features = inputs["candidate_features"][mask]
    index = torch.full(mask.shape, -1)
    index[mask] = torch.arange(int(mask.sum()))
    per_slot = model(**inputs, output_hidden_states=True)
    distinct = model(
        inputs["profile_text"], inputs["profile_image"], image_features=image_features,
        candidate_image_index=index, output_hidden_states=True,
    )  # fmt: skip
    for slot_state, distinct_state in zip(
        per_slot.image_encoder_hidden_states, distinct.image_encoder_hidden_states, strict=True
    ):
        torch.testing.assert_close(distinct_state[mask], slot_state[mask])
    for slot_state, distinct_state in zip(
        per_slot.user_encoder_hidden_states, distinct.user_encoder_hidden_states, strict=True
    ):
        torch.testing.assert_close(distinct_state, slot_state)
