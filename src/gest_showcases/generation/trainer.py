"""`PC2LTrainer`: a `transformers.Trainer` that optimises `L = L_CE + lambda1 * L_img + lambda2 * L_text` (eq. 11).

`L_img` is none, CL (eq. 7) or CCL (eq. 8) and `L_text` none, CL (eq. 7) or PCL (eq. 9), as set by the model's
`PC2LConfig` (`image_contrastive`, `review_contrastive`), which covers every row of the paper's Table 4:

| Table 4 row       | image_contrastive | review_contrastive |
|-------------------|-------------------|--------------------|
| baseline          | none              | none               |
| img CL + text CL  | cl                | cl                 |
| CCL + text CL     | ccl               | cl                 |
| img CL + PCL      | cl                | pcl                |
| PC2L              | ccl               | pcl                |

Each part is logged (`loss_ce`, `loss_img_cl` or `loss_ccl`, `loss_text_cl` or `loss_pcl`; `eval_` prefixed in
evaluation), averaged over the steps since the last log and over processes.

Gradient accumulation: every part is a per-batch mean (the model's LM loss is the mean over the batch's target
tokens), so `loss_is_scaled_for_ga = False` and the Trainer divides the sum by the accumulation steps. The LM part
then equals the token mean of the accumulated batch when micro-batches hold equal numbers of target tokens;
contrastive parts use the micro-batch as their set of negatives. Under DDP `model` is the wrapper: the config is
read from the unwrapped model, and the forward goes through the wrapper so gradients are synchronised.

[`GeneratorTrainer`], the base of `PC2LTrainer`, trains any explanation generator whose `forward` returns its
`loss` and, as output fields named `loss_*`, the parts it is made of (the Table 2 baselines of
`gest_showcases.baselines`, e.g. PETER's context-prediction loss): it logs each part the same way. `PC2LTrainer`
composes eq. 11 from the PC2L outputs instead.

NaN: the stock `Trainer` logs a NaN loss as the mean of the previous ones (`logging_nan_inf_filter`), clips a NaN
gradient norm into NaN gradients and saves the NaN model, exiting 0. [`FiniteTrainer`], the base of `PC2LTrainer`
and of `finetune-lm` (`gest_showcases.trainer_utils`), stops at the first non-finite loss or gradient instead, before the optimizer step, so
nothing is saved.
"""

import math
from collections import defaultdict

import torch
from transformers.trainer_utils import unwrap_peft_model

from gest_showcases.errors import InputError
from gest_showcases.numerics import NonFiniteError
from gest_showcases.trainer_utils import CollatorReadsRawExamples, FiniteTrainer

from .losses import total_loss


def check_generator_training_args(training_args) -> None:
    """Refuse the `TrainingArguments` a [`GeneratorTrainer`] cannot honour; the commands call it before any data is
    read, the trainer again when it is built.

    - `label_smoothing_factor`: the stock Trainer smooths the labels in its own `compute_loss`, which this one
      replaces (the model computes its cross-entropy, PC2L its other losses too): it would be silently ignored.
    - `train_sampling_strategy="group_by_length"`: the Trainer infers lengths from an `input_ids` field, which the
      examples have not (the collator tokenizes): a traceback when training starts.

    Raises:
        InputError: naming the option.
    """
    if training_args.label_smoothing_factor:
        raise InputError(
            f"--label_smoothing_factor {training_args.label_smoothing_factor}: not applied to a generator's loss "
            "(the model computes its own cross-entropy); leave it at 0"
        )
    if getattr(training_args, "train_sampling_strategy", None) == "group_by_length":
        raise InputError(
            "--train_sampling_strategy group_by_length: the generators' examples are tokenized in the collator, so "
            "there are no lengths to group by; use random (the default) or sequential"
        )


