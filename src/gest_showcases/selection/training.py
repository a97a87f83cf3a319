"""Training and evaluation of the DPP selector: its `Trainer`, the random baseline and the Table 3 ablation.

[`DPPSelectorTrainer`] is a `transformers.Trainer` for [`DPPImageSelector`]: one process (CPU or GPU) or DDP under
`accelerate launch`, scored on a validation split by F1@K after every epoch (`compute_metrics`), the best epoch
kept (`load_best_model_at_end`). `train_selector` runs it with the paper's settings (`SelectorTrainingArguments`).
`run_selection_ablation` reproduces the layout of the paper's Table 3: a random baseline and one model per input
mode (`img`, `text`, `img+text`), scored by Precision@K, Recall@K, F1@K and div@K, plus one reference row the paper
does not have, `history-cosine` (no training: the candidates closest to the user's history photos), which says what
a learned selector must beat; `write_selection_table` writes it as `table3.md` and `table3.json`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from accelerate import PartialState
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import EvalPrediction, TrainingArguments

from ..errors import check_at_least
from ..files import write_text_atomically
from ..metrics.selection import (
    diversity_at_k,
    f1_score,
    precision_at_k,
    recall_at_k,
    summarize_selection,
)
from ..numerics import NonFiniteError, check_finite_rows
from ..trainer_utils import (
    CollatorReadsRawExamples,
    FiniteTrainer,
    PlainAdam,
    drop_use_cache,
    kept_global_random_state,
    log_to_logger,
    remove_checkpoints,
)
from .configuration_dpp import INPUT_MODES, DPPSelectorConfig
from .dataset import SelectionDataset, collate_selection
from .greedy import GreedyMapOutput
from .modeling_dpp import DPPImageSelector, history_cosine

logger = logging.getLogger(__name__)

HISTORY_COSINE = "history-cosine"
# Table 3's rows: the paper's random baseline and three learned input modes, and the untrained history-cosine reference.
METHODS = ("random", HISTORY_COSINE, *INPUT_MODES)


@dataclass
class SelectorTrainingArguments:
    """Optimisation and evaluation settings (the paper's: Adam, lr 1e-3, batch 512, K = 3).

    [`DPPSelectorTrainer`] runs on the `transformers.TrainingArguments` that `to_training_arguments` makes of them.
    """

    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate."})
    batch_size: int = field(default=512, metadata={"help": "Training examples per step (per process)."})
    num_train_epochs: int = field(default=20, metadata={"help": "Passes over the training set."})
    eval_batch_size: int = field(default=1024, metadata={"help": "Examples per selection batch."})
    top_k: int = field(
        default=3, metadata={"help": "Images selected per (user, business): the K of the metrics."}
    )
    seed: int = field(
        default=42, metadata={"help": "Seed for initialisation, shuffling and the random baseline."}
    )

    def __post_init__(self):
        check_at_least(self, learning_rate=0, batch_size=1, num_train_epochs=1, eval_batch_size=1, top_k=1)

    def to_training_arguments(
        self, output_dir: str | Path, use_cpu: bool = False, validate: bool = True
    ) -> TrainingArguments:
        """The `TrainingArguments` of the paper's recipe: plain Adam at a constant rate, no clipping, no decay.

        With `validate`, F1@K on the evaluation set after every epoch chooses the model kept at the end (the
        earliest of equal scores), and only an epoch that beats the previous best is saved, as one checkpoint
        in `output_dir` (the weights only).
        """
        return TrainingArguments(
            output_dir=str(output_dir),
            learning_rate=self.learning_rate,
            lr_scheduler_type="constant",
            weight_decay=0.0,
            max_grad_norm=0.0,  # no clipping
            per_device_train_batch_size=self.batch_size,
            per_device_eval_batch_size=self.eval_batch_size,
            num_train_epochs=self.num_train_epochs,
            seed=self.seed,
            eval_strategy="epoch" if validate else "no",
            save_strategy="best" if validate else "no",
            metric_for_best_model=f"f1@{self.top_k}" if validate else None,
            load_best_model_at_end=validate,
            save_total_limit=1,
            save_only_model=True,
            logging_strategy="epoch",
            report_to="none",
            use_cpu=use_cpu,
            dataloader_pin_memory=not use_cpu,
            remove_unused_columns=False,
            # Shuffling is the selector's own (`DPPSelectorTrainer.get_train_dataloader`), not re-seeded per epoch.
            accelerator_config={"use_seedable_sampler": False},
        )


def history_cosine_select(
    profile_image: torch.Tensor, candidate_features: torch.Tensor, candidate_mask: torch.BoolTensor, k: int
) -> GreedyMapOutput:
    """The `history-cosine` reference: the `k` candidates whose features are closest (cosine) to the user's image
    profile, the mean feature of their history photos. No training, no diversity term.

    It is the rule a learned selector's image relevance starts from in spirit: a user photographs again what they
    photographed before. On Gest-Synth, whose users photograph their favourite dishes 8x as often as others, it is
    a strong baseline that the learned selectors have not beaten (docs/experiments.md, Table 3).

    Args:
        profile_image (`torch.FloatTensor` of shape `(batch_size, image_dim)`): mean history-photo features; a row of
            zeros (no history photo) scores every candidate 0, and the pool's first `k` are taken.
        candidate_features (`torch.FloatTensor` of shape `(batch_size, N, image_dim)`): candidate features.
        candidate_mask (`torch.BoolTensor` of shape `(batch_size, N)`): `True` for real candidates.
        k (`int`): images per pool.

    Returns:
        `GreedyMapOutput` with `indices` `(batch_size, k)` in decreasing similarity (`-1`-padded) and `counts`.
    """
    scores = history_cosine(profile_image, candidate_features).masked_fill(~candidate_mask, -torch.inf)
    # A stable sort: ties (a user without history photos) keep pool order on every device, which topk does not promise.
    top_scores, top = scores.sort(dim=-1, descending=True, stable=True)
    top_scores, top = top_scores[:, :k], top[:, :k]
    indices = torch.full((scores.shape[0], k), -1, dtype=torch.long, device=scores.device)
    indices[:, : top.shape[1]] = top.masked_fill(top_scores == -torch.inf, -1)
    return GreedyMapOutput(indices, (indices >= 0).sum(dim=-1))


def history_cosine_selector(k: int) -> Callable[[dict[str, torch.Tensor]], torch.LongTensor]:
    """`evaluate_selection`'s `select` for the `history-cosine` reference (`history_cosine_select`)."""

    def select(batch: dict[str, torch.Tensor]) -> torch.LongTensor:
        return history_cosine_select(
            batch["profile_image"], batch["candidate_features"], batch["candidate_mask"], k
        ).indices

    return select


def compute_selection_metrics(eval_prediction: EvalPrediction, k: int) -> dict[str, float]:
    """`compute_metrics` of [`DPPSelectorTrainer`]: Precision@K, Recall@K and F1@K of the greedy picks.

    Args:
        eval_prediction (`EvalPrediction`): `predictions`, the picks `[M, k]` (`-1`-padded); `label_ids`, which
            candidates were posted `[M, N]` (1 posted, 0 not, -100 padding).
        k (`int`): the K of the metrics.

    Returns:
        `dict` with `precision@{k}`, `recall@{k}` and `f1@{k}`, averaged as `summarize_selection` averages them.
    """
    selected = torch.as_tensor(eval_prediction.predictions)
    relevant = torch.as_tensor(eval_prediction.label_ids) == 1
    precision = precision_at_k(selected, relevant, k).mean().item()
    recall = recall_at_k(selected, relevant, k).mean().item()
    return {f"precision@{k}": precision, f"recall@{k}": recall, f"f1@{k}": f1_score(precision, recall)}


class DPPSelectorTrainer(CollatorReadsRawExamples, PlainAdam, FiniteTrainer):
    """A `Trainer` for [`DPPImageSelector`]: the DPP negative log-likelihood on batches of
    `collate_selection(..., distinct_images=True)`, evaluated by the greedy MAP picks.

    What differs from the stock `Trainer`:

    - Batches: one `DataLoader(shuffle=True)` over a generator seeded once with `args.seed`, as the selector was
      always trained (no per-epoch re-seeding).
    - Optimizer: `torch.optim.Adam` (the paper's), not AdamW.
    - Evaluation: `prediction_step` returns the top-`top_k` picks as predictions and the posted images as labels,
      for `compute_metrics` (e.g. [`compute_selection_metrics`]); no evaluation loss, so `load_best_model_at_end`
      keeps the best `f1@top_k` unless `metric_for_best_model` names another metric.
    - The examples reach the collator whole, whatever `remove_unused_columns` says.
    - NaN: a failed Cholesky or a non-finite loss or gradient stops training with `NonFiniteError`, before the
      optimizer step. The gradients are left to the loss scaler under fp16 (an inf there is routine).
    - The loss of every training step on this process is kept in `step_losses`; logs go to `logging`, not stdout.

    Args:
        top_k (`int`, *optional*, defaults to 3): images picked per example in evaluation.
        Everything else as `Trainer`; `data_collator` defaults to `collate_selection(..., distinct_images=True)`.
    """

    def __init__(self, *args, top_k: int = 3, **kwargs):
        kwargs.setdefault("data_collator", partial(collate_selection, distinct_images=True))
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if training_args is not None and training_args.n_gpu > 1:
            # A batch's distinct images are indexed by every example: DataParallel's scatter would split them.
            # One process drives one device; several devices are DDP (`accelerate launch`).
            training_args._n_gpu = 1
        if training_args is not None and training_args.load_best_model_at_end and training_args.metric_for_best_model in (
            "loss", "eval_loss"
        ):  # fmt: skip
            # TrainingArguments' default; there is no evaluation loss here, the picks are scored.
            training_args.metric_for_best_model, training_args.greater_is_better = f"f1@{top_k}", True
        super().__init__(*args, **kwargs)
        drop_use_cache(self.model.config)
        self.top_k = top_k
        self.step_losses: list[float] = []
        log_to_logger(self, logger)

    def get_train_dataloader(self) -> DataLoader:
        loader = DataLoader(
            self.train_dataset,
            batch_size=self._train_batch_size,
            shuffle=True,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
            # One generator for the shuffling and the loader's worker seed, both drawn each epoch.
            generator=torch.Generator().manual_seed(self.args.seed),
        )
        return self.accelerator.prepare(loader)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        try:
            outputs = model(
                inputs["profile_text"],
                inputs["profile_image"],
                candidate_mask=inputs["candidate_mask"],
                target_mask=inputs["target_mask"],
                image_features=inputs["image_features"],
                candidate_image_index=inputs["candidate_image_index"],
                return_dict=True,
            )
        except torch.linalg.LinAlgError as error:
            # With finite inputs (checked by `train_selector`) and finite weights the kernel is positive definite
            # by construction: a failed Cholesky means the weights or activations overflowed.
            raise NonFiniteError(
                f"training stopped at step {self.state.global_step + 1} (epoch {self.current_epoch()}): the DPP kernel "
                "holds NaN or inf, the selector diverged at the previous step (no model is saved); lower "
                "--learning_rate"
            ) from error
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.step_losses.append(self.last_loss)
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        mask = inputs["candidate_mask"]
        # `select` scores one row per candidate: each slot's row of the batch's distinct images, zeros on padding
        # (what `collate_selection` pads the candidates' features with).
        slots = inputs["image_features"][inputs["candidate_image_index"].clamp(min=0)]
        candidate_features = slots.masked_fill(~mask.unsqueeze(-1), 0.0)
        with torch.no_grad():
            selection = self.accelerator.unwrap_model(model).select(
                inputs["profile_text"],
                inputs["profile_image"],
                candidate_features,
                candidate_mask=mask,
                k=self.top_k,
            )
        return None, selection.indices, inputs["target_mask"].long()


@dataclass
class SelectorTrainingOutput:
    """What `train_selector` returns.

    Args:
        model ([`DPPImageSelector`]): the trained model (the best epoch's weights with a validation set).
        losses (`list[float]`): the loss of every step (this process's batches).
        best_epoch (`int`, *optional*): the epoch kept (1-based), with a validation set.
        best_metric (`float`, *optional*): its validation F1@K.
    """

    model: DPPImageSelector
    losses: list[float]
    best_epoch: int | None = None
    best_metric: float | None = None


def random_select(
    candidate_mask: torch.BoolTensor, k: int, generator: torch.Generator | None = None
) -> GreedyMapOutput:
    """The `random` baseline: `k` distinct candidates drawn uniformly from each pool (all of a smaller pool).

    Args:
        candidate_mask (`torch.BoolTensor` of shape `(batch_size, N)`): `True` for real candidates.
        k (`int`): images per pool.
        generator (`torch.Generator`, *optional*): source of randomness, on `candidate_mask`'s device.

    Returns:
        `GreedyMapOutput` with `indices` `(batch_size, k)` (`-1`-padded) and `counts`.
    """
    batch_size, num_items = candidate_mask.shape
    scores = torch.rand(batch_size, num_items, generator=generator, device=candidate_mask.device)
    scores = scores.masked_fill(~candidate_mask, -1.0)  # padding sorts last
    top_scores, top = scores.topk(min(k, num_items), dim=-1)  # [B, min(k, N)]
    indices = torch.full((batch_size, k), -1, dtype=torch.long, device=candidate_mask.device)
    indices[:, : top.shape[1]] = top.masked_fill(top_scores < 0, -1)
    return GreedyMapOutput(indices, (indices >= 0).sum(dim=-1))


def train_selector(
    model: DPPImageSelector,
    dataset: SelectionDataset,
    args: SelectorTrainingArguments,
    validation_dataset: SelectionDataset | None = None,
    *,
    output_dir: str | Path | None = None,
    use_cpu: bool = False,
) -> SelectorTrainingOutput:
    """Maximises the DPP log-likelihood of the posted images with Adam on padded, masked batches.

    Runs [`DPPSelectorTrainer`] on `args.to_training_arguments()`: one process (CPU or GPU), or DDP under
    `accelerate launch`. With a validation set, F1@K is measured after every epoch and the model returned is the one
    of the best epoch (the earliest on ties): on small data the likelihood keeps rising on the training pools long
    after selection stops improving on new users.

    Args:
        model ([`DPPImageSelector`]): the model to train (in place).
        dataset ([`SelectionDataset`]): training examples.
        args ([`SelectorTrainingArguments`]): optimisation settings.
        validation_dataset ([`SelectionDataset`], *optional*): examples that choose the epoch.
        output_dir (`str` or `Path`, *optional*): folder of the best epoch's checkpoint while training runs (its
            `checkpoint-*` folders are removed at the end, the folder too when that leaves it empty); a temporary
            folder when not given, which only a single process can use: under DDP every process loads the best
            epoch from the same folder.
        use_cpu (`bool`, *optional*, defaults to `False`): train on CPU even when a GPU is present.

    Returns:
        [`SelectorTrainingOutput`]: the trained model (unwrapped, in eval mode), the loss of every step, the epoch
        kept and its validation F1@K.
    """
    for examples in (dataset, validation_dataset):
        if examples is not None:
            _check_finite_inputs(examples)
    validate = validation_dataset is not None
    temporary = output_dir is None
    with contextlib.ExitStack() as stack:
        if temporary:
            output_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="selector-"))
        training_args = args.to_training_arguments(output_dir, use_cpu, validate)
        if temporary and validate and training_args.world_size > 1:
            raise ValueError("under DDP, give train_selector an output_dir that every process reads")
        # The training's randomness is its own generator's; the Trainer re-seeds the global ones and its loaders draw
        # worker seeds from torch's: the caller's global random state is kept.
        with kept_global_random_state():
            trainer = DPPSelectorTrainer(
                model=model,
                args=training_args,
                train_dataset=dataset,
                eval_dataset=validation_dataset,
                compute_metrics=partial(compute_selection_metrics, k=args.top_k),
                top_k=args.top_k,
            )
            try:
                trainer.train()
                trainer.accelerator.wait_for_everyone()  # every process has loaded the best epoch before it goes
            finally:
                if trainer.is_world_process_zero():
                    remove_checkpoints(output_dir)
    output = SelectorTrainingOutput(model=model.eval(), losses=trainer.step_losses)
    if validate and trainer.state.best_metric is not None:
        metric = f"eval_f1@{args.top_k}"
        output.best_metric = trainer.state.best_metric
        output.best_epoch = next(
            round(log["epoch"]) for log in trainer.state.log_history if log.get(metric) == output.best_metric
        )
        logger.info(
            "mode %s: kept epoch %d of %d (validation f1@%d %.4f)",
            model.config.input_mode,
            output.best_epoch,
            args.num_train_epochs,
            args.top_k,
            output.best_metric,
        )
    return output


