"""CLIP (and vision-backbone) feature extraction into the on-disk cache, on one or several processes.

`load_clip` wraps any transformers CLIP checkpoint (default `openai/clip-vit-base-patch32`, the
paper's encoder; also a `VisionTextDualEncoderModel`, as the stand-in CLIP with a CNN image tower is saved: see
`load_clip_model`) as an image model and a text model; `load_vision_backbone` wraps the generator's
image backbone (by default CLIP's own vision tower, pooled output; any `AutoModel` vision checkpoint
with a `pooler_output` works, e.g. a ResNet). `extract_image_features` and
`extract_text_features` compute what the cache lacks, in batches, and write it shard by shard.

Several processes (`accelerate launch --multi_gpu --num_processes N`, or `torchrun`) split the
pending ids with `PartialState.split_between_processes`; after every shard the results are gathered
on the main process, which alone writes. CLIP image and text embeddings are stored L2-normalised;
backbone (`vision`) features are stored as the model returns them.

Text and CLIP's 77-token limit: CLIP's text tower reads at most 77 tokens (start and end-of-text
included) and its text embedding is read at the end-of-text position. Reviews are therefore split
into sentences (`split_sentences`) and each sentence is embedded on its own; a review's embedding is
the renormalised mean of its sentences' (`TextFeatureModel.encode_reviews`, which the showcase
pipeline calls too, so a request's features are those training read from the cache). A sentence still
longer than 77 tokens is truncated by the tokenizer *before* the special tokens are added, so every
sequence keeps its end-of-text token (cutting it off would make CLIP read the embedding at an arbitrary
word).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoTokenizer,
    CLIPConfig,
    CLIPModel,
    PreTrainedModel,
    VisionTextDualEncoderConfig,
    VisionTextDualEncoderModel,
)

from gest_showcases.data.records import split_sentences
from gest_showcases.errors import InputError
from gest_showcases.model_folders import load_whole
from gest_showcases.numerics import NonFiniteError, format_ids, nonfinite_rows

from .cache import FeatureCache, checkpoint_fingerprint, dtype_name
from .loading import ImagePreprocessing, iterate_pixel_batches

logger = logging.getLogger(__name__)

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
CLIP_MAX_TOKENS = 77


class ImageEncoder(torch.nn.Module):
    """Pixel values -> one vector per image: a backbone's `pooler_output`, projected, optionally normalised."""

    def __init__(self, backbone: torch.nn.Module, projection: torch.nn.Module, normalize: bool):
        super().__init__()
        self.backbone = backbone
        self.projection = projection
        self.normalize = normalize

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.backbone(pixel_values=pixel_values).pooler_output.flatten(
            1
        )  # ResNet: [B, C, 1, 1] -> [B, C]
        embeds = self.projection(pooled)
        return torch.nn.functional.normalize(embeds, dim=-1) if self.normalize else embeds


class TextEncoder(torch.nn.Module):
    """Token ids -> L2-normalised CLIP text embeddings (pooled at the end-of-text token, projected)."""

    def __init__(self, text_model: torch.nn.Module, projection: torch.nn.Module):
        super().__init__()
        self.text_model = text_model
        self.projection = projection

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = self.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return torch.nn.functional.normalize(self.projection(pooled), dim=-1)