def conflict_projected_loss(total: torch.Tensor, cross_entropy: torch.Tensor, parameters) -> tuple[torch.Tensor, dict]:
    """`total` (eq. 11), with the gradient of one-sided PCGrad (Yu et al., 2020; `gradient_conflicts="projected"`).

    With `g_ce` the gradient of `cross_entropy` and `g_c` that of `total - cross_entropy` (the contrastive part),
    inner products taken over all `parameters` together, the gradient is

        g = g_ce + g_c - min(0, <g_c, g_ce>) / |g_ce|^2 * g_ce,

    that is `g_c` less its component along `g_ce` when the two conflict (`g_ce + g_c`, eq. 11's, otherwise), so that
    `<g, g_ce> >= |g_ce|^2`: to first order the step lowers cross-entropy at least as much as cross-entropy alone would.

    The two gradients take one backward pass each (`torch.autograd.grad`, nothing written to `.grad`). The loss
    returned has `total`'s value and is linear in the parameters with `g` as coefficients, so the caller's backward
    puts `g` in each `.grad` (accumulating, scaled as the loss is) without running through the model again.

    Returns:
        `(loss, diagnostics)`: `grad_cosine` (cos(g_ce, g_c) before the projection; 0 where either is zero) and
        `grad_conflict` (1.0 when it was negative, so the step was projected), for the logs.
    """
    parameters = [parameter for parameter in parameters if parameter.requires_grad]
    ce_gradients = torch.autograd.grad(cross_entropy, parameters, retain_graph=True, allow_unused=True)
    contrastive_gradients = torch.autograd.grad(total - cross_entropy, parameters, allow_unused=True)
    zero = total.new_zeros((), dtype=torch.float32)
    inner, ce_norm2, contrastive_norm2 = zero, zero, zero
    for ce, contrastive in zip(ce_gradients, contrastive_gradients, strict=True):
        if ce is not None:
            ce_norm2 = ce_norm2 + ce.float().square().sum()
        if contrastive is not None:
            contrastive_norm2 = contrastive_norm2 + contrastive.float().square().sum()
        if ce is not None and contrastive is not None:
            inner = inner + (ce.float() * contrastive.float()).sum()
    # 1 + (the projection's weight on g_ce); no host sync: the step stays asynchronous on a GPU.
    tiny = torch.finfo(torch.float32).tiny
    ce_scale = torch.where(ce_norm2 > 0, 1 - inner.clamp(max=0) / ce_norm2.clamp(min=tiny), 1.0)
    linear = zero
    for parameter, ce, contrastive in zip(parameters, ce_gradients, contrastive_gradients, strict=True):
        gradient = None if ce is None else ce_scale.to(ce.dtype) * ce
        if contrastive is not None:
            gradient = contrastive if gradient is None else gradient + contrastive
        if gradient is not None:
            linear = linear + (parameter * gradient.detach()).sum()
    norms = (ce_norm2 * contrastive_norm2).sqrt()
    diagnostics = {
        "grad_cosine": torch.where(norms > 0, inner / norms.clamp(min=tiny), 0.0),
        "grad_conflict": (inner < 0).float(),
    }
    return total.detach() + (linear - linear.detach()), diagnostics


def contrastive_gradient_kept_aside(total: torch.Tensor, cross_entropy: torch.Tensor, parameters) -> torch.Tensor:
    """`total` (eq. 11), whose backward puts cross-entropy's gradient alone in `.grad`; the contrastive part's
    gradient (of `total - cross_entropy`, one backward pass of its own) is added to each parameter's
    `contrastive_grad`, which [`SeparateNormaliserAdamW`] steps on (`contrastive_normaliser="separate"`).

    Micro-batches of one optimizer step add up in `contrastive_grad` unscaled, where `.grad` gets each divided by the
    accumulation steps: Adam's step does not depend on a gradient's constant scale (up to `eps`).
    """
    parameters = [parameter for parameter in parameters if parameter.requires_grad]
    gradients = torch.autograd.grad(total - cross_entropy, parameters, retain_graph=True, allow_unused=True)
    for parameter, gradient in zip(parameters, gradients, strict=True):
        if gradient is not None:
            kept = getattr(parameter, "contrastive_grad", None)
            parameter.contrastive_grad = gradient if kept is None else kept + gradient
    return total.detach() + (cross_entropy - cross_entropy.detach())


