# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Per-image DIS measures, numerically identical to PySODMetrics (``py_sod_metrics``).

Every function here takes a *prepared* pair: a ``uint8`` prediction (0..255) and a boolean ground truth of the
same 2-D shape (see :mod:`birefnet_hf.metrics.inputs` for how raw inputs get there). The definitions follow
PySODMetrics 1.6, the de-facto implementation of the field (BiRefNet's own ``evaluation/metrics.py`` is a copy of
it); only the way they are computed differs:

* the prediction is normalised exactly like PySODMetrics' ``prepare_data`` (``pred / 255``, then min-max scaled
  when not constant), but through a 256-entry lookup table, so every normalised value is bit-identical;
* F-measure, E-measure, MAE, S-measure (object and region parts) and the adaptive thresholds are derived from a
  joint (prediction value, ground truth) histogram instead of full-image float arrays;
* weighted F-measure uses a separable Gaussian filter, OpenCV's distance transform and a nearest-foreground search
  limited to the pixels that matter (see :func:`weighted_f_measure`);
* relaxed HCE processes contour points with vectorised numpy instead of a per-point Python loop, and skeletonises
  only the ground truth's bounding box.

Results agree with PySODMetrics to ~1e-12 (HCE exactly); the test-suite checks 1e-6 on a varied set of maps.

One deliberate departure: the E-measure divides the alignment sum by ``H * W - 1 + eps`` (a MATLAB leftover), so a
one-pixel map scores ~4.5e15 in PySODMetrics and wrecks a dataset mean. Here a one-pixel map's E-measures divide by
1 instead (values in [0, 1]) and a warning says so (:func:`e_measure_denominator`); every larger map is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from transformers.utils import logging

logger = logging.get_logger(__name__)

__all__ = [
    "EPS",
    "HCE_BINARIZATIONS",
    "NUM_THRESHOLDS",
    "ImageMeasures",
    "HistogramStatistics",
    "normalization_table",
    "compute_image_measures",
    "e_measure_denominator",
    "structure_measure",
    "weighted_f_measure",
    "human_correction_effort",
    "skeletonize_mask",
]

# MATLAB's ``eps`` (``np.spacing(1)``), the epsilon used throughout the reference code.
EPS = float(np.spacing(1))
# F- and E-measure curves are evaluated at the 256 thresholds 255, 254, ..., 0 (in that order, as PySODMetrics).
NUM_THRESHOLDS = 256
# Weights of the F-measures: beta^2 = 0.3 for the (max/mean/adaptive) F-measure, 1 for the weighted F-measure.
F_MEASURE_BETA2 = 0.3
WEIGHTED_F_MEASURE_BETA2 = 1.0
# Relaxed HCE: number of erosion/dilation steps (gamma) and Douglas-Peucker tolerance of the DIS paper.
HCE_RELAX = 5
HCE_EPSILON = 2.0
#: Binarisations of the prediction for HCE: PySODMetrics' ("normalized", the default) and BiRefNet's ("raw").
HCE_BINARIZATIONS = ("normalized", "raw")
# 3x3 cross (``skimage.morphology.disk(1)``), the structuring element of the relaxed HCE.
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8)


@dataclass
class ImageMeasures:
    """All measures of one (prediction, ground truth) pair.

    Curves have :data:`NUM_THRESHOLDS` entries ordered by *decreasing* threshold (index ``i`` is threshold
    ``255 - i``), as in PySODMetrics.
    """

    s_measure: float
    weighted_f_measure: float
    mae: float
    adaptive_f_measure: float
    adaptive_e_measure: float
    hce: float
    f_measure_curve: np.ndarray
    e_measure_curve: np.ndarray
    precision_curve: np.ndarray
    recall_curve: np.ndarray


def normalization_table(prediction: np.ndarray) -> np.ndarray:
    """Float64 value of every uint8 level after PySODMetrics' normalisation of ``prediction``.

    PySODMetrics computes ``p = pred / 255`` and, when ``p.max() != p.min()``, ``(p - p.min()) / (p.max() -
    p.min())``. The same operations applied to the 256 levels give bit-identical values, so
    ``table[prediction]`` equals the reference's normalised map.
    """
    levels = np.arange(256, dtype=np.uint8) / 255
    low, high = levels[int(prediction.min())], levels[int(prediction.max())]
    if high != low:
        levels = (levels - low) / (high - low)
    return levels


