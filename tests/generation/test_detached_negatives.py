"""`hard_negative_gradients="detached"` (issue 18): CCL's hard negatives run through the decoder without gradients.

A deviation from the paper, never the default. Oracle: the `"full"` model (the paper's, the same weights), whose
loss is recomputed from its outputs with `negative_embeds.detach()`: the detached model's loss must equal the
`"full"` loss (1e-6) and its gradients the oracle's (1e-5), on GPT-2 and on a gated decoder (a tiny Llama, its
gates open), with either `contrastive_target`. The negatives' pass must be a call of its own under `no_grad`, which
autograd keeps nothing of.
"""

import json

import pytest
import torch
from pc2l_fixtures import synthetic_examples, tiny_config
from test_pc2l_any_decoder import gated_model

from gest_showcases.commands import train_pc2l
from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.generation.collator import PC2LCollator
from gest_showcases.generation.losses import total_loss
from gest_showcases.generation.training_run import config_kwargs

KINDS = ("gpt2", "gated")


def ccl_pcl_model(tokenizer, kind: str, **overrides) -> PC2LForConditionalGeneration:
    """PC2L (CCL + PCL) in eval mode (dropout off: the two modes see the same network)."""
    if kind == "gated":
        return gated_model(tokenizer, open_gates=True, **overrides).eval()
    torch.manual_seed(0)
    return PC2LForConditionalGeneration(tiny_config(tokenizer, **overrides)).eval()


def negatives_batch(tokenizer) -> dict:
    """Four examples with padded targets and hard negatives, 1-5 images and 0-4 reviews."""
    return dict(PC2LCollator(tokenizer, with_negatives=True)(synthetic_examples(4, seed=1)))


def _step(model, batch, mode: str, detach_negative_embeds: bool = False):
    """Loss, negative embeddings and every parameter's gradient (None: none) of one forward + backward in `mode`;
    `detach_negative_embeds` recomputes the loss with the outputs' `negative_embeds` detached (the oracle)."""
    model.config.hard_negative_gradients = mode
    model.zero_grad(set_to_none=True)
    outputs = model(**batch)
    if detach_negative_embeds:
        outputs.negative_embeds = outputs.negative_embeds.detach()
    loss, _ = total_loss(model.config, outputs, batch)
    loss.backward()
    gradients = {name: parameter.grad for name, parameter in model.named_parameters()}
    return loss.detach(), outputs.negative_embeds.detach(), gradients


def _embedding_calls(model, batch) -> list[tuple[torch.Tensor, bool]]:
    """The token ids of every decoder call of one forward, each with whether gradients were on."""
    calls = []
    embeddings = model.get_input_embeddings()
    hook = embeddings.register_forward_hook(lambda module, args, out: calls.append((args[0], out.requires_grad)))
    try:
        model(**batch)
    finally:
        hook.remove()
    return calls


def _saved_for_backward(model, batch) -> int:
    """How many elements autograd saves for backward in one forward."""
    numel = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: numel.append(t.numel()) or t, lambda t: t):
        model(**batch)
    return sum(numel)


