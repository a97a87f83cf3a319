"""`gradient_conflicts="projected"` (H28): one-sided PCGrad, the contrastive gradient projected off cross-entropy's
when the two conflict.

Oracles: hand-made gradients for `conflict_projected_loss` (both branches, a parameter only one part reaches, one
neither does), and for `PC2LTrainer` the same SGD steps taken by hand, with the two gradients computed by separate
backward passes, flattened and projected by the formula.
"""

import copy
import json
import math

import pytest
import torch
from pc2l_fixtures import (
    assert_train_pc2l_records,
    assert_train_pc2l_refuses_in_one_line,
    sgd_pc2l_trainer,
    sgd_training_args,
    synthetic_examples,
    tiny_config,
    train_pc2l_argv,
)
from test_detached_negatives import KINDS, ccl_pcl_model, negatives_batch
from transformers import AutoConfig, TrainingArguments

from gest_showcases.cards import generator_card
from gest_showcases.commands import train_pc2l
from gest_showcases.errors import InputError
from gest_showcases.generation import PC2LForConditionalGeneration
from gest_showcases.generation import gradients as gradients_module
from gest_showcases.generation import trainer as trainer_module
from gest_showcases.generation.collator import PC2LCollator
from gest_showcases.generation.gradients import (
    SeparateNormaliserAdamW,
    combined_gradient_loss,
    conflict_projected_loss,
)
from gest_showcases.generation.losses import IMAGE_LOSS_NAMES, total_loss
from gest_showcases.generation.trainer import PC2LTrainer
from gest_showcases.numerics import NonFiniteError


@pytest.mark.parametrize(
    ("contrastive_direction", "expected", "cosine"),
    [
        # The cosine is over every parameter: |g_c|^2 = 1 + 1 + 3^2 (the head's).
        ((-1.0, 1.0), (1.0, 1.0), -1 / math.sqrt(11)),  # conflict: (1,0) + (-1,1) - (-1 / 1) * (1,0)
        ((1.0, 1.0), (2.0, 1.0), 1 / math.sqrt(11)),  # no conflict: the sum
        ((0.0, 1.0), (1.0, 1.0), 0.0),  # orthogonal: the sum
    ],
)
def test_the_projection_on_hand_made_gradients(contrastive_direction, expected, cosine):
    shared = torch.tensor([0.3, -0.2], requires_grad=True)
    head = torch.tensor([0.5], requires_grad=True)  # only the contrastive part reaches it
    unused = torch.tensor([1.0], requires_grad=True)
    frozen = torch.tensor([2.0])
    cross_entropy = (shared * torch.tensor([1.0, 0.0])).sum() + 4.0
    contrastive = (shared * torch.tensor(contrastive_direction)).sum() + 3.0 * head.sum() + frozen.sum()
    total = cross_entropy + contrastive

    loss, diagnostics = conflict_projected_loss(total, cross_entropy, contrastive, [shared, head, unused, frozen])
    assert loss.item() == pytest.approx(total.item())
    (2.0 * loss).backward()  # scaled as the Trainer scales for gradient accumulation: so is the gradient
    torch.testing.assert_close(shared.grad, 2.0 * torch.tensor(expected))
    torch.testing.assert_close(head.grad, torch.tensor([6.0]))
    assert unused.grad is None
    assert diagnostics["grad_cosine"].item() == pytest.approx(cosine, abs=1e-6)
    assert diagnostics["grad_conflict"].item() == float(cosine < 0)


def test_a_zero_cross_entropy_gradient_leaves_the_contrastive_one():
    shared = torch.tensor([0.3, -0.2], requires_grad=True)
    cross_entropy = (shared * 0.0).sum()
    contrastive = (shared * torch.tensor([-1.0, 2.0])).sum()
    loss, diagnostics = conflict_projected_loss(cross_entropy + contrastive, cross_entropy, contrastive, [shared])
    loss.backward()
    torch.testing.assert_close(shared.grad, torch.tensor([-1.0, 2.0]))
    assert diagnostics["grad_cosine"].item() == 0.0 and diagnostics["grad_conflict"].item() == 0.0


