"""The explanation classifier, trained on annotated pairs, and `s2` built with it (`gest-showcases distill`, whose
options are in `gest_showcases.commands.distill`).

Paper Section 3.3: annotated (image, sentence, label) pairs are split 8:1:1 (seeded, by pair as in the
paper); a linear layer over [CLIP sentence embedding ; CLIP image embedding] is trained with binary
cross-entropy; the test split reports AUC and F1 (paper: 0.97 / 0.71). The decision threshold is the
one maximising F1 on the validation split and is saved in the classifier's config. Applied to `s1`,
a sentence is kept as explanation when it describes at least one of its review's images.

    gest-showcases distill --annotations annotations.jsonl --images IMAGES --features FEATDIR \\
        --output_dir classifier/ [--clip_model openai/clip-vit-base-patch32] \\
        [--dataset BUILT_DIR --build_inputs FILES --build_images IMAGES]

Two photo folders, two roles: `--images` holds the annotations' photos (`<pic_id>.jpg`, no dataset is
read for them). With `--dataset`, the dataset's photos are read through the path policy of built folders
(`gest_showcases.features.inputs.image_items`), whose root beside the dataset folder is `--build_images`:
the folder the dataset is built with, required with `--dataset` anyway. A stored path that is absolute
or leads outside the dataset folder and `--build_images` stops the command. The dataset card names the
classifier and a local CLIP by folder name (relative to the dataset when inside it), never by a path of
this machine.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import EvalPrediction, TrainingArguments

from gest_showcases.data.build import build_dataset, read_build_options
from gest_showcases.data.records import normalize_pic_id, split_sentences
from gest_showcases.errors import InputError
from gest_showcases.files import write_text_atomically
from gest_showcases.numerics import check_finite_rows
from gest_showcases.trainer_utils import (
    EpochPermutationSampler,
    FiniteTrainer,
    PlainAdam,
    drop_use_cache,
    kept_global_random_state,
    log_to_logger,
)

from .cache import FeatureTable, load_features
from .clip import ImageFeatureModel, TextFeatureModel, extract_image_features
from .configuration_explanation import ExplanationClassifierConfig
from .inputs import IMAGE_COLUMNS, image_items, read_config_rows
from .modeling_explanation import ExplanationClassifier

logger = logging.getLogger(__name__)

BUILD_INPUTS_NEEDED = "--dataset needs --build_inputs and --build_images, the files and photos it is built from"


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney U) formula, ties counted half.

    `AUC = (sum of positive ranks - P (P + 1) / 2) / (P N)`, ranks 1-based with tied scores sharing
    their average rank. O(n log n), no loop. NaN when one class is absent.
    """
    labels = labels.bool()
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = torch.unique(scores.double(), return_inverse=True, return_counts=True)
    # Average 1-based rank of each distinct score: its last position minus half its ties.
    ends = torch.cumsum(counts, 0).double()
    average_rank = ends - (counts.double() - 1) / 2
    rank_sum = average_rank[inverse][labels].sum().item()
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def f1_score(scores: torch.Tensor, labels: torch.Tensor, threshold: float) -> float:
    """F1 of predicting positive where `scores >= threshold` (0 when nothing is predicted or present)."""
    predicted, labels = scores >= threshold, labels.bool()
    true_positives = (predicted & labels).sum().item()
    denominator = predicted.sum().item() + labels.sum().item()
    return 2 * true_positives / denominator if denominator else 0.0