class SeparateNormaliserAdamW(torch.optim.Optimizer):
    """AdamW (`torch.optim.AdamW`'s update, no amsgrad) on each parameter's `.grad`, plus an Adam step of its own on
    its `contrastive_grad` where the step left one, with moments of its own, times `contrastive_step_scale`.

    Each of the two steps is about the learning rate in size in every coordinate, whatever its gradient's scale, so
    neither loss shrinks the other's step the way one AdamW on their sum does (docs/experiments.md, H29, H30).
    Decoupled weight decay applies once per step to every parameter with either gradient. `contrastive_grad` (one
    more gradient's memory) is cleared after the step; a parameter without it (a cross-entropy-only warm-up step)
    takes AdamW's step alone. A NaN or inf in any `contrastive_grad` raises `NonFiniteError` before any parameter
    moves (`.grad` is the Trainer's to check: [`FiniteTrainer`]).
    """

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 contrastive_step_scale: float = 0.2):  # fmt: skip
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      contrastive_step_scale=contrastive_step_scale))  # fmt: skip

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        contrastive_gradients = [
            parameter.contrastive_grad
            for group in self.param_groups
            for parameter in group["params"]
            if getattr(parameter, "contrastive_grad", None) is not None
        ]
        # One host sync for the whole step, before anything moves.
        if contrastive_gradients and not torch.stack([g.isfinite().all() for g in contrastive_gradients]).all():
            raise NonFiniteError(
                "the contrastive losses' gradient has NaN or inf values (no step taken, no model saved); lower the "
                "learning rate or --contrastive_step_scale"
            )
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for parameter in group["params"]:
                contrastive = getattr(parameter, "contrastive_grad", None)
                if parameter.grad is None and contrastive is None:
                    continue
                parameter.mul_(1 - lr * group["weight_decay"])
                state = self.state[parameter]
                parts = (("", parameter.grad, 1.0), ("contrastive_", contrastive, group["contrastive_step_scale"]))
                for prefix, gradient, scale in parts:
                    if gradient is None:
                        continue
                    if prefix + "step" not in state:
                        state[prefix + "step"] = 0
                        state[prefix + "exp_avg"] = torch.zeros_like(parameter)
                        state[prefix + "exp_avg_sq"] = torch.zeros_like(parameter)
                    state[prefix + "step"] += 1
                    step, exp_avg, exp_avg_sq = (state[prefix + name] for name in ("step", "exp_avg", "exp_avg_sq"))
                    exp_avg.lerp_(gradient, 1 - beta1)
                    exp_avg_sq.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
                    denominator = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(eps)
                    parameter.addcdiv_(exp_avg, denominator, value=-lr * scale / (1 - beta1**step))
                parameter.contrastive_grad = None
        return loss


