# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Joint image/mask transforms for training and evaluating BiRefNet, for ``Dataset.with_transform``.

The mask travels through every geometric operation as a fourth (alpha) channel of a
``torchvision.tv_tensors.Image``, so image and mask get *exactly* the same flip, crop, rotation and resize,
and the mask is interpolated bilinearly like the image (as the authors do with ``transforms.Resize`` on
PIL masks) and stays soft in ``[0, 1]`` -- a ``tv_tensors.Mask`` would be resized with nearest neighbour.

The authors' augmentations (``image_proc.py`` of ZhengPeng7/BiRefNet), each switchable:

* horizontal flip, probability 0.5 -- the only augmentation of the paper (on by default);
* crop: a *centred* crop whose width and height are each reduced by a random amount below 10% of the
  shorter side (a small random zoom-in);
* rotation, probability 0.2, by a uniform angle in [-15, 15] degrees, zero-filled, bilinear (the authors
  rotate with bicubic interpolation and integer angles);
* colour enhancement, always when on: brightness and contrast factors in [0.5, 1.5], saturation in
  [0, 2], sharpness in [0, 3] (the authors draw them from a grid of 0.1 steps; we draw uniformly);
* pepper noise, always when on: 0.15% of the pixels set to black or white.

Order: crop (at the source resolution, it only slices), resize to ``image_size``, flip, rotation, colour,
pepper. Unlike the authors, flip/rotation/colour/pepper run *after* the resize, at the training
resolution: DIS5K images have several thousand pixels a side and this is several times faster; the
results differ only in interpolation detail (and rotation happening in the resized frame).

