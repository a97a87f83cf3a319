"""`decoder_contrastive_gradients="none"` (H23) and `encoder_contrastive_gradients="none"` (H24): the contrastive
losses kept out of the decoder, or out of the encoder's pooled embeddings.

Oracle: the `"full"` model (the paper's, the same weights) whose loss is recomputed from its outputs with that side's
embeddings detached (`target_embeds` and `negative_embeds` for the decoder, `image_embeds` and `review_embeds` for
the encoder). With the option the loss must equal the `"full"` loss (1e-6), the gradients of that side's projection
heads the `"full"` ones (their inputs are the same numbers), and every other parameter's gradient the oracle's
(1e-5). On GPT-2 and on a gated decoder (a tiny Llama, its gates open), with either `contrastive_target`.
"""

import json

import pytest
import torch
from test_detached_negatives import KINDS, ccl_pcl_model, negatives_batch

from gest_showcases.commands import train_pc2l
from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.generation.losses import total_loss
from gest_showcases.generation.training_run import CONTRASTIVE_OPTIONS, config_kwargs

# Each side: the outputs the oracle detaches, the heads that still learn from the losses.
SIDES = {
    "decoder": (("target_embeds", "negative_embeds"), ("target_head.",)),
    "encoder": (("image_embeds", "review_embeds"), ("image_head.", "review_head.")),
}


def _step(model, batch, side: str, setting: str, detach=(), cross_entropy_only=False):
    """Loss and every parameter's gradient (None: none) of one forward + backward with `{side}_contrastive_gradients
    = setting`. `detach` names outputs to detach before the loss (the oracle); `cross_entropy_only` backpropagates
    the LM loss alone."""
    setattr(model.config, f"{side}_contrastive_gradients", setting)
    model.zero_grad(set_to_none=True)
    outputs = model(**batch)
    for name in detach:
        outputs[name] = outputs[name].detach()
    loss = outputs.loss if cross_entropy_only else total_loss(model.config, outputs, batch)[0]
    loss.backward()
    setattr(model.config, f"{side}_contrastive_gradients", "full")
    return loss.detach(), {name: parameter.grad for name, parameter in model.named_parameters()}


def _assert_same_gradients(gradients: dict, expected: dict, names) -> None:
    for name in names:
        if expected[name] is None:
            assert gradients[name] is None or not gradients[name].any(), name
        else:
            torch.testing.assert_close(gradients[name], expected[name], atol=1e-5, rtol=1e-5, msg=name)


def _differs(gradients: dict, expected: dict, prefix: str) -> bool:
    """Whether some parameter under `prefix` has a gradient in `expected` that `gradients` does not match."""
    return any(
        gradients[name] is None or not torch.allclose(gradients[name], gradient, atol=1e-5, rtol=1e-5)
        for name, gradient in expected.items()
        if name.startswith(prefix) and gradient is not None
    )


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("target", ["decoder", "text"])
@pytest.mark.parametrize(("kind", "share_prefix"), [(kind, False) for kind in KINDS] + [("gpt2", True)])
def test_the_losses_keep_out_of_one_side_and_train_the_rest_as_the_paper(tokenizer, kind, share_prefix, target, side):
    """`share_prefix`: GPT-2's hard negatives computed from their first swapped token on (same values)."""
    model = ccl_pcl_model(tokenizer, kind, contrastive_target=target)
    model._negative_prefix_sharing = share_prefix
    batch = negatives_batch(tokenizer)
    detached_outputs, head_prefixes = SIDES[side]
    full_loss, full = _step(model, batch, side, "full")
    _, oracle = _step(model, batch, side, "full", detach=detached_outputs)
    _, cross_entropy = _step(model, batch, side, "full", cross_entropy_only=True)
    loss, gradients = _step(model, batch, side, "none")

    torch.testing.assert_close(loss, full_loss, atol=1e-6, rtol=1e-6)
    assert gradients.keys() == full.keys()
    heads = [name for name in gradients if name.startswith(head_prefixes)]
    assert heads and all(gradients[name] is not None and gradients[name].any() for name in heads)
    _assert_same_gradients(gradients, full, heads)
    _assert_same_gradients(gradients, oracle, [name for name in gradients if name not in heads])
    # The option is not the paper's training: the paper's losses move the side it detaches.
    assert _differs(gradients, full, f"{side}.")
    if side == "decoder":
        # The decoder learns from cross-entropy alone; the encoder still from the losses (phi_V, phi_R).
        _assert_same_gradients(gradients, cross_entropy, [name for name in gradients if name.startswith("decoder.")])
        assert _differs(gradients, cross_entropy, "encoder.")
    elif target == "text":
        # No path is left from the losses to the encoder: H^Y of the text alone never reads it.
        _assert_same_gradients(gradients, cross_entropy, [name for name in gradients if name.startswith("encoder.")])
    else:
        # The decoder's H^Y cross-attends to the encoder's states: the losses reach the encoder that way.
        assert _differs(gradients, cross_entropy, "encoder.")


