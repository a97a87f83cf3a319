"""Visual-grounding metrics of the paper's Table 2: CLIP-Align (eq. 12) and CLIP-Score.

Both have an embedding-level core (``*_from_embeddings``: tensors in, flat dict out, no model) and a
model-level front that embeds PIL images and texts with any transformers ``CLIPModel`` checkpoint (or a
``VisionTextDualEncoderModel`` such as the stand-in CLIP with a CNN tower: `features.clip.load_clip_model`).
Embeddings are the projected CLIP features (``get_image_features`` / ``get_text_features`` pooler
outputs), L2-normalised, as in the feature cache.

Text truncation: CLIP reads at most ``text_config.max_position_embeddings`` (77) tokens. Texts are
tokenised with ``truncation=True``, which cuts the words *before* the start/end-of-text tokens are
added, so every sequence keeps its end-of-text token, where CLIP reads the text embedding.

Averaging, for both metrics: a score per image, the mean over an example's images, then the mean over
the examples that have at least one image (examples without images are skipped and counted).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import CLIPProcessor

from gest_showcases.data.images import UnreadableImageError, open_image
from gest_showcases.errors import InputError
from gest_showcases.features.clip import load_clip_model
from gest_showcases.features.configuration_explanation import ExplanationClassifierConfig
from gest_showcases.features.modeling_explanation import ExplanationClassifier
from gest_showcases.metrics.text import split_sentences
from gest_showcases.model_folders import load_whole, loading, require_model_type
from gest_showcases.numerics import NonFiniteError

logger = logging.getLogger(__name__)

CLIP_SCORE_PREFIX = "A photo depicts "
CLIP_SCORE_WEIGHT = 2.5
# scorer(text_embeds=[M, Dt], image_embeds=[M, Di]) -> probabilities [M] in [0, 1]
Scorer = Callable[..., torch.Tensor]


def _owners(counts: torch.Tensor) -> torch.Tensor:
    """[3, 0, 2] -> [0, 0, 0, 2, 2]: the example index of each row of a concatenation."""
    return torch.repeat_interleave(torch.arange(counts.numel()), counts)


def _mean_over_images_then_examples(per_image: torch.Tensor, image_counts: torch.Tensor) -> tuple[float, int]:
    """Mean of per-image scores within each example, then over examples that have images."""
    has_images = image_counts > 0
    if not bool(has_images.any()):
        return math.nan, 0  # nothing scored: undefined, not a score of 0 (tables print "-", JSON null)
    bad = int((~torch.isfinite(per_image)).sum())
    if bad:  # else the mean is NaN and reads as "nothing scored"
        raise NonFiniteError(
            f"{bad} of {per_image.numel()} per-image scores are NaN or inf: the CLIP or the explanation classifier "
            "computes NaN (a diverged or broken checkpoint)"
        )
    sums = torch.zeros(image_counts.numel(), dtype=torch.float64).index_add_(
        0, _owners(image_counts), per_image.double()
    )
    per_example = sums[has_images] / image_counts[has_images]
    return float(per_example.mean()), int(has_images.sum())


def _check_examples(image_embeds: Sequence, other: Sequence, other_name: str) -> None:
    if len(image_embeds) != len(other):
        raise ValueError(
            f"image_embeds and {other_name} differ in length (examples): {len(image_embeds)} != {len(other)}"
        )


@torch.no_grad()
def clip_align_from_embeddings(
    image_embeds: Sequence[torch.Tensor],
    sentence_embeds: Sequence[torch.Tensor],
    scorer: Scorer,
    batch_size: int = 8192,
) -> dict[str, float]:
    """CLIP-Align (paper eq. 12) from embeddings, higher is better.

    ``CLIP-Align = mean_examples mean_{image i} max_{sentence s} cs(s, i)``, ``cs`` the explanation
    classifier's confidence that sentence ``s`` describes image ``i``. An example whose generated text
    has no sentence scores 0 on each of its images (nothing describes them); an example without
    images is skipped.

    Args:
        image_embeds (sequence of `torch.FloatTensor` of shape `(n_i, Di)`): each example's images.
        sentence_embeds (sequence of `torch.FloatTensor` of shape `(m_i, Dt)`): each example's
            generated sentences.
        scorer (`Callable`): ``scorer(text_embeds=[M, Dt], image_embeds=[M, Di]) -> [M]``
            probabilities for aligned pairs, e.g. ``lambda **kw: classifier(**kw).probabilities``.
        batch_size (`int`): pairs per scorer call.

    Returns: ``{"clip_align": float, "clip_align_examples": int}`` (examples with images; NaN when none has).
    """
    _check_examples(image_embeds, sentence_embeds, "sentence_embeds")
    image_counts = torch.tensor([len(e) for e in image_embeds], dtype=torch.long)
    sentence_counts = torch.tensor([len(e) for e in sentence_embeds], dtype=torch.long)
    if int(image_counts.sum()) == 0:
        return {"clip_align": math.nan, "clip_align_examples": 0}
    images = torch.cat([e for e in image_embeds if len(e)])  # [I, Di]
    image_owner = _owners(image_counts)  # [I]
    # Every (image, sentence) pair of the same example: image g pairs with its example's m sentences.
    pairs_per_image = sentence_counts[image_owner]  # [I]
    pair_image = torch.repeat_interleave(torch.arange(images.shape[0]), pairs_per_image)  # [P]
    first_pair = torch.cumsum(pairs_per_image, 0) - pairs_per_image  # [I]
    sentence_start = torch.cumsum(sentence_counts, 0) - sentence_counts  # [E]
    pair_sentence = (
        sentence_start[image_owner[pair_image]] + torch.arange(pair_image.numel()) - first_pair[pair_image]
    )  # [P]
    best = torch.zeros(images.shape[0], dtype=torch.float32)  # images without sentences keep 0
    if pair_image.numel():
        sentences = torch.cat([e for e in sentence_embeds if len(e)])  # [S, Dt]
        probs = torch.cat(
            [
                scorer(
                    text_embeds=sentences[pair_sentence[i : i + batch_size]],
                    image_embeds=images[pair_image[i : i + batch_size]],
                ).float()
                for i in range(0, pair_image.numel(), batch_size)
            ]
        )  # [P]
        best = best.scatter_reduce(0, pair_image, probs, reduce="amax", include_self=False)
    value, examples = _mean_over_images_then_examples(best, image_counts)
    return {"clip_align": value, "clip_align_examples": examples}


@torch.no_grad()
def clip_score_from_embeddings(
    image_embeds: Sequence[torch.Tensor], text_embeds: torch.Tensor
) -> dict[str, float]:
    """CLIP-Score from embeddings, higher is better.

    For each image ``i`` of an example and the example's whole generated text ``t`` (embedded with the
    ``"A photo depicts "`` prefix): ``c = cos(E_i, E_t)``.

    - ``clip_score``: Hessel et al. (2021)'s CLIP-S, ``2.5 * max(c, 0)``, in [0, 2.5].
    - ``clip_score_cosine``: the raw cosine ``c``; x100 this is the paper's Table 2 "CLIP-Score"
      column (24.50 for PC2L, 28.41 for the ground truth).

    Both are averaged over an example's images, then over examples with images.

    Args:
        image_embeds (sequence of `torch.FloatTensor` of shape `(n_i, D)`): each example's images.
        text_embeds (`torch.FloatTensor` of shape `(N, D)`): one text embedding per example.

    Returns: ``{"clip_score": float, "clip_score_cosine": float, "clip_score_examples": int}`` (NaN scores when no
    example has images: nothing was scored).
    """
    _check_examples(image_embeds, text_embeds, "text_embeds")
    image_counts = torch.tensor([len(e) for e in image_embeds], dtype=torch.long)
    if int(image_counts.sum()) == 0:
        return {"clip_score": math.nan, "clip_score_cosine": math.nan, "clip_score_examples": 0}
    images = torch.nn.functional.normalize(torch.cat([e for e in image_embeds if len(e)]).float(), dim=-1)
    texts = torch.nn.functional.normalize(text_embeds.float(), dim=-1)[_owners(image_counts)]  # [I, D]
    cosine = (images * texts).sum(-1)  # [I]
    value, examples = _mean_over_images_then_examples(CLIP_SCORE_WEIGHT * cosine.clamp_min(0.0), image_counts)
    raw, _ = _mean_over_images_then_examples(cosine, image_counts)
    return {"clip_score": value, "clip_score_cosine": raw, "clip_score_examples": examples}


def load_clip_checkpoint(path: str, device: str = "cpu", option: str = "clip_model"):
    """``(model, CLIPProcessor)`` of any CLIP-shaped checkpoint name or folder (`features.clip.load_clip_model`: a
    ``CLIPModel`` or a ``VisionTextDualEncoderModel`` saved with a CLIP tokenizer), in eval mode on `device`:
    the one CLIP loader of CLIP-Score / CLIP-Align, shared by `gest-showcases evaluate` and the evaluate modules
    (the feature extractors' CLIP is `gest_showcases.features.load_clip`'s). `option` names the argument in the
    error (`--clip_model` for the command).

    Raises:
        `InputError`: when `path` is not a loadable CLIP checkpoint (folder or Hub name).
    """
    # Not a folder or Hub name, no config, not a CLIP checkpoint: one line naming `option`.
    with loading(option, path, failure="not a loadable CLIP checkpoint"):
        model, processor = load_clip_model(path, option).eval(), CLIPProcessor.from_pretrained(path)
    return model.to(device), processor


def load_classifier_scorer(
    path: str, device: str = "cpu", option: str = "classifier", interaction: bool = False, clip_dim: int | None = None
) -> Scorer:
    """The distilled explanation classifier of folder or Hub repo `path` as a CLIP-Align scorer.

    Loaded with the package's own `ExplanationClassifier` class, never with `AutoModel` and `trust_remote_code`:
    the folder's `modeling_explanation.py` is a copy shipped for Hub users, and running it would execute whatever
    was written into it. Weights load only from safetensors (a pickled `.bin` can run code when unpickled).
    `option` names the argument in the errors (`--classifier` for the command). `interaction=True` requires a
    classifier with the sentence x photo product term (`distill --interaction`), as CLIP-Align (t*v) does: a linear
    one would fill that column with the paper's metric under the other's name. `clip_dim`: the width of the CLIP
    embeddings it will score, checked against the classifier's before any is computed.

    Raises:
        `InputError`: when `path` holds no explanation classifier, its weights do not load, or it lacks the product
        term that `interaction=True` asks for.
    """
    config = require_model_type(
        path, ExplanationClassifierConfig.model_type, option, "pass the folder `gest-showcases distill` wrote"
    )
    if interaction and not config.get("interaction", False):
        raise InputError(
            f"{option} {path}: this classifier has no sentence x photo product term; train one with "
            "`gest-showcases distill --interaction`"
        )
    widths = (config.get("text_dim"), config.get("image_dim"))
    if clip_dim is not None and widths != (clip_dim, clip_dim):
        raise InputError(
            f"{option} {path}: reads {widths[0]}-d sentence and {widths[1]}-d photo embeddings, but the CLIP gives "
            f"{clip_dim}-d ones: pass the classifier `distill` trained on that CLIP's features"
        )
    with loading(option, path, "the weights do not load"):  # none, unreadable, or cut by a killed save
        model = load_whole(ExplanationClassifier, path, option, use_safetensors=True)
    model = model.to(device).eval()

    def scorer(text_embeds, image_embeds):
        embeds = {"text_embeds": text_embeds.to(device), "image_embeds": image_embeds.to(device)}
        return model(**embeds, return_dict=True).probabilities.cpu()

    return scorer


@torch.no_grad()
def embed_texts(texts: Sequence[str], model, processor, batch_size: int = 256) -> torch.Tensor:
    """L2-normalised CLIP text embeddings ``[N, D]``; long texts truncated keeping end-of-text."""
    max_length = model.config.text_config.max_position_embeddings
    device = model.device
    out = []
    for start in tqdm(range(0, len(texts), batch_size), desc="CLIP text", leave=False):
        batch = processor.tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        features = model.get_text_features(**batch).pooler_output  # [B, D]
        out.append(torch.nn.functional.normalize(features.float(), dim=-1).cpu())
    return torch.cat(out) if out else torch.zeros(0, model.config.projection_dim)


@torch.no_grad()
def embed_images(images: Sequence[Image.Image], model, processor, batch_size: int = 64) -> torch.Tensor:
    """L2-normalised CLIP image embeddings ``[N, D]``."""
    device = model.device
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="CLIP images", leave=False):
        pixels = processor.image_processor(
            images=[im.convert("RGB") for im in images[start : start + batch_size]], return_tensors="pt"
        )["pixel_values"].to(device, model.dtype)
        features = model.get_image_features(pixel_values=pixels).pooler_output  # [B, D]
        out.append(torch.nn.functional.normalize(features.float(), dim=-1).cpu())
    return torch.cat(out) if out else torch.zeros(0, model.config.projection_dim)


@torch.no_grad()
def embed_image_files(
    paths: dict[str, Path], model, processor, batch_size: int = 64
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Embed image files by id, batch by batch; returns ``({id: [D] embedding}, unreadable ids)``.

    Every file is opened by `data.images.open_image`, the package's one image opener: missing,
    undecodable, empty and over-the-pixel-limit files (decompression bombs included) are skipped and
    returned, never fatal, and never decoded in full.
    """
    ids = list(paths)
    embeddings: dict[str, torch.Tensor] = {}
    failed: list[str] = []
    for start in tqdm(range(0, len(ids), batch_size), desc="CLIP image files", leave=False):
        batch_ids, images = [], []
        for pic_id in ids[start : start + batch_size]:
            try:
                images.append(open_image(paths[pic_id]))
                batch_ids.append(pic_id)
            except UnreadableImageError:  # missing, truncated, not an image, a bomb or over the pixel limit
                failed.append(pic_id)
        if images:
            embeddings.update(zip(batch_ids, embed_images(images, model, processor, batch_size), strict=True))
    if failed:
        logger.warning("skipped %d unreadable image file(s), e.g. %s", len(failed), paths[failed[0]])
    return embeddings, failed


