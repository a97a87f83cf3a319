"""What the package's `Trainer`s share: the generators', the selector's, the explanation classifier's and the stand-in
CLIP's.

- [`FiniteTrainer`]: the one NaN guard of every training: a non-finite loss or gradient stops it before the optimizer
  step, and a model its last step made non-finite is neither evaluated nor saved.
- [`CollatorReadsRawExamples`]: the examples reach a collator that reads their own keys whole, whatever
  `remove_unused_columns` says.
- [`save_model_atomically`]: a command's final `save_model`, replacing the model folder whole (`files.saving_into`).
- [`EpochPermutationSampler`]: the epoch order of a loop over `torch.randperm(n, generator=generator)`, which the
  classifier and the stand-in CLIP were trained with before they moved onto `Trainer`; their results stay the same.
- [`LoggingProgressCallback`]: `Trainer`'s progress bar, with the logs (losses, evaluation metrics) sent to
  `logging` instead of printed to stdout, which carries each command's results (Table 3, the classifier's metrics,
  the CLIP summary) only.
- [`kept_global_random_state`]: `Trainer` re-seeds the process's global random generators and its data loaders draw
  from torch's; these trainings take their randomness from their own generators, and a caller (the demo, which runs
  every command in one process) draws next what it would have drawn before they moved onto `Trainer`.
- [`drop_use_cache`]: `Trainer` sets `config.use_cache` on every model; the selector and the classifier cache
  nothing, and their saved `config.json` stays as it was.
- [`checkpoint_to_resume`]: the checkpoint a long training command (`train-pc2l`, `train-generator`,
  `finetune-lm`) resumes from with `--resume_from_checkpoint`, which `Trainer` itself never reads;
  [`remove_checkpoints`] once a run that saved them is done.

This module imports only torch, NumPy, transformers, `errors`, `files` and `numerics`, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Sampler
from transformers import PreTrainedConfig, ProgressCallback, Trainer, TrainingArguments
from transformers.trainer import OPTIMIZER_NAME, TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, SaveStrategy

from gest_showcases.errors import InputError, one_line
from gest_showcases.files import saving_into
from gest_showcases.numerics import NonFiniteError, check_finite_step, check_finite_weights

logger = logging.getLogger(__name__)


class FiniteTrainer(Trainer):
    """A `Trainer` that raises `NonFiniteError` at the first NaN/inf loss or gradient, before the optimizer step.

    The check sits in `training_step`, after `backward`: the loss of every micro-batch, and on the micro-batch
    that completes an optimizer step the norm of the (all-reduced) gradients, so under DDP every process stops at the
    same step. The gradients are left to the loss scaler under fp16 (an inf there is routine: the scaler skips the
    step) and to DeepSpeed and FSDP, which keep them off the parameters. The loss crosses to the host once, as the
    stock loop's NaN filter already does; its value is kept in `last_loss` for subclasses that record it.

    What the step check cannot see is refused too. `train` ends by checking the model its last step made: its weights
    (a finite gradient times a huge learning rate overflows them) and one forward pass of its last batch, in eval mode
    (finite weights whose logits overflow: a learning rate of 1e37); every process stops when any finds NaN. That pass
    changes nothing: no gradient, no batch-norm statistic, no random draw. `save_model` (checkpoints included) and
    `evaluate` check the weights, and `evaluate` refuses a NaN evaluation loss.
    """

    last_loss: float = math.nan
    _last_inputs: dict | None = None

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        result = super().train(resume_from_checkpoint, *args, **kwargs)
        inputs, self._last_inputs = self._last_inputs, None
        self._check_finite_weights()
        # None when a finished run resumed: no step ran (on every process alike). Sharded: each process holds a part.
        if inputs is not None and not (self.is_deepspeed_enabled or self.is_fsdp_enabled):
            self._check_the_last_batch(inputs)
        if inputs is None and "train_loss" in result.metrics:
            logger.warning("step %d ended the run: nothing left to train", self.state.global_step)
            self._keep_the_runs_train_loss(result.metrics, resume_from_checkpoint)
        return result

    def _keep_the_runs_train_loss(self, metrics: dict, checkpoint: str | bool | None) -> None:
        """A call that ran no step (a finished run resumed) gets Trainer's mean over none, 0.0, which the commands
        would write over the run's own figure: the run's `train_loss` from its `all_results.json` instead, when that
        file was written after the checkpoint (an older one may be another run's), else none."""
        del metrics["train_loss"]
        results = Path(self.args.output_dir) / "all_results.json"
        state = Path(checkpoint) / TRAINER_STATE_NAME if isinstance(checkpoint, str) else None
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            if state is not None and results.stat().st_mtime >= state.stat().st_mtime:
                metrics["train_loss"] = float(json.loads(results.read_text(encoding="utf-8"))["train_loss"])

    def _check_the_last_batch(self, inputs: dict) -> None:
        training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), kept_global_random_state():
                loss = float(self.probe_loss(self._prepare_inputs(inputs)))
        except NonFiniteError:  # a loss that checks its own inputs (the selector's kernel)
            loss = math.nan
        finally:
            self.model.train(training)
        # Decided together: a process that stopped alone would leave the others waiting in their next collective.
        finite = torch.tensor([int(math.isfinite(loss))], device=self.args.device)
        if not self.accelerator.gather(finite).all():
            raise NonFiniteError(
                f"the model after step {self.state.global_step} computes loss {loss} on its last training batch "
                "(here or on another process): the training diverged at its last step (no model is saved); lower the "
                "learning rate"
            )

    def probe_loss(self, inputs: dict) -> torch.Tensor:
        """The loss of `inputs` under the model as it is, without the side effects of a training step (a subclass
        whose `compute_loss` records what it computes overrides it)."""
        return self.compute_loss(self.model, inputs)

    def current_epoch(self) -> int:
        """The 1-based epoch of the step being run (`state.epoch` is the fraction done after the last step)."""
        return int(self.state.epoch or 0) + 1

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        check_gradients = (
            self.accelerator.sync_gradients
            and self.accelerator.scaler is None
            and not (self.is_deepspeed_enabled or self.is_fsdp_enabled)
        )
        self.last_loss = check_finite_step(
            loss,
            self.state.global_step + 1,
            model.parameters() if check_gradients else None,
            where=f"epoch {self.current_epoch()}",
        )
        self._last_inputs = inputs  # for `train`'s check of the model its last step made
        return loss

    def _check_finite_weights(self) -> None:
        if not (self.is_deepspeed_enabled or self.is_fsdp_enabled):  # sharded: each process holds a part
            check_finite_weights(self.model, f"the model at step {self.state.global_step}")

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        self._check_finite_weights()
        return super().save_model(output_dir, _internal_call)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        self._check_finite_weights()  # before metrics of a NaN model are computed (and read as a result)
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        loss = metrics.get(f"{metric_key_prefix}_loss")
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteError(
                f"evaluation at step {self.state.global_step}: {metric_key_prefix}_loss {loss}: the model computes "
                "NaN or inf (no model is saved); lower the learning rate"
            )
        return metrics


