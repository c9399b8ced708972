# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Evaluation metrics of dichotomous image segmentation, identical to PySODMetrics.

* :class:`DISMetrics` - streaming evaluator (``update(pred, gt)`` / ``compute()``), for scripts and training loops;
* :func:`load_dis_metrics` - the same as an ``evaluate`` metric (``add_batch`` / ``compute``), loaded offline from
  the module file shipped with the package (:data:`DIS_METRICS_PATH`);
* :mod:`birefnet_hf.metrics.measures` - the per-image measures;
* :class:`MattingMetrics` - alpha-matting errors SAD, MSE, Grad, Conn (:mod:`birefnet_hf.metrics.matting`);
* :data:`METRICS` - the one table of every score's key, title, name and direction (:mod:`birefnet_hf.metrics.table`).

Scores (keys of ``compute()``): ``sm``, ``wfm``, ``mae``, ``max_fm``, ``mean_fm``, ``adp_fm``, ``max_em``,
``mean_em``, ``adp_em``, ``hce``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .evaluator import METRIC_NAMES, DISMetrics, evaluate_pairs
from .inputs import prediction_to_uint8, prepare_pair, reference_to_mask
from .matting import MATTING_METRIC_NAMES, MattingMetrics
from .measures import compute_image_measures, skeletonize_mask
from .table import DIS_METRICS, LOWER_IS_BETTER, MATTING_METRICS, METRICS, Metric, get_metric, is_better

#: Path of the ``evaluate`` module script (``evaluate.load(str(DIS_METRICS_PATH))``).
DIS_METRICS_PATH = Path(__file__).with_name("dis_metrics.py")

__all__ = [
    "DIS_METRICS",
    "DIS_METRICS_PATH",
    "LOWER_IS_BETTER",
    "MATTING_METRICS",
    "METRICS",
    "Metric",
    "get_metric",
    "is_better",
    "MATTING_METRIC_NAMES",
    "METRIC_NAMES",
    "DISMetrics",
    "MattingMetrics",
    "compute_image_measures",
    "evaluate_pairs",
    "load_dis_metrics",
    "prediction_to_uint8",
    "prepare_pair",
    "reference_to_mask",
    "skeletonize_mask",
]


def load_dis_metrics(**kwargs: Any):
    """Load the DIS metrics as an ``evaluate.Metric`` from the local module file (no network access).

    Keyword arguments go to ``evaluate.load`` (e.g. ``experiment_id``, ``keep_in_memory``, ``num_process`` /
    ``process_id`` for distributed evaluation, ``cache_dir``).
    """
    import evaluate

    return evaluate.load(str(DIS_METRICS_PATH), **kwargs)
