# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The cut-out options, defined once for every front end: `birefnet-hf segment`, `birefnet-hf segment-dataset` and
the server's `POST /v1/remove-background` (same names, defaults, checks and meaning).

* [`add_cutout_arguments`] adds the "cut-out options" argparse group (`--threshold`, `--no-refine-foreground`,
  `--background`, `--dilate`, `--erode`, `--feather`, `--alpha-matting`, `--max-side`, `--refine-crops`,
  `--crop-size`) to a command's parser; [`cutout_settings_from_args`] checks the parsed values.
* [`cutout_settings`] is that check for keyword values (the server calls it with its query parameters and names
  them `name=value` in its errors instead of `--name value`).
* [`apply_matte_options`] applies [`MatteOptions`] to one model matte, in the documented order; how crops are
  segmented again (`--refine-crops`) is the caller's `predict_crops`, so the server can send them through its
  micro-batcher while the command line calls the model directly.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from . import cutout as cutout_ops
from .image_processing_birefnet import to_rgb_image

__all__ = [
    "MatteOptions",
    "CutoutSettings",
    "add_cutout_arguments",
    "cutout_settings",
    "cutout_settings_from_args",
    "apply_matte_options",
    "model_input_side",
    "non_negative_pixels",
]

#: The [`MatteOptions`] fields that are options of the same name everywhere (besides `threshold`).
_MATTE_STEPS = ("dilate", "erode", "feather", "alpha_matting", "refine_crops", "crop_size")
#: `predict_crops(crops, model_size)`: the 8-bit mattes (h, w) of RGB crops, the model run at `model_size`.
CropPredictor = Callable[[list[PIL.Image.Image], dict], Sequence[np.ndarray]]


