# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""birefnet_hf.metrics.table: the one table of metric keys, titles, names and directions, and its readers."""

from __future__ import annotations

import numpy as np
import pytest

from birefnet_hf.metrics import (
    LOWER_IS_BETTER,
    MATTING_METRIC_NAMES,
    METRIC_NAMES,
    METRICS,
    DISMetrics,
    MattingMetrics,
    get_metric,
    is_better,
)


def test_keys_are_what_the_evaluators_compute():
    rng = np.random.default_rng(0)
    truth = np.zeros((24, 32), np.uint8)
    truth[6:18, 8:24] = 255
    prediction = np.clip(truth * 0.8 + rng.normal(0, 20, truth.shape), 0, 255).astype(np.uint8)
    dis = DISMetrics()
    dis.update(prediction, truth)
    assert list(dis.compute()) == list(METRIC_NAMES)
    matting = MattingMetrics()
    matting.update(prediction, truth)
    assert set(matting.compute()) == set(MATTING_METRIC_NAMES)
    assert set(METRICS) == {*METRIC_NAMES, *MATTING_METRIC_NAMES}


def test_paper_order_titles_and_directions():
    assert METRIC_NAMES[:6] == (
        "max_fm",
        "wfm",
        "mae",
        "sm",
        "mean_em",
        "hce",
    )  # the paper's DIS table columns
    assert LOWER_IS_BETTER == {"mae", "hce", "sad", "mse", "grad", "conn"}
    assert [get_metric(key).header for key in METRIC_NAMES[:6]] == [
        "maxFβ ↑",
        "Fβω ↑",
        "M ↓",
        "Sα ↑",
        "meanEφ ↑",
        "HCEγ ↓",
    ]
    assert get_metric("wfm").authors_name == "wFmeasure" and get_metric("max_fm").authors_name == "maxFm"
    assert get_metric("hce").format(512.6) == "513" and get_metric("sm").format(0.91234) == "0.912"
    assert is_better("wfm", 0.8, 0.7) and not is_better("wfm", 0.7, 0.7)
    assert is_better("mae", 0.05, 0.06) and not is_better("hce", 600, 500)
    with pytest.raises(KeyError, match="unknown metric 'f1'.*max_fm"):
        get_metric("f1")


def test_readers_take_the_table():
    from birefnet_hf.model_card import METRICS as CARD_METRICS
    from birefnet_hf.training.validation import LOWER_IS_BETTER as VALIDATION_LOWER

    assert list(CARD_METRICS) == list(METRIC_NAMES)
    assert CARD_METRICS["wfm"] == ("weighted-f-measure", "weighted F-measure (F^ω_β)")
    assert all(
        CARD_METRICS[key] == (METRICS[key].model_index_type, METRICS[key].name) for key in METRIC_NAMES
    )
    assert VALIDATION_LOWER == LOWER_IS_BETTER | {"loss"}