@dataclass
class ImageFeatureModel:
    """An image encoder ready to run, with what the cache records about it.

    Args:
        checkpoint (`str`): name or path it was loaded from.
        fingerprint (`str`): hash of its config and weights.
        encoder (`ImageEncoder`): the module, on `device` in `dtype`.
        preprocessing (`ImagePreprocessing`): the checkpoint's resize/crop/normalisation.
        device (`torch.device`), dtype (`torch.dtype`): where and how it runs.
    """

    checkpoint: str
    fingerprint: str
    encoder: ImageEncoder
    preprocessing: ImagePreprocessing
    device: torch.device
    dtype: torch.dtype

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 `[B, 3, H, W]` (on `device`) -> float32 `[B, D]` on the CPU."""
        values = self.preprocessing.normalize(pixels.to(self.device), self.dtype)
        return self.encoder(values).float().cpu()


@dataclass
class ReviewEmbeddings:
    """CLIP text features of reviews, from `TextFeatureModel.encode_reviews`.

    Args:
        reviews (`torch.Tensor` of shape `(n_reviews, D)`): one L2-normalised row per text with a sentence (texts
            without any are left out), in the texts' order: the renormalised mean of its sentences' rows.
        sentences (`torch.Tensor` of shape `(n_sentences, D)`): one L2-normalised row per sentence of
            `split_sentences(text)`, text after text.
        sentence_counts (`list[int]`): sentences per text, in the texts' order (0: the text has no review row).
    """

    reviews: torch.Tensor
    sentences: torch.Tensor
    sentence_counts: list[int]


@dataclass
class TextFeatureModel:
    """CLIP's text tower ready to run; texts longer than 77 tokens are truncated keeping end-of-text."""

    checkpoint: str
    fingerprint: str
    encoder: TextEncoder
    tokenizer: object
    device: torch.device
    dtype: torch.dtype  # the tower's weights' (load_clip moves the whole CLIP)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Texts -> float32 `[len(texts), D]` on the CPU, batched by length to keep padding short."""
        order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
        out = torch.empty(len(texts), self.encoder.projection.out_features)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            tokens = self.tokenizer(
                [texts[row] for row in rows],
                padding="longest",
                truncation=True,
                max_length=CLIP_MAX_TOKENS,
                return_tensors="pt",
            ).to(self.device)
            out[rows] = self.encoder(tokens["input_ids"], tokens["attention_mask"]).float().cpu()
        return out

    def encode_reviews(self, texts: Sequence[str], batch_size: int = 256) -> ReviewEmbeddings:
        """Review texts -> their sentences' embeddings and each review's, the renormalised mean of its sentences'.

        The one definition of a review's CLIP features: `extract_text_features` caches them for training and
        `ShowcasePipeline` computes them for a request, so both read the same numbers. Each sentence is encoded on
        its own (CLIP reads 77 tokens at most), `batch_size` sentences per forward pass.
        """
        sentences = [split_sentences(text) for text in texts]
        counts = [len(pieces) for pieces in sentences]
        flat = [piece for pieces in sentences for piece in pieces]
        sentence_embeds = self.encode(flat, batch_size)  # [S, D]
        # Which text each sentence comes from, [S].
        owner = torch.repeat_interleave(torch.tensor(counts, dtype=torch.long))
        # Mean of each review's sentence vectors via one scatter-add: [S, D] -> [len(texts), D].
        sums = torch.zeros(len(texts), sentence_embeds.shape[1]).index_add_(0, owner, sentence_embeds)
        has_sentences = torch.tensor([count > 0 for count in counts], dtype=torch.bool)
        return ReviewEmbeddings(
            reviews=torch.nn.functional.normalize(sums[has_sentences], dim=-1),
            sentences=sentence_embeds,
            sentence_counts=counts,
        )


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`"auto"` is bfloat16 on a GPU and float32 elsewhere; else `"float32"`, `"float16"` or `"bfloat16"`."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in ("float32", "float16", "bfloat16"):
        raise ValueError(f"unknown dtype {name!r}; expected auto, float32, float16 or bfloat16")
    return getattr(torch, name)


# What `load_clip_model` accepts: a config class -> the model class of a CLIP-shaped dual encoder with that config.
CLIP_MODEL_CLASSES: dict[type, type[PreTrainedModel]] = {
    CLIPConfig: CLIPModel,
    VisionTextDualEncoderConfig: VisionTextDualEncoderModel,
}
# Their `model_type`s: what a folder `train-clip` writes holds.
CLIP_MODEL_TYPES = tuple(config.model_type for config in CLIP_MODEL_CLASSES)


def clip_model_class(config) -> type[PreTrainedModel] | None:
    """The model class for `config` if it is a CLIP-shaped dual encoder's (see `load_clip_model`), else None."""
    return next((model for kind, model in CLIP_MODEL_CLASSES.items() if isinstance(config, kind)), None)


def load_clip_model(name_or_path: str | Path, option: str = "--clip_model") -> PreTrainedModel:
    """The one loader of CLIP-shaped checkpoints, in float32 on the CPU: a `CLIPModel` (the paper's encoder, or the
    stand-in CLIP with a ViT image tower) or a `VisionTextDualEncoderModel` (the stand-in CLIP with its CNN tower,
    `train-clip --image_tower cnn`; any other dual encoder works too).

    Both have the attributes the package reads: `vision_model` and `text_model` (each returning a `pooler_output`),
    `visual_projection`, `text_projection`, `logit_scale`, `get_image_features` / `get_text_features`.

    Raises:
        InputError: `name_or_path`'s config is neither (the message names its type; a `ValueError`), or its weights
            do not fit the model (`model_folders.load_whole`, naming `option`: transformers would fill the gap with
            random values).
        OSError: no config can be read there.
    """
    config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=False)
    model_class = clip_model_class(config)
    if model_class is None:
        raise InputError(
            f"{name_or_path} is a {type(config).__name__} checkpoint, not a CLIP: expected a CLIPModel or a "
            "VisionTextDualEncoderModel (image and text towers with projections)"
        )
    return load_whole(model_class, name_or_path, option, config=config, dtype=torch.float32)