@dataclass
class MatteOptions:
    """What happens to a matte after the model, in this order (see [`apply_matte_options`]):

    1. `refine_crops`: re-segment full-resolution crops (`crop_size` pixels, default the model's input side)
       around the object's boundary and blend them in (`cutout.refine_matte_in_crops`; `crop_batch_size` crops
       per forward pass), for photos much larger than the model's input;
    2. `threshold` (binarise), `dilate`, `erode` (pixels; `cutout.postprocess_matte`);
    3. `alpha_matting`: closed-form alpha matting in a trimap's unknown band (`cutout.refine_alpha_matting`,
       needs `pymatting`);
    4. `feather` (pixels).
    """

    threshold: float | None = None
    dilate: int = 0
    erode: int = 0
    feather: int = 0
    alpha_matting: bool = False
    refine_crops: bool = False
    crop_size: int | None = None
    crop_batch_size: int = 1

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}.")
        for name in ("dilate", "erode", "feather"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise ValueError(f"{name} must be a non-negative number of pixels, got {value}.")
        if self.crop_size is not None and self.crop_size < 32:
            raise ValueError(f"crop_size must be at least 32 pixels, got {self.crop_size}.")


@dataclass
class CutoutSettings:
    """The checked cut-out options of one run or request.

    Attributes:
        options ([`MatteOptions`]): matte post-processing.
        refine_foreground (`bool`): blur-fusion foreground colours for `rgba`, `fg` and composites.
        background: None, an (r, g, b) colour, "blur" or an RGB PIL image: `rgba` output composited on it.
        max_side (`int | None`): photos are downscaled first so their longest side is at most this.
    """

    options: MatteOptions
    refine_foreground: bool = True
    background: Any = None
    max_side: int | None = None

    def remove_background_kwargs(self) -> dict[str, Any]:
        """These settings as keyword arguments of [`birefnet_hf.remove_background`] (all but `background`)."""
        steps = {name: getattr(self.options, name) for name in ("threshold", *_MATTE_STEPS)}
        return {"refine_foreground": self.refine_foreground, "max_side": self.max_side, **steps}

    def render(self, result: Any, output_format: str, mask_threshold: float = 0.5) -> PIL.Image.Image:
        """The output image of a `BackgroundRemovalResult` in `output_format`, on `background` if set.

        `--format mask` binarises at `threshold`, or at `mask_threshold` when no threshold was given."""
        threshold = mask_threshold if self.options.threshold is None else self.options.threshold
        return result.render(output_format, threshold, self.background)


def non_negative_pixels(text: str) -> int:
    """argparse type of `--dilate`, `--erode`, `--feather`: a whole number of pixels, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number of pixels, got {text!r}")
    return value


def _positive_pixels(text: str) -> int:
    value = non_negative_pixels(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels, got {text!r}")
    return value


def add_cutout_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the "cut-out options" group to a command's parser; check the values with
    [`cutout_settings_from_args`] (which also reads the command's `--format` and `--batch-size`)."""
    group = parser.add_argument_group("cut-out options")
    group.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="binarise the matte at this foreground probability (default: soft matte; 0.5 for --format mask)",
    )
    group.add_argument(
        "--no-refine-foreground",
        dest="refine_foreground",
        action="store_false",
        help="keep the photo's colours in soft edges (default: blur-fusion foreground colour estimation removes "
        "the old background's tint)",
    )
    group.add_argument(
        "--background",
        default=None,
        metavar="white|#RRGGBB|IMAGE|blur",
        help="--format rgba: composite onto this colour, image file (scaled to cover) or the blurred photo "
        "(writes RGB)",
    )
    for name, help_ in (
        ("--dilate", "grow the matte by N pixels"),
        ("--erode", "shrink the matte by N pixels (after --dilate)"),
        ("--feather", "soften the matte's edge over N pixels (last step)"),
    ):
        group.add_argument(name, type=non_negative_pixels, default=0, metavar="N", help=help_)
    group.add_argument(
        "--alpha-matting",
        action="store_true",
        help="refine the soft edge with closed-form alpha matting in a trimap's unknown band (needs pymatting: "
        "pip install 'birefnet-hf[matting]')",
    )
    group.add_argument(
        "--max-side", type=_positive_pixels, default=None, metavar="N", help="downscale outputs to at most N pixels"
    )
    group.add_argument(
        "--refine-crops",
        action="store_true",
        help="large photos: re-run the model on full-resolution crops around the object's edge and blend them",
    )
    group.add_argument(
        "--crop-size",
        type=_positive_pixels,
        default=None,
        metavar="N",
        help="--refine-crops crop side in photo pixels (default: the model's input side)",
    )
    return group


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _query(name: str) -> str:
    return name


def cutout_settings(
    *,
    output_format: str = "rgba",
    threshold: float | None = None,
    refine_foreground: bool = True,
    background: Any = None,
    dilate: int = 0,
    erode: int = 0,
    feather: int = 0,
    alpha_matting: bool = False,
    max_side: int | None = None,
    refine_crops: bool = False,
    crop_size: int | None = None,
    crop_batch_size: int = 1,
    command_line: bool = True,
) -> CutoutSettings:
    """Check cut-out option values and resolve them into [`CutoutSettings`].

    Args:
        output_format: the run's `--format` (a background needs `rgba`).
        background: a string (`white`, `#RRGGBB`, `blur`, or, with `command_line`, an image file), an (r, g, b)
            colour or a PIL image (e.g. an uploaded one).
        command_line (`bool`): name options `--name value` and read image files given as `background`; False (the
            server) names them `name=value` and never opens a file named by a client.
        The others: as the options of `birefnet-hf segment` ([`MatteOptions`]).

    Raises:
        `ValueError` naming the option (and the file) for a bad value, `ImportError` when `alpha_matting` needs
        pymatting and it is missing.
    """
    name = _flag if command_line else _query

    def setting(option: str, value: Any) -> str:
        return f"{name(option)} {value}" if command_line else f"{option}={value}"

    if threshold is not None and not 0.0 <= threshold < 1.0:
        raise ValueError(f"{name('threshold')} must be in [0, 1), got {threshold}")
    if max_side is not None and (int(max_side) != max_side or max_side < 1):
        raise ValueError(f"{name('max_side')} must be a positive number of pixels, got {max_side}")
    if background is not None:
        if output_format != "rgba":
            raise ValueError(f"{name('background')} applies to {setting('format', 'rgba')}, not {output_format!r}")
        if isinstance(background, str):
            try:
                background = cutout_ops.parse_background(background, files=command_line)
            except ValueError as error:
                raise ValueError(f"{name('background')}: {error}") from None
        if isinstance(background, Path):
            try:
                background = to_rgb_image(background)
            except (OSError, ValueError) as error:
                raise ValueError(f"{name('background')}: cannot read {str(background)!r}: {error}") from None
    if alpha_matting:
        cutout_ops.import_pymatting()
    if crop_size is not None and not refine_crops:
        raise ValueError(f"{name('crop_size')} needs {name('refine_crops')}")
    options = MatteOptions(
        threshold=threshold,
        dilate=dilate,
        erode=erode,
        feather=feather,
        alpha_matting=alpha_matting,
        refine_crops=refine_crops,
        crop_size=crop_size,
        crop_batch_size=crop_batch_size,
    )
    return CutoutSettings(options, refine_foreground, background, max_side)


