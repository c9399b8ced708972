# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Image input: files, PIL images, arrays and tensors in; upright 8-bit RGB pixels out.

Every consumer of photos in this package (both image-processor backends, ``birefnet-hf segment``, the pipelines, the
server, the dataset folders) reads them through this module, so the same file gives the same pixels everywhere:

* [`load_image`] opens a file, decodes it fully and applies its EXIF orientation, with errors that name the file;
* [`to_rgb_array`] / [`to_rgb_image`] turn any supported input into upright 8-bit RGB (transparency composited onto
  white, 16-bit data reduced to its high byte, floats in [0, 1] scaled and rounded);
* [`flatten_images`] / [`load_image_paths`] turn the nested inputs processors accept into flat lists;
* [`IMAGE_EXTENSIONS`] is the one set of file extensions the package treats as images when it lists a folder.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
from transformers.image_utils import ChannelDimension

__all__ = [
    "IMAGE_EXTENSIONS",
    "apply_exif_orientation",
    "flatten_images",
    "load_image",
    "load_image_paths",
    "to_rgb_array",
    "to_rgb_image",
]

#: File extensions (lower case) taken as images when a folder is listed (``birefnet-hf segment DIR``, the ``im/``
#: folders of :mod:`birefnet_hf.data`); explicitly named files are always tried whatever their extension.
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".png",
    ".bmp",
    ".dib",
    ".tif",
    ".tiff",
    ".webp",
    ".gif",
    ".ppm",
    ".pgm",
    ".pbm",
    ".pnm",
    ".tga",
    ".jp2",
    ".j2k",
    ".avif",
    ".heic",
    ".heif",
)