def _model(tokenizer, **overrides):
    torch.manual_seed(0)
    # Weights large enough that the two parts' gradients conflict in some of the steps below.
    return PC2LForConditionalGeneration(tiny_config(tokenizer, lambda1=1.0, lambda2=1.0, **overrides))


def _flat(gradients) -> torch.Tensor:
    return torch.cat([gradient.reshape(-1) for gradient in gradients])


def _against_cross_entropy(config, outputs, inputs):
    """Eq. 11 with half the cross-entropy subtracted from its contrastive part (so that part is `L_c - 0.5 L_CE`; in
    the parts, from the image loss): a contrastive gradient that points against cross-entropy's in every step, by far."""
    loss, parts = total_loss(config, outputs, inputs)
    image = IMAGE_LOSS_NAMES[config.image_contrastive]
    parts = {**parts, image: parts[image] - 0.5 / config.lambda1 * outputs.loss}
    return loss - 0.5 * outputs.loss, parts


def _two_gradients(model, parameters, batch, step: int, loss_of=total_loss):
    """Cross-entropy's and the contrastive part's gradients (None where a parameter gets none) of training step
    `step` on `batch`, dropout seeded as `_SeededSteps` seeds it."""
    torch.manual_seed(1000 + step)
    outputs = model(**batch)
    total, _ = loss_of(model.config, outputs, batch)
    ce = torch.autograd.grad(outputs.loss, parameters, retain_graph=True, allow_unused=True)
    return ce, torch.autograd.grad(total - outputs.loss, parameters, allow_unused=True)


def _steps_by_hand(model, tokenizer, examples, steps: int, projected: bool, loss_of=total_loss) -> list[float]:
    """`steps` SGD steps (lr 0.1, batches of 2 in order, dropout on as the Trainer trains); the cosines."""
    collator = PC2LCollator(tokenizer, with_negatives=True)
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    model.train()
    cosines = []
    for step in range(steps):
        ce, contrastive = _two_gradients(model, parameters, collator(examples[2 * step : 2 * step + 2]), step, loss_of)
        ce = _flat([torch.zeros_like(p) if g is None else g for p, g in zip(parameters, ce, strict=True)])
        contrastive = _flat([torch.zeros_like(p) if g is None else g for p, g in zip(parameters, contrastive, strict=True)])
        inner = torch.dot(ce, contrastive)
        cosines.append((inner / (ce.norm() * contrastive.norm())).item())
        if projected and inner < 0:
            contrastive = contrastive - inner / ce.square().sum() * ce
        update, offset = ce + contrastive, 0
        with torch.no_grad():
            for parameter in parameters:
                parameter -= 0.1 * update[offset : offset + parameter.numel()].view_as(parameter)
                offset += parameter.numel()
    return cosines