class CollatorReadsRawExamples:
    """A `Trainer` mixin for a collator that builds the model's inputs from raw examples, whose keys (`target`,
    `candidate_index`, ...) are not arguments of `forward`: `remove_unused_columns`, True by default, would strip
    them (a `KeyError` in the collator), so the examples reach the collator whole, whatever the argument says."""

    def _remove_unused_columns(self, dataset, description: str | None = None):
        return dataset

    def _get_collator_with_removed_columns(self, data_collator: Callable, description: str | None = None) -> Callable:
        return data_collator


class PlainAdam:
    """A `Trainer` mixin whose optimizer is `torch.optim.Adam` over all parameters at `args.learning_rate`, without
    weight-decay groups, rather than `Trainer`'s AdamW (the explanation classifier's and the DPP selector's)."""

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        if self.optimizer is None:
            parameters = (self.model if model is None else model).parameters()
            self.optimizer = torch.optim.Adam(parameters, lr=self.args.learning_rate)
        return self.optimizer


def save_model_atomically(trainer: Trainer, save_more: Callable[[Path], None] | None = None) -> None:
    """`trainer.save_model()` into `args.output_dir` through `files.saving_into`: a run killed while saving leaves the
    previous model whole (the stock call writes weights, config and tokenizer one by one into the folder). The
    folder's other files (checkpoints, metrics, a LoRA run's `base/`) stay. `save_more(folder)` writes what else
    belongs with the model into the same save. Processes that do not save still call `save_model`, which gathers a
    sharded model's weights on every process."""
    # Internal calls: `--push_to_hub` would push (saving again, into the live folder) before the save is whole.
    if trainer.args.should_save:
        with saving_into(trainer.args.output_dir) as staging:
            trainer.save_model(str(staging), _internal_call=True)
            if save_more is not None:
                save_more(staging)
    else:
        trainer.save_model(_internal_call=True)  # gathers a sharded model's weights on every process
    if trainer.args.push_to_hub:
        trainer.push_to_hub(commit_message="Model save", revision=trainer.args.hub_revision)


