"""`PC2LConfig.image_feature_noise` (H9): held-out-like photo features during training, never at inference."""

import math

import pytest
import torch
from pc2l_fixtures import synthetic_examples, tiny_config, train_pc2l_argv
from transformers import AutoConfig

from gest_showcases import cli
from gest_showcases.cards import generator_card
from gest_showcases.commands import train_pc2l
from gest_showcases.generation import PC2LCollator, PC2LForConditionalGeneration
from gest_showcases.generation.modeling_pc2l import add_relative_noise


def test_relative_noise_has_the_asked_norm_and_leaves_zero_rows_zero():
    torch.manual_seed(0)
    features = torch.randn(4000, 64) * torch.rand(4000, 1) * 10  # vectors of very different norms
    features[:5] = 0
    noisy = add_relative_noise(features, 0.5)
    assert torch.equal(noisy[:5], features[:5])
    ratio = (noisy - features)[5:].norm(dim=-1) ** 2 / features[5:].norm(dim=-1) ** 2
    # E|noise|^2 = 0.25 |v|^2; 3,995 draws of a chi-square(64)/64 (sd 0.177 each) put the mean within 0.01.
    assert ratio.mean().item() == pytest.approx(0.25, abs=0.01)
    # The noise is fresh: another call draws another one.
    assert not torch.equal(add_relative_noise(features, 0.5), noisy)


def _batch(tokenizer, count=4, with_negatives=False):
    collator = PC2LCollator(tokenizer, max_length=32, with_negatives=with_negatives)
    return collator(synthetic_examples(count, with_negatives=with_negatives))


def _models(tokenizer, noise, **overrides):
    """The same weights under `image_feature_noise=0` and `noise`."""
    torch.manual_seed(0)
    plain = PC2LForConditionalGeneration(tiny_config(tokenizer, **overrides))
    noisy = PC2LForConditionalGeneration(tiny_config(tokenizer, image_feature_noise=noise, **overrides))
    noisy.load_state_dict(plain.state_dict())
    return plain, noisy


def _encoder_inputs(model, batch):
    """The image features the encoder's projection read, per call (a forward hook)."""
    seen = []
    handle = model.encoder.image_projection.register_forward_hook(
        lambda module, args, out: seen.append(args[0])
    )
    try:
        model(**batch)
    finally:
        handle.remove()
    return seen


def test_evaluation_reads_the_features_as_they_are(tokenizer):
    plain, noisy = _models(tokenizer, 0.5)
    batch = _batch(tokenizer)
    with torch.no_grad():
        expected = plain.eval()(**batch)
        got = noisy.eval()(**batch)
        assert torch.equal(got.logits, expected.logits) and torch.equal(got.loss, expected.loss)
        inputs = [batch[key] for key in ("image_features", "image_mask", "review_features", "review_mask")]
        assert torch.equal(noisy.encode(*inputs)[0], plain.encode(*inputs)[0])


def test_training_perturbs_the_real_photos_by_the_asked_share_and_not_the_padding(tokenizer):
    plain, noisy = _models(tokenizer, 0.5)
    batch = _batch(tokenizer, count=16)
    features, mask = batch["image_features"], batch["image_mask"]
    torch.manual_seed(1)
    (read,) = _encoder_inputs(noisy.train(), batch)
    assert torch.equal(read[~mask], features[~mask]) and (features[~mask] == 0).all()
    ratio = ((read - features)[mask].norm(dim=-1) / features[mask].norm(dim=-1)).mean().item()
    # Each ratio is 0.5 * chi(8) / sqrt(8) (mean 0.485, sd 0.12): the mean of the batch's 40-odd photos is within 0.1.
    assert ratio == pytest.approx(0.5, abs=0.1)
    # Without the option a training forward reads the features unchanged.
    (unchanged,) = _encoder_inputs(plain.train(), batch)
    assert torch.equal(unchanged, features)


def test_every_pass_of_a_training_forward_reads_the_same_noisy_photos(tokenizer):
    # The likelihood score with every negative: one encoder call over [own; photos of the next example; reviews of
    # the next example]. The copies must carry the draw the own rows got, not draws of their own.
    _, noisy = _models(tokenizer, 0.5, contrastive_score="likelihood")
    batch = _batch(tokenizer, count=4, with_negatives=True)
    torch.manual_seed(2)
    (read,) = _encoder_inputs(noisy.train(), batch)
    own, image_swapped, review_swapped = read.split(4)
    assert torch.equal(image_swapped, own.roll(-1, dims=0))
    assert torch.equal(review_swapped, own)
    assert not torch.equal(own, batch["image_features"])


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_the_config_refuses_a_noise_that_is_not_a_finite_non_negative_number(tokenizer, bad):
    with pytest.raises(ValueError, match="image_feature_noise"):
        tiny_config(tokenizer, image_feature_noise=bad)


def test_the_config_refuses_noise_without_photos(tokenizer):
    with pytest.raises(ValueError, match="image_feature_noise .* needs images"):
        tiny_config(tokenizer, image_feature_noise=0.5, input_mode="text", image_contrastive="none")


def test_train_pc2l_records_the_option_and_refuses_a_bad_one_in_one_line(command_assets, capsys):
    assert train_pc2l.main(train_pc2l_argv(command_assets, "--image_feature_noise", "0.5")) == 0
    config = AutoConfig.from_pretrained(command_assets / "run")
    assert config.image_feature_noise == 0.5
    # The model card lists it with the other training options (a deviation a reader must see).
    assert "| image_feature_noise | 0.5 |" in str(generator_card(config, "user/run", results_dir=command_assets))
    capsys.readouterr()  # the training run's own output
    assert cli.main(["train-pc2l", *train_pc2l_argv(command_assets, "--image_feature_noise", "-1")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "image_feature_noise" in err[0]