@pytest.mark.parametrize("target", ["decoder", "text"])
@pytest.mark.parametrize("kind", KINDS)
def test_detached_loss_is_the_full_loss_and_its_gradients_the_oracles(tokenizer, kind, target):
    model = ccl_pcl_model(tokenizer, kind, contrastive_target=target)
    batch = negatives_batch(tokenizer)
    full_loss, full_negatives, full_gradients = _step(model, batch, "full")
    oracle_loss, _, oracle_gradients = _step(model, batch, "full", detach_negative_embeds=True)
    loss, negatives, gradients = _step(model, batch, "detached")
    torch.testing.assert_close(loss, full_loss, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(negatives, full_negatives, atol=1e-6, rtol=1e-6)
    assert not negatives.requires_grad and model(**batch).negative_embeds.grad_fn is None
    assert gradients.keys() == oracle_gradients.keys()
    for name, oracle in oracle_gradients.items():
        if oracle is None:
            assert gradients[name] is None, name
        else:
            torch.testing.assert_close(gradients[name], oracle, atol=1e-5, rtol=1e-5, msg=name)
    # The deviation is real: the paper's gradients (through the negatives) differ from it.
    differing = [
        name
        for name, gradient in full_gradients.items()
        if gradient is not None and not torch.allclose(gradient, oracle_gradients[name], atol=1e-5, rtol=1e-5)
    ]
    assert "target_head.fc2.weight" in differing
    assert any(name.startswith("decoder.") for name in differing)


@pytest.mark.parametrize("kind", KINDS)
def test_the_negatives_run_in_a_call_of_their_own_that_autograd_keeps_nothing_of(tokenizer, kind):
    """The negatives leave the batched call (its rows: the targets only) for one without gradients, and the step
    saves less for backward than the full one."""
    model = ccl_pcl_model(tokenizer, kind)
    batch = negatives_batch(tokenizer)
    model.config.hard_negative_gradients = "detached"
    calls = _embedding_calls(model, batch)
    assert len(calls) == 2
    (target_ids, target_grad), (negative_ids, negative_grad) = calls
    assert torch.equal(target_ids, batch["input_ids"]) and target_grad
    assert torch.equal(negative_ids, batch["negative_input_ids"]) and not negative_grad

    saved = {}
    for mode in ("full", "detached"):
        model.config.hard_negative_gradients = mode
        saved[mode] = _saved_for_backward(model, batch)
    assert saved["detached"] < saved["full"]


def test_detached_ignores_prefix_sharing(tokenizer):
    """GPT-2 with `_negative_prefix_sharing` on: a detached negative runs in full (no suffix pass, no cache)."""
    model = ccl_pcl_model(tokenizer, "gpt2", hard_negative_gradients="detached")
    model._negative_prefix_sharing = True
    batch = negatives_batch(tokenizer)
    calls = _embedding_calls(model, batch)
    assert [ids.shape for ids, _ in calls] == [batch["input_ids"].shape] * 2
    assert torch.equal(calls[1][0], batch["negative_input_ids"]) and not calls[1][1]
    loss, _, _ = _step(model, batch, "detached")
    model._negative_prefix_sharing = False
    full_loss, _, _ = _step(model, batch, "full")
    torch.testing.assert_close(loss, full_loss, atol=1e-6, rtol=1e-6)


def test_the_default_is_the_papers_and_old_configs_load_as_it(tokenizer, tmp_path):
    assert PC2LConfig().hard_negative_gradients == "full"
    model = ccl_pcl_model(tokenizer, "gpt2")
    assert model.config.hard_negative_gradients == "full"
    model.save_pretrained(tmp_path)
    # A checkpoint saved before the field existed: its config.json lacks it.
    path = tmp_path / "config.json"
    saved = json.loads(path.read_text())
    saved.pop("hard_negative_gradients", None)
    path.write_text(json.dumps(saved))
    loaded = PC2LForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.config.hard_negative_gradients == "full"
    negative_grad = [grad for _, grad in _embedding_calls(loaded.eval(), negatives_batch(tokenizer))]
    assert negative_grad == [True]  # one batched call over targets and negatives, with gradients


def test_a_saved_detached_model_trains_detached_after_loading(tokenizer, tmp_path):
    model = ccl_pcl_model(tokenizer, "gpt2", hard_negative_gradients="detached")
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["hard_negative_gradients"] == "detached"
    loaded = PC2LForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.hard_negative_gradients == "detached"
    assert [grad for _, grad in _embedding_calls(loaded, negatives_batch(tokenizer))] == [True, False]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hard_negative_gradients": "none"}, "hard_negative_gradients must be one of"),
        ({"hard_negative_gradients": "detached", "contrastive_score": "likelihood"}, "embedding' only"),
    ],
    ids=["unknown-value", "likelihood-score"],
)
def test_invalid_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        PC2LConfig(**overrides)


def test_cross_key_values_are_refused_with_detached_negatives(tokenizer):
    """As with negatives in the batched call: the contrastive passes compute their own keys and values."""
    model = ccl_pcl_model(tokenizer, "gated", hard_negative_gradients="detached")
    batch = negatives_batch(tokenizer)
    states, _ = model.encode(*(batch[key] for key in ("image_features", "image_mask", "review_features",
                                                       "review_mask")))  # fmt: skip
    with pytest.raises(ValueError, match="cross_key_values serve decoding"):
        model(**batch, cross_key_values=model.cross_attention_kv(states))


@pytest.mark.parametrize(("flags", "expected"), [([], "full"), (["--hard_negative_gradients", "detached"], "detached")])
def test_train_pc2l_sets_it_from_the_command_line(tmp_path, flags, expected):
    argv = ["--tokenizer", "gpt2", "--dataset", "d", "--features", "f", "--output_dir", str(tmp_path), *flags]
    model_args, data_args, _ = train_pc2l.parse_pc2l_args(argv)
    assert PC2LConfig(**config_kwargs(model_args, data_args)).hard_negative_gradients == expected
