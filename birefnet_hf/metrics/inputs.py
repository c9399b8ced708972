# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Validation and conversion of predictions / references into the pair the DIS measures work on.

The measures (like PySODMetrics) take a ``uint8`` prediction map (0..255) and a binary ground truth. Inputs are
converted as follows; every conversion mirrors a step of the authors' evaluation pipeline, so a float map gives
the same scores as the PNG the authors would have saved from it:

* **prediction**, a 2-D array-like (numpy array, torch tensor, PIL image, nested lists):
    * ``uint8``: used as is (the authors read saved PNG predictions with ``cv2.imread(..., IMREAD_GRAYSCALE)``);
    * other integer types: values must lie in 0..255, then cast to ``uint8``;
    * integer maps holding only 0 and 1 (both present) are "0/1 maps": scaled to 0/255 with a warning (this changes
      nothing but the ``"raw"`` HCE binarisation: PySODMetrics min-max normalises predictions anyway);
    * ``bool``: ``True`` -> 255;
    * floating point: values must be finite and lie in [0, 1]; quantised as ``uint8(float32(p) * 255)`` (truncation),
      which is what ``torchvision.transforms.ToPILImage`` does when the authors save sigmoid maps as PNG.
* **reference** (ground truth), a 2-D array-like:
    * ``bool``: used as is;
    * integers (0/255 masks): values must lie in 0..255; foreground is ``> 128`` (as PySODMetrics);
    * integer masks holding only 0 and 1 (both present) are 0/1 masks: foreground is ``== 1``, with a warning
      (PySODMetrics reads them as empty; this package departs from it here);
    * floating point: finite values in [0, 1], quantised like a prediction, then ``> 128``.
* A prediction whose size differs from its reference is resized to the reference's size with
  ``cv2.resize(prediction, (W, H))`` (bilinear, no antialiasing), exactly as the authors' ``evaluation/metrics.py``.
  Resizing happens after quantisation, on the ``uint8`` map.

Anything else (3-D arrays, empty arrays, NaN, out-of-range values, non-numeric types) raises ``ValueError`` or
``TypeError`` naming the offending argument.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from transformers.utils import logging

logger = logging.get_logger(__name__)

__all__ = ["prediction_to_uint8", "reference_to_mask", "prepare_pair", "to_numpy"]


def to_numpy(value: Any, name: str) -> np.ndarray:
    """Turn a numpy array, torch tensor, PIL image or nested sequence into a numpy array."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch
        tensor = value.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()
        return tensor.numpy()
    if value is None:
        raise TypeError(f"{name} is None; expected a 2-D array (H, W)")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:  # ragged nested lists
        raise TypeError(f"{name} could not be converted to an array ({error})") from None
    if array.dtype == object:
        raise TypeError(f"{name} could not be converted to a numeric array (got {type(value).__name__})")
    return array


def _check_2d(array: np.ndarray, name: str) -> None:
    if array.ndim != 2:
        hint = ""
        if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):
            hint = "; squeeze the channel dimension first"
        elif array.ndim == 3:
            hint = "; convert colour images to a single channel first"
        raise ValueError(f"{name} must be a 2-D array (H, W), got shape {tuple(array.shape)}{hint}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(array.shape)})")


def _quantize(array: np.ndarray, name: str) -> np.ndarray:
    """Map any supported dtype to uint8 0..255 (see the module docstring)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.view(np.uint8) * np.uint8(255)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(f"{name} has integer values outside 0..255 (min {low}, max {high})")
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        single = array.astype(np.float32, copy=False)
        finite = np.isfinite(single)
        if not finite.all():
            nan, total = int(np.isnan(single).sum()), int(single.size)
            infinite = total - nan - int(finite.sum())
            span = (
                f"the finite values span [{float(single[finite].min()):g}, {float(single[finite].max()):g}]"
                if finite.any()
                else "no value is finite"
            )
            raise ValueError(
                f"{name} contains {nan} NaN and {infinite} infinite value(s) out of {total} ({span}); a float map "
                "must be finite and lie in [0, 1]"
            )
        low, high = float(single.min()), float(single.max())
        if low < 0 or high > 1:
            raise ValueError(
                f"{name} has float values outside [0, 1] (min {low:g}, max {high:g}); apply a sigmoid to logits, "
                "or pass uint8 maps in 0..255"
            )
        return (single * 255).astype(np.uint8)
    raise TypeError(f"{name} has unsupported dtype {array.dtype}; expected uint8, bool, integer or float")


def _is_zero_one_map(array: np.ndarray) -> bool:
    """Whether an integer (not bool) map holds both 0 and 1 and nothing else."""
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        return False
    return int(array.max()) == 1 and int(array.min()) == 0


def prediction_to_uint8(prediction: Any, name: str = "prediction") -> np.ndarray:
    """Validate a prediction map and return it as a C-contiguous ``uint8`` array (H, W)."""
    array = to_numpy(prediction, name)
    _check_2d(array, name)
    if _is_zero_one_map(array):
        logger.warning_once(
            "A prediction holds only 0 and 1: read as a 0/1 map and scaled to 0/255 (pass bool or 0..255 maps to "
            "silence this)."
        )
        return np.ascontiguousarray(array.astype(np.uint8) * np.uint8(255))
    return np.ascontiguousarray(_quantize(array, name))


def reference_to_mask(reference: Any, name: str = "reference") -> np.ndarray:
    """Validate a ground-truth map and return it as a C-contiguous ``bool`` array (H, W)."""
    array = to_numpy(reference, name)
    _check_2d(array, name)
    if array.dtype == np.bool_:
        return np.ascontiguousarray(array)
    if _is_zero_one_map(array):
        logger.warning_once(
            "A ground truth holds only 0 and 1: read as a 0/1 mask (1 = foreground). PySODMetrics would read it "
            "as empty (foreground is > 128); save masks as 0/255 or pass bool arrays to silence this."
        )
        return np.ascontiguousarray(array == 1)
    return np.ascontiguousarray(_quantize(array, name) > 128)


def prepare_pair(
    prediction: Any, reference: Any, prediction_name: str = "prediction", reference_name: str = "reference"
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(uint8 prediction resized to the reference, bool reference)``."""
    mask = reference_to_mask(reference, reference_name)
    pred = prediction_to_uint8(prediction, prediction_name)
    if pred.shape != mask.shape:
        height, width = mask.shape
        pred = cv2.resize(pred, (width, height), interpolation=cv2.INTER_LINEAR)
    return pred, mask
