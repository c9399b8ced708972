# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Streaming DIS evaluation: feed (prediction, ground truth) pairs, get the dataset-level scores.

:class:`DISMetrics` accumulates per-image results the way PySODMetrics does and reports the ten scores used in the
DIS literature (BiRefNet, IS-Net, ...):

=========  ==========================================================================================
key        definition (dataset level)
=========  ==========================================================================================
sm         S-measure (alpha = 0.5), mean over images
wfm        weighted F-measure (beta^2 = 1), mean over images
mae        mean absolute error of the normalised prediction, mean over images
max_fm     max over thresholds of the dataset-mean F-measure curve (beta^2 = 0.3, 256 thresholds)
mean_fm    mean over thresholds of the dataset-mean F-measure curve
adp_fm     F-measure at the adaptive threshold (2 x mean prediction), mean over images
max_em     max over thresholds of the dataset-mean E-measure curve
mean_em    mean over thresholds of the dataset-mean E-measure curve
adp_em     E-measure at the adaptive threshold, mean over images
hce        relaxed human correction effort HCE_5 (gamma = 5), mean over images
=========  ==========================================================================================

It keeps only running sums and a few floats per image, so it suits validation inside training loops; the
``evaluate`` module (:func:`birefnet_hf.metrics.load_dis_metrics`) uses it under the hood.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from transformers.utils import logging

from .inputs import prepare_pair, reference_to_mask, to_numpy
from .measures import HCE_BINARIZATIONS, NUM_THRESHOLDS, ImageMeasures, compute_image_measures
from .table import METRIC_NAMES  # the keys of compute(), in the paper's column order (table.py)

logger = logging.get_logger(__name__)

__all__ = ["METRIC_NAMES", "DISMetrics"]


_SCALARS = ("s_measure", "weighted_f_measure", "mae", "adaptive_f_measure", "adaptive_e_measure", "hce")
_CURVES = ("f_measure_curve", "e_measure_curve", "precision_curve", "recall_curve")


def _as_items(values: Any, name: str) -> list:
    """A batch as a list of 2-D maps: a sequence of maps, or a stacked (N, H, W) array / tensor."""
    if isinstance(values, (list, tuple)):
        return list(values)
    array = to_numpy(values, name)
    if array.ndim != 3:
        hint = "; squeeze the channel dimension of (N, 1, H, W) batches" if array.ndim == 4 else ""
        raise ValueError(
            f"{name} must be a list of 2-D maps or an (N, H, W) array, got shape {tuple(array.shape)}{hint}"
        )
    return list(array)


