# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Alpha-matting errors: SAD, MSE, gradient and connectivity errors (Rhemann et al., CVPR 2009, "A Perceptually
Motivated Online Benchmark for Image Matting"), as reported by the matting literature (DIM, P3M, ...).

Every error compares a predicted alpha matte with the ground-truth matte, both in [0, 1] (float) or 0..255
(``uint8``), optionally inside the unknown region of a trimap only (pixels equal to 128, the benchmark's
convention); without a trimap the whole image counts, which is what portrait / product matting sets without trimaps
(P3M-10k, AM-2k) report.

=========  =====================================================================================================
key        definition (per image; :class:`MattingMetrics` reports the mean over images)
=========  =====================================================================================================
sad        sum of absolute differences ``sum |a - g|``, divided by 1000 (tables print it as is)
mse        mean squared difference ``mean (a - g)^2`` over the counted pixels (tables print it x 1e3)
grad       gradient error ``sum (|grad a| - |grad g|)^2``, gradients by first-order Gaussian derivative filters
           (sigma 1.4, the benchmark's ``gaussgradient``), divided by 1000
conn       connectivity error ``sum |phi(a) - phi(g)|`` with ``phi(x) = 1 - (x - l) [x - l >= 0.15]``, ``l`` the
           threshold (step 0.1) at which the pixel leaves the largest 4-connected component of
           ``{a >= t} and {g >= t}``, divided by 1000
=========  =====================================================================================================
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from .inputs import to_numpy
from .table import MATTING_METRIC_NAMES  # the keys of compute(); lower is better for all (table.py)

__all__ = [
    "MATTING_METRIC_NAMES",
    "MattingMetrics",
    "alpha_to_float",
    "connectivity_error",
    "gradient_error",
    "gaussian_gradient_kernels",
    "mse_error",
    "sad_error",
]

#: Standard deviation of the gradient error's Gaussian derivative filters (the benchmark's value).
GRADIENT_SIGMA = 1.4
#: Threshold step and the minimum alpha distance counted by the connectivity error (the benchmark's values).
CONNECTIVITY_STEP = 0.1
CONNECTIVITY_MIN_DISTANCE = 0.15
#: Trimap value of the unknown region.
TRIMAP_UNKNOWN = 128


def alpha_to_float(alpha: Any, name: str = "alpha") -> np.ndarray:
    """A 2-D alpha matte as float64 in [0, 1]: ``uint8`` / integers are divided by 255, floats must lie in [0, 1]."""
    array = to_numpy(alpha, name)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (H, W), got shape {tuple(array.shape)}")
    if array.dtype == np.bool_:
        return array.astype(np.float64)
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise ValueError(f"{name} has integer values outside 0..255 (min {array.min()}, max {array.max()})")
        return array.astype(np.float64) / 255.0
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name} has unsupported dtype {array.dtype}")
    array = array.astype(np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        raise ValueError(f"{name} contains {int((~finite).sum())} NaN or infinite value(s) out of {array.size}")
    if array.min() < 0 or array.max() > 1:
        raise ValueError(f"{name} has float values outside [0, 1] (min {array.min():g}, max {array.max():g})")
    return array


def _region(trimap: Any, shape: tuple[int, int]) -> np.ndarray:
    """Boolean map of the pixels counted: the trimap's unknown region, or everything."""
    if trimap is None:
        return np.ones(shape, dtype=bool)
    array = to_numpy(trimap, "trimap")
    if array.shape != shape:
        raise ValueError(f"trimap has shape {tuple(array.shape)} but the mattes have shape {shape}")
    return array == TRIMAP_UNKNOWN


def _pair(prediction: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = alpha_to_float(prediction, "prediction"), alpha_to_float(target, "target")
    if pred.shape != gt.shape:
        raise ValueError(f"prediction has shape {pred.shape} but target has shape {gt.shape}; resize it first")
    return pred, gt


def sad_error(prediction: Any, target: Any, trimap: Any = None) -> float:
    """Sum of absolute differences over the counted pixels, divided by 1000."""
    pred, gt = _pair(prediction, target)
    return float(np.abs(pred - gt)[_region(trimap, gt.shape)].sum() / 1000.0)


def mse_error(prediction: Any, target: Any, trimap: Any = None) -> float:
    """Mean squared difference over the counted pixels (0 when none is counted)."""
    pred, gt = _pair(prediction, target)
    region = _region(trimap, gt.shape)
    count = int(region.sum())
    return float(((pred - gt) ** 2)[region].sum() / count) if count else 0.0


def gaussian_gradient_kernels(sigma: float = GRADIENT_SIGMA, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """The benchmark's first-order Gaussian derivative filters ``(h_x, h_y)`` (``gaussgradient``): half size
    ``ceil(sigma * sqrt(-2 log(sqrt(2 pi) sigma epsilon)))``, ``h_x(i, j) = G(i) G'(j)`` normalised to unit L2 norm,
    ``h_y = h_x^T``."""
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(offsets**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    derivative = -offsets * gauss / sigma**2
    h_x = np.outer(gauss, derivative)
    h_x /= math.sqrt(float((h_x**2).sum()))
    return h_x, h_x.T.copy()


def _gradient_magnitude(alpha: np.ndarray, kernels: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    # True convolution (the benchmark's imfilter(..., 'conv')) with replicated borders: cv2.filter2D correlates, so
    # the kernels are flipped.
    gx, gy = (
        cv2.filter2D(alpha, cv2.CV_64F, kernel[::-1, ::-1].copy(), borderType=cv2.BORDER_REPLICATE)
        for kernel in kernels
    )
    return np.sqrt(gx**2 + gy**2)


def gradient_error(prediction: Any, target: Any, trimap: Any = None, sigma: float = GRADIENT_SIGMA) -> float:
    """Sum over the counted pixels of the squared difference of Gaussian gradient magnitudes, divided by 1000."""
    pred, gt = _pair(prediction, target)
    kernels = gaussian_gradient_kernels(sigma)
    difference = (_gradient_magnitude(pred, kernels) - _gradient_magnitude(gt, kernels)) ** 2
    return float(difference[_region(trimap, gt.shape)].sum() / 1000.0)


def _disconnection_levels(pred: np.ndarray, gt: np.ndarray, step: float) -> np.ndarray:
    """Per pixel, the threshold below the one at which it leaves the largest 4-connected component of
    ``{pred >= t} and {gt >= t}`` (1 for pixels that never leave it)."""
    levels = np.full(gt.shape, -1.0)
    thresholds = np.round(np.arange(0.0, 1.0 + step / 2, step), 10)
    for previous, threshold in zip(thresholds[:-1], thresholds[1:], strict=True):
        both = ((pred >= threshold) & (gt >= threshold)).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(both, connectivity=4)
        largest = np.zeros(gt.shape, dtype=bool)
        if count > 1:  # label 0 is the background
            largest = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        levels[(levels == -1) & ~largest] = previous
    levels[levels == -1] = 1.0
    return levels


def connectivity_error(prediction: Any, target: Any, trimap: Any = None, step: float = CONNECTIVITY_STEP) -> float:
    """Connectivity error over the counted pixels, divided by 1000 (see the module docstring)."""
    pred, gt = _pair(prediction, target)
    levels = _disconnection_levels(pred, gt, step)
    pred_distance, gt_distance = pred - levels, gt - levels
    pred_phi = 1.0 - pred_distance * (pred_distance >= CONNECTIVITY_MIN_DISTANCE)
    gt_phi = 1.0 - gt_distance * (gt_distance >= CONNECTIVITY_MIN_DISTANCE)
    return float(np.abs(pred_phi - gt_phi)[_region(trimap, gt.shape)].sum() / 1000.0)


class MattingMetrics:
    """Streaming matting evaluator: :meth:`update` per image, :meth:`compute` gives the mean of each error.

    Predictions and targets are 2-D alpha mattes (float in [0, 1] or ``uint8`` 0..255) of the same size, with an
    optional trimap (unknown = 128) restricting every error to its unknown region.

    Example:

    ```python
    >>> import numpy as np
    >>> from birefnet_hf.metrics import MattingMetrics
    >>> metrics = MattingMetrics()
    >>> metrics.update(np.full((4, 4), 0.5), np.ones((4, 4)))
    >>> metrics.compute()["sad"]  # 16 pixels off by 0.5, / 1000
    0.008
    ```
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every image added so far."""
        self._errors: dict[str, list[float]] = {name: [] for name in MATTING_METRIC_NAMES}

    def __len__(self) -> int:
        return len(self._errors["sad"])

    def update(self, prediction: Any, target: Any, trimap: Any = None) -> None:
        """Add one image."""
        pred, gt = _pair(prediction, target)
        self._errors["sad"].append(sad_error(pred, gt, trimap))
        self._errors["mse"].append(mse_error(pred, gt, trimap))
        self._errors["grad"].append(gradient_error(pred, gt, trimap))
        self._errors["conn"].append(connectivity_error(pred, gt, trimap))

    def update_batch(self, predictions: Any, targets: Any) -> None:
        """Add a stack of mattes ((N, H, W) arrays / tensors or lists of 2-D maps)."""
        predictions, targets = list(predictions), list(targets)
        if len(predictions) != len(targets):
            raise ValueError(f"got {len(predictions)} predictions and {len(targets)} targets")
        for prediction, target in zip(predictions, targets, strict=True):
            self.update(prediction, target)

    def compute(self) -> dict[str, float]:
        """Mean of each error over the images added."""
        if not len(self):
            raise ValueError("MattingMetrics.compute() called before any image was added")
        return {name: float(np.mean(values)) for name, values in self._errors.items()}