class GeneratorTrainer(CollatorReadsRawExamples, FiniteTrainer):
    """A `Trainer` for an explanation generator that logs each part of its loss (`loss_*`), averaged per log.

    The loss is the model's own `loss`; the parts are the output fields named `loss_*` (none for a model trained
    on cross-entropy alone). Only `compute_loss` and `log` are overridden (the NaN guard is [`FiniteTrainer`]'s;
    the examples reach the collator whole, whatever `remove_unused_columns` says); use it like `Trainer`. Subclasses
    change how the loss is composed by overriding `loss_and_parts`.
    """

    loss_is_scaled_for_ga = False
    # Batch fields that `loss_and_parts` reads and the model's forward does not take.
    loss_only_inputs: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        check_generator_training_args(self.args)
        self._loss_parts = {"train": defaultdict(list), "eval": defaultdict(list)}

    def loss_and_parts(self, model, outputs, inputs: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to optimise and its parts by log name, from the model's outputs for `inputs`."""
        return outputs.loss, {name: value for name, value in outputs.items() if name.startswith("loss_")}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # The parts are read by name, whatever config.return_dict says.
        outputs = model(**self._model_inputs(inputs), return_dict=True)
        loss, parts = self.loss_and_parts(model, outputs, inputs)
        mode = "train" if model.training else "eval"
        for name, value in parts.items():
            self._loss_parts[mode][name].append(value.detach())
        return (loss, outputs) if return_outputs else loss

    def probe_loss(self, inputs: dict) -> torch.Tensor:
        # As `compute_loss`, with the parts left out of the logs.
        return self.loss_and_parts(self.model, self.model(**self._model_inputs(inputs), return_dict=True), inputs)[0]

    def _model_inputs(self, inputs: dict) -> dict:
        return {name: value for name, value in inputs.items() if name not in self.loss_only_inputs}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        prefix = "eval_" if mode == "eval" else ""
        for name, values in self._loss_parts[mode].items():
            mean = torch.stack(values).mean().reshape(1)
            logs[prefix + name] = self.accelerator.gather(mean).mean().item()
        self._loss_parts[mode].clear()
        super().log(logs, start_time)


# The PC2LConfig options that take cross-entropy's and the contrastive losses' gradients apart, at the paper's setting.
PAPER_GRADIENT_SETTINGS = {"gradient_conflicts": "kept", "contrastive_normaliser": "shared"}


class PC2LTrainer(GeneratorTrainer):
    """A `Trainer` for [`PC2LForConditionalGeneration`] (optionally LoRA-wrapped by peft) with the PC2L losses.

    The loss composition differs from [`GeneratorTrainer`]'s (eq. 11, `losses.total_loss`, or cross-entropy
    alone during the first `config.contrastive_warmup_ratio` of the training steps), and with two documented options
    the step: `config.gradient_conflicts="projected"` ([`conflict_projected_loss`]) and
    `config.contrastive_normaliser="separate"` ([`SeparateNormaliserAdamW`], which replaces Trainer's AdamW). Use it
    like `Trainer`, with a [`PC2LCollator`] as data collator (`with_negatives=True` for CCL). A batch's
    `shared_content` (examples with `content_labels`) goes to the losses only.
    """

    loss_only_inputs = ("shared_content",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = unwrap_peft_model(self.model).config
        # The options that take the two gradients apart, which DDP's hooks, a loss scaler and the sharding engines
        # never see.
        options = [f"--{name} {getattr(config, name)}" for name, paper in PAPER_GRADIENT_SETTINGS.items()
                   if getattr(config, name) != paper]  # fmt: skip
        distributed = self.args.world_size > 1 or self.is_deepspeed_enabled or self.is_fsdp_enabled
        if options and (distributed or self.args.fp16):
            raise InputError(
                f"{options[0]}: single-process training without fp16 loss scaling, DeepSpeed or FSDP only (bf16 "
                "works); leave it at the paper's setting there"
            )

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        config = unwrap_peft_model(self.model).config
        if config.contrastive_normaliser == "shared" or self.optimizer is not None:
            return super().create_optimizer(model)
        adamw = super().create_optimizer(model)  # Trainer's own, for its parameter groups and hyperparameters
        if type(adamw) is not torch.optim.AdamW or adamw.defaults["amsgrad"] or adamw.defaults["maximize"]:
            optim = getattr(self.args.optim, "value", self.args.optim)
            raise InputError(
                f"--contrastive_normaliser separate replaces AdamW; --optim {optim} built "
                f"{type(adamw).__name__}: use adamw_torch or adamw_torch_fused (the default)"
            )
        self.optimizer = SeparateNormaliserAdamW(
            [{"params": group["params"], "weight_decay": group["weight_decay"]} for group in adamw.param_groups],
            lr=adamw.defaults["lr"], betas=adamw.defaults["betas"], eps=adamw.defaults["eps"],
            contrastive_step_scale=config.contrastive_step_scale,
        )  # fmt: skip
        return self.optimizer

    def _build_accelerator_args(self, **kwargs) -> dict:
        # Trainer builds DDP's options here, in its __init__. The projection heads get no gradient in a warm-up step,
        # and under activation checkpointing Trainer would tell DDP that every parameter gets one (an error at the
        # second step); so with a warm-up DDP looks for unused parameters, unless the user said otherwise. (The
        # model is not wrapped yet, and there is no accelerator for `_pc2l_config` to unwrap it with.)
        if self.args.ddp_find_unused_parameters is None and unwrap_peft_model(self.model).config.contrastive_warmup_ratio:
            self.args.ddp_find_unused_parameters = True
        return super()._build_accelerator_args(**kwargs)

    def in_contrastive_warmup(self, model) -> bool:
        """Whether this training step is one of the first `config.contrastive_warmup_ratio` of the run's optimizer
        steps, which train on cross-entropy alone (evaluation always scores eq. 11)."""
        ratio = self._pc2l_config(model).contrastive_warmup_ratio
        return bool(ratio) and model.training and self.state.global_step < ratio * self.state.max_steps

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.in_contrastive_warmup(model):
            # Cross-entropy alone: nothing only the contrastive losses read is computed (the hard negatives' decoder
            # pass, the likelihood score's swapped copies, the text-only pass, the projection heads).
            inputs = {**inputs, "contrastive_losses": False}
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def loss_and_parts(self, model, outputs, inputs: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.in_contrastive_warmup(model):
            return outputs.loss, {"loss_ce": outputs.loss}
        config = self._pc2l_config(model)
        loss, parts = total_loss(config, outputs, inputs)
        if model.training and torch.is_grad_enabled():
            if config.gradient_conflicts == "projected":
                loss, diagnostics = conflict_projected_loss(loss, outputs.loss, model.parameters())
                parts |= diagnostics
            elif config.contrastive_normaliser == "separate":
                loss = contrastive_gradient_kept_aside(loss, outputs.loss, model.parameters())
        return loss, parts

    def _pc2l_config(self, model):
        return unwrap_peft_model(self.accelerator.unwrap_model(model)).config


__all__ = [
    "GeneratorTrainer",
    "PC2LTrainer",
    "SeparateNormaliserAdamW",
    "check_generator_training_args",
    "conflict_projected_loss",
    "contrastive_gradient_kept_aside",
]
