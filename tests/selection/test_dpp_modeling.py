"""DPPImageSelector: kernel, log-likelihood against explicit determinants, input modes, selection, Auto classes."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel

from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig, greedy_map
from tiny_assets import assert_same_tuple

TEXT_DIM, IMAGE_DIM = 6, 8


def tiny_config(**overrides) -> DPPSelectorConfig:
    settings = {
        "text_dim": TEXT_DIM,
        "image_dim": IMAGE_DIM,
        "user_hidden_sizes": [16, 12],
        "image_hidden_sizes": [16, 12],
        "embed_dim": 4,
        **overrides,
    }
    return DPPSelectorConfig(**settings)


def tiny_model(**overrides) -> DPPImageSelector:
    torch.manual_seed(0)
    return DPPImageSelector(tiny_config(**overrides)).eval()


def batch(seed: int = 0, lengths=(5, 3, 7, 1)):
    generator = torch.Generator().manual_seed(seed)
    size, num = len(lengths), max(lengths)
    mask = torch.arange(num).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    target = torch.zeros(size, num, dtype=torch.bool)
    target[0, [1, 3]] = True
    target[1, 0] = True
    target[2, [0, 2, 5]] = True  # example 3 has no target
    return {
        "profile_text": torch.randn(size, TEXT_DIM, generator=generator),
        "profile_image": torch.randn(size, IMAGE_DIM, generator=generator),
        "candidate_features": torch.randn(size, num, IMAGE_DIM, generator=generator) * mask.unsqueeze(-1),
        "candidate_mask": mask,
        "target_mask": target,
    }


def pool_inputs(features: torch.Tensor, target: torch.Tensor, generator: torch.Generator) -> dict:
    """A batch of the pools `features` [B, N, IMAGE_DIM] with `target` [B, N] and random profiles."""
    batch_size = features.shape[0]
    return {
        "profile_text": torch.randn(batch_size, TEXT_DIM, generator=generator),
        "profile_image": torch.randn(batch_size, IMAGE_DIM, generator=generator),
        "candidate_features": features,
        "target_mask": target,
    }


def test_paper_default_dimensions():
    model = DPPImageSelector(DPPSelectorConfig())
    user = [(layer.in_features, layer.out_features) for layer in model.user_encoder.layers]
    image = [(layer.in_features, layer.out_features) for layer in model.image_encoder.layers]
    assert user == [(1024, 512), (512, 512), (512, 256), (256, 128)]
    assert image == [(512, 512), (512, 512), (512, 256), (256, 128)]


def test_invalid_input_mode():
    with pytest.raises(ValueError, match="input_mode"):
        tiny_config(input_mode="audio")


def test_log_likelihood_matches_explicit_determinants():
    model = tiny_model()
    inputs = batch()
    output = model(**inputs)
    for row in range(4):
        real = inputs["candidate_mask"][row]
        kernel = output.kernel[row][real][:, real].double()  # [n, n]
        targets = inputs["target_mask"][row][real]
        if not targets.any():
            assert output.log_likelihood[row].item() == 0.0
            continue
        expected = torch.logdet(kernel[targets][:, targets]) - torch.logdet(kernel + torch.eye(len(kernel)))
        torch.testing.assert_close(output.log_likelihood[row].double(), expected, rtol=1e-4, atol=1e-4)
    with_target = inputs["target_mask"].any(dim=-1)
    torch.testing.assert_close(output.loss, -output.log_likelihood[with_target].mean())


def test_kernel_is_quality_times_similarity_and_zero_on_padding():
    model = tiny_model()
    inputs = batch()
    output = model(**inputs)
    unit = torch.nn.functional.normalize(output.image_embeds, dim=-1)
    quality = output.log_quality.exp()
    similarity = unit @ unit.transpose(1, 2) + model.config.similarity_eps * torch.eye(7)
    pairs = inputs["candidate_mask"].unsqueeze(-1) & inputs["candidate_mask"].unsqueeze(-2)
    expected = (quality.unsqueeze(-1) * similarity * quality.unsqueeze(-2)) * pairs
    torch.testing.assert_close(output.kernel, expected)
    assert output.log_quality.abs().max() <= model.config.max_log_quality


def test_no_nan_on_rank_deficient_pools_and_empty_targets():
    model = tiny_model()  # embed_dim 4 < pool size 12: the Gram matrix has rank <= 4
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(2, 6, IMAGE_DIM, generator=generator).repeat(1, 2, 1)  # every image twice
    target = torch.zeros(2, 12, dtype=torch.bool)
    target[0, [0, 6]] = True  # an image and its duplicate: det(S_Y) ~ eps only
    inputs = pool_inputs(features, target, generator)
    output = model(**inputs)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())

    model.zero_grad()
    empty = model(**{**inputs, "target_mask": torch.zeros(2, 12, dtype=torch.bool)})
    assert empty.loss.item() == 0.0
    empty.loss.backward()  # connected to the graph, gradients are zero
    assert all((p.grad == 0).all() for p in model.parameters())


def test_targets_on_padding_are_rejected():
    model = tiny_model()
    inputs = batch()
    inputs["target_mask"][1, 5] = True  # example 1 has 3 real candidates
    with pytest.raises(ValueError, match="padded candidates"):
        model(**inputs)


@pytest.mark.parametrize(
    ("mode", "ignored", "used"),
    [("img", "profile_text", "profile_image"), ("text", "profile_image", "profile_text")],
)
def test_single_modality_modes_ignore_the_other_half(mode, ignored, used):
    model = tiny_model(input_mode=mode)
    inputs = batch()
    reference = model(**inputs).log_quality
    torch.testing.assert_close(model(**{**inputs, ignored: None}).log_quality, reference)
    torch.testing.assert_close(
        model(**{**inputs, ignored: torch.randn_like(inputs[ignored])}).log_quality, reference
    )
    assert not torch.allclose(
        model(**{**inputs, used: torch.randn_like(inputs[used])}).log_quality, reference
    )
    with pytest.raises(ValueError, match=f"needs {used}"):
        model(**{**inputs, used: None})


def test_img_text_mode_uses_both_halves():
    model = tiny_model(input_mode="img+text")
    inputs = batch()
    reference = model(**inputs).log_quality
    for name in ("profile_text", "profile_image"):
        assert not torch.allclose(
            model(**{**inputs, name: torch.randn_like(inputs[name])}).log_quality, reference
        )
        with pytest.raises(ValueError, match=f"needs {name}"):
            model(**{**inputs, name: None})


def test_select_is_greedy_map_of_the_kernel_with_ids():
    model = tiny_model()
    inputs = batch()
    del inputs["target_mask"]
    ids = [[f"pic{row}_{i}" for i in range(length)] for row, length in enumerate((5, 3, 7, 1))]
    selection = model.select(**inputs, candidate_ids=ids)
    kernel = model(**inputs).kernel.double()
    expected = greedy_map(kernel, 3, mask=inputs["candidate_mask"])
    assert torch.equal(selection.indices, expected.indices)
    assert selection.indices.shape == (4, 3)
    assert selection.counts.tolist() == [3, 3, 3, 1]  # the last pool has one image
    assert selection.ids == [
        [ids[row][i] for i in picks if i >= 0] for row, picks in enumerate(selection.indices.tolist())
    ]
    assert model.select(**inputs, k=5).indices.shape == (4, 5)
    # The relevances of the same forward pass come back with the picks (the pipeline's photo scores).
    torch.testing.assert_close(selection.log_quality, model(**inputs).log_quality)


def test_return_dict_false_gives_a_tuple_and_select_still_works():
    """Session 26's audit: `return_dict=False` was a TypeError (unexpected keyword). Oracle: `to_tuple()`."""
    model = tiny_model()
    inputs = batch()
    pools = {key: value for key, value in inputs.items() if key != "target_mask"}
    expected = model(**inputs).to_tuple()
    picks = model.select(**pools).indices
    as_tuple = model(**inputs, return_dict=False)
    model.config.return_dict = False
    from_config = model(**inputs)
    for output in (as_tuple, from_config):
        assert_same_tuple(output, expected)
    assert torch.equal(model.select(**pools).indices, picks)  # select reads the output by name whatever the config



