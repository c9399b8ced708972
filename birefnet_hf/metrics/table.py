# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The one table of metrics: key, title, name, direction and model-index type of every score the package reports.

Every front end reads it from here: :class:`~birefnet_hf.metrics.DISMetrics` (its keys and their order,
:data:`METRIC_NAMES`), :class:`~birefnet_hf.metrics.MattingMetrics` (:data:`MATTING_METRIC_NAMES`),
``examples/evaluate_dis.py`` and ``examples/run_demo.py`` (table columns and arrows), training validation (which
direction is better, for the best checkpoint and early stopping) and the model cards written by ``publish``
(model-index entries and the evaluation table).

=========  ============  ==========================================  =========  ======================
key        title         name (model-index ``name``)                 better     authors' evaluation
=========  ============  ==========================================  =========  ======================
max_fm     maxFβ         max F-measure (F^x_β)                       higher     maxFm
wfm        Fβω           weighted F-measure (F^ω_β)                  higher     wFmeasure
mae        M             MAE (M)                                     lower      MAE
sm         Sα            S-measure (S_α)                             higher     Smeasure
mean_em    meanEφ        mean E-measure (E^m_φ)                      higher     meanEm
hce        HCEγ          human correction efforts (HCE_γ)            lower      HCE
max_em     maxEφ         max E-measure (E^x_φ)                       higher     maxEm
mean_fm    meanFβ        mean F-measure (F^m_β)                      higher     meanFm
adp_em     adpEφ         adaptive E-measure (E^a_φ)                  higher     adpEm
adp_fm     adpFβ         adaptive F-measure (F^a_β)                  higher     adpFm
sad        SAD           sum of absolute differences (SAD)           lower
mse        MSE           mean squared error (MSE)                    lower
grad       Grad          gradient error (Grad)                       lower
conn       Conn          connectivity error (Conn)                   lower
=========  ============  ==========================================  =========  ======================

The DIS rows are in the column order of the BiRefNet paper's DIS tables (first six), as its evaluation code prints
them. "authors' evaluation" is the name the authors' ``eval_existingOnes.py`` prints (and their model cards
quote).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DIS_METRICS",
    "MATTING_METRICS",
    "METRICS",
    "LOWER_IS_BETTER",
    "METRIC_NAMES",
    "MATTING_METRIC_NAMES",
    "Metric",
    "get_metric",
    "is_better",
]


@dataclass(frozen=True)
class Metric:
    """One reported score.

    Attributes:
        key: the key in ``compute()`` results, results files and ``--metric_for_best_model``.
        title: the paper's notation, for table headers (``"maxFβ"``).
        name: the descriptive name (the model-index ``name``).
        higher_is_better: the direction.
        model_index_type: the model-index ``type`` of Hub model cards.
        authors_name: the name the authors' evaluation code prints (``""`` when it does not report it).
        decimals: decimals of a table cell.
    """

    key: str
    title: str
    name: str
    higher_is_better: bool
    model_index_type: str
    authors_name: str = ""
    decimals: int = 3

    @property
    def arrow(self) -> str:
        """``"↑"`` when higher is better, else ``"↓"``."""
        return "↑" if self.higher_is_better else "↓"

    @property
    def header(self) -> str:
        """A table header: the title and its arrow (``"maxFβ ↑"``)."""
        return f"{self.title} {self.arrow}"

    def format(self, value: float) -> str:
        """A table cell: ``value`` with :attr:`decimals` decimals."""
        return f"{value:.{self.decimals}f}"


#: The DIS measures of :class:`~birefnet_hf.metrics.DISMetrics`, in the paper's column order.
DIS_METRICS: tuple[Metric, ...] = (
    Metric("max_fm", "maxFβ", "max F-measure (F^x_β)", True, "max-f-measure", "maxFm"),
    Metric("wfm", "Fβω", "weighted F-measure (F^ω_β)", True, "weighted-f-measure", "wFmeasure"),
    Metric("mae", "M", "MAE (M)", False, "mae", "MAE"),
    Metric("sm", "Sα", "S-measure (S_α)", True, "s-measure", "Smeasure"),
    Metric("mean_em", "meanEφ", "mean E-measure (E^m_φ)", True, "mean-e-measure", "meanEm"),
    Metric("hce", "HCEγ", "human correction efforts (HCE_γ)", False, "hce", "HCE", decimals=0),
    Metric("max_em", "maxEφ", "max E-measure (E^x_φ)", True, "max-e-measure", "maxEm"),
    Metric("mean_fm", "meanFβ", "mean F-measure (F^m_β)", True, "mean-f-measure", "meanFm"),
    Metric("adp_em", "adpEφ", "adaptive E-measure (E^a_φ)", True, "adaptive-e-measure", "adpEm"),
    Metric("adp_fm", "adpFβ", "adaptive F-measure (F^a_β)", True, "adaptive-f-measure", "adpFm"),
)

#: The alpha-matting errors of :class:`~birefnet_hf.metrics.MattingMetrics` (Rhemann et al., 2009).
MATTING_METRICS: tuple[Metric, ...] = (
    Metric("sad", "SAD", "sum of absolute differences (SAD)", False, "sad"),
    Metric("mse", "MSE", "mean squared error (MSE)", False, "mse"),
    Metric("grad", "Grad", "gradient error (Grad)", False, "grad"),
    Metric("conn", "Conn", "connectivity error (Conn)", False, "conn"),
)

#: Every metric by key.
METRICS: dict[str, Metric] = {metric.key: metric for metric in (*DIS_METRICS, *MATTING_METRICS)}
#: The keys of :meth:`DISMetrics.compute <birefnet_hf.metrics.DISMetrics.compute>`, in the paper's column order.
METRIC_NAMES: tuple[str, ...] = tuple(metric.key for metric in DIS_METRICS)
#: The keys of :meth:`MattingMetrics.compute <birefnet_hf.metrics.MattingMetrics.compute>`.
MATTING_METRIC_NAMES: tuple[str, ...] = tuple(metric.key for metric in MATTING_METRICS)
#: Keys of the metrics where lower is better.
LOWER_IS_BETTER: frozenset[str] = frozenset(
    key for key, metric in METRICS.items() if not metric.higher_is_better
)


def get_metric(key: str) -> Metric:
    """The :class:`Metric` of ``key``; ``KeyError`` naming the known keys otherwise."""
    try:
        return METRICS[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; known metrics: {', '.join(METRICS)}") from None


def is_better(key: str, value: float, best: float) -> bool:
    """Whether ``value`` of metric ``key`` beats ``best`` (strictly), in the metric's direction."""
    return value > best if get_metric(key).higher_is_better else value < best
