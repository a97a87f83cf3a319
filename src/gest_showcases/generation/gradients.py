"""How the two parts of eq. 11's gradient are combined, as options of `PC2LConfig` (the paper's default adds them and
takes one AdamW step on the sum): `gradient_conflicts="projected"` (one-sided PCGrad, [`conflict_projected_loss`]) and
`contrastive_normaliser="separate"` (each part an Adam step on moments of its own, [`contrastive_gradient_kept_aside`]
with [`SeparateNormaliserAdamW`]); docs/experiments.md, H28-H30.

Torch only, so the benchmarks (`benchmarks/bench_pc2l.py`) time the same code that `PC2LTrainer` runs.
"""

import math

import torch

from gest_showcases.numerics import NonFiniteError


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


__all__ = ["SeparateNormaliserAdamW", "conflict_projected_loss", "contrastive_gradient_kept_aside"]
