# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Background removal on real photos, the Python API: [`remove_background`], its [`BackgroundRemovalResult`] and
the PNG files `birefnet-hf segment` writes ([`write_image_atomically`], [`is_segment_output`]).

```python
from birefnet_hf import remove_background

result = remove_background("photo.jpg", model="path/to/birefnet")
result.cutout.save("photo.png")  # RGBA; result.matte is the soft alpha ("L")
```

Every image is segmented at the model resolution (1024x1024 by default) by the package's prediction driver
(`prediction.predict_mattes`) and its matte is resized bilinearly to the original size in row chunks, as 8-bit data,
so an 8000x6000 photo needs a 48 MB matte on top of the decoded photo (see `benchmarks/large_image.py`). The command
line around it is `segment.py`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import PIL.PngImagePlugin
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel
from transformers.utils import logging

from . import cutout as cutout_ops
from .atomic_io import atomic_file
from .cutout_options import MatteOptions, apply_matte_options
from .cutout_options import model_input_side as _model_side
from .image_processing_birefnet import to_rgb_image
from .modeling_birefnet import BiRefNetForImageSegmentation
from .pipelines import make_cutout
from .prediction import model_device_and_dtype as _model_device_and_dtype
from .prediction import predict_mattes

logger = logging.get_logger(__name__)

__all__ = [
    "BackgroundRemovalResult",
    "remove_background",
    "load_model_and_processor",
    "write_image_atomically",
    "is_segment_output",
    "OUTPUT_FORMATS",
    "OUTPUT_MARKER",
]

#: What `birefnet-hf segment --format` can write (always PNG).
OUTPUT_FORMATS = ("mask", "alpha", "rgba", "overlay", "fg")


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


@dataclass
class BackgroundRemovalResult:
    """What [`remove_background`] returns for one image.

    Attributes:
        image (`PIL.Image.Image`): the input as the model saw it: upright (EXIF applied), 8-bit RGB.
        matte (`PIL.Image.Image`): the soft foreground matte, mode "L", same size: `round(255 * p)` with `p` the
            foreground probability resized bilinearly to the image size.
    """

    image: PIL.Image.Image
    matte: PIL.Image.Image
    #: Estimate the foreground colours of soft edges (blur fusion, `cutout.estimate_foreground`) for `cutout`,
    #: `composite` and `foreground`; False keeps the photo's own (background-tinted) colours.
    refine_foreground: bool = True
    #: Where foreground estimation and compositing run (e.g. "cuda"; default: the CPU).
    device: str | torch.device | None = None

    @functools.cached_property
    def foreground(self) -> PIL.Image.Image:
        """The foreground colours ("RGB", computed once on access): blur-fusion estimates where the matte is soft
        (background colour removed from the edges), or `image` itself when `refine_foreground` is False."""
        if not self.refine_foreground:
            return self.image
        foreground = cutout_ops.estimate_foreground(self.image, self.matte, device=self.device)
        return PIL.Image.fromarray(foreground, mode="RGB")

    @property
    def cutout(self) -> PIL.Image.Image:
        """The RGBA cut-out: `foreground` with `matte` as alpha (computed on access)."""
        if not self.refine_foreground:
            return make_cutout(self.image, self.matte)
        # Estimate straight into the RGBA buffer unless `foreground` was computed already (one full-size copy less).
        known = "foreground" in self.__dict__
        rgba = cutout_ops.cutout_rgba(
            self.foreground if known else self.image,
            self.matte,
            refine_foreground=not known,
            device=self.device,
        )
        return PIL.Image.fromarray(rgba, mode="RGBA")

    def composite(self, background: Any) -> PIL.Image.Image:
        """The foreground on a new background ("RGB"): an (r, g, b) colour, a colour string ("white", "#RRGGBB"),
        "blur" (the photo itself, blurred), or an image / image file (scaled to cover the photo, centred)."""
        if isinstance(background, str):
            background = cutout_ops.parse_background(background)
        if isinstance(background, str) and background == "blur":
            background = cutout_ops.blurred_background(self.image)
        elif isinstance(background, (str, os.PathLike)):
            background = to_rgb_image(background)
        composite = cutout_ops.composite(self.foreground, self.matte, background, device=self.device)
        return PIL.Image.fromarray(composite, mode="RGB")

    def mask(self, threshold: float = 0.5) -> PIL.Image.Image:
        """Binary mask ("L", 0 or 255): 255 where the foreground probability exceeds `threshold`."""
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {threshold}.")
        return self.matte.point([255 if value > 255 * threshold else 0 for value in range(256)])

    def overlay(self, color: tuple[int, int, int] = (0, 255, 0), opacity: float = 0.5) -> PIL.Image.Image:
        """RGB preview: the image tinted with `color` in proportion to the matte (`opacity` at full foreground)."""
        tinted = PIL.Image.blend(self.image, PIL.Image.new("RGB", self.image.size, color), opacity)
        return PIL.Image.composite(tinted, self.image, self.matte)

    def render(self, output_format: str, threshold: float = 0.5, background: Any = None) -> PIL.Image.Image:
        """The image written by `birefnet-hf segment --format output_format [--background background]`."""
        if background is not None and output_format != "rgba":
            raise ValueError(f"A background applies to the 'rgba' format, not {output_format!r}.")
        if output_format == "mask":
            return self.mask(threshold)
        if output_format == "alpha":
            return self.matte
        if output_format == "rgba":
            return self.cutout if background is None else self.composite(background)
        if output_format == "fg":
            return self.foreground
        if output_format == "overlay":
            return self.overlay()
        raise ValueError(f"Unknown output format {output_format!r}; choose one of {OUTPUT_FORMATS}.")