class _SeededSteps(PC2LTrainer):
    """Dropout draws the same masks as `_steps_by_hand`: the global seed is set before each training forward."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            torch.manual_seed(1000 + self.state.global_step)
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


@pytest.mark.parametrize(
    ("conflict", "activation_checkpointing"),
    [("paper", False), ("paper", True), ("strong", False)],
)
def test_the_trainer_takes_the_projected_steps(tokenizer, tmp_path, monkeypatch, conflict, activation_checkpointing):
    """`paper`: eq. 11, whose gradients conflict in some steps, barely (cosines of about -1e-3 at this size);
    `strong`: a contrastive part made to point against cross-entropy (`_against_cross_entropy`), so the projection
    must change the model."""
    loss_of = total_loss if conflict == "paper" else _against_cross_entropy
    monkeypatch.setattr(trainer_module, "total_loss", loss_of)
    examples = synthetic_examples(8)
    model = _model(tokenizer, gradient_conflicts="projected")
    untouched = copy.deepcopy(model)
    by_hand, unprojected = copy.deepcopy(model), copy.deepcopy(model)
    trainer = sgd_pc2l_trainer(model, tokenizer, tmp_path, examples, trainer_class=_SeededSteps, max_steps=4,
                               activation_checkpointing=activation_checkpointing)  # fmt: skip
    trainer.train()
    cosines = _steps_by_hand(by_hand, tokenizer, examples, 4, projected=True, loss_of=loss_of)
    _steps_by_hand(unprojected, tokenizer, examples, 4, projected=False, loss_of=loss_of)

    trained = dict(model.named_parameters())
    for name, parameter in by_hand.named_parameters():
        torch.testing.assert_close(trained[name], parameter, rtol=1e-4, atol=1e-6, msg=name)
    if conflict == "paper":
        assert any(cosine < 0 for cosine in cosines) and any(cosine > 0 for cosine in cosines)  # both branches ran
    else:
        assert sum(cosine < -0.5 for cosine in cosines) >= 3  # (the first step's contrastive gradient is ~100x larger)
        assert any(
            not torch.allclose(trained[name], parameter, rtol=1e-3, atol=1e-4)
            for name, parameter in unprojected.named_parameters()
        )  # the projection changed the model
    logged = [entry for entry in trainer.state.log_history if "grad_cosine" in entry]
    assert [entry["grad_cosine"] for entry in logged] == pytest.approx(cosines, abs=1e-4)
    assert [entry["grad_conflict"] for entry in logged] == [float(cosine < 0) for cosine in cosines]
    # The loss logged is the one composed, as without the option.
    collator = PC2LCollator(tokenizer, with_negatives=True)
    untouched.train()
    torch.manual_seed(1000)
    batch = collator(examples[:2])
    first = loss_of(untouched.config, untouched(**batch), batch)[0].item()
    assert logged[0]["loss"] == pytest.approx(first, rel=1e-5)


def test_evaluation_and_the_warmup_are_not_projected(tokenizer, tmp_path):
    examples = synthetic_examples(8)
    model = _model(tokenizer, gradient_conflicts="projected", contrastive_warmup_ratio=0.5)
    trainer = sgd_pc2l_trainer(model, tokenizer, tmp_path, examples, examples[:2], max_steps=4, eval_strategy="steps",
                               eval_steps=1)  # fmt: skip
    trainer.train()
    steps = [entry for entry in trainer.state.log_history if "loss_ce" in entry]
    assert [("grad_cosine" in entry) for entry in steps] == [False, False, True, True]
    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(evaluations) == 4 and not any("eval_grad_cosine" in entry for entry in evaluations)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gradient_conflicts": "dropped"}, "gradient_conflicts must be one of"),
        ({"gradient_conflicts": "projected", "image_contrastive": "none", "review_contrastive": "none"},
         "needs at least one of them"),
        ({"contrastive_normaliser": "own"}, "contrastive_normaliser must be one of"),
        ({"contrastive_normaliser": "separate", "image_contrastive": "none", "review_contrastive": "none"},
         "needs at least one of them"),
        ({"contrastive_normaliser": "separate", "gradient_conflicts": "projected"}, "do not combine"),
        ({"contrastive_step_scale": 0}, "contrastive_step_scale must be a finite number > 0"),
        ({"contrastive_step_scale": float("nan")}, "contrastive_step_scale must be a finite number > 0"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_refused(tokenizer, overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(tokenizer, **overrides)


@pytest.mark.parametrize(("name", "value"), [("gradient_conflicts", "projected"), ("contrastive_normaliser", "separate")])
def test_distributed_training_is_refused(tokenizer, tmp_path, monkeypatch, name, value):
    monkeypatch.setattr(TrainingArguments, "world_size", property(lambda self: 2))
    with pytest.raises(InputError, match=f"--{name} {value}: single-process training"):
        PC2LTrainer(model=_model(tokenizer, **{name: value}), args=sgd_training_args(tmp_path))
    PC2LTrainer(model=_model(tokenizer), args=sgd_training_args(tmp_path))  # the paper's setting trains anywhere


def test_train_pc2l_projects_records_the_option_and_refuses_a_bad_one_in_one_line(command_assets, capsys):
    argv = train_pc2l_argv(command_assets, "--gradient_conflicts", "projected", "--logging_steps", "1")
    assert train_pc2l.main(argv) == 0
    config = AutoConfig.from_pretrained(command_assets / "run")
    assert config.gradient_conflicts == "projected"
    assert "| gradient_conflicts | projected |" in str(generator_card(config, "user/run", results_dir=command_assets))
    history = json.loads((command_assets / "run" / "trainer_state.json").read_text())["log_history"]
    cosines = [entry["grad_cosine"] for entry in history if "loss_ce" in entry]
    assert len(cosines) == 6 and all(-1 <= cosine <= 1 for cosine in cosines)
    assert_train_pc2l_refuses_in_one_line(command_assets, capsys, "--gradient_conflicts", "sometimes")


# --- contrastive_normaliser="separate" (H30): each part's step on Adam moments of its own ---------------------------


def _two_torch_optimizers(parameter, lr, weight_decay, scale):
    """The oracle: torch's AdamW on cross-entropy's gradient, then torch's Adam (no decay) at `scale * lr` on the
    contrastive one, on the same tensor (an Adam step does not read the parameter's value); fused, the kernel the
    separate normaliser steps with on CPU (a kernel of other rounding would move the attention key biases, whose
    gradient is rounding noise that Adam scales up, by about their step)."""
    return (torch.optim.AdamW([parameter], lr=lr, weight_decay=weight_decay, fused=True),
            torch.optim.Adam([parameter], lr=scale * lr, fused=True))  # fmt: skip


@pytest.mark.parametrize("option", [{"gradient_conflicts": "projected"}, {"contrastive_normaliser": "separate"}])
def test_the_contrastive_gradient_stays_out_of_the_lm_head(tokenizer, option):
    """The options' contrastive backward pass does not run through cross-entropy's LM head (to a zero gradient, as
    `total - L_CE` would): the logits get one gradient a step, cross-entropy's; and the gradient kept aside is
    exactly that of `total - L_CE`."""
    model = _model(tokenizer, **option).train()
    batch = PC2LCollator(tokenizer, with_negatives=True)(synthetic_examples(2))
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    outputs = model(**batch)
    total, parts = total_loss(model.config, outputs, batch)
    expected = torch.autograd.grad(total - outputs.loss, parameters, retain_graph=True, allow_unused=True)
    logit_gradients = []
    outputs.logits.register_hook(logit_gradients.append)
    loss, _ = combined_gradient_loss(model.config, total, parts, parameters)
    loss.backward()
    assert len(logit_gradients) == 1
    if "contrastive_normaliser" in option:
        for parameter, gradient in zip(parameters, expected, strict=True):
            kept = getattr(parameter, "contrastive_grad", None)
            assert (kept is None) == (gradient is None or not gradient.any())
            if kept is not None:
                assert torch.equal(kept, gradient)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("option", [{"gradient_conflicts": "projected"}, {"contrastive_normaliser": "separate"}])
def test_the_negatives_get_a_call_of_their_own_out_of_cross_entropys_backward(tokenizer, option, kind):
    """Under the options the hard negatives run in a decoder call of their own, so cross-entropy's backward pass
    covers the targets' rows only (in the batched call it ran through the negatives' rows too, to a zero gradient);
    the two gradients are those of the paper's batched call, to rounding (dropout off)."""
    model = ccl_pcl_model(tokenizer, kind, **option)
    batch = negatives_batch(tokenizer)
    size = batch["input_ids"].shape[0]
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    batched = copy.deepcopy(model)
    batched.config.gradient_conflicts, batched.config.contrastive_normaliser = "kept", "shared"
    outputs = batched(**batch)
    expected = torch.autograd.grad(outputs.loss, list(batched.parameters()), retain_graph=True, allow_unused=True)

    rows = []  # the rows of each gradient that reaches a decoder call's token embeddings

    def watch(module, args, output):
        output.register_hook(lambda grad: rows.append(grad.shape[0]))

    model.get_input_embeddings().register_forward_hook(watch)
    outputs = model(**batch)
    total, parts = total_loss(model.config, outputs, batch)
    loss, _ = combined_gradient_loss(model.config, total, parts, parameters)
    loss.backward()
    # The contrastive part's backward pass through the targets' and the negatives' calls, cross-entropy's through the
    # targets' (inside `combined_gradient_loss` or in `loss.backward()`, as the option computes them).
    assert rows == [size, size, size]
    if "contrastive_normaliser" in option:  # `.grad` holds cross-entropy's gradient alone
        own_parameters = dict(model.named_parameters())
        for (name, _), reference in zip(batched.named_parameters(), expected, strict=True):
            own = own_parameters[name].grad
            if reference is None or not reference.any():
                assert own is None or not own.any(), name
            else:
                torch.testing.assert_close(own, reference, rtol=1e-5, atol=1e-7, msg=name)