def load_clip(
    name_or_path: str = DEFAULT_CLIP,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    option: str = "--clip_model",
) -> tuple[ImageFeatureModel, TextFeatureModel]:
    """Load a CLIP checkpoint (Hub name or local folder) as an image and a text feature model (`option` names it in
    errors)."""
    device = torch.device(device)
    model = load_clip_model(name_or_path, option)
    fingerprint = checkpoint_fingerprint(model, model.config.to_dict())
    model.to(device=device, dtype=dtype).eval()
    processor = AutoImageProcessor.from_pretrained(name_or_path, trust_remote_code=False)
    preprocessing = ImagePreprocessing.from_image_processor(processor)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)
    image_model = ImageFeatureModel(
        checkpoint=str(name_or_path),
        fingerprint=fingerprint,
        encoder=ImageEncoder(model.vision_model, model.visual_projection, normalize=True),
        preprocessing=preprocessing,
        device=device,
        dtype=dtype,
    )
    text_model = TextFeatureModel(
        checkpoint=str(name_or_path),
        fingerprint=fingerprint,
        encoder=TextEncoder(model.text_model, model.text_projection),
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
    )
    return image_model, text_model


def load_vision_backbone(
    name_or_path: str = DEFAULT_CLIP,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    option: str = "--vision_model",
) -> ImageFeatureModel:
    """The generator's image backbone: the vision tower of a CLIP-shaped checkpoint (`load_clip_model`), else
    `AutoModel`.

    Features are the backbone's `pooler_output` (flattened), not projected and not normalised.
    """
    device = torch.device(device)
    config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=False)
    if clip_model_class(config) is not None:
        model = load_clip_model(name_or_path, option).vision_model
        fingerprint = checkpoint_fingerprint(model, config.vision_config.to_dict())
    else:
        model = AutoModel.from_pretrained(name_or_path, dtype=torch.float32, trust_remote_code=False)
        fingerprint = checkpoint_fingerprint(model, model.config.to_dict())
    model.to(device=device, dtype=dtype).eval()
    processor = AutoImageProcessor.from_pretrained(name_or_path, trust_remote_code=False)
    preprocessing = ImagePreprocessing.from_image_processor(processor)
    return ImageFeatureModel(
        checkpoint=str(name_or_path),
        fingerprint=fingerprint,
        encoder=ImageEncoder(model, torch.nn.Identity(), normalize=False),
        preprocessing=preprocessing,
        device=device,
        dtype=dtype,
    )


@dataclass
class ExtractionReport:
    """What one extraction did: `total` ids asked, `cached` already there, `written` new, `failed` skipped."""

    kind: str
    total: int
    cached: int
    written: int
    failed: int


def _share_of_work(state: PartialState, pending: list) -> list:
    """This process's slice of `pending`, padded by repeating the last item so every process runs
    the same number of steps (the main process drops the repeats when writing)."""
    remainder = len(pending) % state.num_processes
    padded = pending + pending[-1:] * ((state.num_processes - remainder) % state.num_processes)
    with state.split_between_processes(padded) as share:
        return list(share)


