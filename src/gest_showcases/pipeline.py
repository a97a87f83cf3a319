"""`ShowcasePipeline`: a user's history and a business's photos in, a personalized showcase out.

The two steps of the paper, on raw inputs, in the spirit of a transformers pipeline:

1. CLIP features of the business's candidate photos and of the user's history (review texts, photos)
   are computed on the fly with the features layer's encoders (`load_clip`: images L2-normalised;
   a review is the renormalised mean of its sentences' embeddings, as `extract_text_features`
   caches it), and `DPPImageSelector.select` picks K photos (greedy MAP under the learned kernel).
2. `PC2LForConditionalGeneration.generate` writes the explanation from the selected photos' image
   features and the user's history-review features, the inputs its training saw: images as
   `gest-showcases train-pc2l --image_kind` read them (`"vision"`: the generator backbone's pooled
   output from `load_vision_backbone`; `"image"`: CLIP image embeddings; the generator's config records
   which, `config.image_kind`), at most `max_images` photos (in pick order) and the first `max_reviews`
   history reviews. Where the config records the models that computed its training features
   (fingerprints of their weights), the pipeline's encoders must be those models; they run in the precision
   recorded with them (`feature_dtypes`: bf16 for features a GPU extracted with `--dtype auto`), so the
   generator reads the numbers its training read.

Saving and sharing (`save_pretrained`, `from_pretrained(folder_or_repo)`, `push_to_hub`): one folder holds the
generator at its root (so it is also a plain PC2L checkpoint, and the folder is a transformers model folder),
`selector/`, `clip/` (model, image processor and tokenizer), `vision/` when the generator's backbone is another
checkpoint than `clip/`, and `showcase_config.json` (which subfolder is which part, `image_kind`, `k` and the
decoding settings). With the package imported, `transformers.pipeline("personalized-showcase", model=folder)` loads
it as a [`ShowcaseTransformersPipeline`].

Edge cases, each reported in the result's `warnings` (and logged):

- Cold user (no history review with text and no readable history photo): the selector gets the
  empty profile, all zeros, which is also what training gave users without history. The user MLP
  then outputs one fixed embedding, so the pick is the relevance every user shares plus diversity:
  a quality-and-diversity ranking, the same for every cold user. The explanation is generated from
  the photos alone. A generator trained on history reviews only (`input_mode="text"`) has nothing to
  read for a user without history reviews: ValueError.
- A business with fewer readable photos than K: all of them are returned.
- Unreadable or missing photos (broken, empty, 0-pixel, or over the package's pixel limit: every file
  is opened by `gest_showcases.data.images.open_image`): skipped and listed in `skipped`; a business
  with none readable raises `InputError` (no showcase can be made).

Example:

```python
>>> from gest_showcases.pipeline import ShowcaseInput, ShowcasePipeline
>>> showcase = ShowcasePipeline.from_pretrained(
...     selector="runs/selector-img+text", generator="runs/pc2l", clip="openai/clip-vit-base-patch32"
... )
>>> result = showcase(ShowcaseInput(candidates=["photos/a.jpg", "photos/b.jpg"], history_texts=["Great ramen."]))
>>> result.explanation, [photo.id for photo in result.photos]
>>> showcase.save_pretrained("showcase")  # then: ShowcasePipeline.from_pretrained("showcase"), or
>>> from transformers import pipeline  # with `gest_showcases` imported
>>> pipeline("personalized-showcase", model="showcase")({"candidates": ["photos/a.jpg"], "history_texts": []})
```
"""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoTokenizer,
    GenerationConfig,
    Pipeline,
    PreTrainedTokenizerBase,
)
from transformers.utils import ADAPTER_CONFIG_NAME, GENERATION_CONFIG_NAME

from gest_showcases.data.images import MAX_IMAGE_PIXELS, UnreadableImageError, open_image
from gest_showcases.data.records import split_sentences
from gest_showcases.errors import InputError, one_line
from gest_showcases.features.clip import (
    CLIP_MODEL_TYPES,
    ImageFeatureModel,
    TextFeatureModel,
    clip_model_class,
    load_clip,
    load_clip_model,
    load_vision_backbone,
)
from gest_showcases.features.loading import ImagePreprocessing
from gest_showcases.generation import PC2LConfig, PC2LForConditionalGeneration
from gest_showcases.generation.configuration_pc2l import IMAGE_KINDS, MAX_NUM_BEAMS, PAPER_DECODING
from gest_showcases.model_folders import load_whole, loading, require_model_type, without_chat_template
from gest_showcases.selection import DPPImageSelector, DPPSelectorConfig
from gest_showcases.selection.configuration_dpp import MAX_TOP_K
from gest_showcases.tensors import pad_ragged

logger = logging.getLogger(__name__)

ImageLike = str | Path | Image.Image
ENCODE_BATCH = 256  # images per CLIP / backbone forward pass
# What decoding an in-memory PIL image may raise when it was opened lazily from a broken file (files are
# opened by `open_image`, which turns all of these into `UnreadableImageError`, an OSError).
_UNUSABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
# A saved pipeline folder: this file, the generator at the root, the other parts in the subfolders it names.
SHOWCASE_CONFIG = "showcase_config.json"
SHOWCASE_FORMAT = 1
# The transformers task `gest_showcases._auto_registration` registers `ShowcaseTransformersPipeline` for.
TASK = "personalized-showcase"