def _check_finite_inputs(dataset: SelectionDataset) -> None:
    """Refuse NaN/inf features before training, naming the images or examples (the DPP's Cholesky would
    otherwise fail with no word of NaN)."""
    remedy = "re-extract the features (gest-showcases features)"
    image_ids = dataset.image_ids or list(range(len(dataset.image_features)))
    check_finite_rows(dataset.image_features, image_ids, "image features", remedy)
    examples = list(range(len(dataset)))
    check_finite_rows(dataset.profile_text, examples, "text profiles (by example index)", remedy)
    check_finite_rows(dataset.profile_image, examples, "image profiles (by example index)", remedy)


@torch.no_grad()
def evaluate_selection(
    select: Callable[[dict[str, torch.Tensor]], torch.LongTensor],
    dataset: SelectionDataset,
    k: int,
    batch_size: int,
    device: torch.device | str = "cpu",
    description: str = "evaluate",
    show_progress: bool = True,
) -> dict[str, float]:
    """Scores a selection rule on every example of `dataset`.

    Args:
        select (`Callable`): maps a collated batch (on `device`) to selected positions `[B, k]`, `-1`-padded.
        dataset ([`SelectionDataset`]): examples with their posted images as ground truth.
        k (`int`): the K of the metrics.
        batch_size (`int`): examples per batch.
        device: where batches go.
        description (`str`): progress-bar label.
        show_progress (`bool`): whether to draw the progress bar.

    Returns:
        `dict` with `precision@{k}`, `recall@{k}`, `f1@{k}`, `div@{k}` (fractions), see
        `gest_showcases.metrics.selection.summarize_selection`.
    """
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_selection)
    precision, recall, diversity = [], [], []
    for batch in tqdm(loader, desc=description, disable=not show_progress):
        batch = {name: tensor.to(device) for name, tensor in batch.items()}
        selected = select(batch)
        precision.append(precision_at_k(selected, batch["target_mask"], k).cpu())
        recall.append(recall_at_k(selected, batch["target_mask"], k).cpu())
        diversity.append(diversity_at_k(selected, batch["candidate_features"], k).cpu())
    return summarize_selection(torch.cat(precision), torch.cat(recall), torch.cat(diversity), k)