def cutout_settings_from_args(args: argparse.Namespace) -> CutoutSettings:
    """Check the options of [`add_cutout_arguments`] (and the command's `--format`, `--batch-size`): usage errors
    raise `ValueError` / `ImportError` with a message naming the flag."""
    names = ("threshold", "refine_foreground", "background", "max_side", *_MATTE_STEPS)
    return cutout_settings(
        output_format=args.format, crop_batch_size=args.batch_size, **{name: getattr(args, name) for name in names}
    )


def model_input_side(processor: Any, size: dict | None = None) -> int:
    """The longest side of the model input: `size` (a size dict) or the processor's (the default crop side of
    `refine_crops`, so crops are seen 1:1)."""
    size = dict(size if size is not None else processor.size)
    if size.get("height") and size.get("width"):
        return int(max(size["height"], size["width"]))
    return int(size.get("longest_edge") or 1024)


def crop_model_size(crop_size: int) -> dict:
    """The model input size for `refine_crops` crops of `crop_size` photo pixels: square, a multiple of 32 and at
    least 64 (what the model accepts), so crops are seen about 1:1."""
    side = 32 * max(2, round(crop_size / 32))
    return {"height": side, "width": side}


def apply_matte_options(
    image: PIL.Image.Image,
    matte: PIL.Image.Image,
    options: MatteOptions,
    predict_crops: CropPredictor | None = None,
    default_crop_size: int = 1024,
    progress: bool = False,
) -> PIL.Image.Image:
    """Apply `options` ([`MatteOptions`], in its order) to the model's matte of `image`.

    Args:
        image: the RGB photo (already at the output size).
        matte: its soft matte ("L", same size).
        options: what to do.
        predict_crops: segments crops again for `refine_crops` (see `CropPredictor`); needed only then.
        default_crop_size: the crop side when `options.crop_size` is None (the model's input side).
        progress: progress bars for the crop and alpha-matting stages.

    Returns:
        The finished matte ("L").
    """
    if options.refine_crops:
        if predict_crops is None:
            raise ValueError("refine_crops needs a crop predictor.")
        crop_size = options.crop_size or default_crop_size
        if max(image.size) > crop_size:
            model_size = crop_model_size(crop_size)
            refined = cutout_ops.refine_matte_in_crops(
                image,
                np.asarray(matte),
                lambda crops: predict_crops(crops, model_size),
                crop_size,
                batch_size=options.crop_batch_size,
                progress=progress,
            )
            matte = PIL.Image.fromarray(refined, mode="L")
    if options.threshold is not None or options.dilate or options.erode:
        matte = cutout_ops.postprocess_matte(
            matte, threshold=options.threshold, dilate=options.dilate, erode=options.erode
        )
    if options.alpha_matting:
        matte = cutout_ops.refine_alpha_matting(image, matte, progress=progress)
    if options.feather:
        matte = cutout_ops.postprocess_matte(matte, feather=options.feather)
    return matte
