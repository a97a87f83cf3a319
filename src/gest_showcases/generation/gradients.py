"""How the two parts of eq. 11's gradient are combined, as options of `PC2LConfig` (the paper's default adds them and
takes one AdamW step on the sum): `gradient_conflicts="projected"` (one-sided PCGrad, [`conflict_projected_loss`]) and
`contrastive_normaliser="separate"` (each part an Adam step on moments of its own, [`contrastive_gradient_kept_aside`]
with [`SeparateNormaliserAdamW`]); docs/experiments.md, H28-H30.

No Trainer here, so the benchmarks (`benchmarks/bench_pc2l.py`) time the same code that `PC2LTrainer` runs.
"""

import torch
from torch.optim.adam import adam

from gest_showcases.numerics import NonFiniteError

from .losses import contrastive_loss


def conflict_projected_loss(
    total: torch.Tensor, cross_entropy: torch.Tensor, contrastive: torch.Tensor, parameters
) -> tuple[torch.Tensor, dict]:
    """`total` (eq. 11), with the gradient of one-sided PCGrad (Yu et al., 2020; `gradient_conflicts="projected"`).

    With `g_ce` the gradient of `cross_entropy` and `g_c` that of `contrastive` (`total - cross_entropy`, as a graph of
    its own: [`losses.contrastive_loss`]),
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
    contrastive_gradients = torch.autograd.grad(contrastive, parameters, allow_unused=True)
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


def contrastive_gradient_kept_aside(
    total: torch.Tensor, cross_entropy: torch.Tensor, contrastive: torch.Tensor, parameters
) -> torch.Tensor:
    """`total` (eq. 11), whose backward puts cross-entropy's gradient alone in `.grad`; the contrastive part's
    gradient (of `contrastive`, [`losses.contrastive_loss`], one backward pass of its own) is added to each parameter's
    `contrastive_grad`, which [`SeparateNormaliserAdamW`] steps on (`contrastive_normaliser="separate"`).

    Micro-batches of one optimizer step add up in `contrastive_grad` unscaled, where `.grad` gets each divided by the
    accumulation steps: Adam's step does not depend on a gradient's constant scale (up to `eps`).
    """
    parameters = [parameter for parameter in parameters if parameter.requires_grad]
    gradients = torch.autograd.grad(contrastive, parameters, retain_graph=True, allow_unused=True)
    for parameter, gradient in zip(parameters, gradients, strict=True):
        if gradient is not None:
            kept = getattr(parameter, "contrastive_grad", None)
            parameter.contrastive_grad = gradient if kept is None else kept + gradient
    return total.detach() + (cross_entropy - cross_entropy.detach())


def combined_gradient_loss(config, total: torch.Tensor, parts: dict, parameters) -> tuple[torch.Tensor, dict]:
    """`total` (eq. 11, with `parts` as [`losses.total_loss`] returns them) made to give the gradient `config` asks
    for: the paper's sum (unchanged), one-sided PCGrad (`gradient_conflicts="projected"`) or cross-entropy's alone
    with the contrastive part's kept aside (`contrastive_normaliser="separate"`); with the diagnostics to log. What
    `PC2LTrainer` and the benchmarks call."""
    if config.gradient_conflicts == "projected":
        return conflict_projected_loss(total, parts["loss_ce"], contrastive_loss(config, parts), parameters)
    if config.contrastive_normaliser == "separate":
        contrastive = contrastive_loss(config, parts)
        return contrastive_gradient_kept_aside(total, parts["loss_ce"], contrastive, parameters), {}
    return total, {}


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

    def _moments(self, parameter: torch.Tensor, part: str) -> dict:
        """`part`'s Adam state of `parameter` (`step`, `exp_avg`, `exp_avg_sq`, as torch's Adam keeps them), made at
        its first step. Nested per part, so that `load_state_dict` treats each `step` as torch's Adam's."""
        state = self.state[parameter]
        if part not in state:
            state[part] = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(parameter),
                           "exp_avg_sq": torch.zeros_like(parameter)}  # fmt: skip
        return state[part]

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
            stepped = [
                parameter
                for parameter in group["params"]
                if parameter.grad is not None or getattr(parameter, "contrastive_grad", None) is not None
            ]
            if not stepped:
                continue
            if group["weight_decay"]:
                torch._foreach_mul_(stepped, 1 - group["lr"] * group["weight_decay"])
            # Each part: its state's name, the gradient attribute it reads, its step's share of the learning rate.
            parts = (("cross_entropy", "grad", 1.0), ("contrastive", "contrastive_grad", group["contrastive_step_scale"]))
            for part, attribute, scale in parts:
                parameters = [parameter for parameter in stepped if getattr(parameter, attribute, None) is not None]
                if not parameters:
                    continue
                moments = [self._moments(parameter, part) for parameter in parameters]
                # torch's own Adam update, the decay done above once for both parts: its fused kernel on CPU, as the
                # Trainer's default AdamW steps there (torch's default there, one parameter at a time, made a
                # GPT-2-small step 1.3 s slower in session 40), its default (foreach kernels) on a GPU.
                on_cpu = all(parameter.device.type == "cpu" for parameter in parameters)
                adam(parameters, [getattr(parameter, attribute) for parameter in parameters],
                     [state["exp_avg"] for state in moments], [state["exp_avg_sq"] for state in moments], [],
                     [state["step"] for state in moments], fused=on_cpu or None, amsgrad=False,
                     beta1=group["betas"][0], beta2=group["betas"][1], lr=group["lr"] * scale, weight_decay=0.0,
                     eps=group["eps"], maximize=False)  # fmt: skip
            for parameter in stepped:
                parameter.contrastive_grad = None
        return loss


__all__ = [
    "SeparateNormaliserAdamW",
    "combined_gradient_loss",
    "conflict_projected_loss",
    "contrastive_gradient_kept_aside",
]