class HistogramStatistics:
    """Joint histogram of (prediction level, ground-truth label) of one image or one region of it.

    ``counts[g, v]`` is the number of pixels with ground truth ``g`` (0/1) and prediction level ``v``.
    """

    def __init__(self, counts: np.ndarray, table: np.ndarray):
        self.counts = counts.astype(np.int64, copy=False).reshape(2, 256)
        self.table = table
        self.levels = self.counts.sum(axis=0)
        self.size = int(self.levels.sum())
        self.foreground = int(self.counts[1].sum())

    @classmethod
    def from_codes(cls, codes: np.ndarray, table: np.ndarray) -> HistogramStatistics:
        """Histogram of ``codes = prediction + 256 * ground_truth`` (any shape)."""
        return cls(np.bincount(codes.ravel(), minlength=512), table)

    def mean(self) -> float:
        """Mean normalised prediction."""
        return float(self.levels @ self.table) / self.size


def _joint_codes(prediction: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """``prediction + 256 * ground_truth`` as uint16, the bins of the joint histogram."""
    codes = prediction.astype(np.uint16)
    codes[ground_truth] += 256
    return codes


def _quadrants(height: int, width: int, row: int, col: int) -> tuple[tuple[slice, slice], ...]:
    """Top-left, top-right, bottom-left and bottom-right regions split at the (1-based) centroid."""
    top, bottom, left, right = slice(0, row), slice(row, height), slice(0, col), slice(col, width)
    return (top, left), (top, right), (bottom, left), (bottom, right)


def compute_image_measures(
    prediction: np.ndarray,
    ground_truth: np.ndarray,
    ground_truth_skeleton: np.ndarray | None = None,
    hce_binarization: str = "normalized",
) -> ImageMeasures:
    """Compute every DIS measure of one prepared pair.

    Args:
        prediction: ``uint8`` array (H, W), 0..255.
        ground_truth: ``bool`` array (H, W).
        ground_truth_skeleton: optional ``bool`` array (H, W), the skeleton of ``ground_truth`` used by HCE
            (computed with :func:`skeletonize_mask` when omitted).
        hce_binarization: ``"normalized"`` (PySODMetrics) or ``"raw"`` (BiRefNet's code), see
            :func:`human_correction_effort`.
    """
    table = normalization_table(prediction)
    codes = _joint_codes(prediction, ground_truth)
    height, width = ground_truth.shape
    foreground = int(np.count_nonzero(ground_truth))
    size = height * width

    # The S-measure's region term splits the image at the foreground centroid; histograms of the four
    # quadrants also add up to the full-image histogram used by every other measure.
    quadrants = None
    if 0 < foreground < size:
        regions = _quadrants(height, width, *_centroid(ground_truth, foreground))
        quadrants = [HistogramStatistics.from_codes(codes[region], table) for region in regions]
        stats = HistogramStatistics(sum(q.counts for q in quadrants), table)
    else:
        stats = HistogramStatistics.from_codes(codes, table)

    mean = stats.mean()
    adaptive_threshold = min(2 * mean, 1.0)
    if np.any(np.abs(table[stats.levels > 0] - adaptive_threshold) <= 1e-9):
        # A level sits on the adaptive threshold: use the reference's own summation order for the mean, so that
        # ``>=`` decides identically.
        adaptive_threshold = min(2 * table[prediction].mean(), 1.0)
    above = table >= adaptive_threshold

    f_curve, precision, recall = _f_measure_curve(stats)
    return ImageMeasures(
        s_measure=structure_measure(prediction, ground_truth, stats, quadrants),
        weighted_f_measure=weighted_f_measure(prediction, ground_truth, table),
        mae=float(stats.counts[0] @ table + stats.counts[1] @ (1 - table)) / size,
        adaptive_f_measure=_adaptive_f_measure(stats, above),
        adaptive_e_measure=_adaptive_e_measure(stats, above),
        hce=human_correction_effort(prediction, ground_truth, table, ground_truth_skeleton, hce_binarization),
        f_measure_curve=f_curve,
        e_measure_curve=_e_measure_curve(stats),
        precision_curve=precision,
        recall_curve=recall,
    )


# ----------------------------------------------------------------------------------------------------------------
# F-measure and E-measure (curves over 256 thresholds, adaptive threshold = 2 * mean prediction)
# ----------------------------------------------------------------------------------------------------------------
def _threshold_counts(stats: HistogramStatistics) -> tuple[np.ndarray, np.ndarray]:
    """Foreground / background pixel counts with ``uint8(normalised * 255) >= t`` for t = 255 .. 0."""
    quantized = (stats.table * 255).astype(np.uint8)
    histograms = [np.bincount(quantized, weights=c, minlength=256).astype(np.int64) for c in stats.counts]
    background, foreground = (np.cumsum(h[::-1]) for h in histograms)
    return foreground, background


def _f_measure_curve(stats: HistogramStatistics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    true_positives, background = _threshold_counts(stats)
    positives = true_positives + background
    positives[positives == 0] = 1
    precision = true_positives / positives
    recall = true_positives / max(stats.foreground, 1)
    numerator = (1 + F_MEASURE_BETA2) * precision * recall
    denominator = np.where(numerator == 0, 1, F_MEASURE_BETA2 * precision + recall)
    return numerator / denominator, precision, recall


def _adaptive_f_measure(stats: HistogramStatistics, above: np.ndarray) -> float:
    intersection = int(stats.counts[1][above].sum())
    if intersection == 0:
        return 0.0
    precision = intersection / int(stats.levels[above].sum())
    recall = intersection / stats.foreground
    return (1 + F_MEASURE_BETA2) * precision * recall / (F_MEASURE_BETA2 * precision + recall)


def _enhanced_alignment_sum(stats: HistogramStatistics, fg_fg, fg_bg):
    """Sum of the enhanced alignment matrix for binarised maps with the given TP / FP counts."""
    size, gt_foreground = stats.size, stats.foreground
    predicted = fg_fg + fg_bg
    not_predicted = size - predicted
    if gt_foreground == 0:
        return not_predicted
    if gt_foreground == size:
        return predicted
    bg_fg = gt_foreground - fg_fg
    bg_bg = not_predicted - bg_fg
    pred_fg = 1 - predicted / size
    pred_bg = 0 - predicted / size
    gt_fg = 1 - gt_foreground / size
    gt_bg = 0 - gt_foreground / size
    total = 0
    for count, a, b in (
        (fg_fg, pred_fg, gt_fg),
        (fg_bg, pred_fg, gt_bg),
        (bg_fg, pred_bg, gt_fg),
        (bg_bg, pred_bg, gt_bg),
    ):
        align = 2 * (a * b) / (a**2 + b**2 + EPS)
        total = total + (align + 1) ** 2 / 4 * count
    return total


def e_measure_denominator(size: int) -> float:
    """What the E-measure's alignment sum over ``size`` pixels is divided by: PySODMetrics' ``size - 1 + eps``, except
    for a one-pixel map, where that is ``eps`` (scores ~4.5e15); 1 is used instead, with a warning."""
    if size > 1:
        return size - 1 + EPS
    logger.warning_once(
        "A 1x1 map: PySODMetrics' E-measure divides by H*W - 1 = 0 (+eps) and would score ~4.5e15; it is divided by 1 "
        "here (E-measure in [0, 1]). Such maps say little; check that predictions and ground truths are full images."
    )
    return 1.0


def _e_measure_curve(stats: HistogramStatistics) -> np.ndarray:
    foreground, background = _threshold_counts(stats)
    return _enhanced_alignment_sum(stats, foreground, background) / e_measure_denominator(stats.size)


def _adaptive_e_measure(stats: HistogramStatistics, above: np.ndarray) -> float:
    fg_fg = int(stats.counts[1][above].sum())
    fg_bg = int(stats.counts[0][above].sum())
    return float(_enhanced_alignment_sum(stats, fg_fg, fg_bg) / e_measure_denominator(stats.size))


# ----------------------------------------------------------------------------------------------------------------
# S-measure (structure measure: object-aware + region-aware similarity, alpha = 0.5)
# ----------------------------------------------------------------------------------------------------------------
def _centroid(ground_truth: np.ndarray, foreground: int) -> tuple[int, int]:
    """1-based rounded centroid (row, col) of the foreground, as the MATLAB reference computes it."""
    rows = np.arange(ground_truth.shape[0]) @ np.count_nonzero(ground_truth, axis=1)
    cols = np.arange(ground_truth.shape[1]) @ np.count_nonzero(ground_truth, axis=0)
    return int(np.round(rows / foreground)) + 1, int(np.round(cols / foreground)) + 1


def _object_similarity(values: np.ndarray, counts: np.ndarray) -> float:
    """``2 m / (m^2 + 1 + std + eps)`` of the values repeated ``counts`` times (sample std, ddof=1)."""
    total = int(counts.sum())
    mean = float(counts @ values) / total
    std = float(np.sqrt(counts @ (values - mean) ** 2 / (total - 1))) if total > 1 else 0.0
    return 2 * mean / (mean**2 + 1 + std + EPS)


def _region_similarity(stats: HistogramStatistics) -> float:
    """SSIM-like similarity of a region given its joint histogram."""
    size = stats.size
    if size == 0:
        # The reference averages an empty slice here (when the centroid lies on the last row/column): NaN.
        return float("nan")
    denominator = size - 1 + EPS
    x = stats.mean()
    y = stats.foreground / size
    centered = stats.table - x
    sigma_x = float(stats.levels @ centered**2) / denominator
    sigma_y = ((size - stats.foreground) * y**2 + stats.foreground * (1 - y) ** 2) / denominator
    sigma_xy = float((stats.counts[1] * (1 - y) - stats.counts[0] * y) @ centered) / denominator
    alpha = 4 * x * y * sigma_xy
    beta = (x**2 + y**2) * (sigma_x + sigma_y)
    if alpha != 0:
        return alpha / (beta + EPS)
    return 1.0 if beta == 0 else 0.0


def _region_similarity_reference(prediction: np.ndarray, ground_truth: np.ndarray) -> float:
    """The reference's array formula, for regions with a constant prediction.

    There the reference's result hinges on whether ``np.mean`` of a constant array returns the constant exactly
    (``sigma_x`` is then 0 or a rounding residue), so it is reproduced with the same array operations.
    """
    size = prediction.size
    x, y = np.mean(prediction), np.mean(ground_truth)
    sigma_x = np.sum((prediction - x) ** 2) / (size - 1 + EPS)
    sigma_y = np.sum((ground_truth - y) ** 2) / (size - 1 + EPS)
    sigma_xy = np.sum((prediction - x) * (ground_truth - y)) / (size - 1 + EPS)
    alpha = 4 * x * y * sigma_xy
    beta = (x**2 + y**2) * (sigma_x + sigma_y)
    if alpha != 0:
        return float(alpha / (beta + EPS))
    return 1.0 if beta == 0 else 0.0


def structure_measure(
    prediction: np.ndarray,
    ground_truth: np.ndarray,
    stats: HistogramStatistics | None = None,
    quadrants: list[HistogramStatistics] | None = None,
) -> float:
    """S-measure (Fan et al., ICCV 2017) with alpha = 0.5.

    ``stats`` / ``quadrants`` are the histograms :func:`compute_image_measures` already has; they are rebuilt
    when omitted.
    """
    if stats is None:
        stats = HistogramStatistics.from_codes(
            _joint_codes(prediction, ground_truth), normalization_table(prediction)
        )
    table = stats.table
    y = stats.foreground / stats.size
    if y == 0:
        return 1 - stats.mean()
    if y == 1:
        return stats.mean()

    object_score = _object_similarity(table, stats.counts[1]) * y
    object_score += _object_similarity(1 - table, stats.counts[0]) * (1 - y)

    height, width = ground_truth.shape
    row, col = _centroid(ground_truth, stats.foreground)
    regions = _quadrants(height, width, row, col)
    if quadrants is None:
        codes = _joint_codes(prediction, ground_truth)
        quadrants = [HistogramStatistics.from_codes(codes[region], table) for region in regions]
    area = height * width
    w_lt = col * row / area
    w_rt = row * (width - col) / area
    w_lb = (height - row) * col / area
    weights = (w_lt, w_rt, w_lb, 1 - w_lt - w_rt - w_lb)
    normalized = None
    region_score = 0.0
    for weight, quadrant, region in zip(weights, quadrants, regions, strict=True):
        if np.count_nonzero(quadrant.levels) == 1:
            if normalized is None:
                normalized = table[prediction]
            similarity = _region_similarity_reference(normalized[region], ground_truth[region])
        else:
            similarity = _region_similarity(quadrant)
        region_score += similarity * weight
    # np.maximum, not max(): a NaN region score (see _region_similarity) must propagate as in the reference.
    return float(np.maximum(0.0, object_score * 0.5 + region_score * 0.5))


# ----------------------------------------------------------------------------------------------------------------
# Weighted F-measure (Margolin et al., CVPR 2014)
# ----------------------------------------------------------------------------------------------------------------
def _gaussian_taps(size: int = 7, sigma: float = 5.0) -> np.ndarray:
    """1-D factor of MATLAB's ``fspecial('gaussian', size, sigma)`` (the 2-D kernel is its outer product)."""
    half = (size - 1) / 2
    taps = np.exp(-(np.arange(-half, half + 1) ** 2) / (2 * sigma * sigma))
    return taps / taps.sum()


_GAUSSIAN_TAPS = _gaussian_taps()


# Offsets (d_row, d_col) to the candidates of a pixel's nearest foreground pixel within Euclidean distance
# sqrt(18) (all a pixel within 3 px, Chebyshev, of the foreground needs), in the order scipy's feature transform
# breaks ties: smallest squared distance, then smallest column, then smallest row.
_NEAREST_OFFSETS = sorted(
    ((dr, dc) for dr in range(-4, 5) for dc in range(-4, 5) if 0 < dr * dr + dc * dc <= 18),
    key=lambda offset: (offset[0] ** 2 + offset[1] ** 2, offset[1], offset[0]),
)
_BAND_KERNEL = np.ones((7, 7), dtype=np.uint8)


def _nearest_foreground_in_band(ground_truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the background pixels within 3 px (Chebyshev) of the foreground, and of their nearest
    foreground pixel, chosen exactly as ``scipy.ndimage.distance_transform_edt(..., return_indices=True)`` does.

    Only these pixels reach the 7x7 filter's output at foreground pixels, so a full feature transform (the most
    expensive step of the reference) is not needed. Ties are broken by (squared distance, column, row), the order
    in which scipy's separable Voronoi transform (rows within each column first, then along each row, keeping the
    first of equal candidates) resolves them.
    """
    height, width = ground_truth.shape
    band = cv2.dilate(ground_truth.view(np.uint8), _BAND_KERNEL).view(bool) & ~ground_truth
    rows, cols = np.nonzero(band)
    padded_width = width + 8
    padded = np.zeros((height + 8, padded_width), dtype=bool)
    padded[4:-4, 4:-4] = ground_truth
    padded = padded.ravel()
    position = (rows + 4) * padded_width + (cols + 4)
    source = np.empty_like(position)
    remaining = np.arange(position.size)
    for d_row, d_col in _NEAREST_OFFSETS:
        if remaining.size == 0:
            break
        candidates = position[remaining] + (d_row * padded_width + d_col)
        found = padded[candidates]
        source[remaining[found]] = candidates[found]
        remaining = remaining[~found]
    source_rows, source_cols = np.divmod(source, padded_width)
    return rows * width + cols, (source_rows - 4) * width + (source_cols - 4)


def weighted_f_measure(
    prediction: np.ndarray, ground_truth: np.ndarray, table: np.ndarray | None = None
) -> float:
    """Weighted F-measure with beta^2 = 1; 0 for an empty ground truth (as PySODMetrics)."""
    if not ground_truth.any():
        return 0.0
    table = normalization_table(prediction) if table is None else table
    error = np.abs(table[prediction] - ground_truth)

    # Pixel dependency: a background pixel takes the error of its nearest foreground pixel, then the errors are
    # smoothed with a 7x7 Gaussian (zero padding) and, at foreground pixels, the smaller of error and smoothed
    # error is kept. Background pixels farther than 3 px do not reach the foreground through the filter.
    propagated = error * ground_truth
    band, source = _nearest_foreground_in_band(ground_truth)
    propagated.flat[band] = error.flat[source]
    smoothed = cv2.sepFilter2D(
        propagated, cv2.CV_64F, _GAUSSIAN_TAPS, _GAUSSIAN_TAPS, borderType=cv2.BORDER_CONSTANT
    )
    foreground_error = error[ground_truth]
    foreground_smoothed = smoothed[ground_truth]
    foreground_error = np.where(foreground_smoothed < foreground_error, foreground_smoothed, foreground_error)

    # Pixel importance: background errors grow with the distance to the foreground. OpenCV's exact Euclidean
    # transform replaces scipy's; it returns float32, but squared distances between pixels are integers, so
    # rounding d^2 recovers them exactly up to d ~ 2000 (beyond, the weight 2 - 0.5^(d/5) is 2.0 in float64 anyway)
    # and the weights are bit-identical to the reference's.
    background = ~ground_truth
    distance = cv2.distanceTransform(background.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[
        background
    ]
    distance = np.sqrt(np.rint(np.square(distance, dtype=np.float64)))
    background_error = error[background] * (2 - np.exp(np.log(0.5) / 5 * distance))

    true_positive = foreground_error.size - foreground_error.sum()
    false_positive = background_error.sum()
    recall = 1 - foreground_error.mean()
    precision = true_positive / (true_positive + false_positive + EPS)
    beta2 = WEIGHTED_F_MEASURE_BETA2
    return float((1 + beta2) * recall * precision / (recall + beta2 * precision + EPS))


# ----------------------------------------------------------------------------------------------------------------
# Relaxed human correction effort (Qin et al., ECCV 2022), gamma = 5
# ----------------------------------------------------------------------------------------------------------------
def skeletonize_mask(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen skeleton of a boolean mask, as ``skimage.morphology.skeletonize``.

    Thinning is local and skimage pads the image with zeros, so thinning the bounding box of the foreground gives
    the same skeleton as thinning the whole image, at a fraction of the cost for small objects.
    """
    try:
        from skimage.morphology import skeletonize
    except ImportError as error:
        raise ImportError(
            "HCE needs scikit-image to skeletonise ground truths: pip install scikit-image (or pass precomputed "
            "skeletons as reference_skeleton)"
        ) from error

    skeleton = np.zeros(mask.shape, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return skeleton
    cols = np.flatnonzero(mask.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    # A copy: skimage needs a writable buffer, and the input may be a read-only view (e.g. from Arrow).
    skeleton[box] = skeletonize(mask[box].copy())
    return skeleton


def _dilate(mask: np.ndarray) -> np.ndarray:
    return cv2.dilate(mask.view(np.uint8), _CROSS).view(bool)


def _correction_points(mask: np.ndarray, condition: np.ndarray, epsilon: float) -> int:
    """Polygon control points plus independent regions needed to fix the error region ``mask``.

    Contour points of ``mask`` next to ``condition`` (dilated by the cross) are boundary points a human would
    click; consecutive runs of them form open polylines simplified with Douglas-Peucker. Connected regions (8-
    connectivity) without any such point count one click each.
    """
    mask_u8 = mask.view(np.uint8)
    contours, _ = cv2.findContours(mask_u8, cv2.RETR_TREE, cv2.CHAIN_APPROX_NONE)
    num_regions, labels = cv2.connectedComponents(mask_u8, connectivity=8)
    if not contours:
        return num_regions - 1
    lengths = np.array([len(c) for c in contours])
    points = np.concatenate(contours).reshape(-1, 2)  # (x, y)
    cols, rows = points[:, 0], points[:, 1]
    near_condition = _dilate(condition)[rows, cols]
    # A pixel is used once: only its first occurrence along the contours (in order) counts.
    first = np.zeros(len(points), dtype=bool)
    first[np.unique(rows * mask.shape[1] + cols, return_index=True)[1]] = True
    accepted = near_condition & first

    touched = np.unique(labels[rows[accepted], cols[accepted]])
    independent = num_regions - 1 - touched.size

    # Runs of consecutive accepted points, per contour.
    starts = np.zeros(len(points), dtype=bool)
    starts[np.cumsum(lengths)[:-1]] = True
    starts[0] = True
    run_start = accepted & (starts | ~np.roll(accepted, 1))
    run_end = accepted & (np.roll(starts, -1) | ~np.roll(accepted, -1))
    run_start_idx, run_end_idx = np.flatnonzero(run_start), np.flatnonzero(run_end)
    contour_of_run = np.searchsorted(np.cumsum(lengths), run_start_idx, side="right")

    boundaries: list[np.ndarray] = []
    pts = points.astype(np.int32).reshape(-1, 1, 2)
    runs_per_contour = np.bincount(contour_of_run, minlength=len(contours))
    position = 0
    for count in runs_per_contour:
        runs = [pts[run_start_idx[k] : run_end_idx[k] + 1] for k in range(position, position + count)]
        position += count
        if count > 1:
            first_x, first_y = runs[0][0, 0]
            last_x, last_y = runs[-1][-1, 0]
            if max(abs(int(first_x) - int(last_x)), abs(int(first_y) - int(last_y))) == 1:
                # The first run continues the last one across the contour's start: join them (the reference
                # appends the first run reversed).
                runs[-1] = np.concatenate([runs[-1], runs[0][::-1]])
                runs = runs[1:]
        boundaries.extend(runs)

    control_points = 0
    for boundary in boundaries:
        control_points += (
            len(boundary) if len(boundary) <= 2 else len(cv2.approxPolyDP(boundary, epsilon, False))
        )
    return control_points + independent


def human_correction_effort(
    prediction: np.ndarray,
    ground_truth: np.ndarray,
    table: np.ndarray | None = None,
    ground_truth_skeleton: np.ndarray | None = None,
    binarization: str = "normalized",
    relax: int = HCE_RELAX,
    epsilon: float = HCE_EPSILON,
) -> int:
    """Relaxed HCE_gamma (gamma = ``relax``): approximate number of clicks to correct the binarised prediction.

    Args:
        binarization: how the prediction is binarised (see :data:`HCE_BINARIZATIONS`): ``"normalized"``
            (PySODMetrics: ``normalised > 0.5``, after its min-max normalisation) or ``"raw"`` (BiRefNet's and the
            DIS authors' evaluation code: ``uint8 prediction > 128``). They differ on maps that do not span 0..255
            and on pixels equal to 128.
    """
    if binarization not in HCE_BINARIZATIONS:
        raise ValueError(f"binarization must be one of {HCE_BINARIZATIONS}, got {binarization!r}")
    skeleton = skeletonize_mask(ground_truth) if ground_truth_skeleton is None else ground_truth_skeleton
    if binarization == "raw":
        predicted = prediction > 128
    else:
        table = normalization_table(prediction) if table is None else table
        predicted = (table > 0.5)[prediction]
    true_positive = ground_truth & predicted
    false_positive = predicted & ~ground_truth
    false_negative = ground_truth & ~predicted

    union = (ground_truth | predicted).view(np.uint8)
    eroded_union = cv2.erode(union, _CROSS, iterations=relax).view(bool)

    # Relaxed false positives: keep those reachable (within `relax` steps, outside the ground truth) from the
    # false positives that survive the erosion of the union.
    relaxed_fp = false_positive & eroded_union
    for _ in range(relax):
        relaxed_fp = _dilate(relaxed_fp) & ~ground_truth
    relaxed_fp &= false_positive

    relaxed_fn = false_negative & eroded_union
    for _ in range(relax):
        relaxed_fn = _dilate(relaxed_fn) & ~predicted
    relaxed_fn &= false_negative
    # Missed skeleton pixels are structural and always need correcting.
    relaxed_fn |= skeleton & ~true_positive

    fp_clicks = _correction_points(relaxed_fp, true_positive | relaxed_fn, epsilon)
    fn_clicks = _correction_points(relaxed_fn, ~(true_positive | relaxed_fp | relaxed_fn), epsilon)
    return fp_clicks + fn_clicks