def test_the_separate_normaliser_is_two_torch_adams():
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(3, 4, generator=generator)
    ours = torch.nn.Parameter(start.clone())
    optimizer = SeparateNormaliserAdamW([ours], lr=0.01, weight_decay=0.1, contrastive_step_scale=0.3)
    reference = torch.nn.Parameter(start.clone())
    adamw, adam = _two_torch_optimizers(reference, 0.01, 0.1, 0.3)
    for step in range(6):
        ce = torch.randn(3, 4, generator=generator)
        contrastive = None if step == 2 else 5 * torch.randn(3, 4, generator=generator)  # step 2: a warm-up step
        ours.grad, ours.contrastive_grad = ce.clone(), None if contrastive is None else contrastive.clone()
        optimizer.step()
        assert ours.contrastive_grad is None  # cleared for the next step
        reference.grad = ce.clone()
        adamw.step()
        if contrastive is not None:
            reference.grad = contrastive.clone()
            adam.step()
        torch.testing.assert_close(ours.detach(), reference.detach(), rtol=1e-6, atol=1e-7)


def test_the_separate_normaliser_steps_with_the_fused_kernel_on_cpu(monkeypatch):
    """As the Trainer's default AdamW does there (torch's default Adam on CPU steps one parameter at a time)."""
    calls, adam = [], gradients_module.adam

    def spy(*args, **kwargs):
        calls.append(kwargs.get("fused"))
        return adam(*args, **kwargs)

    monkeypatch.setattr(gradients_module, "adam", spy)
    parameter = torch.nn.Parameter(torch.ones(3))
    parameter.grad, parameter.contrastive_grad = torch.ones(3), torch.ones(3)
    SeparateNormaliserAdamW([parameter], lr=0.1).step()
    assert calls == [True, True]  # cross-entropy's part, the contrastive part


