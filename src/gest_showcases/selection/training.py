"""Training and evaluation of the DPP selector: the loop, the random baseline and the Table 3 ablation.

`train_selector` runs under `accelerate launch` (one process, CPU or GPU, or DDP); evaluation runs on
the main process. `run_selection_ablation` reproduces the layout of the paper's Table 3: a random
baseline and one model per input mode (`img`, `text`, `img+text`), scored by Precision@K, Recall@K,
F1@K and div@K.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..metrics.selection import diversity_at_k, precision_at_k, recall_at_k, summarize_selection
from ..numerics import NonFiniteError, check_finite_rows, check_finite_step
from .configuration_dpp import INPUT_MODES, DPPSelectorConfig
from .dataset import SelectionDataset, collate_selection
from .greedy import GreedyMapOutput
from .modeling_dpp import DPPImageSelector

logger = logging.getLogger(__name__)

METHODS = ("random", *INPUT_MODES)


@dataclass
class SelectorTrainingArguments:
    """Optimisation and evaluation settings (the paper's: Adam, lr 1e-3, batch 512, K = 3)."""

    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate."})
    batch_size: int = field(default=512, metadata={"help": "Training examples per step (per process)."})
    num_epochs: int = field(default=20, metadata={"help": "Passes over the training set."})
    eval_batch_size: int = field(default=1024, metadata={"help": "Examples per selection batch."})
    top_k: int = field(
        default=3, metadata={"help": "Images selected per (user, business): the K of the metrics."}
    )
    seed: int = field(
        default=42, metadata={"help": "Seed for initialisation, shuffling and the random baseline."}
    )


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
    accelerator: Accelerator,
    validation_dataset: SelectionDataset | None = None,
) -> tuple[DPPImageSelector, list[float]]:
    """Maximises the DPP log-likelihood of the posted images with Adam on padded, masked batches.

    Each batch embeds each of its distinct images once (`collate_selection(..., distinct_images=True)`).

    With a validation set, F1@K is measured after every epoch and the model returned is the one of the
    best epoch (the earliest on ties), as `load_best_model_at_end` does in transformers' `Trainer`:
    on small data the likelihood keeps rising on the training pools long after selection stops
    improving on new users.

    Args:
        model ([`DPPImageSelector`]): the model to train (in place).
        dataset ([`SelectionDataset`]): training examples.
        args ([`SelectorTrainingArguments`]): optimisation settings.
        accelerator (`accelerate.Accelerator`): device placement and, under `accelerate launch`, DDP.
        validation_dataset ([`SelectionDataset`], *optional*): examples that choose the epoch. Every
            process scores all of it, so all processes agree on the best epoch.

    Returns:
        The unwrapped trained model and the loss of every step (this process's batches).
    """
    for examples in (dataset, validation_dataset):
        if examples is not None:
            _check_finite_inputs(examples)
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        collate_fn=partial(collate_selection, distinct_images=True),
        generator=torch.Generator().manual_seed(args.seed),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    wrapped, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    unwrapped = accelerator.unwrap_model(wrapped)  # the module DDP wraps: what is scored and saved
    wrapped.train()
    losses: list[float] = []
    best_score, best_state, best_epoch = -1.0, None, -1
    progress = tqdm(
        total=args.num_epochs * len(loader),
        desc=f"train {model.config.input_mode}",
        disable=not accelerator.is_local_main_process,
    )
    for epoch in range(args.num_epochs):
        for batch in loader:
            step = len(losses) + 1
            try:
                output = wrapped(
                    batch["profile_text"],
                    batch["profile_image"],
                    candidate_mask=batch["candidate_mask"],
                    target_mask=batch["target_mask"],
                    image_features=batch["image_features"],
                    candidate_image_index=batch["candidate_image_index"],
                )
            except torch.linalg.LinAlgError as error:
                # With finite inputs (checked above) and finite weights the kernel is positive definite
                # by construction: a failed Cholesky means the weights or activations overflowed.
                raise NonFiniteError(
                    f"training stopped at step {step} (epoch {epoch + 1}): the DPP kernel holds NaN or inf, the "
                    "selector diverged at the previous step (no model is saved); lower --learning_rate"
                ) from error
            accelerator.backward(output.loss)
            # After backward (gradients are all-reduced under DDP, so every process stops together) and
            # before the step: a NaN gradient would make every weight NaN. Under fp16 loss scaling an
            # inf gradient is routine (the scaler skips that step), so only the loss is checked there.
            losses.append(
                check_finite_step(
                    output.loss,
                    step,
                    unwrapped.parameters() if accelerator.scaler is None else None,
                    where=f"epoch {epoch + 1}",
                )
            )
            optimizer.step()
            optimizer.zero_grad()
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
            progress.update()
        logger.info("mode %s epoch %d: last loss %.4f", model.config.input_mode, epoch, losses[-1])
        if validation_dataset is not None:
            score = _validation_f1(unwrapped, validation_dataset, args, accelerator)
            logger.info(
                "mode %s epoch %d: validation f1@%d %.6f", model.config.input_mode, epoch, args.top_k, score
            )
            if score > best_score:
                best_score = score
                best_state = {k: v.detach().clone() for k, v in unwrapped.state_dict().items()}
                best_epoch = epoch
            wrapped.train()
    progress.close()
    wrapped.eval()
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
        logger.info(
            "mode %s: kept epoch %d (validation f1@%d %.4f)",
            model.config.input_mode,
            best_epoch,
            args.top_k,
            best_score,
        )
    return unwrapped, losses


