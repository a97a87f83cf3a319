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

from collections import defaultdict

import torch
from transformers.trainer_utils import unwrap_peft_model

from gest_showcases.errors import InputError
from gest_showcases.trainer_utils import CollatorReadsRawExamples, FiniteTrainer

from .configuration_pc2l import PAPER_GRADIENT_SETTINGS
from .gradients import SeparateNormaliserAdamW, combined_gradient_loss
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
        distributed = self.args.world_size > 1 or self.is_deepspeed_enabled or self.is_fsdp_enabled
        if config.takes_gradients_apart and (distributed or self.args.fp16):
            options = [f"--{name} {getattr(config, name)}" for name, paper in PAPER_GRADIENT_SETTINGS.items()
                       if getattr(config, name) != paper]  # fmt: skip
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
            loss, diagnostics = combined_gradient_loss(config, loss, parts, model.parameters())
            parts |= diagnostics
        return loss, parts

    def _pc2l_config(self, model):
        return unwrap_peft_model(self.accelerator.unwrap_model(model)).config


__all__ = [
    "GeneratorTrainer",
    "PC2LTrainer",
    "check_generator_training_args",
]