class EpochPermutationSampler(Sampler[int]):
    """One permutation of `range(num_samples)` per epoch, drawn from a generator seeded once.

    Batched by the `DataLoader` (`drop_last=False`), an epoch is `torch.randperm(num_samples, generator).split(
    batch_size)`. `RandomSampler` with a generator is not the same order: it draws a second permutation at the end
    of every epoch (to fill `num_samples % n`, which is 0), so its later epochs differ.

    `set_epoch(e)` (which `Trainer` calls at the start of each epoch) puts the generator where epoch `e` (0-based)
    begins: a run resumed from a checkpoint in epoch `e` sees that epoch's order, as the uninterrupted run did (in
    which the generator is there already, so nothing is redrawn).

    Args:
        num_samples (`int`): size of the dataset.
        seed (`int`): seed of the generator; each epoch continues its sequence.
    """

    def __init__(self, num_samples: int, seed: int):
        self.num_samples = num_samples
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self._next_epoch = 0  # the epoch whose permutation the generator draws next

    def set_epoch(self, epoch: int) -> None:
        if epoch == self._next_epoch:
            return
        self.generator = torch.Generator().manual_seed(self.seed)
        for _ in range(epoch):  # the earlier epochs' permutations, drawn and dropped
            torch.randperm(self.num_samples, generator=self.generator)
        self._next_epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.num_samples, generator=self.generator).tolist()
        self._next_epoch += 1
        yield from order


class LoggingProgressCallback(ProgressCallback):
    """`ProgressCallback` (the training and evaluation bars) whose logs go to `logger` at `level`, not to stdout.

    Args:
        logger (`logging.Logger`): where the logs go (the training module's logger).
        level (`int`, *optional*, defaults to `logging.INFO`): their level (`logging.DEBUG` for a run that
            evaluates every one of hundreds of epochs).
    """

    def __init__(self, logger: logging.Logger, level: int = logging.INFO):
        super().__init__()
        self.logger = logger
        self.level = level

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            shown = {key: value for key, value in logs.items() if key != "total_flos"}
            self.logger.log(self.level, "step %d: %s", state.global_step, shown)


def log_to_logger(trainer: Trainer, logger: logging.Logger, level: int = logging.INFO) -> None:
    """Replace `trainer`'s `ProgressCallback` (absent with `disable_tqdm`) by a [`LoggingProgressCallback`]."""
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(LoggingProgressCallback(logger, level))