@dataclass
class ShowcaseInput:
    """One request: a business's candidate photos and what is known of the user.

    Args:
        candidates (`Mapping[str, str | Path | PIL.Image.Image]` or `Sequence`): the business's photos by
            id, or a sequence of them (ids: the file name without extension for paths, `photo-<i>` for
            PIL images).
        history_texts (`Sequence[str]`): the user's other reviews, most relevant first (the generator
            reads the first `max_reviews`). Empty texts are ignored.
        history_images (`Sequence[str | Path | PIL.Image.Image]`): photos of the user's other reviews.
        user_id (`str`, *optional*), business_id (`str`, *optional*): carried into the result.
    """

    candidates: Mapping[str, ImageLike] | Sequence[ImageLike]
    history_texts: Sequence[str] = ()
    history_images: Sequence[ImageLike] = ()
    user_id: str | None = None
    business_id: str | None = None

    @classmethod
    def from_row(cls, row: Mapping, image_paths: Mapping[str, Path]) -> ShowcaseInput:
        """The request of a built dataset's row: its business's photo pool, the history stored with it (the
        user's other reviews), its user and business.

        Args:
            row (`Mapping`): a row of a built folder (`gest_showcases.data.folder.read_rows`), or a mapping
                with its keys: `candidate_pics` and `business_id`; `history_texts`, `history_pics` and
                `user_id` may be absent (a user known by texts only, or by nothing: a cold user).
            image_paths (`Mapping[str, Path]`): pic_id -> file for the row's photos, as the path policy
                resolves them (`gest_showcases.data.folder.dataset_image_paths`, once for many rows).
        """
        return cls(
            candidates={pic: image_paths[pic] for pic in dict.fromkeys(row["candidate_pics"])},
            history_texts=list(row.get("history_texts", ())),
            history_images=[image_paths[pic] for pic in row.get("history_pics", ())],
            user_id=row.get("user_id"),
            business_id=row["business_id"],
        )

    def candidate_items(self) -> list[tuple[str, ImageLike]]:
        """(id, photo) pairs; ValueError on a repeated id."""
        if isinstance(self.candidates, Mapping):
            return list(self.candidates.items())
        items = [
            (Path(photo).stem if isinstance(photo, str | Path) else f"photo-{index}", photo)
            for index, photo in enumerate(self.candidates)
        ]
        ids = [key for key, _ in items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"candidate photos have repeated ids {ids}: pass them as a mapping id -> photo")
        return items


@dataclass
class ShowcasePhoto:
    """A selected photo.

    Args:
        id (`str`): its id among the candidates.
        score (`float`): its log relevance to the user, `log q_i` of the selector's kernel (higher: more
            relevant); the pick order also weighs diversity, so scores need not decrease.
        path (`str`, *optional*): its file, when it was given as a path.
        image (`PIL.Image.Image`, *optional*): the image itself, when it was given as one.
    """

    id: str
    score: float
    path: str | None = None
    image: Image.Image | None = field(default=None, repr=False)