Masks are 0 (background) to 255 (foreground), soft values allowed. A mask that holds only 0 and 1 (a "0/1
mask", a common way of saving binary masks) would otherwise read as almost empty (labels of 1/255): it is
detected and scaled to 0/255, with a warning naming the file (:func:`mask_to_uint8`). Mask arrays may also be
``bool`` (True = foreground), integers in 0..255 or floats in [0, 1].

Randomness comes from ``torch``'s global generator, which ``torch.utils.data.DataLoader`` seeds
differently in every worker; call ``torch.manual_seed`` for reproducible runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from transformers.utils import logging

logger = logging.get_logger(__name__)

ImageSize = tuple[int, int]
"""``(height, width)`` in pixels."""

_SIZE_MULTIPLE = 32


def normalize_image_size(
    image_size: int | Sequence[int] | None, argument: str = "image_size"
) -> ImageSize | None:
    """``1024`` -> ``(1024, 1024)``; ``(h, w)`` -> ``(h, w)``; ``None`` stays ``None``. Sizes must be positive."""
    if image_size is None:
        return None
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    size = tuple(int(side) for side in image_size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"{argument} must be a positive int or (height, width), got {image_size!r}")
    return size  # type: ignore[return-value]


def _to_uint8_chw(picture: Any, channels: int, what: str, file_name: str | None) -> torch.Tensor:
    """A PIL image / HWC numpy array / CHW uint8 tensor as a ``(channels, H, W)`` uint8 tensor."""
    if isinstance(picture, PIL.Image.Image):
        mode = "RGB" if channels == 3 else "L"
        if picture.mode != mode:
            picture = picture.convert(mode)
        return F.pil_to_tensor(picture)
    if isinstance(picture, np.ndarray):
        picture = torch.from_numpy(np.ascontiguousarray(picture))
        picture = picture.unsqueeze(0) if picture.ndim == 2 else picture.permute(2, 0, 1)
    if isinstance(picture, torch.Tensor) and picture.dtype == torch.uint8:
        if picture.ndim == 2:
            picture = picture.unsqueeze(0)
        if picture.ndim == 3 and picture.shape[0] == channels:
            return picture.as_subclass(torch.Tensor)
    where = f" of {file_name}" if file_name else ""
    raise ValueError(
        f"Cannot use the {what}{where}: expected a PIL image or a uint8 array with {channels} channel(s), "
        f"got {type(picture).__name__} {getattr(picture, 'shape', '')}"
    )


def _mask_array_to_uint8(array: np.ndarray, file_name: str | None) -> np.ndarray:
    """``bool``, integer (0..255) and float ([0, 1]) numpy masks as ``uint8`` 0..255; others unchanged."""
    where = f" of {file_name}" if file_name else ""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(f"The mask{where} has integer values outside 0..255 (min {array.min()}, max {array.max()})")
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.all():
            raise ValueError(f"The mask{where} has {int((~finite).sum())} NaN or infinite value(s)")
        if array.size and (array.min() < 0 or array.max() > 1):
            raise ValueError(
                f"The mask{where} has float values outside [0, 1] (min {array.min():g}, max {array.max():g})"
            )
        return np.rint(array.astype(np.float64) * 255).astype(np.uint8)
    return array


def mask_to_uint8(mask: Any, file_name: str | None = None) -> torch.Tensor:
    """A mask (PIL image, numpy array or uint8 tensor) as a ``(1, H, W)`` uint8 tensor with 255 = foreground.

    Numpy masks may be ``uint8`` (0..255), ``bool``, other integers in 0..255 or floats in [0, 1].

    A mask whose values are only 0 and 1 (both present) is a "0/1 mask": it is scaled to 0/255 with a warning
    naming ``file_name``, instead of being read as almost empty. (A real 0..255 mask whose brightest pixel is 1 is
    indistinguishable from it; such a mask is empty for every purpose.)
    """
    if isinstance(mask, np.ndarray):
        mask = _mask_array_to_uint8(mask, file_name)
    tensor = _to_uint8_chw(mask, 1, "mask", file_name)
    if tensor.numel() and int(tensor.max()) == 1 and int(tensor.min()) == 0:
        logger.warning(
            f"The mask{f' {file_name}' if file_name else ''} holds only 0 and 1: read as a 0/1 mask "
            "(1 = foreground) and scaled to 0/255. Save masks as 0/255 to silence this."
        )
        tensor = tensor * 255
    return tensor


def adjust_sharpness(image: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ``ImageEnhance.Sharpness`` on a (C, H, W) uint8 tensor, faster than torchvision's version.

    Blends the image with its smoothed version (kernel ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13``, border
    pixels unchanged, rounded like PIL's filter output): factor 0 smooths, 1 returns the image, above 1 sharpens. The kernel is a 3x3 box
    sum (computed separably, with shifted additions) plus four times the centre.
    """
    if factor == 1.0 or min(image.shape[-2:]) < 3:
        return image
    original = image.to(torch.float32)
    rows = original[..., :-2, :] + original[..., 1:-1, :] + original[..., 2:, :]
    box_sum = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
    smoothed = original.clone()
    smoothed[..., 1:-1, 1:-1] = box_sum.add_(original[..., 1:-1, 1:-1], alpha=4.0).div_(13.0).round_()
    blended = smoothed.add_(original.sub_(smoothed).mul_(factor))
    return blended.round_().clamp_(0, 255).to(torch.uint8)


class _ImageMaskTransform:
    """Shared part: decoding to a 4-channel uint8 image, and the final float conversion."""

    def __init__(self, image_mean: Sequence[float], image_std: Sequence[float]) -> None:
        self.image_mean = [float(v) for v in image_mean]
        self.image_std = [float(v) for v in image_std]

    def _stack(self, image: Any, mask: Any, file_name: str | None) -> tv_tensors.Image:
        image_tensor = _to_uint8_chw(image, 3, "image", file_name)
        mask_tensor = mask_to_uint8(mask, file_name)
        if image_tensor.shape[1:] != mask_tensor.shape[1:]:
            where = f" of {file_name}" if file_name else ""
            raise ValueError(
                f"Image and mask{where} differ in size: image {tuple(image_tensor.shape[1:])} vs mask "
                f"{tuple(mask_tensor.shape[1:])} (height, width)"
            )
        return tv_tensors.Image(torch.cat([image_tensor, mask_tensor], dim=0))

    def _finish(self, stacked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        stacked = stacked.as_subclass(torch.Tensor)
        pixel_values = F.normalize(
            F.to_dtype(stacked[:3], torch.float32, scale=True), mean=self.image_mean, std=self.image_std
        )
        labels = F.to_dtype(stacked[3:], torch.float32, scale=True).clamp_(0.0, 1.0)
        return pixel_values, labels

    def _apply(self, stacked: tv_tensors.Image) -> torch.Tensor:
        """The transform proper, on the (4, H, W) uint8 image whose last channel is the mask."""
        raise NotImplementedError

    def transform_pair(
        self, image: Any, mask: Any, file_name: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One image and mask -> ``pixel_values`` (3, H, W) normalised and ``labels`` (1, H, W) in [0, 1].

        ``image`` and ``mask`` are PIL images, HWC numpy arrays or CHW uint8 tensors of the same size.
        """
        return self._finish(self._apply(self._stack(image, mask, file_name)))

    def __call__(self, examples: dict[str, list]) -> dict[str, list]:
        """Transform a batch of examples (the format ``Dataset.with_transform`` passes).

        Returns ``pixel_values``, ``labels``, ``original_size`` ((height, width) of the source image) and,
        when the input has them, ``class_labels`` (from ``label``) and ``file_name``.
        """
        for column in ("image", "mask"):
            if column not in examples:
                raise KeyError(f"{type(self).__name__} needs an {column!r} column, got {sorted(examples)}")
        images, masks = examples["image"], examples["mask"]
        file_names = examples.get("file_name") or [None] * len(images)
        output: dict[str, list] = {"pixel_values": [], "labels": [], "original_size": []}
        for image, mask, file_name in zip(images, masks, file_names, strict=True):
            stacked = self._stack(image, mask, file_name)
            output["original_size"].append(tuple(int(side) for side in stacked.shape[-2:]))
            pixel_values, labels = self._finish(self._apply(stacked))
            output["pixel_values"].append(pixel_values)
            output["labels"].append(labels)
        if "label" in examples:
            output["class_labels"] = [int(label) for label in examples["label"]]
        if "file_name" in examples:
            output["file_name"] = list(examples["file_name"])
        return output


class DISTrainTransform(_ImageMaskTransform):
    """Training transform: the authors' augmentations (see the module docstring), resize and normalisation.

    Args:
        image_size: ``(height, width)`` (or one int) to resize to, bilinearly with antialiasing, or ``None``
            to keep the source size (use it with ``DISCollator(dynamic_size=...)``, which resizes per batch;
            the augmentations then run at the source resolution, which is slower for multi-megapixel images).
        hflip / crop / rotate / color_enhance / pepper: switch each augmentation on or off.
        hflip_probability, rotate_probability, max_rotation_degrees, crop_fraction, pepper_fraction,
        brightness, contrast, saturation, sharpness: the augmentations' parameters (authors' defaults).
        image_mean / image_std: normalisation (ImageNet).
    """

    def __init__(
        self,
        image_size: int | Sequence[int] | None = (1024, 1024),
        *,
        hflip: bool = True,
        color_enhance: bool = False,
        rotate: bool = False,
        pepper: bool = False,
        crop: bool = False,
        hflip_probability: float = 0.5,
        rotate_probability: float = 0.2,
        max_rotation_degrees: float = 15.0,
        crop_fraction: float = 0.1,
        pepper_fraction: float = 0.0015,
        brightness: tuple[float, float] = (0.5, 1.5),
        contrast: tuple[float, float] = (0.5, 1.5),
        saturation: tuple[float, float] = (0.0, 2.0),
        sharpness: tuple[float, float] = (0.0, 3.0),
        image_mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
        image_std: Sequence[float] = IMAGENET_DEFAULT_STD,
    ) -> None:
        super().__init__(image_mean, image_std)
        self.image_size = normalize_image_size(image_size)
        for name, probability in (
            ("hflip_probability", hflip_probability),
            ("rotate_probability", rotate_probability),
            ("crop_fraction", crop_fraction),
            ("pepper_fraction", pepper_fraction),
        ):
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {probability}")
        for name, (low, high) in (
            ("brightness", brightness),
            ("contrast", contrast),
            ("saturation", saturation),
            ("sharpness", sharpness),
        ):
            if not 0.0 <= low <= high:
                raise ValueError(
                    f"{name} must be a range (low, high) with 0 <= low <= high, got {(low, high)}"
                )
        self.hflip, self.color_enhance, self.rotate, self.pepper, self.crop = (
            hflip,
            color_enhance,
            rotate,
            pepper,
            crop,
        )
        self.hflip_probability = hflip_probability
        self.rotate_probability = rotate_probability
        self.max_rotation_degrees = float(max_rotation_degrees)
        self.crop_fraction = crop_fraction
        self.pepper_fraction = pepper_fraction
        self.brightness, self.contrast = tuple(brightness), tuple(contrast)
        self.saturation, self.sharpness = tuple(saturation), tuple(sharpness)

    def __repr__(self) -> str:
        switches = ", ".join(
            f"{name}={getattr(self, name)}" for name in ("hflip", "crop", "rotate", "color_enhance", "pepper")
        )
        return f"{type(self).__name__}(image_size={self.image_size}, {switches})"

    @staticmethod
    def _uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand(()))

    @staticmethod
    def _randint(low: int, high: int) -> int:
        """Uniform integer in ``[low, high)``."""
        return int(torch.randint(low, high, ()))

    def _random_crop(self, stacked: tv_tensors.Image) -> tv_tensors.Image:
        height, width = stacked.shape[-2:]
        border = int(min(height, width) * self.crop_fraction)
        if border < 1:
            return stacked
        crop_width = self._randint(width - border, width)
        crop_height = self._randint(height - border, height)
        return F.crop(
            stacked, (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width
        )

    def _enhance_colors(self, image: torch.Tensor) -> torch.Tensor:
        image = F.adjust_brightness(image, self._uniform(*self.brightness))
        image = F.adjust_contrast(image, self._uniform(*self.contrast))
        image = F.adjust_saturation(image, self._uniform(*self.saturation))
        return adjust_sharpness(image, self._uniform(*self.sharpness))

    def _add_pepper(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        count = int(self.pepper_fraction * height * width)
        if count == 0:
            return image
        flat = image.reshape(image.shape[0], -1).clone()
        positions = torch.randint(0, height * width, (count,))
        values = torch.randint(0, 2, (count,), dtype=torch.uint8) * 255
        flat[:, positions] = values
        return flat.reshape(image.shape)

    def _apply(self, stacked: tv_tensors.Image) -> torch.Tensor:
        if self.crop:
            stacked = self._random_crop(stacked)
        if self.image_size is not None:
            stacked = F.resize(
                stacked, list(self.image_size), interpolation=InterpolationMode.BILINEAR, antialias=True
            )
        if self.hflip and float(torch.rand(())) < self.hflip_probability:
            stacked = F.horizontal_flip(stacked)
        if self.rotate and float(torch.rand(())) < self.rotate_probability:
            angle = self._uniform(-self.max_rotation_degrees, self.max_rotation_degrees)
            stacked = F.rotate(stacked, angle, interpolation=InterpolationMode.BILINEAR, fill=0)
        if self.color_enhance or self.pepper:
            color = stacked[:3].as_subclass(torch.Tensor)
            if self.color_enhance:
                color = self._enhance_colors(color)
            if self.pepper:
                color = self._add_pepper(color)
            stacked = torch.cat([color, stacked[3:].as_subclass(torch.Tensor)], dim=0)
        return stacked


class DISEvalTransform(_ImageMaskTransform):
    """Evaluation transform: resize (bilinear, antialiased) and normalise, no augmentation.

    Args:
        image_size: ``(height, width)`` (or one int), or ``None`` to round each image's own size down to a
            multiple of 32 (what the authors' test loader does).

    ``original_size`` in the output lets predictions be resized back to the ground truth's size.
    """

    def __init__(
        self,
        image_size: int | Sequence[int] | None = (1024, 1024),
        *,
        image_mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
        image_std: Sequence[float] = IMAGENET_DEFAULT_STD,
    ) -> None:
        super().__init__(image_mean, image_std)
        self.image_size = normalize_image_size(image_size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(image_size={self.image_size})"

    def _apply(self, stacked: tv_tensors.Image) -> torch.Tensor:
        size = self.image_size
        if size is None:
            height, width = stacked.shape[-2:]
            size = (
                max(_SIZE_MULTIPLE, height // _SIZE_MULTIPLE * _SIZE_MULTIPLE),
                max(_SIZE_MULTIPLE, width // _SIZE_MULTIPLE * _SIZE_MULTIPLE),
            )
        if tuple(stacked.shape[-2:]) != tuple(size):
            stacked = F.resize(stacked, list(size), interpolation=InterpolationMode.BILINEAR, antialias=True)
        return stacked


def make_train_transform(
    image_size: int | Sequence[int] | None = (1024, 1024),
    hflip: bool = True,
    color_enhance: bool = False,
    rotate: bool = False,
    pepper: bool = False,
    crop: bool = False,
    **kwargs: Any,
) -> DISTrainTransform:
    """The training transform, for ``dataset.with_transform(make_train_transform(...))``.

    Defaults follow the paper: 1024x1024 and horizontal flips only. ``kwargs`` go to
    :class:`DISTrainTransform` (augmentation parameters, normalisation).
    """
    return DISTrainTransform(
        image_size,
        hflip=hflip,
        color_enhance=color_enhance,
        rotate=rotate,
        pepper=pepper,
        crop=crop,
        **kwargs,
    )


def make_eval_transform(
    image_size: int | Sequence[int] | None = (1024, 1024), **kwargs: Any
) -> DISEvalTransform:
    """The evaluation transform, for ``dataset.with_transform(make_eval_transform(...))``."""
    return DISEvalTransform(image_size, **kwargs)