def _embed_image_sets(images: Sequence[Sequence[Image.Image]], model, processor) -> list[torch.Tensor]:
    flat = embed_images([im for ims in images for im in ims], model, processor)
    return list(torch.split(flat, [len(ims) for ims in images]))


def clip_align(
    images: Sequence[Sequence[Image.Image]], texts: Sequence[str], model, processor, scorer: Scorer
) -> dict[str, float]:
    """CLIP-Align of generated ``texts`` against each example's ``images`` (see `clip_align_from_embeddings`).

    Texts are split with `split_sentences` and every sentence is embedded on its own.
    """
    _check_examples(images, texts, "texts")
    sentences = [split_sentences(t) for t in texts]
    flat = embed_texts([s for ss in sentences for s in ss], model, processor)
    sentence_embeds = list(torch.split(flat, [len(ss) for ss in sentences]))
    return clip_align_from_embeddings(_embed_image_sets(images, model, processor), sentence_embeds, scorer)


def clip_score(
    images: Sequence[Sequence[Image.Image]], texts: Sequence[str], model, processor
) -> dict[str, float]:
    """CLIP-Score of generated ``texts`` against each example's ``images`` (see `clip_score_from_embeddings`)."""
    _check_examples(images, texts, "texts")
    text_embeds = embed_texts([CLIP_SCORE_PREFIX + t.strip() for t in texts], model, processor)
    return clip_score_from_embeddings(_embed_image_sets(images, model, processor), text_embeds)