def test_auto_class_round_trip(tmp_path):
    model = tiny_model(input_mode="text")
    model.save_pretrained(tmp_path)
    saved = {path.name for path in tmp_path.iterdir()}
    assert {"configuration_dpp.py", "modeling_dpp.py", "greedy.py", "config.json"} <= saved
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_dpp.DPPSelectorConfig",
        "AutoModel": "modeling_dpp.DPPImageSelector",
    }
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, DPPSelectorConfig) and config.input_mode == "text"
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, DPPImageSelector)
    inputs = batch()
    torch.testing.assert_close(loaded(**inputs).loss, model(**inputs).loss)


@pytest.mark.slow
def test_trust_remote_code_load_without_our_package(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "model")
    inputs = batch()
    expected = model.select(**{k: v for k, v in inputs.items() if k != "target_mask"}).indices
    torch.save({"inputs": inputs, "loss": model(**inputs).loss, "indices": expected}, tmp_path / "inputs.pt")
    script = textwrap.dedent(
        """
        import sys
        import torch
        from transformers import AutoModel

        model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
        saved = torch.load(sys.argv[2])
        inputs = saved["inputs"]
        torch.testing.assert_close(model(**inputs).loss, saved["loss"])
        del inputs["target_mask"]
        assert torch.equal(model.select(**inputs).indices, saved["indices"])
        assert not any(name.startswith("gest_showcases") for name in sys.modules), "our package was imported"
        print(type(model).__module__)
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
    assert result.stdout.strip().startswith("transformers_modules")


def test_history_prior_adds_its_weight_times_the_cosine_to_the_score_before_the_clamp():
    plain, prior = tiny_model(), tiny_model(history_prior=2.5)
    assert not hasattr(plain, "history_prior_weight")  # the paper's model is unchanged: no extra parameter
    assert set(prior.state_dict()) == set(plain.state_dict()) | {"history_prior_weight"}
    prior.load_state_dict(plain.state_dict() | {"history_prior_weight": torch.tensor(2.5)})
    inputs = batch()
    bound = prior.config.max_log_quality
    # The oracle: the paper's score, recovered from the plain model's clamped log relevance, plus a * cos.
    score = bound * torch.atanh(plain(**inputs).log_quality / bound)
    cosine = torch.nn.functional.cosine_similarity(
        inputs["profile_image"].unsqueeze(1), inputs["candidate_features"], dim=-1
    )
    expected = (bound * torch.tanh((score + 2.5 * cosine) / bound)) * inputs["candidate_mask"]
    torch.testing.assert_close(prior(**inputs).log_quality, expected, rtol=1e-4, atol=1e-4)
    # A user without history photos (a zero profile) gets no prior.
    no_history = inputs | {"profile_image": torch.zeros_like(inputs["profile_image"])}
    torch.testing.assert_close(
        prior(**no_history).log_quality, plain(**no_history).log_quality, rtol=1e-5, atol=1e-6
    )


def test_history_prior_weight_is_learnt_saved_and_refused_without_the_image_profile(tmp_path):
    model = tiny_model(history_prior=1.0).train()
    model(**batch()).loss.backward()
    assert model.history_prior_weight.grad is not None and model.history_prior_weight.grad != 0
    with torch.no_grad():
        model.history_prior_weight.fill_(3.25)  # as after training
    model.save_pretrained(tmp_path)
    loaded = DPPImageSelector.from_pretrained(tmp_path)
    assert loaded.config.history_prior == 1.0 and loaded.history_prior_weight.item() == 3.25
    torch.testing.assert_close(loaded.eval()(**batch()).log_quality, model.eval()(**batch()).log_quality)
    with pytest.raises(ValueError, match="history_prior reads the user's image profile"):
        tiny_config(input_mode="text", history_prior=1.0)


def test_mixed_precision_keeps_the_dpp_in_float32_and_near_duplicate_targets_finite():
    """Under bf16 autocast (an `accelerate launch --mixed_precision bf16` run) the similarity product rounded by ~4e-3
    near 1, more than `similarity_eps`: a near-duplicate pair of target photos made the Cholesky factorisation fail.
    Oracle: the same model without autocast."""
    model = tiny_model()
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(2, 6, IMAGE_DIM, generator=generator)
    features[:, 1] = features[:, 0] + 1e-3 * torch.randn(2, IMAGE_DIM, generator=generator)  # near duplicates
    target = torch.zeros(2, 6, dtype=torch.bool)
    target[:, [0, 1]] = True
    inputs = pool_inputs(features, target, generator)
    expected = model(**inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(**inputs)
    assert output.kernel.dtype == output.loss.dtype == torch.float32
    assert torch.isfinite(output.loss)
    # The MLPs still run in bf16 under autocast; only the DPP is float32.
    torch.testing.assert_close(output.loss, expected.loss, rtol=0.05, atol=0.05)