#: EXIF / XMP orientation tag.
_ORIENTATION_TAG = 0x0112
#: PIL modes holding more than 8 bits per sample that `PIL.Image.convert("RGB")` would clip instead of scale.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def load_image(path: str | os.PathLike) -> PIL.Image.Image:
    """Open an image file, decode it fully and apply its EXIF orientation.

    Args:
        path (`str` or `os.PathLike`): the image file.

    Returns:
        `PIL.Image.Image`: the decoded, upright image in its original mode (e.g. "RGB", "RGBA", "I;16").

    Raises:
        `FileNotFoundError` when the file does not exist; `ValueError` naming the file when it cannot be decoded.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image file not found: {path!r}")
    try:
        with open(path, "rb") as handle:
            image = PIL.Image.open(handle)
            image.load()
    except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError) as error:
        raise ValueError(f"Cannot read {path!r} as an image: {error}") from error
    return apply_exif_orientation(image)


def apply_exif_orientation(image: PIL.Image.Image) -> PIL.Image.Image:
    """Return `image` rotated / flipped as its EXIF (or XMP) orientation tag says; unchanged (no copy) if upright."""
    if image.getexif().get(_ORIENTATION_TAG, 1) in (2, 3, 4, 5, 6, 7, 8):
        return PIL.ImageOps.exif_transpose(image)
    return image


def _composite_on_white(image: PIL.Image.Image) -> PIL.Image.Image:
    """Blend an image with transparency over a white background (the transformers convention)."""
    rgba = image.convert("RGBA")
    background = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return PIL.Image.alpha_composite(background, rgba).convert("RGB")


def _float_to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    if array.size and (not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0):
        raise ValueError(
            f"{name}: floating-point images must hold values in [0, 1], got range "
            f"[{np.nanmin(array)}, {np.nanmax(array)}]. Scale them to [0, 1] or pass uint8 data."
        )
    return np.rint(array.astype(np.float32) * np.float32(255.0)).astype(np.uint8)


def _gray_to_rgb_image(gray: np.ndarray) -> PIL.Image.Image:
    return PIL.Image.fromarray(np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), mode="RGB")


def _check_not_empty(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(
            f"Image has no pixels: height {height}, width {width}. Every image needs at least one pixel."
        )


def _pil_to_rgb_image(image: PIL.Image.Image) -> PIL.Image.Image:
    _check_not_empty(image.height, image.width)
    image = apply_exif_orientation(image)
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES:
        # Keep the high byte, as Pillow itself does when it opens 16-bit RGB(A) PNGs as 8-bit "RGB(A)".
        return _gray_to_rgb_image(
            (np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8)
        )
    if mode == "F":
        return _gray_to_rgb_image(_float_to_uint8(np.asarray(image, dtype=np.float32), "image of mode 'F'"))
    if "A" in image.getbands() or "a" in image.getbands() or image.info.get("transparency") is not None:
        return _composite_on_white(image)
    return image.convert("RGB")


def _infer_channels_last(shape: tuple[int, ...], prefer_channels_first: bool) -> bool:
    first_ok, last_ok = shape[0] in (1, 3, 4), shape[-1] in (1, 3, 4)
    if first_ok and last_ok:
        return not prefer_channels_first
    if last_ok:
        return True
    if first_ok:
        return False
    raise ValueError(
        f"Cannot tell the channel axis of an image of shape {tuple(shape)}: expected (H, W), (H, W, C) or "
        "(C, H, W) with C in (1, 3, 4). Pass `input_data_format` if the layout is unusual."
    )


def to_rgb_array(
    image: PIL.Image.Image | np.ndarray | torch.Tensor,
    input_data_format: str | ChannelDimension | None = None,
) -> np.ndarray:
    """Convert one image to an upright, writable, 8-bit RGB array of shape (H, W, 3).

    * PIL images: the EXIF orientation is applied; modes with transparency (RGBA, LA, PA, P with a
      transparent colour) are composited onto white; L, 1, P, CMYK, YCbCr, ... via `PIL.Image.convert("RGB")`;
      16-bit modes (I;16*, I: 16-bit PNGs) keep their high byte; mode F must hold values in [0, 1].
    * NumPy arrays / torch tensors: (H, W), (H, W, C) or (C, H, W) with C in (1, 3, 4); NumPy defaults to
      channels-last and torch to channels-first when the shape is ambiguous. uint8 as is, bool -> {0, 255},
      uint16 -> high byte, floats must be in [0, 1] (scaled by 255 and rounded; torch bfloat16 is read as
      float32). Four channels are RGBA (composited onto white exactly as for PIL), one channel is grayscale.

    Raises:
        `TypeError` for unsupported input types, `ValueError` for unsupported shapes, dtypes or value ranges and
        for images without pixels (a zero height or width).
    """
    if isinstance(image, PIL.Image.Image):
        return np.array(_pil_to_rgb_image(image))
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype not in (torch.float16, torch.float32, torch.float64):
            tensor = tensor.float()  # bfloat16 (and float8) have no NumPy dtype; float32 holds them exactly
        array, prefer_channels_first = tensor.numpy(), True
    elif isinstance(image, np.ndarray):
        array, prefer_channels_first = image, False
    else:
        raise TypeError(
            f"Unsupported image type {type(image).__name__}; expected a PIL image, a NumPy array, a torch tensor "
            "or a path."
        )
    if array.ndim == 3:
        if input_data_format is not None:
            channels_last = ChannelDimension(input_data_format) == ChannelDimension.LAST
        else:
            channels_last = _infer_channels_last(array.shape, prefer_channels_first)
        if not channels_last:
            array = np.moveaxis(array, 0, -1)
    elif array.ndim == 2:
        array = array[:, :, None]
    else:
        raise ValueError(f"An image must have 2 or 3 dimensions, got shape {tuple(array.shape)}.")
    if array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Images must have 1, 3 or 4 channels, got shape {tuple(array.shape)}.")
    _check_not_empty(array.shape[0], array.shape[1])

    if array.dtype == np.uint8:
        pass
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * np.uint8(255)
    elif array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        array = _float_to_uint8(array, "image array")
    else:
        raise ValueError(
            f"Unsupported image dtype {array.dtype}; use uint8, uint16, bool or floats in [0, 1]."
        )

    channels = array.shape[-1]
    if channels == 1:
        return np.repeat(array, 3, axis=2)
    if channels == 4:
        return np.array(_composite_on_white(PIL.Image.fromarray(np.ascontiguousarray(array), mode="RGBA")))
    return np.array(array, copy=True, order="C")


def to_rgb_image(
    image: str | os.PathLike | PIL.Image.Image | np.ndarray | torch.Tensor,
    input_data_format: str | ChannelDimension | None = None,
) -> PIL.Image.Image:
    """Like [`to_rgb_array`], as an "RGB" PIL image; also takes a file path ([`load_image`]). An upright RGB PIL
    input is returned as is (no copy)."""
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    if isinstance(image, PIL.Image.Image):
        return _pil_to_rgb_image(image)
    return PIL.Image.fromarray(to_rgb_array(image, input_data_format), mode="RGB")


def flatten_images(images: Any, name: str = "images") -> list[Any]:
    """Flatten a single image, a path, a 4-D batch or (nested) lists of those into a flat list of images."""
    if isinstance(images, (str, os.PathLike)):
        return [load_image(images)]
    if isinstance(images, PIL.Image.Image):
        return [images]
    if isinstance(images, (np.ndarray, torch.Tensor)):
        if images.ndim in (2, 3):
            return [images]
        if images.ndim == 4:
            return list(images)
        raise ValueError(
            f"{name}: an image array must have 2, 3 or 4 dimensions, got shape {tuple(images.shape)}."
        )
    if isinstance(images, (list, tuple)):
        flat: list[Any] = []
        for index, item in enumerate(images):
            flat.extend(flatten_images(item, f"{name}[{index}]"))
        return flat
    raise TypeError(
        f"{name}: unsupported image type {type(images).__name__}; expected PIL images, NumPy arrays, torch "
        "tensors, file paths, or lists of them."
    )


def load_image_paths(images: Any) -> Any:
    """`images` with every file path (at any nesting depth) replaced by its image ([`load_image`])."""
    if isinstance(images, (list, tuple)):
        return [load_image_paths(item) for item in images]
    if isinstance(images, (str, os.PathLike)):
        return load_image(images)
    return images