class DISMetrics:
    """Streaming evaluator of the DIS metrics, identical to PySODMetrics.

    Args:
        num_workers: compute per-image measures in this many background threads (0: synchronously in
            :meth:`update`). The heavy parts (skeletonisation, distance transforms, OpenCV morphology) release the
            GIL, so a worker or two overlap metric computation with model inference; results are accumulated in
            submission order and are identical to the synchronous ones. Inputs are copied before being queued.
        hce_binarization: how HCE binarises predictions: ``"normalized"`` (default, PySODMetrics: min-max
            normalised map > 0.5) or ``"raw"`` (BiRefNet's and the DIS authors' evaluation code: uint8 map > 128,
            the setting of the numbers in those papers). Every other score is unaffected.

    Example:

    ```python
    >>> import numpy as np
    >>> from birefnet_hf.metrics import DISMetrics
    >>> metrics = DISMetrics()
    >>> gt = np.zeros((64, 64), dtype=np.uint8); gt[16:48, 16:48] = 255
    >>> metrics.update(gt, gt)  # a perfect prediction
    >>> round(metrics.compute()["max_fm"], 3)
    1.0
    ```
    """

    def __init__(self, num_workers: int = 0, hce_binarization: str = "normalized"):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative int, got {num_workers!r}")
        if hce_binarization not in HCE_BINARIZATIONS:
            raise ValueError(f"hce_binarization must be one of {HCE_BINARIZATIONS}, got {hce_binarization!r}")
        self.num_workers = num_workers
        self.hce_binarization = hce_binarization
        self._executor: ThreadPoolExecutor | None = None
        self._pending: deque[Future] = deque()
        self.reset()

    # ------------------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every image added so far."""
        self._drain()
        self._count = 0
        self._scalars: dict[str, list[float]] = {key: [] for key in _SCALARS}
        self._curve_sums = {key: np.zeros(NUM_THRESHOLDS) for key in _CURVES}

    def __len__(self) -> int:
        return self._count + len(self._pending)

    @property
    def num_images(self) -> int:
        """Number of images added (including those still being processed by workers)."""
        return len(self)

    def close(self) -> None:
        """Finish pending work and stop the worker threads (a later :meth:`update` starts new ones)."""
        self._drain()
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    def __enter__(self) -> DISMetrics:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------------------
    def update(self, prediction: Any, reference: Any, *, reference_skeleton: Any = None) -> None:
        """Add one image.

        Args:
            prediction: 2-D map, ``uint8`` 0..255 or float in [0, 1] (see :mod:`birefnet_hf.metrics.inputs`).
            reference: 2-D ground truth, ``bool`` or 0/255 integers.
            reference_skeleton: optional precomputed skeleton of the ground truth for HCE (the authors cache them
                under ``ske/``); computed with :func:`~birefnet_hf.metrics.measures.skeletonize_mask` if omitted.
        """
        self._submit(
            *self._prepare(
                prediction, reference, reference_skeleton, "prediction", "reference", "reference_skeleton"
            )
        )

    def update_batch(
        self, predictions: Any, references: Any, *, reference_skeletons: Sequence[Any] | None = None
    ) -> None:
        """Add several images: lists of 2-D maps (any sizes) or stacked (N, H, W) arrays / tensors."""
        predictions = _as_items(predictions, "predictions")
        references = _as_items(references, "references")
        if len(predictions) != len(references):
            raise ValueError(
                f"predictions and references must have the same length, got {len(predictions)} and {len(references)}"
            )
        if not predictions:
            raise ValueError("predictions and references are empty")
        if reference_skeletons is None:
            reference_skeletons = [None] * len(predictions)
        elif len(reference_skeletons) != len(predictions):
            raise ValueError(
                f"reference_skeletons must have one entry per image ({len(predictions)}), got {len(reference_skeletons)}"
            )
        # Convert (and so validate) the whole batch before adding any of it.
        prepared = [
            self._prepare(
                prediction,
                reference,
                skeleton,
                f"predictions[{index}]",
                f"references[{index}]",
                f"reference_skeletons[{index}]",
            )
            for index, (prediction, reference, skeleton) in enumerate(
                zip(predictions, references, reference_skeletons, strict=True)
            )
        ]
        for pred, mask, skeleton in prepared:
            self._submit(pred, mask, skeleton)

    def update_prepared(
        self, prediction: np.ndarray, reference: np.ndarray, reference_skeleton: np.ndarray | None = None
    ) -> None:
        """Add a pair already converted by :func:`~birefnet_hf.metrics.inputs.prepare_pair` (no checks)."""
        self._submit(prediction, reference, reference_skeleton)

    @staticmethod
    def _prepare(prediction, reference, skeleton, prediction_name, reference_name, skeleton_name) -> tuple:
        pred, mask = prepare_pair(prediction, reference, prediction_name, reference_name)
        if skeleton is not None:
            skeleton = reference_to_mask(skeleton, skeleton_name)
            if skeleton.shape != mask.shape:
                raise ValueError(
                    f"{skeleton_name} has shape {skeleton.shape} but {reference_name} has shape {mask.shape}"
                )
        return pred, mask, skeleton

    def _submit(self, prediction: np.ndarray, reference: np.ndarray, skeleton: np.ndarray | None) -> None:
        if self.num_workers == 0:
            self._accumulate(compute_image_measures(prediction, reference, skeleton, self.hce_binarization))
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.num_workers, thread_name_prefix="dis-metrics")
        # Copies: the caller may reuse its buffers (e.g. a tensor's storage) before a worker reads them.
        prediction, reference = prediction.copy(), reference.copy()
        skeleton = None if skeleton is None else skeleton.copy()
        self._pending.append(
            self._executor.submit(
                compute_image_measures, prediction, reference, skeleton, self.hce_binarization
            )
        )
        # Bound the memory held by queued images.
        while len(self._pending) > 2 * self.num_workers:
            self._accumulate(self._pending.popleft().result())

    def _drain(self) -> None:
        while self._pending:
            self._accumulate(self._pending.popleft().result())

    def _accumulate(self, measures: ImageMeasures) -> None:
        if math.isnan(measures.s_measure):
            logger.warning(
                f"Image #{self._count}: the S-measure is NaN, as in PySODMetrics and the MATLAB reference, because "
                "the foreground centroid lies on the last row or column; the dataset S-measure will be NaN."
            )
        for key in _SCALARS:
            self._scalars[key].append(float(getattr(measures, key)))
        for key in _CURVES:
            self._curve_sums[key] += getattr(measures, key)
        self._count += 1

    # ------------------------------------------------------------------------------------------------------------
    def compute(self) -> dict[str, float]:
        """Dataset-level scores (see the module docstring); the state is kept (call :meth:`reset` to clear)."""
        self._drain()
        if self._count == 0:
            raise ValueError("DISMetrics.compute() called before any image was added")

        def mean(key: str) -> float:
            return float(np.mean(np.array(self._scalars[key], dtype=np.float64)))

        f_curve = self._curve_sums["f_measure_curve"] / self._count
        e_curve = self._curve_sums["e_measure_curve"] / self._count
        return {
            "max_fm": float(f_curve.max()),
            "wfm": mean("weighted_f_measure"),
            "mae": mean("mae"),
            "sm": mean("s_measure"),
            "mean_em": float(e_curve.mean()),
            "hce": mean("hce"),
            "max_em": float(e_curve.max()),
            "mean_fm": float(f_curve.mean()),
            "adp_em": mean("adaptive_e_measure"),
            "adp_fm": mean("adaptive_f_measure"),
        }

    def curves(self) -> dict[str, np.ndarray]:
        """Dataset-mean curves over the binarisation thresholds, for PR and F-measure/threshold plots.

        Returns ``thresholds`` (0..255 ascending) and, aligned with it, ``precision``, ``recall``, ``f_measure``
        and ``e_measure`` (precision and recall are averaged over images, as PySODMetrics does).
        """
        self._drain()
        if self._count == 0:
            raise ValueError("DISMetrics.curves() called before any image was added")
        curves = {"thresholds": np.arange(NUM_THRESHOLDS)}
        for name, key in (
            ("precision", "precision_curve"),
            ("recall", "recall_curve"),
            ("f_measure", "f_measure_curve"),
            ("e_measure", "e_measure_curve"),
        ):
            # Stored by decreasing threshold (index i is threshold 255 - i); flip to ascending.
            curves[name] = (self._curve_sums[key] / self._count)[::-1].copy()
        return curves

    def per_image_scores(self) -> dict[str, list[float]]:
        """Per-image scalar scores (``sm``, ``wfm``, ``mae``, ``adp_fm``, ``adp_em``, ``hce``) in input order."""
        self._drain()
        names = {"s_measure": "sm", "weighted_f_measure": "wfm", "mae": "mae", "adaptive_f_measure": "adp_fm",
                 "adaptive_e_measure": "adp_em", "hce": "hce"}  # fmt: skip
        return {names[key]: list(values) for key, values in self._scalars.items()}


def evaluate_pairs(predictions: Iterable[Any], references: Iterable[Any]) -> dict[str, float]:
    """The DIS scores of two paired iterables of maps (consumed one pair at a time)."""
    metrics = DISMetrics()
    for index, (prediction, reference) in enumerate(zip(predictions, references, strict=True)):
        metrics._submit(
            *metrics._prepare(
                prediction, reference, None, f"predictions[{index}]", f"references[{index}]", ""
            )
        )
    if len(metrics) == 0:
        raise ValueError("predictions and references are empty")
    return metrics.compute()