# ---------------------------------------------------------------------------------------------------------------
# Model loading and inference
# ---------------------------------------------------------------------------------------------------------------


def _resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; choose one of {sorted(_DTYPES)}.")
    return _DTYPES[dtype]


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _size_from_resolution(resolution: int | Sequence[int] | dict | None) -> dict | None:
    if resolution is None or isinstance(resolution, dict):
        return resolution
    if isinstance(resolution, int):
        return {"height": resolution, "width": resolution}
    if len(resolution) == 2:
        return {"height": int(resolution[0]), "width": int(resolution[1])}
    raise ValueError(f"resolution must be an int, (height, width) or a size dict, got {resolution!r}.")


def load_model_and_processor(
    model: str | os.PathLike | PreTrainedModel,
    processor: Any | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> tuple[PreTrainedModel, Any]:
    """Load (or take) a BiRefNet model in eval mode on `device` / `dtype`, and its image processor.

    `model` is a folder or Hub id written by `save_pretrained` (or an authors' repository), or a loaded model. The
    processor comes from the model folder's `preprocessor_config.json` when there is one, else the released
    family's native size, else the paper's default (1024x1024): `families.native_image_processor`. It is the
    PIL backend: the authors' preprocessing value for value, and it resizes the decoded photo without copying it
    into an array first (the torchvision backend makes two transient 8-bit copies: 288 MB at 8000x6000).
    """
    torch_dtype = _resolve_dtype(dtype)
    device = torch.device(device) if device is not None else None
    source = None
    if isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        model = BiRefNetForImageSegmentation.from_pretrained(source, dtype=torch_dtype or torch.float32)
    elif not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a path, a Hub id or a loaded model, got {type(model).__name__}.")
    if device is not None or torch_dtype is not None:
        model = model.to(device=device, dtype=torch_dtype)
    model.eval()
    if processor is None:  # the repository's processor, else its released family's native size, else 1024
        from .families import native_image_processor

        processor = native_image_processor(source if source is not None else model, backend="pil")
    return model, processor


def _predict_mattes(
    model: torch.nn.Module, processor: Any, images: Sequence[PIL.Image.Image], size: dict | None
) -> list[PIL.Image.Image]:
    """Soft mattes ("L", input size) of RGB images through `prediction.predict_mattes` (one forward pass per model
    input size)."""
    return [PIL.Image.fromarray(matte, mode="L") for matte in predict_mattes(model, processor, images, size)]


def _batched(items: Sequence[Any], batch_size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def _finish_matte(
    model: torch.nn.Module,
    processor: Any,
    size: dict | None,
    image: PIL.Image.Image,
    matte: PIL.Image.Image,
    options: MatteOptions,
    progress: bool = False,
) -> PIL.Image.Image:
    """Apply `options` ([`MatteOptions`]) to one model matte (`cutout_options.apply_matte_options`)."""

    def predict(crops: list[PIL.Image.Image], crop_size: dict) -> list[np.ndarray]:
        return [np.asarray(m) for m in _predict_mattes(model, processor, crops, crop_size)]

    return apply_matte_options(
        image, matte, options, predict, _model_side(processor, size), progress=progress
    )


def remove_background(
    images: Any,
    model: str | os.PathLike | PreTrainedModel,
    *,
    processor: Any | None = None,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    resolution: int | Sequence[int] | dict | None = None,
    progress: bool = False,
    refine_foreground: bool = True,
    max_side: int | None = None,
    threshold: float | None = None,
    dilate: int = 0,
    erode: int = 0,
    feather: int = 0,
    alpha_matting: bool = False,
    refine_crops: bool = False,
    crop_size: int | None = None,
) -> BackgroundRemovalResult | list[BackgroundRemovalResult]:
    """Segment the foreground of photos with BiRefNet and return mattes and cut-outs.

    Args:
        images: one image or a list: file paths, PIL images (any mode; EXIF orientation applied), NumPy arrays
            or torch tensors (see `to_rgb_array`).
        model: a model folder / Hub id (loaded with its `preprocessor_config.json`) or a loaded model (which is
            put in eval mode, and moved only when `device` / `dtype` are given).
        processor: the image processor; by default the model folder's, else the 1024x1024 default.
        batch_size (`int`, defaults to 1): images per forward pass.
        device, dtype: where and in which precision to run ("cpu", "cuda", ...; "float32", "float16",
            "bfloat16"). A model given by path goes to `device` (default: CUDA if available, else CPU).
        resolution: model input size for this call: an int (square), (height, width) (multiples of 32) or a
            size dict such as `{"longest_edge": 1280}`; default: the processor's.
        progress (`bool`): show a progress bar.
        refine_foreground (`bool`, defaults to True): the cut-out's colours are blur-fusion estimates of the
            foreground (no background fringe in soft edges); False keeps the photo's colours.
        max_side (`int`, *optional*): downscale each photo (Lanczos) so its longest side is at most this, before
            anything else; the results have that size.
        threshold, dilate, erode, feather, alpha_matting, refine_crops, crop_size: matte post-processing, see
            [`MatteOptions`] (threshold in [0, 1); dilate / erode / feather in pixels).

    Returns:
        A [`BackgroundRemovalResult`] (`.matte`, `.cutout`, `.foreground`, `.composite(background)`, `.mask()`,
        `.overlay()`) for a single image, or a list of them for a list.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if isinstance(model, (str, os.PathLike)) and device is None:
        device = _default_device()
    options = MatteOptions(
        threshold, dilate, erode, feather, alpha_matting, refine_crops, crop_size, batch_size
    )
    if max_side is not None and (int(max_side) != max_side or max_side < 1):
        raise ValueError(f"max_side must be a positive integer, got {max_side}.")
    model, processor = load_model_and_processor(model, processor, device=device, dtype=dtype)
    model_device = _model_device_and_dtype(model)[0]
    size = _size_from_resolution(resolution)

    single = not isinstance(images, (list, tuple)) and not (
        isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4
    )
    items = [images] if single else list(images)
    results: list[BackgroundRemovalResult] = []
    with tqdm(total=len(items), unit="img", disable=not progress, desc="remove background") as bar:
        for batch in _batched(items, batch_size):
            rgb_images = [cutout_ops.fit_max_side(to_rgb_image(item), max_side) for item in batch]
            for image, matte in zip(
                rgb_images, _predict_mattes(model, processor, rgb_images, size), strict=True
            ):
                matte = _finish_matte(model, processor, size, image, matte, options)
                results.append(
                    BackgroundRemovalResult(
                        image, matte, refine_foreground=refine_foreground, device=model_device
                    )
                )
            bar.update(len(batch))
    return results[0] if single else results


# ---------------------------------------------------------------------------------------------------------------
# Output files
# ---------------------------------------------------------------------------------------------------------------


#: The PNG text chunk that marks a file as written by `birefnet-hf segment` (so re-runs can recognise it).
OUTPUT_MARKER = ("Software", "birefnet-hf segment")


def is_segment_output(path: str | os.PathLike) -> bool:
    """Whether `path` is a PNG written by `birefnet-hf segment` (it carries [`OUTPUT_MARKER`]); reads the header
    only."""
    path = Path(path)
    if path.suffix.lower() != ".png" or not path.is_file():
        return False
    try:
        with PIL.Image.open(path) as image:
            return image.info.get(OUTPUT_MARKER[0]) == OUTPUT_MARKER[1]
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError):
        return False


def write_image_atomically(
    image: PIL.Image.Image, path: Path, compress_level: int = 1, text: dict[str, str] | None = None
) -> None:
    """Save `image` as PNG at `path` atomically (`atomic_io.atomic_file`): `path` is either absent, its previous
    version, or the complete new file, never a partial one.

    `compress_level` is zlib's 0-9; 1 writes a 48-megapixel RGBA cut-out >10x faster than Pillow's default 6
    for files ~20% larger. `text`: PNG text chunks, by default [`OUTPUT_MARKER`] (how a re-run recognises
    this tool's outputs among its inputs)."""
    chunks = PIL.PngImagePlugin.PngInfo()
    for key, value in (dict([OUTPUT_MARKER]) if text is None else text).items():
        chunks.add_text(key, value)
    with atomic_file(path) as temporary, open(temporary, "xb") as handle:
        image.save(handle, format="PNG", compress_level=compress_level, pnginfo=chunks)
