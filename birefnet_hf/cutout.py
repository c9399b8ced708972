# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Cut-out post-processing: foreground colour estimation, matte clean-up, alpha matting, compositing, large photos.

Everything here works on a photo and its matte at the photo's full size, so every function processes a few rows
at a time and never allocates a full-size float copy (a 100-megapixel photo is 300 MB as 8-bit RGB and 1.2 GB as a
float32 RGB tensor). The row bands hold about `chunk_pixels` pixels (default [`DEFAULT_CHUNK_PIXELS`], 2**20); each
function's docstring states its temporary memory per band. Inputs and outputs are the photo's own layout:

* images: (..., H, W, 3) channels-last, `uint8` (0..255) or float (0..1), as NumPy arrays, torch tensors (any device:
  the work runs on the tensor's device, so CUDA tensors are processed on the GPU), or "RGB" PIL images (read band by
  band with `crop`, never converted as a whole);
* mattes (alpha): (..., H, W), `uint8` (0..255) or float (0..1), same kinds ("L" PIL images);
* outputs: NumPy for NumPy / PIL inputs, torch tensors on the input's device for torch inputs; `uint8` when the
  input image (or matte) is `uint8` / PIL, else float32.

Functions:

* [`estimate_foreground`]: blur-fusion foreground colour estimation (Forte & Pitie 2021, "Approximate fast
  foreground colour estimation"; what BiRefNet's authors ship as `refine_foreground`): removes the background
  colour that bleeds into semi-transparent edges (hair, fur, motion blur) of a cut-out.
* [`postprocess_matte`]: threshold, dilate / erode (square structuring element), feather (Gaussian).
* [`refine_alpha_matting`]: closed-form alpha matting (Levin et al. 2008, via `pymatting`) in the unknown band of a
  trimap built from the matte, tile by tile.
* [`composite`], [`cutout_rgba`], [`blurred_background`], [`parse_background`]: background replacement and RGBA
  cut-outs.
* [`refine_matte_in_crops`]: the two-stage mode for very large photos: re-segment full-resolution crops around the
  object's boundary and blend them into the coarse matte with a partition of unity.
* [`fit_max_side`]: downscale a photo so its longest side is at most N.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import PIL.Image
import PIL.ImageColor
import PIL.ImageFilter
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers.utils import logging

logger = logging.get_logger(__name__)

__all__ = [
    "BLUR_FUSION_KERNEL_SIZES",
    "DEFAULT_CHUNK_PIXELS",
    "blurred_background",
    "box_mean",
    "composite",
    "crop_grid",
    "cutout_rgba",
    "estimate_foreground",
    "fit_max_side",
    "import_pymatting",
    "make_trimap",
    "parse_background",
    "postprocess_matte",
    "refine_alpha_matting",
    "refine_matte_in_crops",
]

#: Pixels (rows x width x batch) per row band in the full-size functions of this module.
DEFAULT_CHUNK_PIXELS = 1 << 20
#: Box-blur kernel sizes of blur fusion's two passes: a wide one for a first, smooth estimate of the foreground and
#: background colours, then a narrow one that refines it (Forte & Pitie's two-step scheme, as BiRefNet uses it).
BLUR_FUSION_KERNEL_SIZES = (90, 6)
#: Added to the blurred alpha / blurred (1 - alpha) before dividing by them (as in the reference implementation).
_BLUR_FUSION_EPSILON = 1e-5

ImageLike = Union[np.ndarray, torch.Tensor, PIL.Image.Image]
Color = tuple[int, int, int]


# ---------------------------------------------------------------------------------------------------------------
# Row-band access to arrays, tensors and PIL images
# ---------------------------------------------------------------------------------------------------------------


class _Planes:
    """Read-only row-band access to an image (..., H, W, C) or a matte (..., H, W), whatever its container.

    `read(start, stop)` returns float32 values in [0, 1] on `device` as (..., C, rows, W) for images and
    (..., rows, W) for mattes; only those rows are converted, so a PIL image is never copied as a whole.
    """

    def __init__(self, data: ImageLike, name: str, channels: int | None, device: torch.device | None = None):
        self.name = name
        self.channels = channels
        self.pil: PIL.Image.Image | None = None
        if isinstance(data, PIL.Image.Image):
            mode = "L" if channels is None else "RGB"
            if channels not in (None, 3):
                raise ValueError(f"{name}: PIL images are read as RGB or L, not {channels} channels.")
            self.pil = data if data.mode == mode else None
            if self.pil is None:
                # Convert once (e.g. "RGBA" or "P" photos); "RGB" / "L" inputs are read band by band without copying.
                self.pil = data.convert(mode)
            self.kind = "pil"
            self.tensor = None
            self.lead_shape: tuple[int, ...] = ()
            self.height, self.width = self.pil.height, self.pil.width
            self.is_uint8 = True
            self.device = device or torch.device("cpu")
            return
        if isinstance(data, np.ndarray):
            self.kind = "numpy"
            if data.dtype == np.bool_:
                data = data.view(np.uint8) * np.uint8(255)
            if not (data.dtype == np.uint8 or np.issubdtype(data.dtype, np.floating)):
                raise TypeError(f"{name}: expected uint8 or float values, got dtype {data.dtype}.")
            if not data.flags.writeable or any(stride < 0 for stride in data.strides):
                data = np.array(data)  # torch.from_numpy needs a writable array with positive strides
            self.tensor = torch.from_numpy(data)
        elif isinstance(data, torch.Tensor):
            self.kind = "torch"
            if data.dtype == torch.bool:
                data = data.to(torch.uint8) * 255
            if not (data.dtype == torch.uint8 or data.is_floating_point()):
                raise TypeError(f"{name}: expected uint8 or float values, got dtype {data.dtype}.")
            self.tensor = data.detach()
        else:
            raise TypeError(
                f"{name}: expected a NumPy array, a torch tensor or a PIL image, got {type(data).__name__}."
            )
        shape = tuple(self.tensor.shape)
        if channels is None:
            if len(shape) < 2:
                raise ValueError(f"{name}: a matte must have shape (..., H, W), got {shape}.")
            self.lead_shape, (self.height, self.width) = shape[:-2], shape[-2:]
        else:
            if len(shape) < 3 or shape[-1] != channels:
                raise ValueError(
                    f"{name}: expected an image of shape (..., H, W, {channels}) (channels last), got {shape}."
                )
            self.lead_shape, (self.height, self.width) = shape[:-3], shape[-3:-1]
        self.is_uint8 = self.tensor.dtype == torch.uint8
        self.device = device or self.tensor.device

    @property
    def spatial_shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def batch(self) -> int:
        return int(np.prod(self.lead_shape, dtype=np.int64)) if self.lead_shape else 1

    def read(self, start: int, stop: int) -> torch.Tensor:
        """Rows [start, stop) as float32 in [0, 1] on `self.device`: (..., C, rows, W) or (..., rows, W)."""
        if self.pil is not None:
            band = torch.from_numpy(np.array(self.pil.crop((0, start, self.width, stop))))
        elif self.channels is None:
            band = self.tensor[..., start:stop, :]
        else:
            band = self.tensor[..., start:stop, :, :]
        band = band.to(self.device, non_blocking=True)
        band = band.to(torch.float32).div_(255.0) if band.dtype == torch.uint8 else band.to(torch.float32)
        if self.channels is not None:
            band = band.movedim(-1, -3)
        return band

    def read_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Arbitrary (e.g. clamped, repeated) rows, like `read`; `rows` is a 1-D index tensor."""
        first, last = int(rows.min()), int(rows.max()) + 1
        band = self.read(first, last)
        return band.index_select(-2, (rows - first).to(band.device))

    def new_output(self, channels: int | None, float_output: bool | None = None) -> np.ndarray | torch.Tensor:
        """An uninitialised full-size output of the input's kind (NumPy for NumPy / PIL inputs)."""
        shape = self.lead_shape + (self.height, self.width) + ((channels,) if channels else ())
        float_output = (not self.is_uint8) if float_output is None else float_output
        if self.kind == "torch":
            return torch.empty(shape, dtype=torch.float32 if float_output else torch.uint8, device=self.device)
        return np.empty(shape, dtype=np.float32 if float_output else np.uint8)


def _write_rows(
    output: np.ndarray | torch.Tensor, start: int, stop: int, values: torch.Tensor, channels_last: bool
) -> None:
    """Store float values in [0, 1] into output rows [start, stop): (..., C, rows, W) values into a channels-last
    (..., H, W, C) output when `channels_last`, else (..., rows, W) values into an (..., H, W) output."""
    if channels_last:
        values = values.movedim(-3, -1)
    is_uint8 = output.dtype in (np.uint8, torch.uint8)
    if is_uint8:
        values = values.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    if channels_last:
        target = output[..., start:stop, :, :]
    else:
        target = output[..., start:stop, :]
    if isinstance(output, np.ndarray):
        target[...] = values.cpu().numpy()
    else:
        target.copy_(values)


def _row_bands(height: int, width: int, batch: int, chunk_pixels: int) -> Iterator[tuple[int, int]]:
    rows = max(1, int(chunk_pixels) // max(1, width * batch))
    for start in range(0, height, rows):
        yield start, min(height, start + rows)


def _check_same_size(first: _Planes, second: _Planes) -> None:
    if first.spatial_shape != second.spatial_shape or first.lead_shape != second.lead_shape:
        raise ValueError(
            f"{first.name} has size {first.lead_shape + first.spatial_shape} but {second.name} has size "
            f"{second.lead_shape + second.spatial_shape}; they must match."
        )


def _to_pil(array: np.ndarray, mode: str) -> PIL.Image.Image:
    return PIL.Image.fromarray(np.ascontiguousarray(array), mode=mode)


# ---------------------------------------------------------------------------------------------------------------
# Box blur by cumulative sums
# ---------------------------------------------------------------------------------------------------------------


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    # Cumulative sums along a 12000-pixel row reach ~1e4: float64 keeps window sums exact to ~1e-12 (MPS has no
    # float64; float32 there is accurate to ~1e-3 of a window sum).
    return torch.float32 if device.type == "mps" else torch.float64


def _window_bounds(
    positions: torch.Tensor, kernel_size: int, length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive start and exclusive end of each position's window, clipped to [0, length)."""
    before = kernel_size // 2  # OpenCV's anchor for cv2.blur: centred, one more pixel before for even sizes
    after = kernel_size - 1 - before
    return (positions - before).clamp(min=0), (positions + after + 1).clamp(max=length)


def _window_sums(cumulative: torch.Tensor, start: torch.Tensor, stop: torch.Tensor, dim: int) -> torch.Tensor:
    """sum(x[start:stop]) along `dim` from the inclusive cumulative sum of x (prefix at index -1 is 0)."""
    upper = cumulative.index_select(dim, stop - 1)
    lower = cumulative.index_select(dim, (start - 1).clamp(min=0))
    shape = [1] * cumulative.ndim
    shape[dim] = -1
    return upper.sub_(lower.mul_((start > 0).to(lower.dtype).view(shape)))


def _box_mean_rows(
    x: torch.Tensor,
    x_start: int,
    height: int,
    kernel_size: int,
    start: int,
    stop: int,
    backend: str | None = None,
) -> torch.Tensor:
    """Mean of `x` over kernel_size x kernel_size windows for image rows [start, stop), counting only pixels inside
    the image (like `avg_pool2d(count_include_pad=False)`).

    `x` (..., h, W) holds image rows [x_start, x_start + h) of an image `height` rows high; it must cover every row
    the windows of [start, stop) read. On the CPU each plane goes through OpenCV's box filter (running sums; ~20x
    faster than cumulative sums in torch there) with zero padding, and the strips along the image border are
    rescaled to in-image counts; elsewhere (CUDA, ...) the planes are summed with float64 cumulative sums, one
    plane at a time (temporaries: two float64 copies of an (h, W) plane). `backend` ("opencv" / "cumsum")
    overrides that choice (OpenCV needs CPU tensors).
    """
    device = x.device
    rows = torch.arange(start, stop)
    top, bottom = _window_bounds(rows, kernel_size, height)
    top, bottom = top - x_start, bottom - x_start
    if len(rows) and (int(top.min()) < 0 or int(bottom.max()) > x.shape[-2]):
        raise ValueError("internal error: the row band does not cover the blur windows")
    width = x.shape[-1]
    left, right = _window_bounds(torch.arange(width), kernel_size, width)
    planes = x.reshape(-1, x.shape[-2], width)
    if backend not in (None, "opencv", "cumsum"):
        raise ValueError(f"backend must be 'opencv' or 'cumsum', got {backend!r}.")
    if (backend or ("opencv" if device.type == "cpu" else "cumsum")) == "opencv":
        import cv2

        result = torch.empty(planes.shape, dtype=torch.float32)
        for index in range(planes.shape[0]):
            plane = planes[index].to(torch.float32).contiguous()
            cv2.boxFilter(
                plane.numpy(),
                -1,
                (kernel_size, kernel_size),
                dst=result[index].numpy(),
                normalize=True,
                borderType=cv2.BORDER_CONSTANT,
            )
        result = result[:, start - x_start : stop - x_start]
        # normalize=True divided every sum by kernel_size**2; windows cut by the image border hold fewer pixels.
        row_scale = kernel_size / (bottom - top).to(torch.float32)
        column_scale = kernel_size / (right - left).to(torch.float32)
        for scale, dim in ((row_scale, 1), (column_scale, 2)):
            (cut,) = torch.nonzero(scale != 1.0, as_tuple=True)
            if len(cut):
                shape = [1, 1, 1]
                shape[dim] = -1
                selected = result.index_select(dim, cut).mul_(scale[cut].view(shape))
                result.index_copy_(dim, cut, selected)
    else:
        accumulator = _accumulator_dtype(device)
        top, bottom, left, right = (t.to(device) for t in (top, bottom, left, right))
        counts = (bottom - top).to(torch.float32)[:, None] * (right - left).to(torch.float32)[None, :]
        result = torch.empty((planes.shape[0], stop - start, width), dtype=torch.float32, device=device)
        for index in range(planes.shape[0]):
            vertical = _window_sums(planes[index].to(accumulator, copy=True).cumsum_(0), top, bottom, 0)
            result[index] = _window_sums(vertical.cumsum_(1), left, right, 1).to(torch.float32)
        result.div_(counts)
    return result.reshape(*x.shape[:-2], stop - start, width)


def box_mean(x: torch.Tensor | np.ndarray, kernel_size: int) -> torch.Tensor | np.ndarray:
    """Box blur (mean over kernel_size x kernel_size windows) over the last two dimensions of `x`.

    Windows are anchored like OpenCV's `cv2.blur` (centred; for even sizes one more pixel before than after) and
    only pixels inside the image are averaged (no border extrapolation). Computed with cumulative sums, so the cost
    does not depend on `kernel_size`; runs on `x`'s device. Returns float32 of `x`'s kind.
    """
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be at least 1, got {kernel_size}.")
    tensor = torch.from_numpy(np.asarray(x)) if isinstance(x, np.ndarray) else x
    height = tensor.shape[-2]
    result = _box_mean_rows(tensor.to(torch.float32), 0, height, kernel_size, 0, height)
    return result.numpy() if isinstance(x, np.ndarray) else result


# ---------------------------------------------------------------------------------------------------------------
# Blur-fusion foreground estimation
# ---------------------------------------------------------------------------------------------------------------


def _blur_fusion_step(
    image: torch.Tensor,
    foreground: torch.Tensor,
    background: torch.Tensor,
    alpha: torch.Tensor,
    band_start: int,
    height: int,
    kernel_size: int,
    start: int,
    stop: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One blur-fusion step for image rows [start, stop), given bands starting at image row `band_start`.

    With box means M: F_hat = M(F a) / M(a), B_hat = M(B (1 - a)) / M(1 - a), and the pixel's foreground colour is
    F_hat corrected along the compositing equation I = a F + (1 - a) B:
    F = clip(F_hat + a (I - a F_hat - (1 - a) B_hat), 0, 1). Returns (F, B_hat) for rows [start, stop).
    """
    mean_alpha = _box_mean_rows(alpha, band_start, height, kernel_size, start, stop)
    mean_fg = _box_mean_rows(foreground * alpha, band_start, height, kernel_size, start, stop)
    if background is image:
        # First step (F = B = I): M(I (1 - a)) = M(I) - M(I a) saves a product.
        mean_bg = _box_mean_rows(image, band_start, height, kernel_size, start, stop).sub_(mean_fg)
    else:
        mean_bg = _box_mean_rows(background * (1.0 - alpha), band_start, height, kernel_size, start, stop)
    fg_hat = mean_fg.mul_(mean_alpha.add(_BLUR_FUSION_EPSILON).reciprocal_())
    bg_hat = mean_bg.mul_(mean_alpha.neg_().add_(1.0 + _BLUR_FUSION_EPSILON).reciprocal_())
    rows = slice(start - band_start, stop - band_start)
    local_image, local_alpha = image[..., rows, :], alpha[..., rows, :]
    # F_hat + a (I - a F_hat - (1 - a) B_hat) = (1 - a^2) F_hat + a I - a (1 - a) B_hat, with per-pixel factors.
    background_factor = local_alpha * (local_alpha - 1.0)
    foreground_factor = (1.0 - local_alpha.square())
    estimate = fg_hat * foreground_factor
    estimate.addcmul_(local_image, local_alpha).addcmul_(bg_hat, background_factor)
    return estimate.clamp_(0.0, 1.0), bg_hat


def estimate_foreground(
    image: ImageLike,
    alpha: ImageLike,
    *,
    kernel_sizes: Sequence[int] = BLUR_FUSION_KERNEL_SIZES,
    device: str | torch.device | None = None,
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
    out: np.ndarray | torch.Tensor | None = None,
) -> np.ndarray | torch.Tensor:
    """Estimate the foreground colours of a photo from its matte with blur fusion (Forte & Pitie 2021).

    In a soft edge the photo's colour is a mix `I = a F + (1 - a) B` of the object's colour F and the background's
    B; a naive cut-out keeps I, so hair and fuzzy edges carry a fringe of the old background. Blur fusion estimates F
    (and B) locally from box-blurred, alpha-weighted colours and corrects it along the compositing equation, once
    with a wide kernel and once more with a narrow one starting from the first estimate (see `_blur_fusion_step`).
    Use the result as the RGB of an RGBA cut-out or composite it on a new background.

    Args:
        image: the photo, (..., H, W, 3) uint8 or float in [0, 1] (NumPy / torch / "RGB" PIL).
        alpha: its matte, (..., H, W) uint8 or float in [0, 1] (NumPy / torch / "L" PIL), same size.
        kernel_sizes: box-blur sizes of the successive steps (default (90, 6), as the authors use).
        device: where to compute (default: the image tensor's device; the CPU for NumPy / PIL inputs).
        chunk_pixels: output pixels per row band. Each band is computed with the rows its windows need
            (sum of the kernel sizes, 96 more by default): the temporaries are about 120 bytes per pixel of
            (band rows + 96) x width x batch (float32 planes plus two float64 planes for the cumulative sums), i.e.
            ~190 MB for a 12000-pixel-wide photo at the default 2**20; the result is the only full-size allocation.
        out: optional pre-allocated output (..., H, W, 3) (e.g. the RGB view of an RGBA buffer).

    Returns:
        The estimated foreground colours, (..., H, W, 3), of the image's kind (NumPy for NumPy / PIL inputs, torch
        on the input's device for tensors), uint8 for uint8 / PIL images, float32 otherwise.
    """
    if not kernel_sizes or any(int(k) < 1 for k in kernel_sizes):
        raise ValueError(f"kernel_sizes must be positive integers, got {kernel_sizes}.")
    device = torch.device(device) if device is not None else None
    image_planes = _Planes(image, "image", 3, device)
    alpha_planes = _Planes(alpha, "alpha", None, image_planes.device)
    _check_same_size(image_planes, alpha_planes)
    height, width = image_planes.spatial_shape
    if out is None:
        out = image_planes.new_output(3)
    halos = [(k // 2, k - 1 - k // 2) for k in kernel_sizes]
    for start, stop in _row_bands(height, width, image_planes.batch, chunk_pixels):
        # Step s needs rows [start, stop) widened by the halos of steps s+1, ...; the input band by all of them.
        ranges = [(start, stop)]
        for before, after in reversed(halos[1:]):
            first, last = ranges[0]
            ranges.insert(0, (max(0, first - before), min(height, last + after)))
        band_first = max(0, ranges[0][0] - halos[0][0])
        band_last = min(height, ranges[0][1] + halos[0][1])
        rgb = image_planes.read(band_first, band_last)
        matte = alpha_planes.read(band_first, band_last).unsqueeze(-3)
        foreground, background = rgb, rgb
        offset = band_first
        for kernel_size, (first, last) in zip(kernel_sizes, ranges, strict=True):
            foreground, background = _blur_fusion_step(
                rgb, foreground, background, matte, offset, height, int(kernel_size), first, last
            )
            # Later steps read the previous estimates, which cover rows [first, last) only.
            rgb = rgb[..., first - offset : last - offset, :]
            matte = matte[..., first - offset : last - offset, :]
            offset = first
        _write_rows(out, start, stop, foreground, True)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Matte post-processing
# ---------------------------------------------------------------------------------------------------------------


def _filter_matte(
    matte: _Planes, halo: int, function: Callable[[torch.Tensor], torch.Tensor], chunk_pixels: int
) -> np.ndarray | torch.Tensor:
    """Apply `function` to row bands widened by `halo` rows (edge rows repeated); it returns the band's rows."""
    height, width = matte.spatial_shape
    output = matte.new_output(None)
    for start, stop in _row_bands(height, width, matte.batch, chunk_pixels):
        rows = torch.arange(start - halo, stop + halo).clamp_(0, height - 1)
        band = matte.read_rows(rows)
        flat = band.reshape(-1, 1, band.shape[-2], width)
        result = function(flat).reshape(*band.shape[:-2], stop - start, width)
        _write_rows(output, start, stop, result, False)
    return output


def _max_filter(band: torch.Tensor, radius: int) -> torch.Tensor:
    """Maximum over (2 radius + 1)^2 squares; `band` (N, 1, h + 2 radius, W) already has `radius` halo rows."""
    size = 2 * radius + 1
    band = F.max_pool2d(band, kernel_size=(size, 1), stride=1)
    return F.max_pool2d(band, kernel_size=(1, size), stride=1, padding=(0, radius))


def _gaussian_kernel(radius: int, device: torch.device) -> torch.Tensor:
    sigma = radius / 3.0
    positions = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    kernel = torch.exp(-0.5 * (positions / sigma) ** 2)
    return kernel / kernel.sum()


def _gaussian_filter(band: torch.Tensor, radius: int) -> torch.Tensor:
    kernel = _gaussian_kernel(radius, band.device)
    band = F.conv2d(band, kernel.view(1, 1, -1, 1))
    band = F.pad(band, (radius, radius, 0, 0), mode="replicate")
    return F.conv2d(band, kernel.view(1, 1, 1, -1))


def postprocess_matte(
    matte: ImageLike,
    *,
    threshold: float | None = None,
    dilate: int = 0,
    erode: int = 0,
    feather: int = 0,
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
) -> np.ndarray | torch.Tensor | PIL.Image.Image:
    """Clean up a matte, in this order: threshold, dilate, erode, feather.

    Args:
        matte: (..., H, W) uint8 / float in [0, 1] (NumPy, torch on any device, or an "L" PIL image).
        threshold: binarise first: foreground (1 / 255) where the matte exceeds `threshold` (in [0, 1)), else 0.
        dilate: grow the foreground by this many pixels (grey-level maximum over a (2 d + 1)^2 square).
        erode: shrink it by this many pixels (minimum over a (2 e + 1)^2 square); dilate then erode closes holes
            and gaps narrower than about 2 d pixels.
        feather: soften the edge over about this many pixels on each side (Gaussian blur with sigma = feather / 3,
            truncated at `feather` pixels).
        chunk_pixels: pixels per row band; each step costs one full-size output of the matte's dtype plus
            float32 temporaries of a few times (band rows + 2 x radius) x width.

    Returns:
        The processed matte, of the input's kind and dtype (PIL "L" for PIL input).
    """
    if threshold is not None and not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}.")
    for name, value in (("dilate", dilate), ("erode", erode), ("feather", feather)):
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative number of pixels, got {value}.")
    is_pil = isinstance(matte, PIL.Image.Image)
    result: Any = matte
    if threshold is not None:
        limit = float(threshold)
        result = _filter_matte(
            _Planes(result, "matte", None), 0, lambda band: (band > limit).to(band.dtype), chunk_pixels
        )
    if dilate:
        radius = int(dilate)
        result = _filter_matte(
            _Planes(result, "matte", None), radius, lambda band: _max_filter(band, radius), chunk_pixels
        )
    if erode:
        radius = int(erode)
        result = _filter_matte(
            _Planes(result, "matte", None), radius, lambda band: -_max_filter(-band, radius), chunk_pixels
        )
    if feather:
        radius = int(feather)
        result = _filter_matte(
            _Planes(result, "matte", None), radius, lambda band: _gaussian_filter(band, radius), chunk_pixels
        )
    if result is matte:
        return matte
    return _to_pil(result, "L") if is_pil else result


# ---------------------------------------------------------------------------------------------------------------
# Alpha matting (pymatting) in the unknown band of a trimap
# ---------------------------------------------------------------------------------------------------------------


def make_trimap(
    matte: np.ndarray, foreground_threshold: int = 240, background_threshold: int = 10, erode: int = 10
) -> np.ndarray:
    """A trimap (uint8: 255 foreground, 0 background, 128 unknown) from an 8-bit matte (H, W).

    Sure foreground: matte >= `foreground_threshold`; sure background: matte <= `background_threshold`; both are
    eroded by `erode` pixels (square), so the unknown band covers the soft edge and `erode` pixels either side.
    """
    matte = np.asarray(matte)
    if matte.ndim != 2 or matte.dtype != np.uint8:
        raise ValueError(f"make_trimap expects an 8-bit (H, W) matte, got {matte.dtype} {matte.shape}.")
    if not 0 <= background_threshold < foreground_threshold <= 255:
        raise ValueError(
            f"Need 0 <= background_threshold < foreground_threshold <= 255, got {background_threshold} and "
            f"{foreground_threshold}."
        )
    sure_fg = (matte >= foreground_threshold).astype(np.uint8) * np.uint8(255)
    sure_bg = (matte <= background_threshold).astype(np.uint8) * np.uint8(255)
    if erode:
        sure_fg = postprocess_matte(sure_fg, erode=erode)
        sure_bg = postprocess_matte(sure_bg, erode=erode)
    trimap = np.full(matte.shape, 128, dtype=np.uint8)
    trimap[sure_fg == 255] = 255
    trimap[sure_bg == 255] = 0
    return trimap


def import_pymatting() -> Any:
    """Import `pymatting` or raise an ImportError that says how to install it."""
    try:
        import pymatting
    except ImportError as error:
        raise ImportError(
            "Alpha matting needs the `pymatting` package: pip install 'birefnet-hf[matting]' (or pip install "
            "pymatting)."
        ) from error
    return pymatting


def refine_alpha_matting(
    image: ImageLike,
    matte: np.ndarray | PIL.Image.Image,
    *,
    foreground_threshold: int = 240,
    background_threshold: int = 10,
    erode: int = 10,
    tile_size: int = 384,
    margin: int = 32,
    progress: bool = False,
) -> np.ndarray | PIL.Image.Image:
    """Refine a matte with closed-form alpha matting (Levin et al. 2008, `pymatting.estimate_alpha_cf`) in the
    unknown band of a trimap built by [`make_trimap`]; sure foreground becomes 255 and sure background 0.

    The image is solved in `tile_size` tiles (each with `margin` pixels of context on every side) and only tiles
    that hold unknown pixels are solved, so memory is bounded by one tile: pymatting's Laplacian costs about
    81 x 16 bytes per pixel, ~270 MB for the default (384 + 64)^2 tile. Tiles whose context has no sure
    foreground or no sure background keep the original matte (the problem has no anchor there).

    Args:
        image: the photo (H, W, 3), uint8 or float in [0, 1] (NumPy / CPU torch / PIL).
        matte: the 8-bit matte (H, W) (NumPy or "L" PIL image).
        foreground_threshold, background_threshold, erode: see [`make_trimap`].
        tile_size, margin: the tiling (pixels).
        progress: show a progress bar over the tiles.

    Returns:
        The refined matte: uint8 NumPy (H, W), or an "L" PIL image for PIL input.
    """
    pymatting = import_pymatting()
    is_pil = isinstance(matte, PIL.Image.Image)
    matte_array = np.asarray(matte)
    if matte_array.dtype != np.uint8 or matte_array.ndim != 2:
        raise ValueError(f"matte: expected an 8-bit (H, W) matte, got {matte_array.dtype} {matte_array.shape}.")
    if tile_size < 16 or margin < 0:
        raise ValueError(f"tile_size must be at least 16 and margin non-negative, got {tile_size}, {margin}.")
    image_planes = _Planes(image, "image", 3, torch.device("cpu"))
    if image_planes.lead_shape or image_planes.spatial_shape != matte_array.shape:
        raise ValueError(
            f"image has size {image_planes.lead_shape + image_planes.spatial_shape} but the matte has size "
            f"{matte_array.shape}; they must match."
        )
    trimap = make_trimap(matte_array, foreground_threshold, background_threshold, erode)
    refined = trimap.copy()
    height, width = matte_array.shape
    tiles = [(top, left) for top in range(0, height, tile_size) for left in range(0, width, tile_size)]
    tiles = [
        (top, left)
        for top, left in tiles
        if (trimap[top : top + tile_size, left : left + tile_size] == 128).any()
    ]
    for top, left in tqdm(tiles, desc="alpha matting", unit="tile", disable=not progress):
        bottom, right = min(height, top + tile_size), min(width, left + tile_size)
        y0, y1 = max(0, top - margin), min(height, bottom + margin)
        x0, x1 = max(0, left - margin), min(width, right + margin)
        local_trimap = trimap[y0:y1, x0:x1]
        inner = (slice(top - y0, bottom - y0), slice(left - x0, right - x0))
        if not ((local_trimap == 255).any() and (local_trimap == 0).any()):
            unknown = trimap[top:bottom, left:right] == 128
            refined[top:bottom, left:right][unknown] = matte_array[top:bottom, left:right][unknown]
            continue
        rgb = image_planes.read(y0, y1)[..., x0:x1].movedim(0, -1).to(torch.float64).numpy()
        alpha = pymatting.estimate_alpha_cf(rgb, local_trimap.astype(np.float64) / 255.0)
        refined[top:bottom, left:right] = np.rint(np.clip(alpha[inner], 0.0, 1.0) * 255.0).astype(np.uint8)
    return _to_pil(refined, "L") if is_pil else refined


# ---------------------------------------------------------------------------------------------------------------
# Backgrounds and compositing
# ---------------------------------------------------------------------------------------------------------------


def parse_background(spec: str, *, files: bool = True) -> Color | str | Path:
    """Parse a `--background` value: "blur", a colour ("white", "#RRGGBB", "#RGB", any CSS name known to
    Pillow, "rgb(r, g, b)") or the path of an image file.

    `files=False` (a server reading its clients' values) never looks at the file system: only "blur" and colours.

    Returns an (r, g, b) tuple, the string "blur", or the `Path` of an existing file.

    Raises:
        `ValueError` naming the value when it is none of these.
    """
    text = spec.strip()
    if text.lower() == "blur":
        return "blur"
    if files and os.path.isfile(text):
        return Path(text)
    try:
        color = PIL.ImageColor.getrgb(text)
    except ValueError:
        accepted = "a colour (white, #RRGGBB, ...)" + (" or an existing image file" if files else "")
        raise ValueError(f"background {spec!r} is not 'blur', {accepted}.") from None
    return tuple(int(c) for c in color[:3])  # type: ignore[return-value]


def blurred_background(image: PIL.Image.Image, working_side: int = 256, radius: float = 8.0) -> PIL.Image.Image:
    """A blurred copy of the photo for `composite(..., background=...)`, kept small: the photo is reduced so its
    longest side is `working_side`, blurred (Gaussian, `radius` pixels at that size) and returned small;
    [`composite`] enlarges it band by band. Cost: one small image, whatever the photo's size."""
    image = image.convert("RGB") if image.mode != "RGB" else image
    scale = working_side / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, PIL.Image.BILINEAR, reducing_gap=2.0)
    return image.filter(PIL.ImageFilter.GaussianBlur(radius))


def _cover_background(background: ImageLike, height: int, width: int) -> _Planes:
    """The background scaled to cover (height, width) and centred; large ones are reduced here with PIL (one
    output-size copy), smaller ones are enlarged band by band in `_background_rows`."""
    if not isinstance(background, PIL.Image.Image):
        array = background.detach().cpu().numpy() if isinstance(background, torch.Tensor) else background
        array = np.asarray(array)
        if array.dtype != np.uint8:
            array = np.rint(np.clip(array, 0, 1) * 255).astype(np.uint8)
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=2)
        if array.ndim != 3 or array.shape[-1] not in (3, 4):
            raise ValueError(f"background: expected an (H, W, 3) image, got shape {array.shape}.")
        background = PIL.Image.fromarray(np.ascontiguousarray(array[..., :3]), mode="RGB")
    background = background.convert("RGB") if background.mode != "RGB" else background
    scale = max(height / background.height, width / background.width)
    crop_width, crop_height = width / scale, height / scale
    left, top = (background.width - crop_width) / 2, (background.height - crop_height) / 2
    if scale < 1:
        background = background.resize(
            (width, height),
            PIL.Image.LANCZOS,
            box=(left, top, left + crop_width, top + crop_height),
            reducing_gap=3.0,
        )
    else:
        box = (math.floor(left), math.floor(top), math.ceil(left + crop_width), math.ceil(top + crop_height))
        background = background.crop(box)
    return _Planes(background, "background", 3)


def _resize_taps(source: int, target: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear taps with half-pixel centres (align_corners=False) from `source` to `target` samples."""
    position = (torch.arange(target, device=device, dtype=torch.float32) + 0.5) * (source / target) - 0.5
    position = position.clamp_(0, source - 1)
    index0 = position.floor().to(torch.long)
    index1 = (index0 + 1).clamp_(max=source - 1)
    return index0, index1, position - index0


def _background_rows(background: _Planes, height: int, width: int, start: int, stop: int) -> torch.Tensor:
    """Rows [start, stop) of the background enlarged to (height, width): float (3, rows, W)."""
    if background.spatial_shape == (height, width):
        return background.read(start, stop)
    y0, y1, wy = _resize_taps(background.height, height, torch.device("cpu"))
    x0, x1, wx = _resize_taps(background.width, width, background.device)
    y0, y1, wy = y0[start:stop], y1[start:stop], wy[start:stop].to(background.device)
    source = background.read_rows(torch.cat([y0, y1]))
    rows = stop - start
    top, bottom = source[:, :rows], source[:, rows:]
    mixed = top + (bottom - top) * wy[:, None]
    left, right = mixed.index_select(-1, x0), mixed.index_select(-1, x1)
    return left.add_((right - left).mul_(wx))


def composite(
    foreground: ImageLike,
    alpha: ImageLike,
    background: Color | ImageLike,
    *,
    device: str | torch.device | None = None,
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
) -> np.ndarray | torch.Tensor:
    """Composite a cut-out onto a new background: `a F + (1 - a) B`, a few rows at a time.

    Args:
        foreground: the foreground colours (H, W, 3) (the photo, or better [`estimate_foreground`]'s output).
        alpha: the matte (H, W).
        background: an (r, g, b) colour (0..255), or an image of any size (NumPy / torch / PIL; e.g.
            [`blurred_background`]): scaled to cover the photo and centred (smaller backgrounds are enlarged
            bilinearly band by band; larger ones are reduced once with PIL, an extra output-size image).
        device: where to compute (default: the foreground tensor's device; the CPU for NumPy / PIL inputs).
        chunk_pixels: pixels per row band (temporaries: a few float32 copies of a band).

    Returns:
        The composite (H, W, 3) of `foreground`'s kind, uint8 for uint8 / PIL foregrounds, float32 otherwise.
    """
    fg = _Planes(foreground, "foreground", 3, torch.device(device) if device is not None else None)
    matte = _Planes(alpha, "alpha", None, fg.device)
    _check_same_size(fg, matte)
    height, width = fg.spatial_shape
    if isinstance(background, tuple):
        if len(background) != 3 or not all(0 <= int(c) <= 255 for c in background):
            raise ValueError(f"background colour must be (r, g, b) in 0..255, got {background}.")
        color = torch.tensor([c / 255.0 for c in background], device=fg.device).view(3, 1, 1)
        bg = None
    else:
        if fg.lead_shape:
            raise ValueError("An image background needs a single (H, W, 3) foreground, not a batch.")
        bg = _cover_background(background, height, width)
        bg.device = fg.device
    output = fg.new_output(3)
    for start, stop in _row_bands(height, width, fg.batch, chunk_pixels):
        a = matte.read(start, stop).unsqueeze(-3)
        back = color if bg is None else _background_rows(bg, height, width, start, stop)
        mixed = fg.read(start, stop).sub_(back).mul_(a).add_(back)
        _write_rows(output, start, stop, mixed, True)
    return output


def cutout_rgba(
    image: ImageLike,
    alpha: ImageLike,
    *,
    refine_foreground: bool = True,
    kernel_sizes: Sequence[int] = BLUR_FUSION_KERNEL_SIZES,
    device: str | torch.device | None = None,
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
) -> np.ndarray | torch.Tensor:
    """An RGBA cut-out (..., H, W, 4), uint8: the estimated foreground colours ([`estimate_foreground`], or the
    photo's own colours with `refine_foreground=False`) and the matte as alpha.

    Written into one (H, W, 4) buffer (the only full-size allocation; 400 MB at 100 megapixels). NumPy for NumPy /
    PIL inputs, torch on the input's device for tensors; `device` as in [`estimate_foreground`].
    """
    image_planes = _Planes(image, "image", 3, torch.device(device) if device is not None else None)
    alpha_planes = _Planes(alpha, "alpha", None, image_planes.device)
    _check_same_size(image_planes, alpha_planes)
    height, width = image_planes.spatial_shape
    output = image_planes.new_output(4, float_output=False)
    if refine_foreground:
        estimate_foreground(
            image,
            alpha,
            kernel_sizes=kernel_sizes,
            device=image_planes.device,
            chunk_pixels=chunk_pixels,
            out=output[..., :3],
        )
    for start, stop in _row_bands(height, width, image_planes.batch, chunk_pixels):
        if not refine_foreground:
            _write_rows(output[..., :3], start, stop, image_planes.read(start, stop), True)
        _write_rows(output[..., 3], start, stop, alpha_planes.read(start, stop), False)
    return output


# ---------------------------------------------------------------------------------------------------------------
# Output size
# ---------------------------------------------------------------------------------------------------------------


def fit_max_side(image: PIL.Image.Image, max_side: int | None) -> PIL.Image.Image:
    """Downscale `image` (Lanczos) so that its longest side is at most `max_side`; unchanged (same object) when it
    already fits or `max_side` is None. Never enlarges."""
    if max_side is None:
        return image
    if int(max_side) != max_side or max_side < 1:
        raise ValueError(f"max_side must be a positive integer, got {max_side}.")
    longest = max(image.size)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, PIL.Image.LANCZOS, reducing_gap=3.0)


# ---------------------------------------------------------------------------------------------------------------
# Two-stage segmentation of very large photos: full-resolution crops around the boundary
# ---------------------------------------------------------------------------------------------------------------


def crop_grid(length: int, crop: int, overlap: float) -> tuple[list[int], np.ndarray]:
    """Crop starts along one axis and their blending weights.

    Crops of `crop` samples (or `length` if shorter) start at evenly spaced positions from 0 to `length - crop`,
    neighbours overlapping by at least `overlap * crop`. Each crop's raw weight ramps up linearly over `overlap *
    crop` samples from its inner edges (not at the image border); weights are then divided by their sum at each
    position, so they form a partition of unity: `weights[:, x].sum() == 1` for every x.

    Returns:
        (starts, weights) with weights of shape (len(starts), length), float32.
    """
    crop = min(crop, length)
    if length <= crop:
        return [0], np.ones((1, length), dtype=np.float32)
    stride = max(1.0, crop * (1.0 - overlap))
    count = math.ceil((length - crop) / stride) + 1
    starts = [round(i * (length - crop) / (count - 1)) for i in range(count)]
    ramp = max(1.0, overlap * crop)
    positions = np.arange(length, dtype=np.float64)
    weights = np.zeros((count, length), dtype=np.float64)
    for index, start in enumerate(starts):
        rising = (positions - start + 0.5) / ramp if index > 0 else np.full(length, np.inf)
        falling = (start + crop - positions - 0.5) / ramp if index < count - 1 else np.full(length, np.inf)
        weight = np.minimum(1.0, np.minimum(rising, falling))
        inside = (positions >= start) & (positions < start + crop)
        weights[index] = np.where(inside, np.maximum(weight, 0.0), 0.0)
    weights /= weights.sum(axis=0, keepdims=True)
    return starts, weights.astype(np.float32)


def crop_count(height: int, width: int, crop_size: int, overlap: float = 0.25) -> int:
    """How many crops [`refine_matte_in_crops`] (same `overlap` default) tiles a `height` x `width` photo with: an
    upper bound of the crops it segments again (only those holding an edge are)."""
    return len(crop_grid(height, crop_size, overlap)[0]) * len(crop_grid(width, crop_size, overlap)[0])


def refine_matte_in_crops(
    image: PIL.Image.Image,
    matte: np.ndarray,
    predict: Callable[[list[PIL.Image.Image]], Sequence[np.ndarray]],
    crop_size: int,
    *,
    overlap: float = 0.25,
    uncertain: tuple[int, int] = (8, 247),
    batch_size: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Re-segment a large photo's boundary at full resolution and blend it into the coarse matte.

    A model that sees a 12000x8000 photo at 1024x1024 locates the object well but its edges are ~10 photo pixels
    wide. This second stage tiles the photo with `crop_size` crops (overlapping by `overlap`, see [`crop_grid`]),
    runs `predict` on the crops whose coarse matte holds an edge (a value inside `uncertain`, or both foreground and
    background), and blends: `result = coarse + sum_i w_i (m_i - coarse)` with the crops' partition-of-unity
    weights, so neighbouring crops cross-fade, and a crop that was not re-run leaves its share to the coarse matte.

    Crop rows are processed in order and finished rows are written out, so the extra memory is one float32 band of
    about `crop_size` x width pixels plus one crop row's mattes (8-bit).

    Args:
        image: the full-size "RGB" photo.
        matte: its coarse 8-bit matte (H, W) (e.g. the model at its own resolution, resized).
        predict: maps a list of RGB crops to their 8-bit mattes (each (h, w) like its crop).
        crop_size: crop side in photo pixels (typically the model's input size, so crops are seen 1:1).
        overlap: fraction of a crop shared with each neighbour (0 < overlap <= 0.5).
        uncertain: (low, high): coarse values strictly between them count as edge.
        batch_size: crops per `predict` call.
        progress: show a progress bar over the crops that are re-run.

    Returns:
        The refined 8-bit matte (H, W), a new array.
    """
    matte = np.asarray(matte)
    if matte.dtype != np.uint8 or matte.shape != (image.height, image.width):
        raise ValueError(
            f"matte must be an 8-bit array of the photo's size {(image.height, image.width)}, got {matte.dtype} "
            f"{matte.shape}."
        )
    if crop_size < 32:
        raise ValueError(f"crop_size must be at least 32 pixels, got {crop_size}.")
    if not 0.0 < overlap <= 0.5:
        raise ValueError(f"overlap must be in (0, 0.5], got {overlap}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    height, width = matte.shape
    row_starts, row_weights = crop_grid(height, crop_size, overlap)
    column_starts, column_weights = crop_grid(width, crop_size, overlap)
    crop_height, crop_width = min(crop_size, height), min(crop_size, width)
    low, high = uncertain

    def has_edge(region: np.ndarray) -> bool:
        return bool(((region > low) & (region < high)).any() or (region.min() < 128 <= region.max()))

    selected = [
        [c for c, left in enumerate(column_starts) if has_edge(matte[top : top + crop_height, left : left + crop_width])]
        for top in row_starts
    ]
    total = sum(len(columns) for columns in selected)
    result = matte.copy()
    pending_start = 0  # first row not written yet; `pending` holds sum_i w_i (m_i - coarse) for the rows after it
    pending = np.zeros((0, width), dtype=np.float32)
    with tqdm(total=total, desc="refine crops", unit="crop", disable=not progress) as bar:
        for r, top in enumerate(row_starts):
            bottom = top + crop_height
            if bottom - pending_start > pending.shape[0]:
                extra = bottom - pending_start - pending.shape[0]
                pending = np.concatenate([pending, np.zeros((extra, width), dtype=np.float32)])
            columns = selected[r]
            for first in range(0, len(columns), batch_size):
                chunk = columns[first : first + batch_size]
                boxes = [(column_starts[c], top, column_starts[c] + crop_width, bottom) for c in chunk]
                crops = [image.crop(box) for box in boxes]
                mattes = predict(crops)
                for c, (left, _, right, _), crop_matte in zip(chunk, boxes, mattes, strict=True):
                    crop_matte = np.asarray(crop_matte)
                    if crop_matte.shape != (crop_height, crop_width):
                        raise ValueError(
                            f"predict returned a {crop_matte.shape} matte for a {(crop_height, crop_width)} crop."
                        )
                    weight = row_weights[r, top:bottom, None] * column_weights[c, None, left:right]
                    delta = crop_matte.astype(np.float32) - matte[top:bottom, left:right]
                    pending[top - pending_start : bottom - pending_start, left:right] += weight * delta
                bar.update(len(chunk))
            done = row_starts[r + 1] if r + 1 < len(row_starts) else height
            if done > pending_start:
                rows = slice(pending_start, done)
                refined = matte[rows].astype(np.float32) + pending[: done - pending_start]
                result[rows] = np.clip(np.rint(refined), 0, 255).astype(np.uint8)
                pending = pending[done - pending_start :]
                pending_start = done
    return result