@pytest.mark.parametrize("side", SIDES)
def test_the_default_is_the_papers_and_old_configs_load_as_it(tokenizer, tmp_path, side):
    name = f"{side}_contrastive_gradients"
    assert getattr(PC2LConfig(), name) == "full"
    ccl_pcl_model(tokenizer, "gpt2").save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    saved = json.loads(path.read_text())
    assert saved.pop(name) == "full"
    path.write_text(json.dumps(saved))  # a checkpoint saved before the field existed
    assert getattr(PC2LForConditionalGeneration.from_pretrained(tmp_path).config, name) == "full"


@pytest.mark.parametrize("side", SIDES)
def test_a_saved_model_keeps_the_option(tokenizer, tmp_path, side):
    name = f"{side}_contrastive_gradients"
    ccl_pcl_model(tokenizer, "gpt2", **{name: "none"}).save_pretrained(tmp_path)
    assert getattr(PC2LForConditionalGeneration.from_pretrained(tmp_path).config, name) == "none"


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize(
    ("value", "overrides", "message"),
    [("detached", {}, "must be one of"), ("none", {"contrastive_score": "likelihood"}, "embedding' only")],
    ids=["unknown-value", "likelihood-score"],
)
def test_invalid_settings_are_refused(side, value, overrides, message):
    with pytest.raises(ValueError, match=f"{side}_contrastive_gradients.*{message}"):
        PC2LConfig(**{f"{side}_contrastive_gradients": value}, **overrides)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("given", [False, True])
def test_train_pc2l_sets_it_from_the_command_line(tmp_path, side, given):
    name = f"{side}_contrastive_gradients"
    flags = [f"--{name}", "none"] if given else []
    argv = ["--tokenizer", "gpt2", "--dataset", "d", "--features", "f", "--output_dir", str(tmp_path), *flags]
    model_args, data_args, _ = train_pc2l.parse_pc2l_args(argv)
    assert getattr(PC2LConfig(**config_kwargs(model_args, data_args)), name) == ("none" if given else "full")
    # A contrastive option: the experiment never hands it to its cross-entropy-only generator.
    assert name in CONTRASTIVE_OPTIONS


@pytest.mark.parametrize("target", ["decoder", "text"])
def test_without_decoder_gradients_the_negatives_pass_keeps_no_graph(tokenizer, target):
    """Under `decoder_contrastive_gradients="none"` the hard negatives' decoder states get no gradient, so their
    decoder pass runs without one (in the targets' batched call their backward pass ran on zeros), and so does the
    text target's pass; the paper's setting runs them with gradients."""
    model = ccl_pcl_model(tokenizer, "gpt2", contrastive_target=target)
    batch = negatives_batch(tokenizer)
    size = len(batch["input_ids"])
    calls = []  # (rows, grad enabled) of every GPT-2 call

    def record(module, args, kwargs):
        calls.append((len(args[0] if args else kwargs["input_ids"]), torch.is_grad_enabled()))

    model.decoder.transformer.register_forward_pre_hook(record, with_kwargs=True)
    runs = {}
    for setting in ("full", "none"):
        calls.clear()
        model.config.decoder_contrastive_gradients = setting
        model(**batch)
        runs[setting] = list(calls)
    # The paper's: the negatives (decoder target) or targets + negatives (text target) in one call with gradients.
    assert (2 * size, True) in runs["full"]
    # The option: only the targets' call for cross-entropy keeps a graph; the same rows run, the rest without.
    assert [call for call in runs["none"] if call[1]] == [(size, True)]
    assert sum(rows for rows, _ in runs["none"]) == sum(rows for rows, _ in runs["full"])