class _GatheringWriter:
    """Collects (ids, embeddings) rows per process; `flush` gathers them on the main process and writes one shard.

    `flush` is collective: every process must call it the same number of times.
    """

    def __init__(self, state: PartialState, cache: FeatureCache):
        self.state = state
        self.cache = cache
        self.ids: list[str] = []
        self.blocks: list[torch.Tensor] = []
        self.failed: list[str] = []
        self.written: set[str] = set()
        self.failed_total: set[str] = set()
        self.nonfinite: set[str] = set()  # of `failed_total`: computed, but NaN or inf

    def add(self, ids: list[str], embeddings: torch.Tensor | None, failed: Sequence[str] = ()) -> None:
        if ids:
            self.ids.extend(ids)
            self.blocks.append(embeddings)
        self.failed.extend(failed)

    def flush(self) -> None:
        local = (self.ids, torch.cat(self.blocks) if self.blocks else None, self.failed)
        parts = gather_object([local])
        self.ids, self.blocks, self.failed = [], [], []
        if not self.state.is_main_process:
            return
        ids, rows = [], []
        for part_ids, part_embeddings, part_failed in parts:
            self.failed_total.update(part_failed)
            for row, key in enumerate(part_ids):
                if key not in self.written:
                    self.written.add(key)
                    ids.append(key)
                    rows.append(part_embeddings[row])
        if not ids:
            return
        embeddings = torch.stack(rows)
        # A NaN/inf row (an fp16 overflow, a broken checkpoint) is never cached: loading would refuse
        # the whole kind. It counts as failed, and a rerun tries it again.
        bad = set(nonfinite_rows(embeddings).tolist())
        if bad:
            logger.warning(
                "%d %s features are NaN or inf and are not cached: %s",
                len(bad),
                self.cache.kind,
                format_ids([ids[row] for row in sorted(bad)]),
            )
            self.failed_total.update(ids[row] for row in bad)
            self.nonfinite.update(ids[row] for row in bad)
            self.written.difference_update(ids[row] for row in bad)
            keep = [row for row in range(len(ids)) if row not in bad]
            ids, embeddings = [ids[row] for row in keep], embeddings[keep]
        if ids:
            self.cache.write(ids, embeddings)

    def check_the_model_computed_something(self, model_name: str) -> None:
        """After the last flush, on every process (collective: the main one decides): refuse a run whose every
        computed row was NaN or inf. That is the model's fault (a diverged or broken checkpoint), not the inputs',
        and a rerun would fail the same way."""
        failed = [self.state.is_main_process and bool(self.nonfinite) and not self.written]
        if broadcast_object_list(failed)[0]:
            raise NonFiniteError(
                f"every one of the {len(self.nonfinite)} {self.cache.kind} features {model_name} computed is NaN or "
                "inf (nothing is cached): the model is broken; retrain it or give another --clip_model"
            )