def test_the_separate_normaliser_resumes_from_its_state_dict():
    """A run resumed from a checkpoint (Trainer saves and loads `optimizer.state_dict()`) takes the steps the
    uninterrupted run takes: both parts' moments and step counts come back."""
    generator = torch.Generator().manual_seed(2)
    gradients = [(torch.randn(4, generator=generator), torch.randn(4, generator=generator)) for _ in range(6)]
    straight = torch.nn.Parameter(torch.ones(4))
    optimizer = SeparateNormaliserAdamW([straight], lr=0.05, weight_decay=0.1, contrastive_step_scale=0.5)

    def take(parameter, optimizer, steps):
        for ce, contrastive in steps:
            parameter.grad, parameter.contrastive_grad = ce.clone(), contrastive.clone()
            optimizer.step()

    take(straight, optimizer, gradients[:3])
    saved, after_three = copy.deepcopy(optimizer.state_dict()), straight.detach().clone()
    resumed = torch.nn.Parameter(after_three.clone())
    reloaded = SeparateNormaliserAdamW([resumed], lr=0.05, weight_decay=0.1, contrastive_step_scale=0.5)
    reloaded.load_state_dict(saved)
    assert float(reloaded.state[resumed]["contrastive"]["step"]) == 3.0
    take(straight, optimizer, gradients[3:])
    take(resumed, reloaded, gradients[3:])
    torch.testing.assert_close(resumed.detach(), straight.detach(), rtol=0, atol=0)
    fresh = torch.nn.Parameter(after_three.clone())  # without the state the same steps land elsewhere
    take(fresh, SeparateNormaliserAdamW([fresh], lr=0.05, weight_decay=0.1, contrastive_step_scale=0.5), gradients[3:])
    assert not torch.allclose(fresh.detach(), straight.detach(), rtol=1e-3, atol=1e-4)


def test_a_nonfinite_contrastive_gradient_stops_the_step_before_anything_moves():
    first, second = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizer = SeparateNormaliserAdamW([first, second], lr=0.1)
    first.grad, first.contrastive_grad = torch.ones(2), torch.ones(2)
    second.grad, second.contrastive_grad = torch.ones(2), torch.tensor([1.0, float("nan")])
    with pytest.raises(NonFiniteError, match="contrastive losses' gradient has NaN or inf"):
        optimizer.step()
    assert torch.equal(first.detach(), torch.ones(2)) and torch.equal(second.detach(), torch.ones(2))


