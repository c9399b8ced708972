"""Image processor for BiRefNet: photos in, normalised model tensors out; logits in, masks and mattes out.

Pre-processing follows the paper (Sec. 4.1: "All images are resized to 1024x1024 for training and testing") and
the authors' inference code, which is, for a PIL image::

    transforms.Compose([transforms.Resize((1024, 1024)), transforms.ToTensor(),
                        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

Post-processing follows the paper's evaluation ("the generated segmentation maps are resized (i.e., bilinear
interpolation) to the original size"), which the authors' inference implements as
``F.interpolate(logits.sigmoid(), size, mode="bilinear", align_corners=True)`` (sigmoid at model resolution,
then the resize).

Two classes, following the transformers 5.x backend layout:

* [`BiRefNetImageProcessor`] (torchvision backend, the default of `AutoImageProcessor`), and
* [`BiRefNetImageProcessorPil`] (PIL backend, `AutoImageProcessor.from_pretrained(..., backend="pil")`), which
  reproduces the authors' transform chain exactly.

Both turn every input into the same upright 8-bit RGB pixels first (see [`to_rgb_array`]), so they only differ
in how the resize is computed. Post-processing ([`resize_logits_to_probabilities`]) works in row chunks, so
mattes of very large photos never need full-size float temporaries.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
from torchvision.transforms.v2 import functional as tvF
from transformers.image_processing_backends import PilBackend, TorchvisionBackend
from transformers.image_processing_base import BatchFeature
from transformers.image_processing_outputs import SemanticSegmentationPostProcessorOutput
from transformers.image_utils import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    ChannelDimension,
    PILImageResampling,
    SizeDict,
    pil_torch_interpolation_mapping,
    torch_pil_interpolation_mapping,
)
from transformers.processing_utils import ImagesKwargs, Unpack
from transformers.utils import TensorType, logging

logger = logging.get_logger(__name__)

__all__ = [
    "BiRefNetImageProcessor",
    "BiRefNetImageProcessorPil",
    "load_image",
    "to_rgb_array",
    "to_rgb_image",
    "get_model_input_size",
    "resize_logits_to_probabilities",
]

#: EXIF / XMP orientation tag.
_ORIENTATION_TAG = 0x0112
#: PIL modes holding more than 8 bits per sample that `PIL.Image.convert("RGB")` would clip instead of scale.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
#: Output elements computed at once when upsampling logits to a (possibly huge) original size.
_UPSAMPLE_CHUNK_ELEMENTS = 1 << 21


# ---------------------------------------------------------------------------------------------------------------
# Input conversion: anything -> upright 8-bit RGB pixels
# ---------------------------------------------------------------------------------------------------------------


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


def _flatten_images(images: Any, name: str = "images") -> list[Any]:
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
            flat.extend(_flatten_images(item, f"{name}[{index}]"))
        return flat
    raise TypeError(
        f"{name}: unsupported image type {type(images).__name__}; expected PIL images, NumPy arrays, torch "
        "tensors, file paths, or lists of them."
    )


def _fetch_images(images: Any) -> Any:
    if isinstance(images, (list, tuple)):
        return [_fetch_images(item) for item in images]
    if isinstance(images, (str, os.PathLike)):
        return load_image(images)
    return images


# ---------------------------------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------------------------------


def _round_to_multiple(value: float, multiple: int, minimum: int) -> int:
    return max(minimum, int(math.floor(value / multiple + 0.5)) * multiple)


def get_model_input_size(
    height: int, width: int, size: SizeDict | dict, size_divisor: int = 32
) -> tuple[int, int]:
    """The (height, width) an image of the given size is resized to.

    Args:
        height, width (`int`): size of the original image.
        size (`SizeDict` or `dict`): either `{"height": H, "width": W}` (a fixed size, both multiples of
            `size_divisor`), or `{"longest_edge": L}` (keep the aspect ratio: the longer side becomes about `L`,
            and both sides are rounded to the nearest multiple of `size_divisor`, ties up, and kept at least
            `2 * size_divisor` = 64: the model runs its backbone on the image and on a half-size copy, whose
            stride-4 features must still cover PVT-v2's 8x8 spatial-reduction kernel).
        size_divisor (`int`, defaults to 32): BiRefNet needs input sides that are multiples of 32.
    """
    size = SizeDict(**dict(size)) if not isinstance(size, SizeDict) else size
    if size.height is not None and size.width is not None:
        return int(size.height), int(size.width)
    if size.longest_edge is not None:
        scale = size.longest_edge / max(height, width)
        minimum = min(2 * size_divisor, size.longest_edge)
        return (
            _round_to_multiple(height * scale, size_divisor, minimum),
            _round_to_multiple(width * scale, size_divisor, minimum),
        )
    raise ValueError(
        f"BiRefNet's image processor supports size={{'height': H, 'width': W}} or size={{'longest_edge': L}}, "
        f"got {dict(size)}."
    )


def _check_size(size: SizeDict | None, size_divisor: int | None, do_resize: bool | None) -> None:
    if size_divisor is None or size_divisor < 1:
        raise ValueError(f"size_divisor must be a positive integer, got {size_divisor!r}.")
    if not do_resize:
        return
    if size is None:
        raise ValueError("`size` must be set when do_resize=True.")
    keys = {key for key, _ in size}
    if keys == {"height", "width"}:
        if size.height % size_divisor or size.width % size_divisor or size.height <= 0 or size.width <= 0:
            raise ValueError(
                f"size={{'height': {size.height}, 'width': {size.width}}}: BiRefNet needs positive sides that are "
                f"multiples of {size_divisor} (e.g. 1024, 768, 512)."
            )
    elif keys == {"longest_edge"}:
        if size.longest_edge < size_divisor:
            raise ValueError(
                f"size['longest_edge'] must be at least {size_divisor}, got {size.longest_edge}."
            )
    else:
        raise ValueError(
            f"BiRefNet's image processor supports size={{'height': H, 'width': W}} or size={{'longest_edge': L}}, "
            f"got {dict(size)}."
        )


# ---------------------------------------------------------------------------------------------------------------
# Post-processing: low-resolution logits -> full-resolution probabilities, in row chunks
# ---------------------------------------------------------------------------------------------------------------


def _align_corners_taps(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Source indices and weights of 1-D linear interpolation with align_corners=True, computed as PyTorch does."""
    scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    source = torch.arange(out_size, device=device, dtype=torch.float32) * torch.tensor(
        scale, dtype=torch.float32
    )
    index0 = source.to(torch.long).clamp_(max=in_size - 1)
    index1 = (index0 + 1).clamp_(max=in_size - 1)
    weight1 = source - index0.to(torch.float32)
    weight0 = 1.0 - weight1
    return index0, index1, weight0, weight1


def resize_logits_to_probabilities(
    logits: torch.Tensor,
    size: tuple[int, int],
    output: str = "float",
    threshold: float = 0.5,
    chunk_elements: int = _UPSAMPLE_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Apply the sigmoid to one logit map and resize it bilinearly (align_corners=True), a few rows at a time.

    Equals ``F.interpolate(logits.sigmoid()[None, None], size, mode="bilinear", align_corners=True)[0, 0]`` (the
    authors' inference: sigmoid at model resolution, then the resize) up to float rounding, but never materialises a full-size float tensor other than
    the result itself, so an 8000x6000 mask costs 48 MB as uint8 instead of several 192 MB float copies.
    The work is done on `logits.device`; the result is on the CPU.

    Args:
        logits (`torch.Tensor` of shape (h, w)): one logit map at model resolution (any float dtype).
        size (`tuple[int, int]`): target (height, width).
        output (`str`): "float" -> float32 probabilities in [0, 1]; "uint8" -> `round(255 * p)`;
            "label" -> int64 labels `p > threshold` (1 foreground, 0 background).
        threshold (`float`): probability threshold for `output="label"`.
        chunk_elements (`int`): output elements computed per step (bounds the temporary memory).
    """
    if logits.ndim != 2:
        raise ValueError(f"Expected a (height, width) logit map, got shape {tuple(logits.shape)}.")
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"Target size must be positive, got {size}.")
    dtypes = {"float": torch.float32, "uint8": torch.uint8, "label": torch.int64}
    if output not in dtypes:
        raise ValueError(f"output must be one of {sorted(dtypes)}, got {output!r}.")

    logits = logits.detach().to(torch.float32).sigmoid()  # probabilities at model resolution
    in_height, in_width = logits.shape
    x0, x1, wx0, wx1 = _align_corners_taps(in_width, width, logits.device)
    y0, y1, wy0, wy1 = _align_corners_taps(in_height, height, logits.device)

    result = torch.empty((height, width), dtype=dtypes[output])
    rows_per_chunk = max(1, chunk_elements // width)
    for start in range(0, height, rows_per_chunk):
        stop = min(height, start + rows_per_chunk)
        # Source rows this chunk reads (the taps are sorted), interpolated along the width first, as PyTorch does.
        first, last = int(y0[start]), int(y1[stop - 1])
        band = logits[first : last + 1]
        columns = torch.index_select(band, 1, x0).mul_(wx0)
        columns.addcmul_(torch.index_select(band, 1, x1), wx1)
        # Then along the height, in place: a chunk needs three buffers of its size at most.
        rows = torch.index_select(columns, 0, y0[start:stop] - first).mul_(wy0[start:stop, None])
        rows.addcmul_(torch.index_select(columns, 0, y1[start:stop] - first), wy1[start:stop, None])
        del columns
        if output == "uint8":
            rows = rows.mul_(255.0).round_().to(torch.uint8)
        elif output == "label":
            rows = rows > threshold
        result[start:stop] = rows.cpu()
    return result


def _get_logits(outputs: Any) -> torch.Tensor:
    logits = outputs if isinstance(outputs, torch.Tensor) else getattr(outputs, "logits", None)
    if logits is None and isinstance(outputs, dict):
        logits = outputs.get("logits")
    if not isinstance(logits, torch.Tensor):
        raise TypeError("Expected model outputs with a `logits` tensor (or the logits tensor itself).")
    if logits.ndim == 3:
        logits = logits[:, None]
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(
            f"Expected BiRefNet logits of shape (batch, 1, height, width), got {tuple(logits.shape)}."
        )
    return logits


def _get_target_sizes(logits: torch.Tensor, target_sizes: Any) -> list[tuple[int, int]]:
    if target_sizes is None:
        return [tuple(logits.shape[-2:])] * logits.shape[0]
    if isinstance(target_sizes, torch.Tensor):
        target_sizes = target_sizes.tolist()
    target_sizes = [tuple(int(v) for v in size) for size in target_sizes]
    if len(target_sizes) != logits.shape[0]:
        raise ValueError(
            f"Got {len(target_sizes)} target sizes for a batch of {logits.shape[0]} predictions; pass one "
            "(height, width) per image."
        )
    for size in target_sizes:
        if len(size) != 2:
            raise ValueError(f"Each target size must be (height, width), got {size}.")
    return target_sizes


class BiRefNetImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    size_divisor (`int`, *optional*, defaults to 32):
        With `size={"longest_edge": L}`, both output sides are rounded to multiples of this value; fixed sizes
        must be multiples of it. BiRefNet needs 32.
    """

    size_divisor: int


class _BiRefNetProcessingMixin:
    """What both backends share: input handling, size rules and post-processing."""

    valid_kwargs = BiRefNetImageProcessorKwargs
    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BILINEAR
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"height": 1024, "width": 1024}
    default_to_square = True
    size_divisor = 32
    do_resize = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True

    def _prepare_images_structure(self, images: Any, expected_ndims: int = 3) -> list[Any]:
        flat = _flatten_images(images)
        if not flat:
            raise ValueError("`images` is empty: pass at least one image.")
        return flat

    def _validate_preprocess_kwargs(self, size=None, size_divisor=None, do_resize=None, **kwargs) -> None:
        super()._validate_preprocess_kwargs(size=size, do_resize=do_resize, **kwargs)
        _check_size(size, size_divisor, do_resize)
        if kwargs.get("do_convert_rgb") is False:
            raise ValueError("BiRefNet needs RGB input: do_convert_rgb=False is not supported.")

    @staticmethod
    def _to_batch_feature(images: list, return_tensors: str | TensorType | None) -> BatchFeature:
        if return_tensors is not None and len({tuple(image.shape) for image in images}) > 1:
            shapes = sorted({tuple(image.shape[-2:]) for image in images})
            raise ValueError(
                f"The images were resized to different sizes {shapes} (size={{'longest_edge': ...}} keeps each "
                "aspect ratio), so they cannot be stacked into one tensor. Process them one at a time, pass "
                "return_tensors=None, or use a fixed size."
            )
        return BatchFeature(data={"pixel_values": images}, tensor_type=return_tensors)

    def post_process_semantic_segmentation(
        self,
        outputs: Any,
        target_sizes: Sequence[tuple[int, int]] | torch.Tensor | None = None,
        threshold: float = 0.5,
        return_segmentation_scores: bool = False,
    ) -> list[torch.Tensor] | list[SemanticSegmentationPostProcessorOutput]:
        """Turn BiRefNet logits into label maps: 1 where sigmoid(logit) > `threshold` (foreground), else 0.

        The probabilities (sigmoid at model resolution) are resized bilinearly (align_corners=True, as the authors'
        inference does) to each target size, then thresholded. This is what `pipeline("image-segmentation")` calls.

        Args:
            outputs: the model output (anything with `.logits` of shape (batch, 1, h, w)) or the logits.
            target_sizes: one (height, width) per image; `None` keeps the model resolution.
            threshold (`float`, defaults to 0.5): foreground probability threshold.
            return_segmentation_scores (`bool`, defaults to `False`): also return per-class scores, as
                transformers' semantic-segmentation processors do (SegFormer, DPT, ...). BiRefNet has a single
                foreground logit, so its scores are the two class probabilities `(1 - p, p)` at the target size
                (`p` as in [`~BiRefNetImageProcessor.post_process_alpha`]); `segmentation` is `p > threshold`, which
                is their argmax for the default threshold 0.5.

        Returns:
            `list[torch.Tensor]`: one int64 (height, width) map per image with values 0 (background) and
            1 (foreground), matching `config.id2label`; with `return_segmentation_scores=True`, one
            `SemanticSegmentationPostProcessorOutput` per image with `segmentation` (that map) and
            `segmentation_scores` (float32, shape (2, height, width): background and foreground probability).
        """
        logits = _get_logits(outputs)
        sizes = _get_target_sizes(logits, target_sizes)
        if not return_segmentation_scores:
            return [
                resize_logits_to_probabilities(logits[i, 0], sizes[i], output="label", threshold=threshold)
                for i in range(logits.shape[0])
            ]
        results = []
        for i in range(logits.shape[0]):
            foreground = resize_logits_to_probabilities(logits[i, 0], sizes[i], output="float")
            segmentation = (foreground > threshold).long()
            scores = torch.stack([1.0 - foreground, foreground])
            results.append(
                SemanticSegmentationPostProcessorOutput(
                    data={"segmentation": segmentation, "segmentation_scores": scores}
                )
            )
        return results

    def post_process_alpha(
        self,
        outputs: Any,
        target_sizes: Sequence[tuple[int, int]] | torch.Tensor | None = None,
        output_dtype: torch.dtype = torch.float32,
    ) -> list[torch.Tensor]:
        """Turn BiRefNet logits into soft alpha mattes at each original size, as the paper evaluates.

        ``F.interpolate(sigmoid(logits), size, mode="bilinear", align_corners=True)``, computed in row chunks.

        Args:
            outputs: the model output (anything with `.logits` of shape (batch, 1, h, w)) or the logits.
            target_sizes: one (height, width) per image (the original sizes); `None` keeps the model resolution.
            output_dtype (`torch.dtype`, defaults to `torch.float32`): `torch.float32` for mattes in [0, 1], or
                `torch.uint8` for `round(255 * matte)` (4x less memory, what PNG files store).

        Returns:
            `list[torch.Tensor]`: one (height, width) matte per image, on the CPU.
        """
        if output_dtype not in (torch.float32, torch.uint8):
            raise ValueError(f"output_dtype must be torch.float32 or torch.uint8, got {output_dtype}.")
        logits = _get_logits(outputs)
        sizes = _get_target_sizes(logits, target_sizes)
        output = "float" if output_dtype == torch.float32 else "uint8"
        return [
            resize_logits_to_probabilities(logits[i, 0], sizes[i], output=output)
            for i in range(logits.shape[0])
        ]


class BiRefNetImageProcessor(_BiRefNetProcessingMixin, TorchvisionBackend):
    r"""
    BiRefNet image processor, torchvision backend (the default of `AutoImageProcessor`).

    Every input (PIL image in any mode, NumPy array, torch tensor, file path, or a list of them) is first made an
    upright 8-bit RGB image (EXIF orientation applied, transparency composited onto white, 16-bit data reduced
    to its high byte; see [`to_rgb_array`]), then resized with antialiased bilinear interpolation on uint8
    data, scaled by 1/255 and normalised with the ImageNet mean and standard deviation.

    Against the authors' preprocessing (PIL bilinear resize, `ToTensor`, `Normalize`), which
    [`BiRefNetImageProcessorPil`] reproduces exactly, this backend's antialiased downscaling rounds slightly
    differently: resizing a 4000x3000 photo-like image to 1024x1024, 0.2% of the uint8 values differ by one
    level and none by more, so the normalised outputs differ by at most 1 / (255 * 0.224) = 0.0175 and by
    4e-5 on average; upscaling agrees to float rounding (< 1e-5). Measured in tests/test_image_processing.py
    and benchmarks/preprocess.py; far below what changes a prediction. Its resize is several times faster
    than PIL's, but it first copies the whole photo into a tensor; see benchmarks/preprocess.py for the net.

    Args:
        size (`dict[str, int]`, *optional*, defaults to `{"height": 1024, "width": 1024}`):
            `{"height": H, "width": W}` (multiples of 32) for a fixed size, as in the paper, or
            `{"longest_edge": L}` to keep the aspect ratio (both sides rounded to multiples of `size_divisor`).
            Images resized to different sizes cannot be returned as one tensor.
        resample (`PILImageResampling`, *optional*, defaults to `BILINEAR`): resampling filter.
        size_divisor (`int`, *optional*, defaults to 32): see `size`.
        do_rescale, rescale_factor, do_normalize, image_mean, image_std: as usual (1/255, ImageNet statistics).
    """

    def __init__(self, **kwargs: Unpack[BiRefNetImageProcessorKwargs]):
        super().__init__(**kwargs)
        _check_size(self.size, self.size_divisor, self.do_resize)

    def fetch_images(self, image_url_or_urls: Any) -> Any:
        """Load local image paths with [`load_image`] (PIL, EXIF-aware) so both backends see the same pixels."""
        return _fetch_images(image_url_or_urls)

    def process_image(
        self,
        image: Any,
        input_data_format: str | ChannelDimension | None = None,
        device: str | torch.device | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """One input -> (3, H, W) uint8 tensor. It is a view of channels-last memory, which makes the uint8
        antialiased resize several times faster than on planar data."""
        tensor = torch.from_numpy(to_rgb_array(image, input_data_format)).permute(2, 0, 1)
        return tensor.to(device) if device is not None else tensor

    def resize(
        self,
        image: torch.Tensor,
        size: SizeDict,
        resample: PILImageResampling | tvF.InterpolationMode | int | None = None,
        antialias: bool = True,
        size_divisor: int = 32,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Resize to the size [`get_model_input_size`] gives for this image's height and width."""
        height, width = get_model_input_size(image.shape[-2], image.shape[-1], size, size_divisor)
        if resample is None:
            interpolation = tvF.InterpolationMode.BILINEAR
        elif isinstance(resample, (PILImageResampling, int)):
            interpolation = pil_torch_interpolation_mapping[resample]
        else:
            interpolation = resample
        return tvF.resize(image, [height, width], interpolation=interpolation, antialias=antialias)

    def _preprocess(
        self,
        images: list[torch.Tensor],
        do_resize: bool,
        size: SizeDict,
        resample: PILImageResampling | tvF.InterpolationMode | int | None,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | Iterable[float],
        image_std: float | Iterable[float],
        size_divisor: int = 32,
        return_tensors: str | TensorType | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        # Batch images of equal shape; stack channels-last so the resize keeps its fast path.
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(tuple(image.shape), []).append(index)
        processed: list[torch.Tensor | None] = [None] * len(images)
        for indices in groups.values():
            if len(indices) == 1:
                batch = images[indices[0]][None]
            else:
                batch = torch.stack([images[i].permute(1, 2, 0) for i in indices]).permute(0, 3, 1, 2)
            if do_resize:
                batch = self.resize(batch, size=size, resample=resample, size_divisor=size_divisor)
            # Planar uint8 first (small): the float normalisation is faster on contiguous data.
            batch = self.rescale_and_normalize(
                batch.contiguous(), do_rescale, rescale_factor, do_normalize, image_mean, image_std
            ).contiguous()
            for position, index in enumerate(indices):
                processed[index] = batch[position]
        return self._to_batch_feature(processed, return_tensors)


class BiRefNetImageProcessorPil(_BiRefNetProcessingMixin, PilBackend):
    r"""
    BiRefNet image processor, PIL backend: the authors' preprocessing, value for value.

    Same input handling as [`BiRefNetImageProcessor`] (see [`to_rgb_array`]); the resize is PIL's bilinear
    filter (what `torchvision.transforms.Resize` does on PIL images), followed by `x / 255` and
    `(x - mean) / std` in float32, exactly like `ToTensor()` and `Normalize(mean, std)`. Outputs equal the
    authors' `Compose([Resize((1024, 1024)), ToTensor(), Normalize(...)])` to within 1e-6 (tested).

    Args: see [`BiRefNetImageProcessor`].
    """

    def __init__(self, **kwargs: Unpack[BiRefNetImageProcessorKwargs]):
        super().__init__(**kwargs)
        _check_size(self.size, self.size_divisor, self.do_resize)

    def fetch_images(self, image_url_or_urls: Any) -> Any:
        """Load local image paths with [`load_image`]."""
        return _fetch_images(image_url_or_urls)

    def process_image(
        self, image: Any, input_data_format: str | ChannelDimension | None = None, **kwargs: Any
    ) -> PIL.Image.Image:
        """One input -> upright "RGB" PIL image. This backend keeps PIL images until after the resize (like the
        authors' chain), so a full-size photo is never copied into an array."""
        return to_rgb_image(image, input_data_format)

    def resize(
        self,
        image: PIL.Image.Image,
        size: SizeDict,
        resample: PILImageResampling | tvF.InterpolationMode | int | None = None,
        size_divisor: int = 32,
        **kwargs: Any,
    ) -> PIL.Image.Image:
        """Resize an RGB PIL image with PIL to the size [`get_model_input_size`] gives."""
        height, width = get_model_input_size(image.height, image.width, size, size_divisor)
        if resample is None:
            resample = PILImageResampling.BILINEAR
        elif not isinstance(resample, (PILImageResampling, int)):
            resample = torch_pil_interpolation_mapping[resample]
        return image.resize((width, height), resample=PILImageResampling(resample))

    def _preprocess(
        self,
        images: list[PIL.Image.Image],
        do_resize: bool,
        size: SizeDict,
        resample: PILImageResampling | tvF.InterpolationMode | int | None,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | Iterable[float],
        image_std: float | Iterable[float],
        size_divisor: int = 32,
        return_tensors: str | TensorType | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        mean = np.asarray(image_mean, dtype=np.float32).reshape(-1, 1, 1)
        std = np.asarray(image_std, dtype=np.float32).reshape(-1, 1, 1)
        processed = []
        for image in images:
            if do_resize:
                image = self.resize(image, size=size, resample=resample, size_divisor=size_divisor)
            image = np.moveaxis(np.asarray(image), -1, 0).astype(np.float32)
            if do_rescale:
                # ToTensor divides by 255 in float32; do the same when the factor is the usual 1/255.
                if math.isclose(rescale_factor, 1 / 255, rel_tol=1e-12):
                    image = image / np.float32(255.0)
                else:
                    image = image * np.float32(rescale_factor)
            if do_normalize:
                image = (image - mean) / std
            processed.append(np.ascontiguousarray(image, dtype=np.float32))
        return self._to_batch_feature(processed, return_tensors)