def extract_image_features(
    items: Sequence[tuple[str, str | Path]],
    model: ImageFeatureModel,
    output: str | Path,
    kind: str = "image",
    batch_size: int = 256,
    num_workers: int = 4,
    shard_size: int = 8192,
    decode_on_gpu: bool = False,
) -> ExtractionReport:
    """Embed every (pic_id, path) not yet in `output`'s `kind` cache; resumable, multi-process.

    Args:
        items (`Sequence[tuple[str, str | Path]]`): images to embed, by id.
        model (`ImageFeatureModel`): from `load_clip` (kind `"image"`) or `load_vision_backbone` (`"vision"`).
        output (`str` or `Path`): the feature folder.
        kind (`str`): `"image"` or `"vision"`.
        batch_size (`int`): images per forward pass.
        num_workers (`int`): DataLoader processes reading (and on CPU decoding) images.
        shard_size (`int`): images per shard written (rounded up to whole batches).
        decode_on_gpu (`bool`): decode JPEGs with nvJPEG on the model's device (needs torchvision).

    Returns:
        `ExtractionReport` (counts on the main process; other processes report what they saw).

    Raises:
        CacheMismatchError: `output` holds `kind` features of another checkpoint.
    """
    state = PartialState()
    with state.main_process_first():
        cache = FeatureCache(
            output,
            kind,
            model.checkpoint,
            model.fingerprint,
            normalized=model.encoder.normalize,
            dtype=dtype_name(model.dtype),
        )
        done = cache.done_ids()
    unique = list(dict.fromkeys(key for key, _ in items))
    paths = dict(items)
    pending = [(key, paths[key]) for key in unique if key not in done]
    report = ExtractionReport(
        kind=kind, total=len(unique), cached=len(unique) - len(pending), written=0, failed=0
    )
    if not pending:
        logger.info("all %d %s features already cached in %s", len(unique), kind, output)
        if state.is_main_process:
            cache.finish_run()  # a run killed after its last shard, before it recorded that it had finished
        return report
    if state.is_main_process:
        cache.start_run()
    share = _share_of_work(state, pending)
    writer = _GatheringWriter(state, cache)
    batches_per_shard = max(1, shard_size // batch_size)
    batches = iterate_pixel_batches(
        share, model.preprocessing, model.device, batch_size, num_workers, decode_on_gpu
    )
    total_batches = -(-len(share) // batch_size)
    progress = tqdm(batches, total=total_batches, desc=f"{kind} features", disable=not state.is_main_process)
    for step, batch in enumerate(progress, start=1):
        writer.add(batch.ids, model.encode(batch.pixels) if batch.pixels is not None else None, batch.failed)
        if step % batches_per_shard == 0 or step == total_batches:
            writer.flush()
    writer.check_the_model_computed_something(model.checkpoint)  # before the run is recorded as finished
    if state.is_main_process:  # every process's rows are written: the last flush gathered them
        cache.finish_run()
    state.wait_for_everyone()  # no process reads the kind (distill does at once) before the flag says finished
    report.written, report.failed = len(writer.written), len(writer.failed_total)
    unreadable = report.failed - len(writer.nonfinite)
    if unreadable:
        logger.warning("%d of %d %s photos were missing or unreadable and were skipped", unreadable, len(pending), kind)
    return report


def extract_text_features(
    reviews: Sequence[tuple[str, str]],
    model: TextFeatureModel,
    output: str | Path,
    batch_size: int = 256,
    shard_size: int = 4096,
) -> tuple[ExtractionReport, ExtractionReport]:
    """Embed (review_id, text) pairs: kind `"sentence"` keyed `f"{review_id}#{i}"` for the i-th sentence of
    `split_sentences(text)`, and kind `"review"` keyed `review_id`, the renormalised mean of its sentences.

    Reviews without any sentence (empty text) get no embedding and count as failed. The review shard
    is written after its sentences' shard, so a review found in the cache has all its sentences.

    Returns:
        (`ExtractionReport` for reviews, `ExtractionReport` for sentences).
    """
    state = PartialState()
    with state.main_process_first():
        precision = dtype_name(model.dtype)
        review_cache = FeatureCache(
            output, "review", model.checkpoint, model.fingerprint, normalized=True, dtype=precision
        )
        sentence_cache = FeatureCache(
            output, "sentence", model.checkpoint, model.fingerprint, normalized=True, dtype=precision
        )
        sentences_done = sentence_cache.done_ids()
        # A review counts as done only with its sentences: all of them sit in one shard (both kinds are
        # flushed per chunk), which a rerun may have deleted as damaged while the review shard survived.
        done = {key for key in review_cache.done_ids() if f"{key}#0" in sentences_done}
    texts = dict(reviews)
    pending = [(key, texts[key]) for key in texts if key not in done]
    review_report = ExtractionReport(
        "review", total=len(texts), cached=len(texts) - len(pending), written=0, failed=0
    )
    sentence_report = ExtractionReport("sentence", total=0, cached=0, written=0, failed=0)
    if not pending:
        if state.is_main_process:  # a run killed after its last shard, before it recorded that it had finished
            review_cache.finish_run()
            sentence_cache.finish_run()
        return review_report, sentence_report
    if state.is_main_process:
        review_cache.start_run()
        sentence_cache.start_run()
    share = _share_of_work(state, pending)
    review_writer, sentence_writer = (
        _GatheringWriter(state, review_cache),
        _GatheringWriter(state, sentence_cache),
    )
    starts = range(0, len(share), shard_size)
    for start in tqdm(starts, desc="text features", disable=not state.is_main_process):
        chunk = share[start : start + shard_size]
        encoded = model.encode_reviews([text for _, text in chunk], batch_size)
        counts = list(zip([key for key, _ in chunk], encoded.sentence_counts, strict=True))
        sentence_ids = [f"{key}#{i}" for key, count in counts for i in range(count)]
        review_ids = [key for key, count in counts if count]
        sentence_writer.add(sentence_ids, encoded.sentences if sentence_ids else None)
        review_writer.add(
            review_ids, encoded.reviews if review_ids else None, [key for key, count in counts if not count]
        )
        sentence_writer.flush()
        review_writer.flush()
    sentence_writer.check_the_model_computed_something(model.checkpoint)  # before the run is recorded as finished
    if state.is_main_process:
        review_cache.finish_run()
        sentence_cache.finish_run()
    state.wait_for_everyone()
    review_report.written, review_report.failed = len(review_writer.written), len(review_writer.failed_total)
    sentence_report.total = sentence_report.written = len(sentence_writer.written)
    return review_report, sentence_report