def test_without_contrastive_gradients_it_is_torch_adamw():
    generator = torch.Generator().manual_seed(1)
    start = [torch.randn(5, generator=generator), torch.randn(2, 2, generator=generator)]
    ours = [torch.nn.Parameter(tensor.clone()) for tensor in start]
    reference = [torch.nn.Parameter(tensor.clone()) for tensor in start]
    groups = lambda params: [{"params": [params[0]], "weight_decay": 0.01}, {"params": [params[1]], "weight_decay": 0.0}]  # noqa: E731
    optimizer = SeparateNormaliserAdamW(groups(ours), lr=0.1, betas=(0.8, 0.99), eps=1e-6)
    adamw = torch.optim.AdamW(groups(reference), lr=0.1, betas=(0.8, 0.99), eps=1e-6, foreach=False)
    for step in range(5):
        for group in (*optimizer.param_groups, *adamw.param_groups):
            group["lr"] = 0.1 / (step + 1)  # as a scheduler sets it
        gradients = [torch.randn(tensor.shape, generator=generator) for tensor in start]
        for parameters in (ours, reference):
            for parameter, gradient in zip(parameters, gradients, strict=True):
                parameter.grad = gradient.clone()
        optimizer.step()
        adamw.step()
    for parameter, expected in zip(ours, reference, strict=True):
        torch.testing.assert_close(parameter.detach(), expected.detach(), rtol=1e-6, atol=1e-7)


def test_the_trainer_steps_each_part_on_its_own_moments(tokenizer, tmp_path):
    examples = synthetic_examples(8)
    model = _model(tokenizer, contrastive_normaliser="separate", contrastive_step_scale=0.5)
    by_hand = copy.deepcopy(model)
    trainer = sgd_pc2l_trainer(model, tokenizer, tmp_path, examples, trainer_class=_SeededSteps, max_steps=4,
                               optim="adamw_torch", learning_rate=0.01)  # fmt: skip
    trainer.train()
    assert isinstance(trainer.optimizer.optimizer, SeparateNormaliserAdamW)  # (inside accelerate's wrapper)

    collator = PC2LCollator(tokenizer, with_negatives=True)
    parameters = [parameter for parameter in by_hand.parameters() if parameter.requires_grad]
    optimizers = [_two_torch_optimizers(parameter, 0.01, 0.0, 0.5) for parameter in parameters]
    by_hand.train()
    for step in range(4):
        ce, contrastive = _two_gradients(by_hand, parameters, collator(examples[2 * step : 2 * step + 2]), step)
        for parameter, (adamw, adam), g_ce, g_c in zip(parameters, optimizers, ce, contrastive, strict=True):
            if g_ce is not None:
                parameter.grad = g_ce
                adamw.step()
            if g_c is not None:
                parameter.grad = g_c
                adam.step()
            parameter.grad = None
    trained = dict(model.named_parameters())
    for name, parameter in by_hand.named_parameters():
        torch.testing.assert_close(trained[name], parameter, rtol=1e-4, atol=1e-6, msg=name)
    logged = [entry for entry in trainer.state.log_history if "loss_ccl" in entry]
    assert len(logged) == 4  # the parts are logged as with the paper's normaliser


def test_the_separate_normaliser_refuses_what_it_cannot_honour(tokenizer, tmp_path):
    trainer = sgd_pc2l_trainer(_model(tokenizer, contrastive_normaliser="separate"), tokenizer, tmp_path,
                               synthetic_examples(4))  # fmt: skip
    with pytest.raises(InputError, match="--contrastive_normaliser separate replaces AdamW; --optim sgd"):
        trainer.train()


def test_train_pc2l_separates_the_normalisers_and_records_it(command_assets, capsys):
    assert_train_pc2l_records(command_assets, contrastive_normaliser="separate", contrastive_step_scale=0.1)
    assert_train_pc2l_refuses_in_one_line(command_assets, capsys, "--contrastive_step_scale", "-1")