@dataclass
class Showcase:
    """A personalized showcase: the selected photos (in pick order) and the generated explanation.

    Args:
        photos (`list[ShowcasePhoto]`): at most K photos.
        explanation (`str`): the generated text.
        user_id (`str`, *optional*), business_id (`str`, *optional*): from the input.
        cold_user (`bool`): the user had no usable history (see the module docstring).
        skipped (`list[str]`): ids of candidate photos that could not be read.
        warnings (`list[str]`): what went differently from a normal request, in words.
    """

    photos: list[ShowcasePhoto]
    explanation: str
    user_id: str | None = None
    business_id: str | None = None
    cold_user: bool = False
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict (photos without their PIL images)."""
        return {
            "photos": [{"id": photo.id, "score": photo.score, "path": photo.path} for photo in self.photos],
            "explanation": self.explanation,
            "user_id": self.user_id,
            "business_id": self.business_id,
            "cold_user": self.cold_user,
            "skipped": list(self.skipped),
            "warnings": list(self.warnings),
        }


def resolve_image_kind(generator: PC2LForConditionalGeneration, image_kind: str | None) -> str:
    """The image features `generator` reads: `image_kind` when given (InputError when unknown), else its config's
    `image_kind`, else (generators saved before it was recorded) the legacy kind (`PC2LConfig.image_features_read`)."""
    if image_kind is None:
        return generator.config.image_features_read
    if image_kind not in IMAGE_KINDS:
        raise InputError(f"image_kind must be one of {IMAGE_KINDS}, got {image_kind!r}")
    return image_kind


def feature_dtypes(generator: PC2LForConditionalGeneration, image_kind: str) -> dict[str, torch.dtype]:
    """The precisions to encode in, as the generator's training features were computed (`features --dtype`, which
    `train-pc2l` records in its config): `{"image": ..., "text": ...}` for CLIP's towers, `{"vision": ...}` for the
    backbone. CLIP's image tower follows the recorded image precision when the generator reads CLIP image features
    (`image_kind` `"image"`), else the text tower's (one extraction computes both); float32 where nothing is recorded
    (generators saved before it was, or trained on features of another kind than `image_kind`)."""
    config = generator.config
    recorded = config.image_feature_dtype if image_kind == config.image_kind else None
    clip_image = recorded if image_kind == "image" else None
    text = config.review_feature_dtype or clip_image or "float32"
    vision = (recorded if image_kind == "vision" else None) or "float32"
    return {
        "image": getattr(torch, clip_image or text),
        "text": getattr(torch, text),
        "vision": getattr(torch, vision),
    }


def read_pixels(photos: Sequence[ImageLike], preprocessing: ImagePreprocessing) -> list[torch.Tensor | None]:
    """Photos (paths or PIL images) -> uint8 `[3, H, W]` each as `preprocessing` resizes and crops them,
    None for a photo that cannot be used.

    Files are opened by `open_image`, the package's one way to decode a photo (missing, broken, 0-pixel
    and over-limit files are refused before their pixels are read). An in-memory image is held to the
    same size bounds: a 0-pixel one would divide by zero in the resize.
    """
    pixels: list[torch.Tensor | None] = []
    for index, photo in enumerate(photos):
        try:
            if isinstance(photo, Image.Image):
                if not 0 < photo.width * photo.height <= MAX_IMAGE_PIXELS:
                    raise UnreadableImageError(f"photo {index}: {photo.width}x{photo.height} pixels")
                image = photo
            else:
                image = open_image(photo)
            pixels.append(preprocessing.pil_to_uint8(image))
        except _UNUSABLE as error:
            logger.debug("unusable image %d: %s", index, error)
            pixels.append(None)
    return pixels


# Constructor settings a saved pipeline records (beside its parts and `image_kind`).
SAVED_SETTINGS = ("k", "batch_size", "num_beams", "max_new_tokens")
_PARTS = ("generator", "selector", "clip", "vision")


def _is_saved_pipeline(path: str | Path) -> bool:
    return (Path(path) / SHOWCASE_CONFIG).is_file()


def require_saved_pipeline(folder: str | Path) -> None:
    """Refuse a local folder that `ShowcasePipeline.save_pretrained` did not write (no `showcase_config.json`), in
    the words of a command given one (`push --showcase`, its card)."""
    if not _is_saved_pipeline(folder):
        raise InputError(f"{folder} holds no {SHOWCASE_CONFIG}: not a folder saved by ShowcasePipeline.save_pretrained")


def _pipeline_folder(name_or_path: str | Path, revision: str | None, token: str | bool | None) -> Path:
    """The local folder of a saved pipeline: `name_or_path` itself, or the snapshot of the Hub repo it names."""
    folder = Path(name_or_path)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(str(name_or_path), revision=revision, token=token))
    if not _is_saved_pipeline(folder):
        raise InputError(
            f"{name_or_path} holds no {SHOWCASE_CONFIG}, so it is no saved ShowcasePipeline: save one with "
            "`save_pretrained`, or pass selector=, generator= and clip="
        )
    # Absolute: a part's path built from a relative folder that lacked the part would be read as a Hub repo id.
    return folder.resolve()


def _read_showcase_config(folder: Path) -> dict:
    """`showcase_config.json`, checked: a known format, parts in existing subfolders of `folder` (a downloaded config
    must not point the loaders elsewhere on the machine, or to the Hub), and positive whole numbers as settings."""
    try:
        saved = json.loads((folder / SHOWCASE_CONFIG).read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as error:  # the generic message would name no file
        message = f"{folder / SHOWCASE_CONFIG}: not valid JSON ({one_line(error)}); save the pipeline again"
        raise InputError(message) from error
    if not isinstance(saved, dict):
        raise InputError(f"{folder / SHOWCASE_CONFIG} is not a JSON object; save the pipeline again")
    if saved.get("format") != SHOWCASE_FORMAT:
        raise InputError(
            f"{folder / SHOWCASE_CONFIG} has format {saved.get('format')!r}; this gest-showcases reads format "
            f"{SHOWCASE_FORMAT} (was it saved by another version?)"
        )
    for part in _PARTS:
        value = saved.get(part)
        if (part != "vision" or value is not None) and (
            not isinstance(value, str) or Path(value).is_absolute() or ".." in Path(value).parts
        ):
            raise InputError(f"{folder / SHOWCASE_CONFIG}: {part!r} must name a subfolder, got {value!r}")
        if value is not None and not (
            (folder / value).is_dir() and (folder / value).resolve().is_relative_to(folder.resolve())
        ):
            raise InputError(f"{folder / SHOWCASE_CONFIG}: {part!r} names {value!r}, which is no subfolder of {folder}")
    if saved.get("image_kind") not in (None, *IMAGE_KINDS):
        raise InputError(f"{folder / SHOWCASE_CONFIG}: 'image_kind' must be one of {IMAGE_KINDS}, got {saved['image_kind']!r}")
    for setting in SAVED_SETTINGS:
        value = saved.get(setting)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InputError(f"{folder / SHOWCASE_CONFIG}: {setting!r} must be a whole number >= 1, got {value!r}")
    return saved


def _save_encoder_checkpoint(
    encoder: ImageFeatureModel, folder: Path, load, what: str, copy: bool = True
) -> None:
    """Save (when `copy`) the checkpoint `encoder` was loaded from to `folder` (model, image processor, a CLIP's
    tokenizer), unless it is that folder; ValueError unless `load(folder)` computes the same features (equal
    fingerprints)."""
    source = encoder.checkpoint
    if copy and not (folder.exists() and folder.resolve() == Path(source).resolve()):
        try:
            is_clip = clip_model_class(AutoConfig.from_pretrained(source, trust_remote_code=False)) is not None
            model = (
                load_clip_model(source)
                if is_clip
                else AutoModel.from_pretrained(source, dtype=torch.float32, trust_remote_code=False)
            )
            model.save_pretrained(folder)
            AutoImageProcessor.from_pretrained(source, trust_remote_code=False).save_pretrained(folder)
            if is_clip:
                AutoTokenizer.from_pretrained(source, trust_remote_code=False).save_pretrained(folder)
        except OSError as error:
            raise OSError(
                f"cannot save the pipeline's {what}: its checkpoint {source!r} cannot be read"
            ) from error
    saved = load(str(folder)).fingerprint
    if saved != encoder.fingerprint:
        raise ValueError(
            f"the pipeline's {what} (fingerprint {encoder.fingerprint[:12]}) is not the checkpoint it was loaded from, "
            f"{source!r} (fingerprint {saved[:12]}): save that model with its own `save_pretrained` and build the "
            "pipeline from it"
        )


@dataclass
class _Prepared:
    """One input after feature extraction (internal)."""

    request: ShowcaseInput
    ids: list[str]
    photos: list[ImageLike]
    features: torch.Tensor  # [n_readable, clip_dim]
    profile_text: torch.Tensor  # [text_dim]
    profile_image: torch.Tensor  # [image_dim]
    reviews: torch.Tensor  # [n_reviews, text_dim]
    cold_user: bool
    skipped: list[str]
    warnings: list[str]


class ShowcasePipeline:
    """Personalized showcases from raw photos and texts: `DPPImageSelector` then `PC2LForConditionalGeneration`.

    Args:
        selector ([`DPPImageSelector`]): the image-set selector.
        generator ([`PC2LForConditionalGeneration`]): the explanation generator.
        tokenizer ([`PreTrainedTokenizerBase`]): the generator's tokenizer.
        clip_image (`ImageFeatureModel`), clip_text (`TextFeatureModel`): from `load_clip`.
        vision (`ImageFeatureModel`, *optional*): the generator's image backbone (`load_vision_backbone`);
            needed when the generator reads images of kind `"vision"`.
        image_kind (`str`, *optional*): which image features the generator was trained on
            (`train-pc2l --image_kind`): `"vision"` or `"image"` (CLIP). Defaults to the generator's
            `config.image_kind`, and to `"vision"` for generators saved before it was recorded; a value
            given here overrides the config.
        batch_size (`int`, *optional*, defaults to 8): requests processed together.
        k (`int`, *optional*): photos per showcase; defaults to the selector's `config.top_k`.
        num_beams (`int`, *optional*), max_new_tokens (`int`, *optional*): decoding settings; by default the
            generator's `generation_config` (a PC2L checkpoint carries the paper's 2 beams and 64 new tokens),
            with 64 new tokens where it sets none.
    """

    def __init__(
        self,
        selector: DPPImageSelector,
        generator: PC2LForConditionalGeneration,
        tokenizer: PreTrainedTokenizerBase,
        clip_image: ImageFeatureModel,
        clip_text: TextFeatureModel,
        vision: ImageFeatureModel | None = None,
        image_kind: str | None = None,
        batch_size: int = 8,
        num_beams: int | None = None,
        max_new_tokens: int | None = None,
        k: int | None = None,
    ):
        recorded = generator.config.image_kind
        if (
            image_kind is not None
            and recorded is not None
            and image_kind != recorded
            and generator.config.uses_images
        ):
            logger.warning(
                "image_kind=%r overrides the generator's config.image_kind=%r", image_kind, recorded
            )
        image_kind = resolve_image_kind(generator, image_kind)
        if generator.config.uses_images and image_kind == "vision" and vision is None:
            raise InputError('image_kind="vision" needs the generator backbone (`vision`)')
        self.selector = selector.eval()
        self.generator = generator.eval()
        self.tokenizer = tokenizer
        self.clip_image = clip_image
        self.clip_text = clip_text
        self.vision = vision
        self.image_kind = image_kind
        self.batch_size = batch_size
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.k = k
        self.device = clip_image.device
        self._check_feature_models()
        self._check_new_tokens(max_new_tokens)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path | None = None,
        generator: str | Path | PC2LForConditionalGeneration | None = None,
        clip: str | Path | None = None,
        vision: str | Path | None = None,
        tokenizer: str | Path | PreTrainedTokenizerBase | None = None,
        device: str | torch.device | None = None,
        image_kind: str | None = None,
        *,
        selector: str | Path | None = None,
        revision: str | None = None,
        token: str | bool | None = None,
        option_names: Mapping[str, str] | None = None,
        dtype: torch.dtype | str | None = None,
        **kwargs,
    ) -> ShowcasePipeline:
        """Load a saved pipeline (a folder or Hub repo from `save_pretrained` / `push_to_hub`), or its parts' checkpoints
        (Hub names or local folders), onto one device.

        Args:
            pretrained_model_name_or_path (*optional*): a folder written by `save_pretrained`, or a Hub repo holding
                one (downloaded with `huggingface_hub.snapshot_download`, at `revision` with `token`). Its
                `showcase_config.json` gives every part, `image_kind`, `k` and the decoding settings; the arguments
                below override them. Passed positionally with `generator` and `clip`, a path that is no saved
                pipeline is the selector (`from_pretrained(selector, generator, clip)`).
            selector, generator, clip: `DPPImageSelector`, `PC2LForConditionalGeneration` and CLIP checkpoints, the
                three needed without a saved pipeline. `generator` may also be a loaded model, or a `train-pc2l
                --lora` run folder (loaded with its adapter merged, see [`load_generator`]).
            vision (*optional*): the generator's image backbone; defaults to the saved one, else `clip`'s vision tower.
            tokenizer (*optional*): the generator's tokenizer (a checkpoint or a loaded one); defaults to the one
                saved with `generator`.
            device (*optional*): defaults to CUDA when available, else the CPU.
            dtype (`torch.dtype` or its name, *optional*): the generator's and the selector's weights (e.g.
                `torch.bfloat16`); `None` or `"auto"` keeps the checkpoints' own. The CLIP encoders keep the precision
                the generator's features were extracted in.
            image_kind: see [`ShowcasePipeline`]. `kwargs` go to the constructor.
            option_names (*optional*): how the errors name each part (`selector`, `generator`, `clip`,
                `vision`, `tokenizer`); a command passes its flags, e.g. `{"clip": "--clip_model"}`.

        Raises:
            `InputError`: a part that cannot be loaded or holds another kind of model, named as `option_names`
                says, before the models load where its config tells.
        """
        names = {part: part for part in ("selector", "generator", "clip", "vision", "tokenizer")}
        names |= option_names or {}
        saved: dict = {}
        if pretrained_model_name_or_path is not None:
            if selector is not None:
                raise TypeError("pass either a saved pipeline or `selector=`, not both")
            if (
                generator is not None
                and clip is not None
                and not _is_saved_pipeline(pretrained_model_name_or_path)
            ):
                selector = pretrained_model_name_or_path  # the three-checkpoint form, given positionally
            else:
                folder = _pipeline_folder(pretrained_model_name_or_path, revision, token)
                saved = _read_showcase_config(folder)
                selector = folder / saved["selector"]
                generator = folder / saved["generator"] if generator is None else generator
                clip = folder / saved["clip"] if clip is None else clip
                if vision is None and saved.get("vision"):
                    vision = folder / saved["vision"]
                image_kind = image_kind or saved.get("image_kind")
                kwargs = {key: saved[key] for key in SAVED_SETTINGS if saved.get(key) is not None} | kwargs
        if selector is None or generator is None or clip is None:
            raise TypeError(
                "ShowcasePipeline.from_pretrained needs a saved pipeline (folder or Hub repo), or selector=, "
                "generator= and clip="
            )
        weights = _weights_dtype(dtype)
        selector_model = load_selector(selector, names["selector"])
        require_model_type(clip, CLIP_MODEL_TYPES, names["clip"], "pass a CLIP (`train-clip` writes one)")
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if isinstance(generator, PC2LForConditionalGeneration):
            generator_model = generator.to(device, weights)
            generator = generator.name_or_path
        else:
            generator_model = load_generator(generator, names["generator"]).to(device, weights)
        if not isinstance(tokenizer, PreTrainedTokenizerBase):
            # From the folder the generator was named by, not the one its weights came from: a LoRA run's are in
            # its base/ folder, which holds no tokenizer.
            with loading(names["tokenizer"], tokenizer or generator):
                tokenizer = AutoTokenizer.from_pretrained(tokenizer or generator, trust_remote_code=False)
        resolved_kind = resolve_image_kind(generator_model, image_kind)
        dtypes = feature_dtypes(generator_model, resolved_kind)
        with loading(names["clip"], clip):
            clip_image, clip_text = load_clip(str(clip), device, dtypes["image"], names["clip"])
            if dtypes["text"] != dtypes["image"]:  # two extraction runs in two precisions: one tower each
                clip_text = load_clip(str(clip), device, dtypes["text"], names["clip"])[1]
        backbone = None
        if generator_model.config.uses_images and resolved_kind == "vision":
            with loading(names["vision"], vision or clip):
                backbone = load_vision_backbone(str(vision or clip), device, dtypes["vision"], names["vision"])
        return cls(
            selector=selector_model.to(device, weights),
            generator=generator_model,
            tokenizer=tokenizer,
            clip_image=clip_image,
            clip_text=clip_text,
            vision=backbone,
            image_kind=image_kind,
            **kwargs,
        )

    def save_pretrained(self, save_directory: str | Path) -> Path:
        """Save every part and the settings into one folder that `from_pretrained` (and, with the package imported,
        `transformers.pipeline("personalized-showcase", model=folder)`) loads back; returns the folder.

        The generator and its tokenizer go to the folder's root, the selector to `selector/`. The CLIP encoders (and
        a vision backbone of another checkpoint) hold no full checkpoint in memory, so the checkpoint they were loaded
        from is saved to `clip/` (`vision/`), and checked to compute the very features this pipeline computes (the
        same fingerprint): ValueError when it does not, e.g. when that checkpoint changed since.
        """
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        if (self.clip_image.checkpoint, self.clip_image.fingerprint) != (
            self.clip_text.checkpoint,
            self.clip_text.fingerprint,
        ):
            raise ValueError("the pipeline's CLIP image and text encoders come from different checkpoints")
        self.generator.save_pretrained(folder)
        without_chat_template(self.tokenizer).save_pretrained(folder)
        self.selector.save_pretrained(folder / "selector")
        _save_encoder_checkpoint(self.clip_image, folder / "clip", lambda path: load_clip(path)[0], "CLIP")
        vision = None
        if self.vision is not None:
            vision = "clip" if self.vision.checkpoint == self.clip_image.checkpoint else "vision"
            # A backbone that is CLIP's own vision tower is read from `clip/`: checked, not saved twice.
            _save_encoder_checkpoint(
                self.vision, folder / vision, load_vision_backbone, "vision backbone", copy=vision == "vision"
            )
        config = {
            "format": SHOWCASE_FORMAT,
            "library": "gest-showcases",
            "generator": ".",
            "selector": "selector",
            "clip": "clip",
            "vision": vision,
            "image_kind": self.image_kind,
        } | {key: getattr(self, key) for key in SAVED_SETTINGS}
        (folder / SHOWCASE_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        return folder

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        commit_message: str = "Upload ShowcasePipeline",
        create_pr: bool = False,
    ):
        """`save_pretrained` into a temporary folder and upload it to the model repo `repo_id` (created when missing);
        returns `HfApi.upload_folder`'s commit info. `from_pretrained(repo_id)` loads it back."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            return api.upload_folder(
                repo_id=repo.repo_id,
                folder_path=folder,
                repo_type="model",
                revision=revision,
                commit_message=commit_message,
                create_pr=create_pr,
            )

    def __call__(
        self,
        inputs: ShowcaseInput | Mapping | Sequence[ShowcaseInput | Mapping],
        k: int | None = None,
        batch_size: int | None = None,
        **generate_kwargs,
    ) -> Showcase | list[Showcase]:
        """Showcases for one request (a `ShowcaseInput` or a dict of its fields) or a list of them.

        Args:
            k (`int`, *optional*): photos per showcase; defaults to the pipeline's `k`.
            batch_size (`int`, *optional*): requests per batch; defaults to the pipeline's.
            generate_kwargs: passed to `generate` (defaults: `num_beams`, `max_new_tokens` of the pipeline, else the
                generator's `generation_config`); one text per request, so no `num_return_sequences` above 1 and
                no `return_dict_in_generate`.

        Returns:
            A `Showcase`, or a list of them (same order) for a list of requests.
        """
        if generate_kwargs.get("num_return_sequences", 1) != 1:
            raise InputError("a showcase has one explanation: num_return_sequences must be 1")
        single = isinstance(inputs, ShowcaseInput | Mapping)
        requests = [
            item if isinstance(item, ShowcaseInput) else ShowcaseInput(**item)
            for item in ([inputs] if single else inputs)
        ]
        k = self.resolve_k(k)
        batch_size = batch_size or self.batch_size
        starts = range(0, len(requests), batch_size)
        results: list[Showcase] = []
        for start in tqdm(starts, desc="showcases", disable=len(starts) < 2):
            results.extend(self._run_batch(requests[start : start + batch_size], k, generate_kwargs))
        return results[0] if single else results

    def _check_new_tokens(self, max_new_tokens: int | None) -> None:
        """InputError for more new tokens than a GPT-2 decoder has positions (its position table would be indexed
        past its end, an IndexError deep in generate); decoders with rotary positions have no such bound."""
        positions = getattr(self.generator.config.decoder, "n_positions", None)
        # The start token and the first N - 1 new tokens are read (the last one is only written): N positions.
        if positions is not None and max_new_tokens is not None and max_new_tokens > positions:
            raise InputError(
                f"max_new_tokens {max_new_tokens}: the generator's decoder has {positions} positions "
                f"(config.decoder.n_positions); give at most {positions}"
            )

    def resolve_k(self, k: int | None) -> int:
        """Photos per showcase: `k` when given, else the pipeline's `k`, else the selector's `config.top_k`."""
        k = k if k is not None else self.k if self.k is not None else self.selector.config.top_k
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_TOP_K:
            raise InputError(f"k (photos per showcase) must be a whole number in [1, {MAX_TOP_K}], got {k!r}")
        return k

    def _check_feature_models(self) -> None:
        """InputError when an encoder of the pipeline cannot compute the features the generator was trained on:
        another width, or (where the config records it) another model than the one that computed them."""
        config = self.generator.config
        text_dim = self.clip_text.encoder.projection.out_features
        image_dim = getattr(self.clip_image.encoder.projection, "out_features", None)
        selector = self.selector.config
        if image_dim is not None and (selector.text_dim, selector.image_dim) != (text_dim, image_dim):
            raise InputError(  # else a shape error in the selector's first layer, after the photos are read
                f"the selector reads {selector.text_dim}-d review and {selector.image_dim}-d image features "
                f"but the CLIP {self.clip_text.checkpoint!r} computes {text_dim}-d and {image_dim}-d ones: "
                "pass the CLIP checkpoint the selector's features came from"
            )
        if config.uses_reviews and text_dim != config.review_feature_dim:
            raise InputError(
                f"the generator reads {config.review_feature_dim}-d history-review features but the CLIP text "
                f"encoder {self.clip_text.checkpoint!r} computes {text_dim}-d ones: pass the CLIP checkpoint the "
                f"generator's features came from ({config.review_feature_model or 'not recorded'})"
            )
        encoders = []
        if config.uses_reviews:
            encoders.append(("history-review", self.clip_text, config.review_feature_model,
                             config.review_feature_fingerprint, "clip"))  # fmt: skip
        # The recorded image model is that of `config.image_kind`'s features; an overriding kind is not checked.
        if config.uses_images and self.image_kind == config.image_kind:
            encoder, option = (
                (self.clip_image, "clip") if self.image_kind == "image" else (self.vision, "vision")
            )
            encoders.append((f"{self.image_kind!r} image", encoder, config.image_feature_model,
                             config.image_feature_fingerprint, option))  # fmt: skip
        for what, encoder, model, fingerprint, option in encoders:
            if fingerprint is not None and encoder.fingerprint != fingerprint:
                raise InputError(
                    f"the generator was trained on {what} features of {model!r} (fingerprint {fingerprint[:12]}), "
                    f"but this pipeline computes them with {encoder.checkpoint!r} (fingerprint "
                    f"{encoder.fingerprint[:12]}): pass that model as `{option}`"
                )

    # -- features -------------------------------------------------------------------------------

    def _clip_features(self, photos: list[ImageLike]) -> list[torch.Tensor | None]:
        """CLIP image embeddings `[D]` of photos (None when unreadable), encoded `ENCODE_BATCH` at a time. A photo
        that several requests of the batch show (a business's pool, a path or the same PIL image) is read and
        encoded once."""
        keys = [str(photo) if isinstance(photo, str | Path) else id(photo) for photo in photos]
        distinct = dict(zip(keys, photos, strict=True))  # one photo per key (equal keys: the same file or image)
        slot = {key: position for position, key in enumerate(distinct)}
        pixels = read_pixels(list(distinct.values()), self.clip_image.preprocessing)
        readable = [index for index, value in enumerate(pixels) if value is not None]
        features: list[torch.Tensor | None] = [None] * len(distinct)
        for start in range(0, len(readable), ENCODE_BATCH):
            rows = readable[start : start + ENCODE_BATCH]
            embeds = self.clip_image.encode(torch.stack([pixels[index] for index in rows]))  # [n, D]
            for row, index in enumerate(rows):
                features[index] = embeds[row]
        return [features[slot[key]] for key in keys]

    def review_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        """CLIP review embeddings `[n, D]` of the texts that have a sentence (empty texts are dropped): each the
        renormalised mean of its sentences' embeddings, `TextFeatureModel.encode_reviews`' (what
        `extract_text_features` caches for training)."""
        return self.clip_text.encode_reviews(texts).reviews

    def _prepare(self, requests: list[ShowcaseInput], k: int) -> list[_Prepared]:
        """Features of a batch of requests: every photo read and CLIP-encoded together, every text too."""
        candidates = [request.candidate_items() for request in requests]
        history = [list(request.history_images) for request in requests]
        flat = [photo for items in candidates for _, photo in items]
        flat += [photo for photos in history for photo in photos]
        features = iter(self._clip_features(flat))
        per_candidates = [[next(features) for _ in items] for items in candidates]
        per_history = [[next(features) for _ in photos] for photos in history]
        texts = [[text for text in request.history_texts if split_sentences(text)] for request in requests]
        reviews = self.review_embeddings([text for group in texts for text in group]).split(
            list(map(len, texts))
        )
        return [
            self._prepare_one(index, *values, k)
            for index, values in enumerate(
                zip(requests, candidates, per_candidates, per_history, reviews, strict=True)
            )
        ]

    def _prepare_one(
        self,
        index: int,
        request: ShowcaseInput,
        items: list[tuple[str, ImageLike]],
        found: list[torch.Tensor | None],
        history: list[torch.Tensor | None],
        reviews: torch.Tensor,
        k: int,
    ) -> _Prepared:
        """One request's readable candidates, profile and warnings; ValueError when no candidate is readable."""
        kept = [
            (key, photo, value) for (key, photo), value in zip(items, found, strict=True) if value is not None
        ]
        if not kept:
            raise InputError(
                f"{request.business_id or f'input {index}'}: none of its {len(items)} candidate photos could be "
                "read, so there is nothing to show"
            )
        if not len(reviews) and not self.generator.config.uses_images:
            raise InputError(
                f"user {request.user_id or f'of input {index}'} has no history review, and the generator reads "
                "history reviews only (input_mode='text'): there is nothing to write from"
            )
        skipped = [key for (key, _), value in zip(items, found, strict=True) if value is None]
        history_images = [value for value in history if value is not None]
        cold_user = not history_images and not len(reviews)
        warnings = []
        if skipped:
            warnings.append(f"skipped {len(skipped)} unreadable or missing photos: {', '.join(skipped)}")
        if len(kept) < k:
            warnings.append(f"the business has {len(kept)} readable photos, fewer than k={k}: all are shown")
        if len(history_images) < len(history):
            warnings.append(f"skipped {len(history) - len(history_images)} unreadable history photos")
        if cold_user:
            warnings.append(
                "cold user (no history): photos chosen with the empty profile (relevance shared by all "
                "users, plus diversity); explanation from the photos alone"
            )
        config = self.selector.config
        return _Prepared(
            request=request,
            ids=[key for key, _, _ in kept],
            photos=[photo for _, photo, _ in kept],
            features=torch.stack([value for _, _, value in kept]),
            # Means of the history, zeros when there is none: the profile the selector was trained with.
            profile_text=reviews.mean(0) if len(reviews) else torch.zeros(config.text_dim),
            profile_image=torch.stack(history_images).mean(0)
            if history_images
            else torch.zeros(config.image_dim),
            reviews=reviews,
            cold_user=cold_user,
            skipped=skipped,
            warnings=warnings,
        )

    # -- the two steps --------------------------------------------------------------------------

    @torch.no_grad()
    def _select(self, prepared: list[_Prepared], k: int) -> tuple[list[list[int]], list[list[float]]]:
        """Positions (in each input's readable candidates, pick order) and log relevances of the chosen photos."""
        features, mask = pad_ragged([item.features for item in prepared])
        inputs = {
            "profile_text": torch.stack([item.profile_text for item in prepared]).to(self.device),
            "profile_image": torch.stack([item.profile_image for item in prepared]).to(self.device),
            "candidate_features": features.to(self.device),
            "candidate_mask": mask.to(self.device),
        }
        selection = self.selector.select(**inputs, k=k)  # one forward pass: the picks and every log q
        log_quality = selection.log_quality.cpu()  # [B, N]
        picks = [[index for index in row if index >= 0] for row in selection.indices.tolist()]
        scores = [log_quality[row, positions].tolist() for row, positions in enumerate(picks)]
        return picks, scores

    def _image_features(self, prepared: list[_Prepared], picks: list[list[int]]) -> list[torch.Tensor]:
        """The generator's image features `[n_i, Dv]` of the picked photos (at most `max_images` each)."""
        limit = self.generator.config.max_images
        picks = [positions[:limit] for positions in picks]
        if self.image_kind == "image":
            return [item.features[positions] for item, positions in zip(prepared, picks, strict=True)]
        photos = [
            item.photos[position]
            for item, positions in zip(prepared, picks, strict=True)
            for position in positions
        ]
        pixels = read_pixels(photos, self.vision.preprocessing)
        if any(value is None for value in pixels):
            raise ValueError("a selected photo could no longer be read by the generator backbone")
        embeds = self.vision.encode(torch.stack(pixels))  # [sum n_i, Dv]
        return list(embeds.split([len(positions) for positions in picks]))

    @torch.no_grad()
    def _generate(
        self, prepared: list[_Prepared], picks: list[list[int]], generate_kwargs: dict
    ) -> list[str]:
        config = self.generator.config
        inputs = {}
        if config.uses_images:
            image_features = self._image_features(prepared, picks)
            width = image_features[0].shape[-1]
            if width != config.image_feature_dim:
                raise InputError(
                    f"the generator expects {config.image_feature_dim}-d image features but the "
                    f"{self.image_kind!r} features are {width}-d: pass the image_kind the generator was trained with "
                    f"(its config records {config.image_kind!r})"
                )
            inputs["image_features"], inputs["image_mask"] = pad_ragged(image_features)
        if config.uses_reviews:
            reviews = [item.reviews for item in prepared]
            inputs["review_features"], inputs["review_mask"] = pad_ragged(reviews, limit=config.max_reviews)
        settings = {"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens}
        if self.max_new_tokens is None and self.generator.generation_config.max_new_tokens is None:
            settings["max_new_tokens"] = PAPER_DECODING["max_new_tokens"]  # not generate's default max_length of 20
        settings = {name: value for name, value in settings.items() if value is not None} | generate_kwargs
        # What `generate` will use: the call's settings over its generation_config (or the generator's own).
        decoding = settings.get("generation_config") or self.generator.generation_config
        self._check_new_tokens(settings.get("max_new_tokens", decoding.max_new_tokens))
        beams = settings.get("num_beams", decoding.num_beams)
        valid = isinstance(beams, int) and not isinstance(beams, bool) and 1 <= beams <= MAX_NUM_BEAMS
        if beams is not None and not valid:  # None: generate's default, one beam
            raise InputError(f"num_beams must be a whole number in [1, {MAX_NUM_BEAMS}], got {beams!r}")
        # The call's own is refused in `__call__`; a generation_config (the call's, or one saved beside the generator)
        # asking for several made `zip` fail after generating (session 43's review).
        if settings.get("num_return_sequences", decoding.num_return_sequences) not in (None, 1):
            raise InputError("a showcase has one explanation: the generation_config's num_return_sequences must be 1")
        if settings.get("return_dict_in_generate", decoding.return_dict_in_generate):
            raise InputError(  # the pipeline decodes the ids into its showcases
                "a showcase holds its explanation's text, not generate's outputs: leave out return_dict_in_generate "
                "(call pipeline.generator.generate for scores)"
            )
        ids = self.generator.generate(
            **{name: value.to(self.device) for name, value in inputs.items()}, **settings
        )
        return [text.strip() for text in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def _run_batch(self, requests: list[ShowcaseInput], k: int, generate_kwargs: dict) -> list[Showcase]:
        prepared = self._prepare(requests, k)
        picks, scores = self._select(prepared, k)
        texts = self._generate(prepared, picks, generate_kwargs)
        return self._assemble(prepared, picks, scores, texts)

    def _assemble(
        self, prepared: list[_Prepared], picks: list[list[int]], scores: list[list[float]], texts: list[str]
    ) -> list[Showcase]:
        """The showcases of a batch from its picks (positions in the readable candidates), their scores and texts."""
        results = []
        for item, positions, values, text in zip(prepared, picks, scores, texts, strict=True):
            photos = [
                ShowcasePhoto(
                    id=item.ids[position],
                    score=score,
                    path=None
                    if isinstance(item.photos[position], Image.Image)
                    else str(item.photos[position]),
                    image=item.photos[position] if isinstance(item.photos[position], Image.Image) else None,
                )
                for position, score in zip(positions, values, strict=True)
            ]
            for warning in item.warnings:
                logger.warning("%s: %s", item.request.business_id or "showcase", warning)
            results.append(
                Showcase(
                    photos=photos,
                    explanation=text,
                    user_id=item.request.user_id,
                    business_id=item.request.business_id,
                    cold_user=item.cold_user,
                    skipped=item.skipped,
                    warnings=item.warnings,
                )
            )
        return results


def _weights_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """`from_pretrained`'s `dtype` as a floating torch dtype, or None to keep the checkpoints' own."""
    if dtype is None or dtype == "auto":
        return None
    resolved = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise InputError(f"dtype={dtype!r}: give a floating torch dtype (e.g. torch.bfloat16 or 'bfloat16') or 'auto'")
    return resolved


def load_generator(name_or_path: str | Path, option: str = "generator") -> PC2LForConditionalGeneration:
    """A PC2L checkpoint (Hub name or folder), or a `train-pc2l --lora` run folder with its adapter merged into its
    `base/` model: the pipeline only generates, and a plain PC2L is what `save_pretrained` can write as the saved
    folder's root (transformers would load the run with the adapter attached, and save only the adapter, naming a
    base folder of this machine)."""
    hint = "pass a folder `gest-showcases train-pc2l` wrote"
    if (Path(name_or_path) / ADAPTER_CONFIG_NAME).is_file():
        from gest_showcases.generation.lora import load_lora_pc2l  # imports peft: only for LoRA runs

        with loading(option, name_or_path, "cannot be loaded", hint):
            return load_lora_pc2l(name_or_path).merge_and_unload()
    require_model_type(name_or_path, PC2LConfig.model_type, option, hint)
    with loading(option, name_or_path, "cannot be loaded", hint):  # a config.json of wrong values or types
        if (Path(name_or_path) / GENERATION_CONFIG_NAME).is_file():
            # from_pretrained skips one it cannot read without a word, and the pipeline would decode greedily
            # instead of with the paper's 2 beams (session 43's review).
            GenerationConfig.from_pretrained(name_or_path)
        return load_whole(PC2LForConditionalGeneration, name_or_path, option)


def load_selector(name_or_path: str | Path, option: str = "selector") -> DPPImageSelector:
    """A `DPPImageSelector` checkpoint (Hub name or folder), refused in one line naming `option` when it holds
    another kind of model (transformers would load it with random weights)."""
    hint = "pass a folder `gest-showcases train-selector` wrote"
    require_model_type(name_or_path, DPPSelectorConfig.model_type, option, hint)
    with loading(option, name_or_path, "cannot be loaded", hint):  # a config.json of wrong values or types
        return load_whole(DPPImageSelector, name_or_path, option)


class ShowcaseTransformersPipeline(Pipeline):
    """[`ShowcasePipeline`] as the transformers pipeline of the task `"personalized-showcase"`.

    With `gest_showcases` imported, `transformers.pipeline("personalized-showcase", model=folder_or_repo)` builds one
    from what `ShowcasePipeline.save_pretrained` wrote (a folder, or a Hub repo holding one): transformers loads the
    generator (`model`) and its tokenizer from the folder's root, then this class loads the other parts from the
    subfolders onto the same device, into `showcase` (the [`ShowcasePipeline`] that does the work). A loaded
    `ShowcasePipeline` can be wrapped directly: `ShowcaseTransformersPipeline(model=s.generator, tokenizer=s.tokenizer,
    showcase=s)`.

    Calls take what `ShowcasePipeline.__call__` takes (a `ShowcaseInput` or a dict of its fields, or a list of them)
    and return a `Showcase`, or a list of them; any other iterable of requests (a generator, a `datasets.Dataset`)
    gives a generator of showcases, computed `batch_size` requests at a time. `k`, `batch_size` and `generate`'s
    settings (`num_beams`, `max_new_tokens`, ...) are accepted by `pipeline(...)` (then they hold for every call) and
    by each call; `image_kind=` by `pipeline(...)` only. Requests are batched by `ShowcasePipeline` (which reads,
    encodes and pads them together), not by transformers' `DataLoader`: `preprocess` / `_forward` / `postprocess`
    (the same steps, one request at a time) serve transformers' `run_single` only. `save_pretrained` /
    `push_to_hub` save the whole `ShowcasePipeline`.
    """

    _load_tokenizer = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_processor = False
    _load_video_processor = False

    def __init__(
        self,
        model: PC2LForConditionalGeneration,
        tokenizer: PreTrainedTokenizerBase | None = None,
        showcase: ShowcasePipeline | None = None,
        image_kind: str | None = None,
        **kwargs,
    ):
        super().__init__(model=model, tokenizer=tokenizer, **kwargs)
        self.showcase = showcase or ShowcasePipeline.from_pretrained(
            self.model.name_or_path,
            generator=self.model,
            tokenizer=self.tokenizer,
            device=self.device,
            image_kind=image_kind,
            dtype=self.model.dtype,  # `pipeline(..., dtype=)` loaded the generator so: the selector follows it
        )

    def _sanitize_parameters(self, k: int | None = None, generate_kwargs: dict | None = None, **more_generate_kwargs):
        # Decoding settings as transformers' text pipelines take them: `generate_kwargs={...}`, or loose keywords.
        return {"k": k}, {"k": k, "generate_kwargs": {**(generate_kwargs or {}), **more_generate_kwargs}}, {}

    # One request at a time, as transformers' `run_single` calls them; `__call__` batches through `showcase` instead.
    def preprocess(self, inputs: ShowcaseInput | Mapping, k: int | None = None) -> dict:
        request = inputs if isinstance(inputs, ShowcaseInput) else ShowcaseInput(**inputs)
        return {"prepared": self.showcase._prepare([request], self.showcase.resolve_k(k))}

    def _forward(self, model_inputs: dict, k: int | None = None, generate_kwargs: dict | None = None) -> dict:
        prepared = model_inputs["prepared"]
        picks, scores = self.showcase._select(prepared, self.showcase.resolve_k(k))
        texts = self.showcase._generate(prepared, picks, generate_kwargs or {})
        return {"prepared": prepared, "picks": picks, "scores": scores, "texts": texts}

    def postprocess(self, model_outputs: dict) -> Showcase:
        return self.showcase._assemble(**model_outputs)[0]

    def __call__(self, inputs, batch_size: int | None = None, **kwargs):
        _, call, _ = self._sanitize_parameters(**kwargs)
        k = call["k"] if call["k"] is not None else self._forward_params["k"]
        settings = self._forward_params["generate_kwargs"] | call["generate_kwargs"]
        batch_size = batch_size or self._batch_size or self.showcase.batch_size
        if isinstance(inputs, ShowcaseInput | Mapping | list | tuple):
            return self.showcase(inputs, k=k, batch_size=batch_size, **settings)
        return self._stream(iter(inputs), k, batch_size, settings)

    def _stream(
        self, requests: Iterator, k: int | None, batch_size: int, settings: dict
    ) -> Iterator[Showcase]:
        while batch := list(itertools.islice(requests, batch_size)):
            yield from self.showcase(batch, k=k, batch_size=batch_size, **settings)

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> Path:
        """`ShowcasePipeline.save_pretrained`: every part, not only the generator and tokenizer transformers knows."""
        return self.showcase.save_pretrained(save_directory)

    def push_to_hub(self, repo_id: str, **kwargs):
        """`ShowcasePipeline.push_to_hub`."""
        return self.showcase.push_to_hub(repo_id, **kwargs)


__all__ = [
    "Showcase",
    "ShowcaseInput",
    "ShowcasePhoto",
    "ShowcasePipeline",
    "ShowcaseTransformersPipeline",
    "load_generator",
    "read_pixels",
]