@contextlib.contextmanager
def kept_global_random_state(python: bool = True) -> Iterator[None]:
    """Restores the global random generators on exit: torch's (CPU, and CUDA where available), NumPy's and, with
    `python`, Python's `random`.

    `Trainer.__init__` re-seeds them all (`set_seed(args.seed)`), and its data loaders draw a worker seed from
    torch's every time they are iterated.

    Args:
        python (`bool`, *optional*, defaults to `True`): restore Python's `random` too; `False` when the training
            draws from it on purpose and the caller sees those draws.
    """
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch_state = torch.random.get_rng_state()
    # `is_available`, not `is_initialized`: the Trainer inside often initialises CUDA itself, and its re-seeded CUDA
    # generators must be restored too (reading the states initialises CUDA here, which a GPU run does anyway).
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        if python:
            random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def drop_use_cache(config: PreTrainedConfig) -> None:
    """Undo `Trainer.__init__`'s `config.use_cache = args.use_cache` on a config without that field."""
    vars(config).pop("use_cache", None)


def remove_checkpoints(output_dir: str | Path) -> None:
    """Remove the `checkpoint-*` folders of a run, then its folder when that leaves it empty."""
    folder = Path(output_dir)
    for checkpoint in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


RESUME_FROM_LAST = "last"  # `--resume_from_checkpoint last`: the last complete checkpoint in --output_dir
_CHECKPOINT_NAME = re.compile(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)")  # Trainer's `checkpoint-<step>`