def _check_finite_inputs(dataset: SelectionDataset) -> None:
    """Refuse NaN/inf features before training, naming the images or examples (the DPP's Cholesky would
    otherwise fail with no word of NaN)."""
    remedy = "re-extract the features (gest-showcases features)"
    image_ids = dataset.image_ids or list(range(len(dataset.image_features)))
    check_finite_rows(dataset.image_features, image_ids, "image features", remedy)
    examples = list(range(len(dataset)))
    check_finite_rows(dataset.profile_text, examples, "text profiles (by example index)", remedy)
    check_finite_rows(dataset.profile_image, examples, "image profiles (by example index)", remedy)


def _validation_f1(
    model: DPPImageSelector,
    dataset: SelectionDataset,
    args: SelectorTrainingArguments,
    accelerator: Accelerator,
) -> float:
    """F1@K of the model's greedy MAP picks on `dataset`, no progress bar (called once per epoch)."""
    model.eval()
    metrics = evaluate_selection(
        model_selector(model, args.top_k),
        dataset,
        args.top_k,
        args.eval_batch_size,
        accelerator.device,
        show_progress=False,
    )
    return metrics[f"f1@{args.top_k}"]


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
    accelerator: Accelerator,
    methods: tuple[str, ...] = METHODS,
    validation_dataset: SelectionDataset | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, DPPImageSelector]]:
    """The paper's Table 3: the random baseline and one selector trained per input mode.

    Args:
        train_dataset, eval_dataset ([`SelectionDataset`]): training and evaluation examples.
        base_config ([`DPPSelectorConfig`]): copied per mode with `input_mode` set to it.
        args ([`SelectorTrainingArguments`]): training and evaluation settings.
        accelerator (`accelerate.Accelerator`): used for training; evaluation runs on the main process.
        methods (`tuple[str, ...]`): subset of `("random", "img", "text", "img+text")`.
        validation_dataset ([`SelectionDataset`], *optional*): chooses each model's epoch (`train_selector`).

    Returns:
        Metrics per method (empty on non-main processes) and the trained model per input mode.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; expected a subset of {METHODS}")
    results: dict[str, dict[str, float]] = {}
    models: dict[str, DPPImageSelector] = {}
    for method in methods:
        if method == "random":
            select = random_selector(args.top_k, args.seed)
        else:
            torch.manual_seed(args.seed)
            config = DPPSelectorConfig.from_dict(
                {**base_config.to_dict(), "input_mode": method, "top_k": args.top_k}
            )
            models[method], _ = train_selector(
                DPPImageSelector(config), train_dataset, args, accelerator, validation_dataset
            )
            select = model_selector(models[method], args.top_k)
        if accelerator.is_main_process:
            results[method] = evaluate_selection(
                select,
                eval_dataset,
                args.top_k,
                args.eval_batch_size,
                accelerator.device,
                f"evaluate {method}",
            )
            logger.info("%s: %s", method, results[method])
        accelerator.wait_for_everyone()
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


__all__ = [
    "METHODS",
    "SelectorTrainingArguments",
    "evaluate_selection",
    "format_selection_table",
    "model_selector",
    "random_select",
    "random_selector",
    "run_selection_ablation",
    "train_selector",
]
