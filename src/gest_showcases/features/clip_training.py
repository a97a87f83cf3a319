"""Training the stand-in CLIP from scratch on a built dataset's weakly paired data (`gest-showcases train-clip`,
whose options are in `gest_showcases.commands.train_clip`).

No pretrained CLIP can be downloaded here, so the demo trains a stand-in (`features.clip_standin`) for
`openai/clip-vit-base-patch32` on the world it runs on, and saves it like any CLIP checkpoint (model,
tokenizer, image processor), so `gest-showcases features --model PATH` loads it through the same
`from_pretrained` paths as the real one.

What it learns from is what CLIP learns from on the web: photos next to text that may or may not
describe them. Each image of an `s1` **train**-split review is paired with that review's text
(`--pair_with review`, the default; cut at 77 tokens), with one sentence of it drawn afresh every
epoch (`--pair_with sentence`), or with all its sentences at once as a bag (`--pair_with sentences`,
below). Much of that text doesn't describe the photo (service, parking,
generic praise, the review's other photos); the photo's subject is named in its review more often
than elsewhere, and that co-occurrence is the whole signal. Whole reviews carry it in every pair and
learn faster; single sentences carry it in some pairs only. Neither annotations nor any ground truth is read: the annotations are the
explanation classifier's supervised data, ground truth is for evaluation only.

- Loss: CLIP's symmetric InfoNCE loss (`return_loss=True`, learnt temperature), minimised by AdamW
  with a linear warm-up and cosine decay, gradients clipped at norm 1, on a `transformers.Trainer`
  ([`StandInCLIPTrainer`]).
- `--pair_with sentences`: multiple-instance InfoNCE (MIL-NCE, Miech et al., CVPR 2020;
  [`multiple_instance_info_nce`]). A batch of photos carries every sentence of their reviews, each review's
  once; a photo's positives are its review's sentences, and the loss asks that they *together* outscore the
  batch's other sentences, so the one sentence that names the photo's dish can take the credit without the
  service and parking sentences having to look like the photo. Each sentence's positives are its review's
  photos in the batch.
- Bag-of-tokens helper (`--bag_of_tokens_weight`): two transformer towers trained from scratch against
  each other on a thousand pairs learn to match the training pairs but not what the photos show (on
  Gest-Synth their image features told dishes apart no better than a random-init ViT's). A linear
  text encoder over the set of the text's token ids, trained alongside with the same InfoNCE loss
  against the same image embeddings, links dish words to dish looks within a few epochs and pulls
  the image tower, and through it the text tower, there. It only shapes training: it is not saved.
- `--extra_dataset` (off by default): a second built folder whose train split joins the training pairs. A
  from-scratch CLIP on the demo's 1,000-review world is limited by its photos (13-19 per dish): with a separate
  2,000-review Gest-Synth world added (an analogue of the paper's CLIP, trained on other data than Gest), its
  nearest-centroid dish accuracy on the demo world rose from 49-51% to 76-82% on three seeds (docs/experiments.md).
- `--augment` (off by default): each training photo mirrored and shifted afresh every time it is seen
  ([`augment_photos`]). On the demo's world (1,000 reviews, 20 epochs, seed 0) it left the nearest-centroid dish
  accuracy where it was (51.7% of 87 test photos either way; nearest neighbour 66.7 -> 69.0%): what limits it there
  is the number of photos per dish, not their positions (docs/experiments.md).
- Quality report (`--synth_truth ground_truth.json`, Gest-Synth worlds only): after saving, the checkpoint
  is loaded as `gest-showcases features` loads it and measured against the world's ground truth
  (`gest_showcases.metrics.clip_quality`): nearest-centroid and nearest-neighbour subject accuracy of the
  test photos' features (centroids from the train photos; all subjects, and dishes alone) beside the
  majority-class share, and how often a
  photo is closer to a ground-truth sentence naming its subject than to the same sentence naming another.
  Written by the command as `clip_quality` into `train_clip_metrics.json` and printed. The ground truth is read after
  training only.
- Sanity check: image -> review retrieval on validation reviews (one image per review, the review
  embedded as the renormalised mean of its sentences' embeddings, as the feature cache does), recall
  at 1 and 5 among `batch_size` reviews; chance is 1/`batch_size` and 5/`batch_size`.

    gest-showcases train-clip --dataset BUILT_DIR --images IMAGES --output_dir clip-synth/
    gest-showcases features --dataset BUILT_DIR --images IMAGES --model clip-synth/ --output_dir FEATDIR

The photos are read through the path policy of built folders (`gest_showcases.features.inputs.
dataset_image_paths`): stored paths must be relative and lead inside the dataset folder or `--images` (the
folder the dataset was built with, needed when the photos lie outside the dataset folder).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import (
    CLIPModel,
    CLIPTokenizer,
    TrainerCallback,
    TrainingArguments,
    VisionTextDualEncoderModel,
)

from gest_showcases.data.images import UnreadableImageError, open_image
from gest_showcases.data.records import split_sentences
from gest_showcases.errors import InputError
from gest_showcases.files import saving_into
from gest_showcases.numerics import check_finite_rows
from gest_showcases.trainer_utils import (
    EpochPermutationSampler,
    FiniteTrainer,
    kept_global_random_state,
    log_to_logger,
)

from .clip import CLIP_MAX_TOKENS
from .clip_standin import IMAGE_TOWERS, build_clip, stand_in_image_processor, train_clip_tokenizer
from .inputs import IMAGE_COLUMNS, dataset_image_paths, read_config_rows
from .loading import ImagePreprocessing

logger = logging.getLogger(__name__)

# What each photo is paired with (`--pair_with`, module docstring): its review, one sentence, or all its sentences.
PAIR_WITH = ("review", "sentence", "sentences")


def augment_photos(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each photo of a batch mirrored left-right with probability 1/2 and shifted by up to 1/8 of its side.

    The standard augmentation for small convolutional networks trained from scratch (CIFAR's pad-and-crop and
    flip): the shift pads by reflection and crops a window of the original size at a random offset. It moves and
    mirrors what a photo shows but keeps its colours and shapes, which is what tells its subject.

    Args:
        pixels (`torch.ByteTensor` of shape `(batch, channels, height, width)`): preprocessed photos.
        generator (`torch.Generator`): the draws (flip, two offsets per photo).

    Returns:
        `torch.ByteTensor` of the same shape.
    """
    batch, channels, height, width = pixels.shape
    pad = max(1, min(height, width) // 8)
    padded = F.pad(pixels.float(), (pad, pad, pad, pad), mode="reflect")
    flip = torch.rand(batch, generator=generator) < 0.5
    padded = torch.where(flip[:, None, None, None], padded.flip(-1), padded)
    top = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
    left = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
    rows = (top[:, None] + torch.arange(height))[:, None, :, None]  # [B, 1, H, 1]
    columns = (left[:, None] + torch.arange(width))[:, None, None, :]  # [B, 1, 1, W]
    cropped = padded[torch.arange(batch)[:, None, None, None], torch.arange(channels)[None, :, None, None], rows, columns]
    return cropped.to(pixels.dtype)


class BagOfTokens(torch.nn.Module):
    """A linear text encoder over the set of a text's token ids: the bag-of-tokens helper (module docstring).

    Args:
        vocab_size (`int`): the tokenizer's vocabulary size.
        projection_dim (`int`): size of the joint embedding.
    """

    def __init__(self, vocab_size: int, projection_dim: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.projection = torch.nn.Linear(vocab_size, projection_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """`input_ids`, `attention_mask` [B, L] -> L2-normalised embeddings [B, projection_dim]."""
        counts = torch.zeros(len(input_ids), self.vocab_size, device=input_ids.device)
        counts.scatter_add_(1, input_ids, attention_mask.float())  # [B, V]
        # Which tokens the text has, not how often: the dish named twice is still one dish.
        return F.normalize(self.projection(counts.clamp(max=1.0)), dim=-1)


def symmetric_info_nce(logits: torch.Tensor) -> torch.Tensor:
    """CLIP's loss on a [B, B] similarity matrix whose diagonal holds the positive pairs."""
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def multiple_instance_info_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Symmetric multiple-instance InfoNCE (MIL-NCE) on [P, S] image-text logits with several positives per row.

    Image -> text: the mean over rows of `-log(sum of exp(logits) over the row's positives / sum over the row)`;
    text -> image the same over columns; the loss is their mean. With the identity as `positives` it is
    [`symmetric_info_nce`].

    Args:
        logits (`torch.Tensor` of shape `(P, S)`): similarities of P images and S texts (temperature applied).
        positives (`torch.BoolTensor` of shape `(P, S)`): which pairs are positive; every row and column needs one.

    Returns:
        `torch.Tensor`: the scalar loss.
    """
    if not (positives.any(dim=1).all() and positives.any(dim=0).all()):
        raise ValueError("every image and every text needs at least one positive")
    # -inf outside the positives: their exp is 0 in the numerator's log-sum-exp, and so is their gradient.
    positive_logits = logits.masked_fill(~positives, float("-inf"))
    image_to_text = (logits.logsumexp(dim=1) - positive_logits.logsumexp(dim=1)).mean()
    text_to_image = (logits.logsumexp(dim=0) - positive_logits.logsumexp(dim=0)).mean()
    return (image_to_text + text_to_image) / 2


@dataclass
class PairedReviews:
    """The reviews of one split with images and sentences, their images decoded once.

    Args:
        pixels (`torch.ByteTensor` of shape `(num_images, 3, H, W)`): every image, preprocessed.
        image_review (`torch.LongTensor` of shape `(num_images,)`): the review each image belongs to.
        first_image (`torch.LongTensor` of shape `(num_reviews,)`): one image of each review.
        sentences (`list[list[str]]`): each review's sentences.
        texts (`list[str]`): each review's text.
    """

    pixels: torch.Tensor
    image_review: torch.Tensor
    first_image: torch.Tensor
    sentences: list[list[str]]
    texts: list[str]

    def __add__(self, other: PairedReviews) -> PairedReviews:
        """This split's reviews then `other`'s, `other`'s image and review indices shifted past these."""
        return PairedReviews(
            pixels=torch.cat([self.pixels, other.pixels]),
            image_review=torch.cat([self.image_review, other.image_review + len(self.sentences)]),
            first_image=torch.cat([self.first_image, other.first_image + len(self.pixels)]),
            sentences=self.sentences + other.sentences,
            texts=self.texts + other.texts,
        )


def read_paired_reviews(
    dataset: str | Path, split: str, preprocessing: ImagePreprocessing, images: str | Path | None = None
) -> PairedReviews:
    """The `s1` reviews of `split` that have at least one readable image and one sentence.

    The photos' stored paths go through the path policy (`dataset_image_paths`): relative, inside
    `dataset` or `images` (the folder the dataset was built with); a row breaking it stops the reading.
    """
    columns = ["review_text", *IMAGE_COLUMNS]
    rows = [row for row in read_config_rows(dataset, "s1", columns=columns) if row["split"] == split]
    files = dataset_image_paths(dataset, rows, images)
    pixels, image_review, first_image, sentences, texts = [], [], [], [], []
    for row in tqdm(rows, desc=f"reading {split} images"):
        review_sentences = split_sentences(row["review_text"])
        review_images = []
        for pic in row["pics"]:
            try:
                review_images.append(preprocessing.pil_to_uint8(open_image(files[pic])))
            except UnreadableImageError as error:
                logger.warning("skipping unreadable image %s", error)
        if not review_sentences or not review_images:
            continue
        first_image.append(len(pixels))
        pixels.extend(review_images)
        image_review.extend([len(sentences)] * len(review_images))
        sentences.append(review_sentences)
        texts.append(row["review_text"])
    if not sentences:
        raise InputError(
            f"{dataset} has no {split} review in s1 with both an image and a sentence: build it with a {split} split "
            "(--split_ratios) or with more reviews"
        )
    return PairedReviews(
        pixels=torch.stack(pixels),
        image_review=torch.tensor(image_review),
        first_image=torch.tensor(first_image),
        sentences=sentences,
        texts=texts,
    )


def _tokens(tokenizer: CLIPTokenizer, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    return tokenizer(
        list(texts), padding="longest", truncation=True, max_length=CLIP_MAX_TOKENS, return_tensors="pt"
    )


class CLIPWithBagOfTokens(torch.nn.Module):
    """The stand-in CLIP and its bag-of-tokens helper as the one module that is trained: `forward` returns CLIP's
    InfoNCE loss plus `bag_of_tokens_weight` times the helper's, and the optimizer and the gradient clipping see
    the parameters of both. Given `positives` (a [photos, texts] mask, `pair_with="sentences"`), both losses are
    [`multiple_instance_info_nce`] over that mask instead.

    Args:
        clip (`CLIPModel` or `VisionTextDualEncoderModel`): the stand-in CLIP (`clip_standin.build_clip`).
        bag_of_tokens ([`BagOfTokens`]): the helper text encoder.
        bag_of_tokens_weight (`float`): weight of the helper's loss (0: plain CLIP training).
    """

    def __init__(self, clip: CLIPModel | VisionTextDualEncoderModel, bag_of_tokens: BagOfTokens, bag_of_tokens_weight: float):
        super().__init__()
        self.clip = clip
        self.bag_of_tokens = bag_of_tokens
        self.bag_of_tokens_weight = bag_of_tokens_weight

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        positives: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if positives is None:
            output = self.clip(
                input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values, return_loss=True
            )
            loss = output.loss
        else:
            # CLIP's own loss wants one text per image: the bag's is computed here from its [P, S] logits.
            output = self.clip(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values)
            loss = multiple_instance_info_nce(output.logits_per_image, positives)
        if self.bag_of_tokens_weight:
            # The same temperature and image embeddings as CLIP's own loss; [P, S] logits.
            text_embeds = self.bag_of_tokens(input_ids, attention_mask)
            bag_logits = self.clip.logit_scale.exp() * output.image_embeds @ text_embeds.T
            bag_loss = (
                symmetric_info_nce(bag_logits)
                if positives is None
                else multiple_instance_info_nce(bag_logits, positives)
            )
            loss = loss + self.bag_of_tokens_weight * bag_loss
        return loss


@dataclass
class ImageTextCollator:
    """Makes a training batch of (photo, text) pairs from photos given by their row in `reviews`.

    Each photo's text is its review's (`pair_with="review"`) or one sentence of it drawn with `random.choice`
    every time the photo is seen (`"sentence"`). With `"sentences"` the batch's texts are every sentence of the
    batch's reviews, each review's once however many of its photos the batch holds, in the order the reviews first
    appear; `positives` [photos, sentences] marks each photo's own review's sentences. With `augment_generator`,
    every photo goes through [`augment_photos`] with its draws each time it is seen.
    """

    reviews: PairedReviews
    tokenizer: CLIPTokenizer
    preprocessing: ImagePreprocessing
    pair_with: str = "review"
    # Drawn from in the loading process: train-clip's DataLoader has no workers (each would copy this state and
    # repeat the same draws).
    augment_generator: torch.Generator | None = None

    def __call__(self, images: list[int]) -> dict[str, torch.Tensor]:
        batch = torch.tensor(images)
        reviews = self.reviews.image_review[batch].tolist()
        pixels = self.reviews.pixels[batch]
        if self.augment_generator is not None:
            pixels = augment_photos(pixels, self.augment_generator)
        pixel_values = self.preprocessing.normalize(pixels)
        if self.pair_with == "sentences":
            unique = dict.fromkeys(reviews)  # each review once, in the order of its first photo
            texts = [sentence for review in unique for sentence in self.reviews.sentences[review]]
            owners = torch.tensor([review for review in unique for _ in self.reviews.sentences[review]])
            positives = torch.tensor(reviews)[:, None] == owners[None, :]  # [photos, sentences]
            return {**_tokens(self.tokenizer, texts), "pixel_values": pixel_values, "positives": positives}
        if self.pair_with == "review":
            texts = [self.reviews.texts[review] for review in reviews]
        else:
            texts = [random.choice(self.reviews.sentences[review]) for review in reviews]
        return {**_tokens(self.tokenizer, texts), "pixel_values": pixel_values}


class TemperatureCap(TrainerCallback):
    """CLIP's cap on the learnt temperature, after every optimizer step: logits at most 100x the cosine."""

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        with torch.no_grad():
            model.clip.logit_scale.clamp_(0, math.log(100))


class StandInCLIPTrainer(FiniteTrainer):
    """A `Trainer` for [`CLIPWithBagOfTokens`] on an [`ImageTextCollator`]'s batches (a dataset of photo rows).

    What differs from the stock `Trainer`: each epoch is one permutation of the photos drawn from a generator seeded
    once with `args.seed` ([`EpochPermutationSampler`]); the model returns its loss; a non-finite loss or gradient
    stops training with `NonFiniteError` before the optimizer step; the loss and size of every batch are kept in
    `step_losses`; logs go to `logging`, not stdout. Give the optimizer and schedule as `optimizers`, and
    [`TemperatureCap`] as a callback.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.step_losses: list[tuple[float, int]] = []
        log_to_logger(self, logger)

    def _get_train_sampler(self, train_dataset=None) -> EpochPermutationSampler:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        return EpochPermutationSampler(len(dataset), self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = model(**inputs)
        return (loss, None) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        batch_size = len(inputs["pixel_values"])
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.step_losses.append((self.last_loss, batch_size))
        return loss


@torch.no_grad()
def retrieval_recall(
    model: CLIPModel | VisionTextDualEncoderModel,
    tokenizer: CLIPTokenizer,
    preprocessing: ImagePreprocessing,
    reviews: PairedReviews,
    batch_size: int,
) -> dict[str, float]:
    """Image -> review recall@1 and @5 among the reviews of the same batch of `batch_size` reviews.

    Each review contributes its first image; its text embedding is the renormalised mean of its
    sentences' embeddings. The last batch is left out when it is smaller than `batch_size`, so every
    query has the same number of candidates (unless there is only one, smaller batch).
    """
    model.eval()
    flat = [sentence for sentences in reviews.sentences for sentence in sentences]
    owner = torch.repeat_interleave(torch.tensor([len(s) for s in reviews.sentences]))  # [num_sentences]
    sentence_embeds = torch.cat(
        [
            model.get_text_features(**_tokens(tokenizer, flat[i : i + 256])).pooler_output
            for i in range(0, len(flat), 256)
        ]
    )
    sentence_embeds = torch.nn.functional.normalize(sentence_embeds, dim=-1)
    review_embeds = torch.zeros(len(reviews.sentences), sentence_embeds.shape[1]).index_add_(
        0, owner, sentence_embeds
    )
    review_embeds = torch.nn.functional.normalize(review_embeds, dim=-1)  # [R, D]
    pixels = preprocessing.normalize(reviews.pixels[reviews.first_image])
    image_embeds = torch.cat(
        [model.get_image_features(pixel_values=p).pooler_output for p in pixels.split(256)]
    )
    image_embeds = torch.nn.functional.normalize(image_embeds, dim=-1)  # [R, D]
    # A NaN similarity compares False with everything: every query would rank first, a perfect recall.
    for embeds, kind in ((image_embeds, "image"), (review_embeds, "review")):
        check_finite_rows(
            embeds, range(len(embeds)), f"validation {kind} embeddings of the trained CLIP", "lower the learning rate"
        )
    size = min(batch_size, len(review_embeds))
    hits = {1: 0, 5: 0}
    queries = 0
    for start in range(0, len(review_embeds) - size + 1, size):
        similarity = image_embeds[start : start + size] @ review_embeds[start : start + size].T  # [B, B]
        # Rank of the true review: how many candidates score strictly higher.
        rank = (similarity > similarity.diagonal()[:, None]).sum(dim=1)
        for k in hits:
            hits[k] += int((rank < k).sum())
        queries += size
    return {
        "recall_at_1": hits[1] / queries,
        "recall_at_5": hits[5] / queries,
        "chance_at_1": 1 / size,
        "chance_at_5": min(5, size) / size,
        "candidates": size,
    }


def train(
    dataset: str | Path,
    output_dir: str | Path,
    *,
    images: str | Path | None = None,
    extra_dataset: str | Path | None = None,
    extra_images: str | Path | None = None,
    image_size: int = 64,
    patch_size: int = 8,
    image_tower: str = "vit",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    projection_dim: int = 128,
    pair_with: str = "review",
    vocab_size: int = 2000,
    bag_of_tokens_weight: float = 1.0,
    augment: bool = False,
    num_train_epochs: int = 10,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    weight_decay: float = 0.1,
    warmup_fraction: float = 0.05,
    seed: int = 0,
    num_threads: int = 2,
) -> dict:
    """Train a stand-in CLIP on `dataset`'s s1 train split, measure retrieval on validation, save it to `output_dir`.

    `extra_dataset` (photos in it or `extra_images`): another built folder whose train split is added to the training
    pairs, e.g. a separate Gest-Synth world for a small one (validation stays `dataset`'s).

    Returns the summary (sizes, epoch losses, retrieval); `gest-showcases train-clip` writes it as JSON beside the
    checkpoint. The options are the command's (`gest_showcases.commands.train_clip` gives their meaning).
    """
    if pair_with not in PAIR_WITH:
        raise ValueError(f"--pair_with must be one of {', '.join(PAIR_WITH)}, not {pair_with!r}")
    if image_tower not in IMAGE_TOWERS:
        raise ValueError(f"--image_tower must be one of {', '.join(IMAGE_TOWERS)}, not {image_tower!r}")
    start = time.perf_counter()
    torch.set_num_threads(num_threads)
    random.seed(seed)
    torch.manual_seed(seed)
    processor = stand_in_image_processor(image_size)
    preprocessing = ImagePreprocessing.from_image_processor(processor)
    train_set = read_paired_reviews(dataset, "train", preprocessing, images)
    if extra_dataset is not None:
        train_set = train_set + read_paired_reviews(extra_dataset, "train", preprocessing, extra_images)
    validation_set = read_paired_reviews(dataset, "validation", preprocessing, images)
    tokenizer = train_clip_tokenizer(
        [sentence for sentences in train_set.sentences for sentence in sentences], vocab_size
    )
    model = build_clip(
        tokenizer,
        image_size,
        patch_size,
        hidden_size,
        num_layers,
        num_heads,
        projection_dim,
        image_tower,
    )
    bag_of_tokens = BagOfTokens(len(tokenizer), projection_dim)
    trained = CLIPWithBagOfTokens(model, bag_of_tokens, bag_of_tokens_weight)
    parameters = list(trained.named_parameters())
    decay = [p for n, p in parameters if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in parameters if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate,
    )
    steps_per_epoch = math.ceil(len(train_set.pixels) / batch_size)
    total_steps = num_train_epochs * steps_per_epoch
    warmup = max(1, int(warmup_fraction * total_steps))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    # The photos' order is the sampler's own generator's; torch's and NumPy's global state is kept for the caller.
    # Python's `random` draws the sentences (seeded above, as `Trainer` seeds it again): the caller sees those draws.
    with kept_global_random_state(python=False):
        trainer = StandInCLIPTrainer(
            model=trained,
            args=TrainingArguments(
                output_dir=str(output_dir),
                per_device_train_batch_size=batch_size,
                num_train_epochs=num_train_epochs,
                learning_rate=learning_rate,
                weight_decay=weight_decay,
                max_grad_norm=1.0,
                seed=seed,
                save_strategy="no",
                logging_strategy="epoch",
                report_to="none",
                use_cpu=True,
                dataloader_pin_memory=False,
                remove_unused_columns=False,
            ),
            data_collator=ImageTextCollator(
                train_set,
                tokenizer,
                preprocessing,
                pair_with,
                torch.Generator().manual_seed(seed) if augment else None,
            ),
            train_dataset=list(range(len(train_set.pixels))),
            optimizers=(optimizer, scheduler),
            callbacks=[TemperatureCap()],
        )
        trainer.train()
    losses: list[float] = []
    for epoch in range(num_train_epochs):
        epoch_loss = 0.0
        for loss_value, size in trainer.step_losses[epoch * steps_per_epoch : (epoch + 1) * steps_per_epoch]:
            epoch_loss += loss_value * size
        losses.append(epoch_loss / len(train_set.pixels))
        logger.info("epoch %d: mean loss %.4f", epoch + 1, losses[-1])
    retrieval = retrieval_recall(model, tokenizer, preprocessing, validation_set, batch_size)
    output_dir = Path(output_dir)
    with saving_into(output_dir) as staging:  # weights, tokenizer and processor of one run, never mixed
        model.eval().save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        processor.save_pretrained(staging)
    summary = {
        "train_reviews": len(train_set.sentences),
        "train_images": len(train_set.pixels),
        "validation_reviews": len(validation_set.sentences),
        "vocab_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "epoch_losses": losses,
        "validation_image_to_review": retrieval,
        "train_seconds": time.perf_counter() - start,
    }
    return summary