def model_selector(model: DPPImageSelector, k: int) -> Callable[[dict[str, torch.Tensor]], torch.LongTensor]:
    """`evaluate_selection`'s `select` for a trained model: greedy MAP under its kernel."""

    def select(batch: dict[str, torch.Tensor]) -> torch.LongTensor:
        return model.select(
            batch["profile_text"],
            batch["profile_image"],
            batch["candidate_features"],
            candidate_mask=batch["candidate_mask"],
            k=k,
        ).indices

    return select


def random_selector(k: int, seed: int) -> Callable[[dict[str, torch.Tensor]], torch.LongTensor]:
    """`evaluate_selection`'s `select` for the random baseline, seeded (CPU generator, moved per batch)."""
    generator = torch.Generator().manual_seed(seed)

    def select(batch: dict[str, torch.Tensor]) -> torch.LongTensor:
        mask = batch["candidate_mask"]
        return random_select(mask.cpu(), k, generator).indices.to(mask.device)

    return select


def run_selection_ablation(
    train_dataset: SelectionDataset,
    eval_dataset: SelectionDataset,
    base_config: DPPSelectorConfig,
    args: SelectorTrainingArguments,
    methods: tuple[str, ...] = METHODS,
    validation_dataset: SelectionDataset | None = None,
    *,
    output_dir: str | Path | None = None,
    use_cpu: bool = False,
) -> tuple[dict[str, dict[str, float]], dict[str, DPPImageSelector]]:
    """The paper's Table 3: the random baseline and one selector trained per input mode, and the untrained
    `history-cosine` reference (`history_cosine_select`).

    Args:
        train_dataset, eval_dataset ([`SelectionDataset`]): training and evaluation examples.
        base_config ([`DPPSelectorConfig`]): copied per mode with `input_mode` set to it (and its `history_prior`
            set to 0 for `"text"`, which does not see the image profile the prior reads).
        args ([`SelectorTrainingArguments`]): training and evaluation settings.
        methods (`tuple[str, ...]`): subset of `METHODS`: `("random", "history-cosine", "img", "text", "img+text")`.
        validation_dataset ([`SelectionDataset`], *optional*): chooses each model's epoch (`train_selector`).
        output_dir (`str` or `Path`, *optional*): each mode's checkpoints go to `output_dir/checkpoints-<mode>`
            while it trains (removed after; needed under DDP with a validation set), else to a temporary folder.
        use_cpu (`bool`, *optional*, defaults to `False`): train and evaluate on CPU even when a GPU is present.

    Returns:
        Metrics per method (empty on non-main processes) and the trained model per input mode. Training runs on
        every process (DDP under `accelerate launch`), evaluation on the main one.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; expected a subset of {METHODS}")
    state = PartialState(cpu=use_cpu)
    results: dict[str, dict[str, float]] = {}
    models: dict[str, DPPImageSelector] = {}
    for method in methods:
        if method == "random":
            select = random_selector(args.top_k, args.seed)
        elif method == HISTORY_COSINE:
            select = history_cosine_selector(args.top_k)
        else:
            torch.manual_seed(args.seed)
            # The text mode does not see the image profile the prior reads: it keeps the paper's model.
            prior = 0.0 if method == "text" else base_config.history_prior
            config = DPPSelectorConfig.from_dict(
                base_config.to_dict() | {"input_mode": method, "top_k": args.top_k, "history_prior": prior}
            )
            checkpoints = None if output_dir is None else Path(output_dir) / f"checkpoints-{method}"
            models[method] = train_selector(
                DPPImageSelector(config),
                train_dataset,
                args,
                validation_dataset,
                output_dir=checkpoints,
                use_cpu=use_cpu,
            ).model
            select = model_selector(models[method], args.top_k)
        if state.is_main_process:
            results[method] = evaluate_selection(
                select,
                eval_dataset,
                args.top_k,
                args.eval_batch_size,
                state.device,
                f"evaluate {method}",
            )
            logger.info("%s: %s", method, results[method])
        state.wait_for_everyone()
    return results, models


def format_selection_table(results: dict[str, dict[str, float]], k: int) -> str:
    """Markdown table in the layout of the paper's Table 3, values in percent with two decimals."""
    keys = (f"precision@{k}", f"recall@{k}", f"f1@{k}", f"div@{k}")
    lines = [
        f"| Method | Prec@{k} | Recall@{k} | F1@{k} | Div@{k} |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {method} | " + " | ".join(f"{100 * metrics[key]:.2f}" for key in keys) + " |"
        for method, metrics in results.items()
    ]
    return "\n".join(lines)


def write_selection_table(
    results: dict[str, dict[str, float]], k: int, output_dir: str | Path, counts: dict[str, int]
) -> str:
    """Writes Table 3 as `table3.md` (`format_selection_table`) and `table3.json` (percent, with the number of
    examples per split in `counts`) to `output_dir`; returns the markdown."""
    markdown = format_selection_table(results, k)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(output_dir / "table3.md", markdown + "\n")
    payload = {
        "k": k,
        "unit": "percent",
        "examples": counts,
        "results": {
            method: {key: 100 * value for key, value in metrics.items()}
            for method, metrics in results.items()
        },
    }
    write_text_atomically(output_dir / "table3.json", json.dumps(payload, indent=2) + "\n")
    return markdown


__all__ = [
    "HISTORY_COSINE",
    "METHODS",
    "DPPSelectorTrainer",
    "SelectorTrainingArguments",
    "SelectorTrainingOutput",
    "compute_selection_metrics",
    "evaluate_selection",
    "format_selection_table",
    "history_cosine_select",
    "history_cosine_selector",
    "model_selector",
    "random_select",
    "random_selector",
    "run_selection_ablation",
    "train_selector",
    "write_selection_table",
]
