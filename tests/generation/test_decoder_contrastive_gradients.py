"""`decoder_contrastive_gradients="none"` (H23): the contrastive losses train the encoder and the projection heads,
never the decoder.

Oracle: the `"full"` model (the paper's, the same weights) whose loss is recomputed from its outputs with
`target_embeds` and `negative_embeds` detached. With the option the loss must equal the `"full"` loss (1e-6), the
target head's gradients the `"full"` ones (its inputs are the same numbers), and every other parameter's gradient
the oracle's (1e-5); the decoder's are then those of cross-entropy alone. On GPT-2 and on a gated decoder (a tiny
Llama, its gates open), with either `contrastive_target`.
"""

import json

import pytest
import torch
from test_detached_negatives import KINDS, ccl_pcl_model, negatives_batch

from gest_showcases.commands import train_pc2l
from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.generation.losses import total_loss
from gest_showcases.generation.training_run import CONTRASTIVE_OPTIONS, config_kwargs


def _step(model, batch, setting: str, detach_target=False, cross_entropy_only=False):
    """Loss and every parameter's gradient (None: none) of one forward + backward with `setting`.
    `detach_target` recomputes the loss with the outputs' `target_embeds` and `negative_embeds` detached (the
    oracle); `cross_entropy_only` backpropagates the LM loss alone."""
    model.config.decoder_contrastive_gradients = setting
    model.zero_grad(set_to_none=True)
    outputs = model(**batch)
    if detach_target:
        outputs.target_embeds = outputs.target_embeds.detach()
        outputs.negative_embeds = outputs.negative_embeds.detach()
    loss = outputs.loss if cross_entropy_only else total_loss(model.config, outputs, batch)[0]
    loss.backward()
    return loss.detach(), {name: parameter.grad for name, parameter in model.named_parameters()}


def _assert_same_gradients(gradients: dict, expected: dict, names) -> None:
    for name in names:
        if expected[name] is None:
            assert gradients[name] is None or not gradients[name].any(), name
        else:
            torch.testing.assert_close(gradients[name], expected[name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("target", ["decoder", "text"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_losses_train_the_encoder_and_heads_and_leave_the_decoder_to_cross_entropy(tokenizer, kind, target):
    model = ccl_pcl_model(tokenizer, kind, contrastive_target=target)
    batch = negatives_batch(tokenizer)
    full_loss, full = _step(model, batch, "full")
    _, oracle = _step(model, batch, "full", detach_target=True)
    _, cross_entropy = _step(model, batch, "full", cross_entropy_only=True)
    loss, gradients = _step(model, batch, "none")

    torch.testing.assert_close(loss, full_loss, atol=1e-6, rtol=1e-6)
    assert gradients.keys() == full.keys()
    head = [name for name in gradients if name.startswith("target_head.")]
    assert head and all(gradients[name] is not None and gradients[name].any() for name in head)
    _assert_same_gradients(gradients, full, head)
    _assert_same_gradients(gradients, oracle, [name for name in gradients if name not in head])
    decoder = [name for name in gradients if name.startswith("decoder.")]
    _assert_same_gradients(gradients, cross_entropy, decoder)
    # The option is not the paper's training: the contrastive losses do move the paper's decoder and encoder.
    differing = {
        name.split(".")[0]
        for name, gradient in full.items()
        if gradient is not None
        and (gradients[name] is None or not torch.allclose(gradient, gradients[name], atol=1e-5, rtol=1e-5))
    }
    assert "decoder" in differing
    if target == "decoder":  # H^Y cross-attends to the encoder's states, so the paper's losses reach it that way too
        assert "encoder" in differing
    # ... and the encoder still learns from them: its gradients are not those of cross-entropy alone.
    encoder = [name for name in gradients if name.startswith("encoder.") and cross_entropy[name] is not None]
    assert any(not torch.allclose(gradients[name], cross_entropy[name], atol=1e-5, rtol=1e-5) for name in encoder)


def test_the_default_is_the_papers_and_old_configs_load_as_it(tokenizer, tmp_path):
    assert PC2LConfig().decoder_contrastive_gradients == "full"
    model = ccl_pcl_model(tokenizer, "gpt2")
    model.save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    saved = json.loads(path.read_text())
    assert saved.pop("decoder_contrastive_gradients") == "full"
    path.write_text(json.dumps(saved))  # a checkpoint saved before the field existed
    assert PC2LForConditionalGeneration.from_pretrained(tmp_path).config.decoder_contrastive_gradients == "full"


def test_a_saved_model_keeps_the_option(tokenizer, tmp_path):
    model = ccl_pcl_model(tokenizer, "gpt2", decoder_contrastive_gradients="none")
    model.save_pretrained(tmp_path)
    loaded = PC2LForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.config.decoder_contrastive_gradients == "none"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"decoder_contrastive_gradients": "detached"}, "decoder_contrastive_gradients must be one of"),
        ({"decoder_contrastive_gradients": "none", "contrastive_score": "likelihood"}, "embedding' only"),
    ],
    ids=["unknown-value", "likelihood-score"],
)
def test_invalid_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        PC2LConfig(**overrides)


@pytest.mark.parametrize(("flags", "expected"), [([], "full"), (["--decoder_contrastive_gradients", "none"], "none")])
def test_train_pc2l_sets_it_from_the_command_line(tmp_path, flags, expected):
    argv = ["--tokenizer", "gpt2", "--dataset", "d", "--features", "f", "--output_dir", str(tmp_path), *flags]
    model_args, data_args, _ = train_pc2l.parse_pc2l_args(argv)
    assert PC2LConfig(**config_kwargs(model_args, data_args)).decoder_contrastive_gradients == expected
    # A contrastive option: the experiment never hands it to its cross-entropy-only generator.
    assert "decoder_contrastive_gradients" in CONTRASTIVE_OPTIONS