def last_complete_checkpoint(
    folder: str | Path, logger: logging.Logger | None = None, before: int | None = None
) -> Path | None:
    """The `checkpoint-N` with the highest N (below `before`, when given) in `folder` that `Trainer` finished saving,
    or `None`.

    `Trainer` writes a checkpoint's `trainer_state.json` last, so a folder without one is a save that was cut off
    (`transformers.trainer_utils.get_last_checkpoint` would pick it); it is skipped, with a warning on `logger`. So is
    one whose `trainer_state.json` is not a JSON object: Trainer writes it in place, and a crash during that write
    would otherwise stop every later `--resume_from_checkpoint last`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    steps = {
        int(match.group(1)): path
        for path in folder.iterdir()
        if (match := _CHECKPOINT_NAME.fullmatch(path.name))
        and path.is_dir()
        and (before is None or int(match.group(1)) < before)
    }
    for step in sorted(steps, reverse=True):
        if _is_trainer_state(steps[step] / TRAINER_STATE_NAME):
            return steps[step]
        if logger is not None:
            logger.warning("%s is incomplete (no whole %s): not resumed from", steps[step], TRAINER_STATE_NAME)
    return None


def _is_trainer_state(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False


def checkpoint_to_resume(args: TrainingArguments, logger: logging.Logger) -> str | None:
    """The checkpoint that `trainer.train(resume_from_checkpoint=...)` continues, from `--resume_from_checkpoint`.

    `TrainingArguments.resume_from_checkpoint` is only a field: `Trainer` never reads it, so a script that does not
    pass it on ignores the flag without a word. It takes a checkpoint folder, or `last` (also `true`, `Trainer`'s
    `resume_from_checkpoint=True`) for the last complete `checkpoint-N` in `--output_dir`: the model, optimizer,
    scheduler, random states and the position in the data of a run that was cut off. Without the flag a run trains
    from the start, as in transformers 5 (which has no `--overwrite_output_dir`); when `--output_dir` holds an earlier
    run's checkpoint, a warning says how to continue it instead, and a run that saves checkpoints itself is refused:
    its `checkpoint-N` would sit beside the earlier run's, and `last` (the highest N) would resume the earlier run.

    Raises:
        InputError: "--resume_from_checkpoint DIR: not a checkpoint folder that Trainer saved (no
            trainer_state.json)", "--resume_from_checkpoint DIR: a finished run's folder, not a checkpoint ...",
            "--resume_from_checkpoint last: --output_dir DIR holds no complete checkpoint", or
            "--output_dir DIR holds DIR/checkpoint-N, an earlier run's checkpoint: ...".
    """
    given = args.resume_from_checkpoint
    if given is None:
        earlier = last_complete_checkpoint(args.output_dir)
        if earlier is not None and args.save_strategy != SaveStrategy.NO:
            raise InputError(
                f"--output_dir {args.output_dir} holds {earlier}, an earlier run's checkpoint: give "
                f"--resume_from_checkpoint {RESUME_FROM_LAST} to continue that run, or remove its "
                f"{PREFIX_CHECKPOINT_DIR}-* folders (or give another --output_dir) to train from the start"
            )
        if earlier is not None:
            logger.warning(
                "--output_dir holds %s, an earlier run's checkpoint; training from the start (give "
                "--resume_from_checkpoint %s to continue that run)",
                earlier,
                RESUME_FROM_LAST,
            )
        return None
    if given.lower() in (RESUME_FROM_LAST, "true"):
        last = last_complete_checkpoint(args.output_dir, logger)
        if last is None:
            raise InputError(
                f"--resume_from_checkpoint {given}: --output_dir {args.output_dir} holds no complete checkpoint"
            )
        _check_checkpoint_files(last, given)
        logger.warning("resuming from %s", last)
        return str(last)
    if not (Path(given) / TRAINER_STATE_NAME).is_file():
        raise InputError(
            f"--resume_from_checkpoint {given}: not a checkpoint folder that Trainer saved (no {TRAINER_STATE_NAME})"
        )
    if not (_CHECKPOINT_NAME.fullmatch(Path(given).resolve().name) or (Path(given) / OPTIMIZER_NAME).is_file()):
        # A finished run's folder also keeps its trainer_state.json (`save_state`), but no optimizer: resuming it
        # would train nothing and rewrite its results.
        raise InputError(
            f"--resume_from_checkpoint {given}: a finished run's folder, not a checkpoint (no {OPTIMIZER_NAME}, not "
            f"named {PREFIX_CHECKPOINT_DIR}-N); give one of its {PREFIX_CHECKPOINT_DIR}-N folders, or "
            f"{RESUME_FROM_LAST} with --output_dir {given}"
        )
    _check_checkpoint_files(Path(given), given)
    logger.warning("resuming from %s", given)
    return given


def _check_checkpoint_files(checkpoint: Path, given: str) -> None:
    """Refuse a checkpoint whose weights, optimizer or scheduler state does not read (cut by a full disk or changed
    since): `Trainer` would fail on it with a SafetensorError or EOFError traceback once the data and model are
    ready. Each file's header and index is read, not its tensors (`safe_open`, `torch.load(mmap=True)`); the random
    states and training arguments are pickles `Trainer` reads itself."""
    from safetensors import safe_open

    for path in sorted(checkpoint.iterdir()):
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt"):
                    pass
            elif path.name in ("optimizer.pt", "scheduler.pt"):
                torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as error:  # each reader's own errors (SafetensorError, EOFError, RuntimeError, ...)
            step = _CHECKPOINT_NAME.fullmatch(checkpoint.name)
            earlier = last_complete_checkpoint(checkpoint.parent, before=int(step.group(1))) if step else None
            hint = f"give --resume_from_checkpoint {earlier}" if earlier else "train from the start"
            raise InputError(
                f"--resume_from_checkpoint {given}: {path} does not read ({type(error).__name__}: "
                f"{one_line(error) or 'cut short'}); {hint}"
            ) from error


__all__ = [
    "CollatorReadsRawExamples",
    "EpochPermutationSampler",
    "FiniteTrainer",
    "LoggingProgressCallback",
    "PlainAdam",
    "checkpoint_to_resume",
    "drop_use_cache",
    "kept_global_random_state",
    "last_complete_checkpoint",
    "log_to_logger",
    "remove_checkpoints",
    "save_model_atomically",
]
