"""Image loading for feature extraction: files -> uint8 pixel batches, decoded on CPU or on the GPU.

Two paths produce the same `[B, 3, H, W]` uint8 batches, normalised later on the device:

- CPU: DataLoader workers open each file with PIL, resize and crop it (exactly as the checkpoint's
  image processor does) and ship uint8 tensors, a quarter of the bytes of float pixels.
- GPU: workers only read the files' bytes; `torchvision.io.decode_jpeg(device="cuda")` decodes a
  whole batch on the GPU and resizing runs there too (bicubic with antialiasing, so values differ
  from PIL's by a few grey levels). Files that nvJPEG can't read (PNG, corrupt) fall back to PIL.

A missing or unreadable image never stops a run: it is reported in the batch's `failed` ids. Every
decode goes through `gest_showcases.data.images.open_image` and its one pixel limit, and the GPU
path reads each file's header in the worker first, so an 11000x11000 PNG or a decompression bomb is
skipped before any pixel is decoded, on the CPU or by nvJPEG.
This module imports only torch, numpy and PIL (torchvision on the GPU path) and `data.images`, so
benchmarks can use it on a bare machine.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gest_showcases.data.images import MAX_IMAGE_PIXELS, UnreadableImageError, check_image_size, open_image

logger = logging.getLogger(__name__)

_DEVICE_RESAMPLE = {int(Image.Resampling.BICUBIC): "bicubic", int(Image.Resampling.BILINEAR): "bilinear"}


@dataclass(frozen=True)
class ImagePreprocessing:
    """Resize, crop and normalisation of a checkpoint's image processor, applied to uint8 tensors.

    Args:
        shortest_edge (`int`, *optional*): resize so the short side has this length (aspect kept).
        size (`tuple[int, int]`, *optional*): resize to exactly (height, width) instead.
        crop (`tuple[int, int]`, *optional*): center crop (height, width) after resizing.
        mean (`tuple[float, float, float]`): per-channel mean of pixels in [0, 1].
        std (`tuple[float, float, float]`): per-channel standard deviation.
        resample (`int`): PIL resampling filter.
    """

    shortest_edge: int | None
    size: tuple[int, int] | None
    crop: tuple[int, int] | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resample: int

    @classmethod
    def from_image_processor(cls, processor) -> ImagePreprocessing:
        """Read a transformers image processor (CLIP, ViT, DINOv2, ConvNeXt/ResNet styles)."""
        config = processor.to_dict()
        size = config["size"]
        crop = (
            (config["crop_size"]["height"], config["crop_size"]["width"])
            if config.get("do_center_crop")
            else None
        )
        if "shortest_edge" in size:
            shortest_edge, exact = size["shortest_edge"], None
            # ConvNeXt/ResNet processors resize to edge / crop_pct, then crop the edge back out.
            if config.get("crop_pct") is not None and shortest_edge < 384:
                shortest_edge, crop = int(shortest_edge / config["crop_pct"]), (shortest_edge, shortest_edge)
        elif "height" in size:
            shortest_edge, exact = None, (size["height"], size["width"])
        else:
            raise ValueError(f"unsupported image processor size {size!r} in {type(processor).__name__}")
        if crop is None and exact is None:
            raise ValueError(
                f"{type(processor).__name__} resizes by shortest edge without a crop: batches would be ragged"
            )
        normalize = config.get("do_normalize", True)
        return cls(
            shortest_edge=shortest_edge,
            size=exact,
            crop=crop,
            mean=tuple(config["image_mean"]) if normalize else (0.0, 0.0, 0.0),
            std=tuple(config["image_std"]) if normalize else (1.0, 1.0, 1.0),
            resample=int(config.get("resample", Image.Resampling.BICUBIC)),
        )

    @property
    def output_size(self) -> tuple[int, int]:
        return self.crop if self.crop is not None else self.size

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after resizing, as transformers' `get_resize_output_image_size` computes it."""
        if self.size is not None:
            return self.size
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(self.shortest_edge * long / short)
        return (new_long, self.shortest_edge) if width <= height else (self.shortest_edge, new_long)

    def _crop_box(self, height: int, width: int) -> tuple[int, int]:
        top, left = (height - self.crop[0]) // 2, (width - self.crop[1]) // 2
        return top, left

    def pil_to_uint8(self, image: Image.Image) -> torch.Tensor:
        """Resize and crop one PIL image on the CPU -> uint8 `[3, H, W]`."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        height, width = self.resized_size(image.height, image.width)
        image = image.resize((width, height), resample=self.resample)
        pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)  # [H, W, 3] -> [3, H, W]
        if self.crop is not None:
            top, left = self._crop_box(height, width)
            pixels = pixels[:, top : top + self.crop[0], left : left + self.crop[1]]
        return pixels.contiguous()

    def resize_on_device(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """Resize and crop decoded uint8 `[3, h, w]` images where they are -> uint8 `[B, 3, H, W]`.

        Images of the same size are resized together, one kernel per distinct size.
        """
        mode = _DEVICE_RESAMPLE.get(self.resample)
        if mode is None:
            raise ValueError(f"resampling filter {self.resample} has no GPU equivalent")
        out = torch.empty(len(images), 3, *self.output_size, dtype=torch.uint8, device=images[0].device)
        groups: dict[tuple[int, int], list[int]] = {}
        for position, image in enumerate(images):
            groups.setdefault(tuple(image.shape[1:]), []).append(position)
        for (height, width), positions in groups.items():
            batch = torch.stack([images[p] for p in positions]).float()  # [G, 3, h, w]
            new_height, new_width = self.resized_size(height, width)
            batch = F.interpolate(
                batch, size=(new_height, new_width), mode=mode, antialias=True, align_corners=False
            )
            if self.crop is not None:
                top, left = self._crop_box(new_height, new_width)
                batch = batch[:, :, top : top + self.crop[0], left : left + self.crop[1]]
            out[positions] = batch.round_().clamp_(0, 255).to(torch.uint8)
        return out

    def normalize(self, pixels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """uint8 `[B, 3, H, W]` -> normalised `dtype` pixel values on the same device."""
        mean = torch.tensor(self.mean, device=pixels.device, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=pixels.device, dtype=torch.float32).view(1, 3, 1, 1)
        return ((pixels.float() / 255.0 - mean) / std).to(dtype)


class ImageFileDataset(torch.utils.data.Dataset):
    """(id, path) items -> (id, uint8 `[3, H, W]` or None when the file is missing or unreadable)."""

    def __init__(self, items: Sequence[tuple[str, str | Path]], preprocessing: ImagePreprocessing):
        self.items = items
        self.preprocessing = preprocessing

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor | None]:
        key, path = self.items[index]
        try:
            image = open_image(path)
        except UnreadableImageError as error:
            logger.debug("skipping image %s: %s", key, error)
            return key, None
        return key, self.preprocessing.pil_to_uint8(image)


class ImageBytesDataset(torch.utils.data.Dataset):
    """(id, path) items -> (id, the file's bytes as uint8 `[n_bytes]`, or None when it can't be read or decoded).

    Bytes are sent on only when their header passes the package's pixel limit.
    """

    def __init__(self, items: Sequence[tuple[str, str | Path]]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor | None]:
        key, path = self.items[index]
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            logger.debug("skipping image %s (%s): %s", key, path, error)
            return key, None
        # Only the header is parsed (microseconds however large the image claims to be): nvJPEG would
        # allocate the whole decoded image on the GPU.
        try:
            with Image.open(io.BytesIO(data)) as image:
                check_image_size(path, image, MAX_IMAGE_PIXELS)
        # Bytes no format recognises break the header parsers in many ways (UnidentifiedImageError,
        # SyntaxError, DecompressionBombError, ...); over the limit is an UnreadableImageError.
        except Exception as error:  # noqa: BLE001
            logger.debug("skipping image %s (%s): %s", key, path, error)
            return key, None
        return key, torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _collate(batch: list[tuple[str, torch.Tensor | None]]) -> tuple[list[str], list[torch.Tensor], list[str]]:
    ids = [key for key, value in batch if value is not None]
    values = [value for _, value in batch if value is not None]
    failed = [key for key, value in batch if value is None]
    return ids, values, failed


def _collate_stacked(batch):
    ids, values, failed = _collate(batch)
    return ids, (torch.stack(values) if values else None), failed


def _collate_bytes(batch):
    """Files' bytes concatenated into one tensor: one shared-memory block per batch crosses the
    worker queue instead of one per file (hundreds of file descriptors)."""
    ids, values, failed = _collate(batch)
    flat = torch.cat(values) if values else torch.empty(0, dtype=torch.uint8)
    return ids, (flat, [len(value) for value in values]), failed


def decode_on_device(encoded: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """Decode JPEG bytes on `device` with nvJPEG, one batched call; per-image PIL fallback.

    Returns uint8 RGB `[3, h, w]` tensors on `device`, None for bytes no decoder can read.
    """
    from torchvision.io import ImageReadMode, decode_jpeg  # the GPU path's only extra dependency

    try:
        return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:
        decoded: list[torch.Tensor | None] = []
        for data in encoded:
            try:
                decoded.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                decoded.append(_decode_with_pil(data, device))
        return decoded


def _decode_with_pil(data: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    try:
        image = open_image(io.BytesIO(data.numpy().tobytes()))
    except UnreadableImageError as error:
        logger.debug("skipping image bytes: %s", error)
        return None
    array = np.asarray(image).copy()
    return torch.from_numpy(array).permute(2, 0, 1).to(device)  # [h, w, 3] -> [3, h, w]


@dataclass
class PixelBatch:
    """One batch of images ready for a vision model.

    Args:
        ids (`list[str]`): ids of the decoded images, one per row of `pixels`.
        pixels (`torch.ByteTensor` of shape `(len(ids), 3, H, W)`, *optional*): resized, cropped
            uint8 pixels on the target device; None when no image of the batch could be read.
        failed (`list[str]`): ids of missing or unreadable images.
    """

    ids: list[str]
    pixels: torch.Tensor | None
    failed: list[str]


def iterate_pixel_batches(
    items: Sequence[tuple[str, str | Path]],
    preprocessing: ImagePreprocessing,
    device: torch.device,
    batch_size: int = 256,
    num_workers: int = 4,
    decode_on_gpu: bool = False,
) -> Iterator[PixelBatch]:
    """Read (id, path) items in order and yield `PixelBatch`es on `device`, one per `batch_size` items.

    Every batch_size slice of `items` yields exactly one batch (possibly all failed), so processes
    given equally many items run equally many steps.
    """
    pin = device.type == "cuda"
    dataset = ImageBytesDataset(items) if decode_on_gpu else ImageFileDataset(items, preprocessing)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate_bytes if decode_on_gpu else _collate_stacked,
        pin_memory=pin and not decode_on_gpu,
        prefetch_factor=4 if num_workers else None,
        persistent_workers=False,
    )
    for ids, values, failed in loader:
        if decode_on_gpu:
            flat, lengths = values
            decoded = decode_on_device(list(torch.split(flat, lengths)), device) if lengths else []
            failed = failed + [key for key, image in zip(ids, decoded, strict=True) if image is None]
            kept = [(key, image) for key, image in zip(ids, decoded, strict=True) if image is not None]
            ids = [key for key, _ in kept]
            pixels = preprocessing.resize_on_device([image for _, image in kept]) if kept else None
        else:
            pixels = values.to(device, non_blocking=pin) if values is not None else None
        yield PixelBatch(ids=ids, pixels=pixels, failed=failed)