def best_f1_threshold(scores: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of `scores >= threshold` over every distinct score, vectorised.

    Sorting by descending score, predicting the top k positive gives TP = cumsum(labels)[k-1] and
    F1 = 2 TP / (k + P); only the last position of each run of tied scores is a valid cut.
    """
    order = torch.argsort(scores, descending=True)
    sorted_scores, sorted_labels = scores[order], labels[order].double()
    true_positives = torch.cumsum(sorted_labels, 0)
    predicted = torch.arange(1, len(scores) + 1, dtype=torch.double)
    f1 = 2 * true_positives / (predicted + sorted_labels.sum())
    is_cut = torch.ones(len(scores), dtype=torch.bool)
    is_cut[:-1] = sorted_scores[:-1] != sorted_scores[1:]
    f1 = torch.where(is_cut, f1, torch.full_like(f1, -1.0))
    best = int(torch.argmax(f1))
    return float(sorted_scores[best]), float(f1[best])


def split_sizes(n: int, ratios: Sequence[int] = (8, 1, 1)) -> tuple[int, int, int]:
    """The train/validation/test sizes `split_indices` gives `n` pairs (the test part takes the remainder)."""
    total = sum(ratios)
    n_train, n_validation = n * ratios[0] // total, n * ratios[1] // total
    return n_train, n_validation, n - n_train - n_validation


def check_enough_pairs(n: int, where: str = "the annotations") -> None:
    """Refuse `n` annotated pairs too few for the 8:1:1 split to leave a pair in every part (fewer than 10).

    Raises:
        `InputError`: "WHERE: 3 annotated pairs are too few for the 8:1:1 split ...".
    """
    if min(split_sizes(n)) == 0:
        raise InputError(f"{where}: {n} annotated pairs are too few for the 8:1:1 train/validation/test split "
                         f"(each part needs one; give at least 10)")  # fmt: skip


def split_indices(
    n: int, seed: int, ratios: Sequence[int] = (8, 1, 1)
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded random split of `range(n)` into train/validation/test index tensors by `ratios`."""
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_train, n_validation, _ = split_sizes(n, ratios)
    return (
        permutation[:n_train],
        permutation[n_train : n_train + n_validation],
        permutation[n_train + n_validation :],
    )


@dataclass
class PairCollator:
    """Gathers a batch of annotated pairs, given by row number, into the classifier's inputs.

    Args:
        text_embeds (`torch.Tensor` of shape `(num_pairs, text_dim)`): the sentences' embeddings.
        image_embeds (`torch.Tensor` of shape `(num_pairs, image_dim)`): the images' embeddings.
        labels (`torch.Tensor` of shape `(num_pairs,)`): 1.0 when the sentence describes the image.
    """

    text_embeds: torch.Tensor
    image_embeds: torch.Tensor
    labels: torch.Tensor

    def __call__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        index = torch.tensor(rows)
        return {
            "text_embeds": self.text_embeds[index],
            "image_embeds": self.image_embeds[index],
            "labels": self.labels[index],
        }


def compute_auc(eval_prediction: EvalPrediction) -> dict[str, float]:
    """`compute_metrics` of [`ExplanationClassifierTrainer`]: ROC AUC of the probabilities (`predictions`)."""
    scores = torch.as_tensor(eval_prediction.predictions)
    return {"auc": roc_auc(scores, torch.as_tensor(eval_prediction.label_ids))}


class ExplanationClassifierTrainer(PlainAdam, FiniteTrainer):
    """A `Trainer` for [`ExplanationClassifier`] on annotated pairs (datasets of row numbers, [`PairCollator`]).

    What differs from the stock `Trainer`: each epoch is one permutation of the training pairs drawn from a generator
    seeded once with `args.seed` ([`EpochPermutationSampler`]); the optimizer is `torch.optim.Adam`; a non-finite loss
    or gradient stops training with `NonFiniteError` before the optimizer step; logs go to `logging` (debug level:
    one evaluation per epoch over hundreds of epochs), not stdout.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        drop_use_cache(self.model.config)
        log_to_logger(self, logger, logging.DEBUG)

    def _get_train_sampler(self, train_dataset=None) -> EpochPermutationSampler:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        return EpochPermutationSampler(len(dataset), self.args.seed)



@dataclass
class TrainingResult:
    """The trained classifier and its scores: AUC/F1 per split, the threshold chosen on validation."""

    model: ExplanationClassifier
    metrics: dict[str, float]


def train_explanation_classifier(
    text_embeds: torch.Tensor,
    image_embeds: torch.Tensor,
    labels: torch.Tensor,
    epochs: int = 300,
    learning_rate: float = 1e-2,
    batch_size: int = 1024,
    seed: int = 0,
    interaction: bool = False,
    clip_checkpoint: str | None = None,
    clip_fingerprint: str | None = None,
) -> TrainingResult:
    """Train Φ on pairs (row i: sentence `text_embeds[i]`, image `image_embeds[i]`, `labels[i]` in {0, 1}).

    Pairs are split 8:1:1 with `seed`; [`ExplanationClassifierTrainer`] minimises the mean BCE with Adam, on CPU; the
    weights of the epoch with the best validation AUC are kept (the earliest on ties, `load_best_model_at_end`);
    the threshold maximises validation F1. `interaction` adds the product features (see
    `ExplanationClassifierConfig`).

    Returns:
        `TrainingResult` with metrics `{train,validation,test}_{auc,f1}`, `threshold`, split sizes.
    """
    if not (len(text_embeds) == len(image_embeds) == len(labels)):
        raise ValueError(f"{len(text_embeds)} sentences, {len(image_embeds)} images, {len(labels)} labels")
    # Named by pair index: a NaN row would make the loss NaN at the first batch and every weight after it.
    pairs = list(range(len(labels)))
    check_finite_rows(text_embeds, pairs, "sentence embeddings (by pair index)", "re-extract the features")
    check_finite_rows(image_embeds, pairs, "image embeddings (by pair index)", "re-extract the features")
    labels = labels.float()
    check_enough_pairs(len(labels), "the annotated pairs with image features")
    splits = dict(zip(("train", "validation", "test"), split_indices(len(labels), seed), strict=True))
    torch.manual_seed(seed)
    config = ExplanationClassifierConfig(
        text_dim=text_embeds.shape[1],
        image_dim=image_embeds.shape[1],
        interaction=interaction,
        clip_checkpoint=clip_checkpoint,
        clip_fingerprint=clip_fingerprint,
    )
    model = ExplanationClassifier(config)
    # The training's randomness is its own generator's: the caller's global random state is kept.
    with (
        tempfile.TemporaryDirectory(prefix="explanation-classifier-") as checkpoints,
        kept_global_random_state(),
    ):
        trainer = ExplanationClassifierTrainer(
            model=model,
            args=TrainingArguments(
                output_dir=checkpoints,
                learning_rate=learning_rate,
                lr_scheduler_type="constant",
                weight_decay=0.0,
                max_grad_norm=0.0,  # no clipping
                per_device_train_batch_size=batch_size,
                per_device_eval_batch_size=len(splits["validation"]),  # scored at once
                num_train_epochs=epochs,
                seed=seed,
                eval_strategy="epoch",
                save_strategy="best",
                metric_for_best_model="auc",
                load_best_model_at_end=True,
                save_total_limit=1,
                save_only_model=True,
                logging_strategy="no",
                report_to="none",
                use_cpu=True,
                dataloader_pin_memory=False,
                remove_unused_columns=False,
            ),
            data_collator=PairCollator(text_embeds, image_embeds, labels),
            train_dataset=splits["train"].tolist(),
            eval_dataset=splits["validation"].tolist(),
            compute_metrics=compute_auc,
        )
        trainer.train()  # the probabilities are scored (the config's keys_to_ignore_at_inference)
    model.eval()

    def scores(indices: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(text_embeds[indices], image_embeds[indices], return_dict=True).probabilities

    threshold, _ = best_f1_threshold(scores(splits["validation"]), labels[splits["validation"]])
    model.config.threshold = threshold
    metrics: dict[str, float] = {"threshold": threshold}
    for name, indices in splits.items():
        split_scores = scores(indices)
        metrics[f"{name}_auc"] = roc_auc(split_scores, labels[indices])
        metrics[f"{name}_f1"] = f1_score(split_scores, labels[indices], threshold)
        metrics[f"{name}_pairs"] = len(indices)
    return TrainingResult(model=model, metrics=metrics)


class ExplanationFilter:
    """Keeps the sentences of a review that describe at least one of its images.

    Called as `filter(sentences, pic_ids) -> kept sentences` (the builder's `explanation_filter`), or for many
    reviews at once as `filter.filter_many(sentence_lists, image_lists)`, which the builder calls once per chunk.
    Sentence embeddings come from CLIP's text tower, memoised per distinct sentence; call `prepare`
    with all sentences first to embed them in large batches. Image embeddings come from the feature
    cache; images without features are ignored, and a review none of whose images has features keeps
    no sentence.

    Args:
        classifier (`ExplanationClassifier`): the trained Φ; `threshold` defaults to its config's.
        text_model (`TextFeatureModel`): the CLIP text tower Φ was trained on.
        images (`FeatureTable`): CLIP image features keyed by pic id.
        threshold (`float`, *optional*): keep a sentence when max over images of P(describes) >= this.
        batch_size (`int`): sentences per text-tower call.
        reviews_per_block (`int`): reviews scored together by `filter_many`: one classifier call scores every
            sentence of a block against every image of the block, and only a sentence's own review's images count.
    """

    def __init__(
        self,
        classifier: ExplanationClassifier,
        text_model: TextFeatureModel,
        images: FeatureTable,
        threshold: float | None = None,
        batch_size: int = 256,
        reviews_per_block: int = 64,
    ):
        if images.fingerprint != classifier.config.clip_fingerprint:
            raise ValueError(
                f"image features from {images.checkpoint!r} do not match the classifier's CLIP "
                f"{classifier.config.clip_checkpoint!r} (fingerprints differ)"
            )
        self.classifier = classifier.eval()
        self.text_model = text_model
        self.images = images
        self.threshold = classifier.config.threshold if threshold is None else threshold
        self.batch_size = batch_size
        self.reviews_per_block = reviews_per_block
        self._sentences: dict[str, torch.Tensor] = {}

    def prepare(self, sentences: Sequence[str]) -> None:
        """Embed every not yet embedded sentence in batches."""
        new = list(dict.fromkeys(s for s in sentences if s not in self._sentences))
        if new:
            embeds = self.text_model.encode(new, self.batch_size)
            self._sentences.update(zip(new, embeds, strict=True))

    def __call__(self, sentences: Sequence[str], images: Sequence[str]) -> list[str]:
        """Kept sentences, in order; `images` are pic ids or their files `<pic_id>.jpg` (the builder's form)."""
        return self.filter_many([sentences], [images])[0]

    def filter_many(
        self, sentence_lists: Sequence[Sequence[str]], image_lists: Sequence[Sequence[str]]
    ) -> list[list[str]]:
        """Each review's kept sentences (`__call__` for every review), scored `reviews_per_block` reviews per call:
        one classifier call per review costs ~30x the arithmetic it does (tiny tensors). A probability may differ
        from one review's own call by one float32 rounding (the larger product sums in another order): only a
        sentence exactly at the threshold could go the other way."""
        kept: list[list[str]] = []
        for start in range(0, len(sentence_lists), self.reviews_per_block):
            end = start + self.reviews_per_block
            kept += self._filter_block(sentence_lists[start:end], image_lists[start:end])
        return kept

    @torch.no_grad()
    def _filter_block(
        self, sentence_lists: Sequence[Sequence[str]], image_lists: Sequence[Sequence[str]]
    ) -> list[list[str]]:
        reviews = torch.arange(len(sentence_lists))
        image_embeds, found = self.images.lookup([Path(image).stem for images in image_lists for image in images])
        image_owner = torch.repeat_interleave(reviews, torch.tensor([len(images) for images in image_lists]))[found]
        sentences = [sentence for group in sentence_lists for sentence in group]
        if not sentences or not found.any():
            return [[] for _ in sentence_lists]
        self.prepare(sentences)
        text_embeds = torch.stack([self._sentences[s] for s in sentences])  # [S, D]
        sentence_owner = torch.repeat_interleave(reviews, torch.tensor([len(group) for group in sentence_lists]))
        probabilities = self.classifier.pair_probabilities(text_embeds, image_embeds[found])  # [S, I]
        # Only the sentence's own review's images count; -1 (below any threshold) where it has none.
        own = sentence_owner[:, None] == image_owner[None, :]
        keep = (probabilities.masked_fill(~own, -1.0).max(dim=1).values >= self.threshold).tolist()
        kept, position = [], 0
        for group in sentence_lists:
            kept.append([sentence for sentence, k in zip(group, keep[position : position + len(group)], strict=True) if k])
            position += len(group)
        return kept


def read_annotations(path: str | Path) -> list[dict]:
    """Annotation rows (`pic_id`, `review_id`, `sentence`, `label`) from a JSON Lines file.

    A `pic_id` is a photo's id or its image URL, as a review's `pics` items are (`normalize_pic_id`); the row keeps
    the id, so the photo read is `<images>/<id>.jpg` and never a path the file names. A `label` is 0 or 1.

    Raises:
        `InputError`: `file:line` of the first line that is not such an object.
    """
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{where}: not valid JSON ({error.msg}); fix or remove the line") from error
            except RecursionError as error:  # nesting deeper than the parser's stack
                raise InputError(f"{where}: JSON nested too deep; fix or remove the line") from error
            if not isinstance(row, dict):
                raise InputError(f"{where}: not a JSON object; fix or remove the line")
            missing = {"pic_id", "sentence", "label"} - row.keys()
            if missing:
                raise InputError(f"{where} lacks {sorted(missing)}; fix or remove the line")
            if not isinstance(row["sentence"], str):
                raise InputError(f"{where}: `sentence` must be text; fix or remove the line")
            if row["label"] not in (0, 1) or isinstance(row["label"], str):
                raise InputError(f"{where}: `label` must be 0 or 1, got {str(row['label'])[:20]!r}")
            try:
                row["pic_id"] = normalize_pic_id(row["pic_id"])
            except ValueError as error:
                raise InputError(f"{where}: {error}; fix or remove the line") from error
            rows.append(row)
    return rows


def write_s2(
    dataset: str | Path,
    classifier: ExplanationClassifier,
    image_model: ImageFeatureModel,
    text_model: TextFeatureModel,
    summary: dict,
    *,
    features: str | Path,
    build_inputs: Sequence[str],
    build_images: str | Path,
    build_meta: Sequence[str] = (),
    classifier_dir: str,
    clip_model: str,
    num_workers: int = 2,
) -> int:
    """Rebuild `dataset` from its inputs with `s2` distilled from `s1`; record Φ in the card; the `s2` row count.

    The `s1` images are embedded first into the feature folder `features` (a no-op when `gest-showcases features`
    already ran; the folder is built once without `s2` when it doesn't exist yet), and the `s1` sentences are
    embedded in large batches, so the builder's per-review filter calls only look up. `classifier_dir` and
    `clip_model` are how the card names the classifier and the CLIP (through `card_name`); `summary` gives the
    classifier's test AUC and F1.
    """
    if not build_inputs or not build_images:
        raise InputError(BUILD_INPUTS_NEEDED)

    if not (Path(dataset) / "README.md").exists():
        build_dataset(build_inputs, build_images, dataset, list(build_meta))
    # The same users in the same splits, with the same filters and photo storage as the folder's own build (a
    # default rebuild re-split a `--seed 7` dataset: selectors trained before were scored on their training users).
    options = read_build_options(dataset)
    rows = read_config_rows(dataset, "s1", columns=["review_text", *IMAGE_COLUMNS])
    items = image_items(dataset, rows, build_images, option="--build_images")
    extract_image_features(items, image_model, features, "image", num_workers=num_workers)
    explanation_filter = ExplanationFilter(classifier, text_model, load_features(features, "image"))
    explanation_filter.prepare([s for row in rows for s in split_sentences(row["review_text"])])
    result = build_dataset(
        build_inputs, build_images, dataset, list(build_meta), explanation_filter=explanation_filter, **options
    )
    card = Path(dataset) / "README.md"
    write_text_atomically(  # a card cut by a crash would leave the dataset unreadable
        card,
        card.read_text(encoding="utf-8")
        + "\n## Explanation classifier (s2)\n\n"
        + "`s2` keeps the sentences whose probability of describing one of the review's images is at least "
        + f"**{explanation_filter.threshold:.4f}** (chosen on the validation split by maximum F1), under the "
        + f"classifier in `{card_name(classifier_dir, dataset)}` over CLIP "
        + f"`{card_name(clip_model, dataset)}`: test AUC {summary['test_auc']:.4f}, "
        + f"test F1 {summary['test_f1']:.4f} on {summary['test_pairs']} annotated pairs.\n",
    )
    return result.num_rows["s2"]


def card_name(path: str, dataset: str | Path) -> str:
    """How the dataset card names a folder: relative to the dataset when inside it, else its own name.

    The card is published with the dataset (`gest-showcases push`), so it names no folder of this machine;
    a Hub name (no such local path, e.g. `openai/clip-vit-base-patch32`) is kept as given.
    """
    if not Path(path).exists():
        return path
    resolved, root = Path(path).resolve(), Path(dataset).resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else resolved.name
