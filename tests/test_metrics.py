# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""DIS metrics: identical to PySODMetrics on varied maps; input conversion; errors; the ``evaluate`` wrapper."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import py_sod_metrics
import pytest
import torch
from skimage.morphology import skeletonize

from birefnet_hf.metrics import (
    DIS_METRICS_PATH,
    METRIC_NAMES,
    DISMetrics,
    compute_image_measures,
    load_dis_metrics,
    skeletonize_mask,
)
from birefnet_hf.metrics.measures import human_correction_effort, structure_measure, weighted_f_measure

ALL_KEYS = {"sm", "wfm", "mae", "max_fm", "mean_fm", "adp_fm", "max_em", "mean_em", "adp_em", "hce"}


# ----------------------------------------------------------------------------------------------------------------
# Test data: a few dozen small maps of mixed sizes and content
# ----------------------------------------------------------------------------------------------------------------
def _random_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """0/255 mask with filled ellipses and thin (1-2 px) lines."""
    mask = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(1, 4)):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(2, max(3, width // 3))), int(rng.integers(2, max(3, height // 3))))
        cv2.ellipse(mask, center, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    for _ in range(rng.integers(0, 5)):
        start = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(mask, start, end, 255, int(rng.integers(1, 3)))
    return mask


def _soft_prediction(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """A blurred, shifted, noisy version of ``mask`` as uint8 0..255."""
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), float(rng.uniform(0.5, 3)))
    soft = np.roll(soft, int(rng.integers(-3, 4)), axis=int(rng.integers(0, 2)))
    soft += rng.normal(0, 20, soft.shape)
    return np.clip(soft, 0, 255).astype(np.uint8)


def make_pairs(seed: int = 0, count: int = 40) -> list[tuple[np.ndarray, np.ndarray]]:
    """(uint8 prediction, uint8 0/255 ground truth) pairs, 32..160 px, covering the special cases."""
    rng = np.random.default_rng(seed)
    pairs = []
    for index in range(count):
        height, width = (int(v) for v in rng.integers(32, 161, size=2))
        gt = _random_mask(rng, height, width)
        pred = _soft_prediction(rng, gt)
        kind = index % 10
        if kind == 1:  # empty ground truth
            gt[:] = 0
        elif kind == 2:  # full ground truth
            gt[:] = 255
        elif kind == 3:  # binary prediction
            pred = np.where(pred > 127, 255, 0).astype(np.uint8)
        elif kind == 4:  # constant prediction
            pred[:] = rng.integers(0, 256)
        elif kind == 5:  # pure noise prediction
            pred = rng.integers(0, 256, size=(height, width)).astype(np.uint8)
        elif kind == 6:  # thin structures only
            gt[:] = 0
            for _ in range(4):
                start = (int(rng.integers(0, width)), int(rng.integers(0, height)))
                end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
                cv2.line(gt, start, end, 255, 1)
            pred = _soft_prediction(rng, gt)
        elif kind == 7:  # speckled ground truth (many tiny regions)
            gt = np.where(rng.random((height, width)) > 0.8, 255, 0).astype(np.uint8)
        elif kind == 8:  # low-contrast prediction (min-max normalisation matters)
            pred = (pred // 4 + 100).astype(np.uint8)
        elif kind == 9:  # empty prediction
            pred[:] = 0
        pairs.append((pred, gt))
    return pairs


@pytest.fixture(scope="module")
def pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    return make_pairs()


def reference_scores(pairs) -> dict[str, float]:
    """The ten scores computed by PySODMetrics, aggregated as BiRefNet's evaluation does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm, em = py_sod_metrics.Fmeasure(), py_sod_metrics.Emeasure()
        sm, wfm = py_sod_metrics.Smeasure(), py_sod_metrics.WeightedFmeasure()
        mae, hce = py_sod_metrics.MAE(), py_sod_metrics.HumanCorrectionEffortMeasure()
        for pred, gt in pairs:
            for measure in (fm, em, sm, wfm, mae, hce):
                measure.step(pred, gt)
        f, e = fm.get_results()["fm"], em.get_results()["em"]
        return {
            "sm": sm.get_results()["sm"],
            "wfm": wfm.get_results()["wfm"],
            "mae": mae.get_results()["mae"],
            "max_fm": f["curve"].max(),
            "mean_fm": f["curve"].mean(),
            "adp_fm": f["adp"],
            "max_em": e["curve"].max(),
            "mean_em": e["curve"].mean(),
            "adp_em": e["adp"],
            "hce": hce.get_results()["hce"],
        }


def assert_scores_equal(ours: dict, reference: dict) -> None:
    assert set(ours) == ALL_KEYS
    for key in ALL_KEYS:
        assert isinstance(ours[key], float), key
        if key == "hce":
            assert ours[key] == reference[key], (key, ours[key], reference[key])
        else:
            np.testing.assert_allclose(ours[key], reference[key], rtol=0, atol=1e-6, err_msg=key)


# ----------------------------------------------------------------------------------------------------------------
# Agreement with PySODMetrics
# ----------------------------------------------------------------------------------------------------------------
def test_dataset_scores_match_pysodmetrics(pairs):
    metrics = DISMetrics()
    for pred, gt in pairs:
        metrics.update(pred, gt)
    assert len(metrics) == len(pairs)
    assert_scores_equal(metrics.compute(), reference_scores(pairs))


@pytest.mark.parametrize("index", range(40))
def test_per_image_measures_match_pysodmetrics(pairs, index):
    pred, gt = pairs[index]
    ours = compute_image_measures(pred, gt > 128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm = py_sod_metrics.Fmeasure()
        fm.step(pred, gt)
        em, sm = py_sod_metrics.Emeasure(), py_sod_metrics.Smeasure()
        wfm, mae = py_sod_metrics.WeightedFmeasure(), py_sod_metrics.MAE()
        hce = py_sod_metrics.HumanCorrectionEffortMeasure()
        for measure in (em, sm, wfm, mae, hce):
            measure.step(pred, gt)
    f, e = fm.get_results(), em.get_results()["em"]
    np.testing.assert_allclose(ours.f_measure_curve, f["fm"]["curve"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.precision_curve, f["pr"]["p"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall_curve, f["pr"]["r"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.e_measure_curve, e["curve"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.adaptive_f_measure, f["fm"]["adp"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.adaptive_e_measure, e["adp"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.s_measure, sm.get_results()["sm"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.mae, mae.get_results()["mae"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.weighted_f_measure, wfm.get_results()["wfm"], rtol=0, atol=1e-12)
    assert ours.hce == hce.get_results()["hce"]


def test_raw_hce_binarization_matches_birefnets_evaluation(pairs):
    """BiRefNet's (and the DIS authors') HCE binarises the uint8 map at > 128 without min-max normalisation.

    PySODMetrics' HCE with ``normalize=False`` on that binary map computes exactly BiRefNet's variant.
    """
    reference = py_sod_metrics.HumanCorrectionEffortMeasure()
    metrics = DISMetrics(hce_binarization="raw")
    differs = False
    for pred, gt in pairs:
        reference.step((pred > 128).astype(np.float64), gt > 128, normalize=False)
        metrics.update(pred, gt)
        raw = compute_image_measures(pred, gt > 128, hce_binarization="raw").hce
        differs |= raw != compute_image_measures(pred, gt > 128).hce
    assert metrics.compute()["hce"] == reference.get_results()["hce"]
    assert differs  # the low-contrast maps binarise differently
    with pytest.raises(ValueError, match="hce_binarization must be one of"):
        DISMetrics(hce_binarization="otsu")


def test_standalone_measures_match_compute_image_measures(pairs):
    for pred, gt in pairs[:12]:
        mask = gt > 128
        measures = compute_image_measures(pred, mask)
        assert structure_measure(pred, mask) == pytest.approx(measures.s_measure, abs=1e-15, nan_ok=True)
        assert weighted_f_measure(pred, mask) == measures.weighted_f_measure
        assert human_correction_effort(pred, mask) == measures.hce


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (3, 5)])
def test_tiny_maps_match_pysodmetrics(shape):
    rng = np.random.default_rng(sum(shape))
    pairs = []
    for trial in range(12):
        gt = np.where(rng.random(shape) > rng.random(), 255, 0).astype(np.uint8)
        pred = rng.integers(0, 256, size=shape).astype(np.uint8)
        if trial % 4 == 0:
            pred[:] = pred.flat[0]
        pairs.append((pred, gt))
    metrics = DISMetrics()
    metrics.update_batch([p for p, _ in pairs], [g for _, g in pairs])
    ours, reference = metrics.compute(), reference_scores(pairs)
    keys = ALL_KEYS
    if shape == (1, 1):  # deliberate departure: PySODMetrics' E-measure of a 1x1 map is ~4.5e15
        keys = ALL_KEYS - {"max_em", "mean_em", "adp_em"}
        assert all(0 <= ours[key] <= 1 for key in ("max_em", "mean_em", "adp_em"))
    for key in keys:  # S-measure may be NaN here, in both implementations
        np.testing.assert_allclose(ours[key], reference[key], rtol=0, atol=1e-6, equal_nan=True, err_msg=key)


def test_s_measure_nan_like_reference_when_centroid_on_last_row():
    # The foreground centroid rounds to the last row: the reference averages an empty quadrant -> NaN.
    gt = np.zeros((20, 30), np.uint8)
    gt[-1, 5:20] = 255
    pred = np.zeros_like(gt)
    pred[-1, 3:18] = 200
    ours = compute_image_measures(pred, gt > 128).s_measure
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = py_sod_metrics.Smeasure()
        reference.step(pred, gt)
    assert np.isnan(reference.get_results()["sm"]) and np.isnan(ours)


def test_skeleton_matches_skimage():
    rng = np.random.default_rng(3)
    for index in range(20):
        height, width = (int(v) for v in rng.integers(8, 120, size=2))
        if index % 3 == 0:
            mask = rng.random((height, width)) > 0.5
        else:
            mask = _random_mask(rng, height, width) > 0
        np.testing.assert_array_equal(skeletonize_mask(mask), skeletonize(mask))
    assert not skeletonize_mask(np.zeros((5, 7), bool)).any()


def test_given_skeleton_is_used(pairs):
    pred, gt = pairs[0]
    computed = compute_image_measures(pred, gt > 128).hce
    given = compute_image_measures(pred, gt > 128, skeletonize(gt > 128)).hce
    assert given == computed
    # An empty skeleton removes the structural false negatives: never more clicks.
    assert compute_image_measures(pred, gt > 128, np.zeros(gt.shape, bool)).hce <= computed
    metrics = DISMetrics()
    metrics.update(pred, gt, reference_skeleton=skeletonize(gt > 128).astype(np.uint8) * 255)
    assert metrics.compute()["hce"] == computed


# ----------------------------------------------------------------------------------------------------------------
# Input conversion
# ----------------------------------------------------------------------------------------------------------------
def _scores(predictions, references) -> dict[str, float]:
    metrics = DISMetrics()
    metrics.update_batch(predictions, references)
    return metrics.compute()


def test_float_predictions_are_quantised_like_saved_pngs(pairs):
    rng = np.random.default_rng(1)
    floats = [np.clip(p / 255 + rng.normal(0, 0.01, p.shape), 0, 1) for p, _ in pairs[:8]]
    gts = [g for _, g in pairs[:8]]
    quantised = [(f.astype(np.float32) * 255).astype(np.uint8) for f in floats]
    assert_scores_equal(_scores(floats, gts), reference_scores(list(zip(quantised, gts, strict=True))))
    # torch tensors (float32 probabilities, as a model gives them) are accepted too.
    tensors = [torch.from_numpy(f.astype(np.float32)) for f in floats]
    assert _scores(tensors, [torch.from_numpy(g) for g in gts]) == _scores(floats, gts)


def test_reference_dtypes_are_equivalent(pairs):
    preds, gts = [p for p, _ in pairs[:6]], [g for _, g in pairs[:6]]
    expected = _scores(preds, gts)
    assert _scores(preds, [g > 128 for g in gts]) == expected
    assert _scores(preds, [(g > 128).astype(np.float64) for g in gts]) == expected
    assert _scores(preds, [g.astype(np.int64) for g in gts]) == expected
    assert _scores([p.astype(np.int32) for p in preds], gts) == expected
    assert _scores(np.stack([preds[0], preds[0]]), np.stack([gts[0], gts[0]])) == _scores(
        preds[:1] * 2, gts[:1] * 2
    )


def test_prediction_of_other_size_is_resized_like_the_authors(pairs):
    pred, gt = pairs[0]
    small = cv2.resize(pred, (pred.shape[1] // 2 + 3, pred.shape[0] // 2 + 1), interpolation=cv2.INTER_AREA)
    resized = cv2.resize(small, (gt.shape[1], gt.shape[0]))
    assert_scores_equal(_scores([small], [gt]), reference_scores([(resized, gt)]))


def test_threaded_updates_give_identical_results(pairs):
    with DISMetrics(num_workers=2) as threaded:
        for pred, gt in pairs:
            threaded.update(pred, gt)
        threaded_scores, threaded_curves = threaded.compute(), threaded.curves()
    serial = DISMetrics()
    serial.update_batch([p for p, _ in pairs], [g for _, g in pairs])
    assert threaded_scores == serial.compute()
    for key, curve in serial.curves().items():
        np.testing.assert_array_equal(threaded_curves[key], curve)


def test_curves_and_reset(pairs):
    metrics = DISMetrics()
    metrics.update_batch([p for p, _ in pairs], [g for _, g in pairs])
    curves = metrics.curves()
    assert set(curves) == {"thresholds", "precision", "recall", "f_measure", "e_measure"}
    assert all(curve.shape == (256,) for curve in curves.values())
    scores = metrics.compute()
    assert curves["f_measure"].max() == scores["max_fm"]
    np.testing.assert_allclose(curves["e_measure"].mean(), scores["mean_em"], rtol=0, atol=1e-15)
    # Recall can only decrease as the threshold rises.
    assert np.all(np.diff(curves["recall"]) <= 1e-12)
    per_image = metrics.per_image_scores()
    assert len(per_image["hce"]) == len(pairs) and np.mean(per_image["hce"]) == scores["hce"]
    metrics.reset()
    assert len(metrics) == 0
    with pytest.raises(ValueError, match="before any image"):
        metrics.compute()


def test_metric_names_are_the_ten_keys():
    assert set(METRIC_NAMES) == ALL_KEYS and len(METRIC_NAMES) == 10


# ----------------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------------
GOOD = np.zeros((8, 8), np.uint8)


@pytest.mark.parametrize(
    ("prediction", "reference", "error", "match"),
    [
        (np.zeros((8, 8, 3), np.uint8), GOOD, ValueError, r"prediction must be a 2-D array .*\(8, 8, 3\)"),
        (np.zeros((1, 8, 8), np.float32), GOOD, ValueError, "squeeze the channel dimension"),
        (GOOD, np.zeros((8, 8, 1), np.uint8), ValueError, r"reference must be a 2-D array"),
        (np.zeros(8, np.uint8), GOOD, ValueError, r"2-D array .*\(8,\)"),
        (np.zeros((0, 8), np.uint8), GOOD, ValueError, "prediction is empty"),
        (np.full((8, 8), np.nan), GOOD, ValueError, "prediction contains 64 NaN"),
        (np.full((8, 8), 1.5), GOOD, ValueError, r"outside \[0, 1\].*sigmoid"),
        (np.full((8, 8), -3, np.int64), GOOD, ValueError, "outside 0..255"),
        (GOOD, np.full((8, 8), 300, np.int32), ValueError, "reference has integer values outside 0..255"),
        (np.zeros((8, 8), np.complex64), GOOD, TypeError, "unsupported dtype"),
        (None, GOOD, TypeError, "prediction is None"),
        ([[0, 1], [2]], GOOD, TypeError, "could not be converted"),
    ],
)
def test_bad_inputs_raise_clear_errors(prediction, reference, error, match):
    with pytest.raises(error, match=match):
        DISMetrics().update(prediction, reference)


def test_bad_batches_raise_clear_errors():
    metrics = DISMetrics()
    with pytest.raises(ValueError, match="same length, got 2 and 1"):
        metrics.update_batch([GOOD, GOOD], [GOOD])
    with pytest.raises(ValueError, match="empty"):
        metrics.update_batch([], [])
    with pytest.raises(ValueError, match=r"predictions\[1\] must be a 2-D array"):
        metrics.update_batch([GOOD, np.zeros((2, 8, 8))], [GOOD, GOOD])
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        metrics.update_batch(np.zeros((2, 1, 8, 8)), np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match="reference_skeletons must have one entry per image"):
        metrics.update_batch([GOOD], [GOOD], reference_skeletons=[])
    with pytest.raises(ValueError, match="reference_skeleton has shape"):
        metrics.update(GOOD, GOOD, reference_skeleton=np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="num_workers"):
        DISMetrics(num_workers=-1)
    assert len(metrics) == 0


# ----------------------------------------------------------------------------------------------------------------
# The evaluate module
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture
def dis_metric(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return load_dis_metrics(cache_dir=str(tmp_path))


def test_evaluate_module_loads_offline_and_matches(dis_metric, pairs):
    import evaluate

    assert isinstance(dis_metric, evaluate.Metric)
    preds, gts = [p for p, _ in pairs], [g for _, g in pairs]
    # Mixed inputs: uint8, float, bool references, a prediction of another size.
    preds[1] = preds[1].astype(np.float32) / 255
    preds[2] = cv2.resize(preds[2], (50, 40))
    gts[3] = gts[3] > 128
    dis_metric.add_batch(predictions=preds[:20], references=gts[:20])
    for pred, gt in zip(preds[20:30], gts[20:30], strict=True):
        dis_metric.add(prediction=pred, reference=gt)
    result = dis_metric.compute(predictions=preds[30:], references=gts[30:])
    assert result == _scores(preds, gts)
    assert_scores_equal(result, reference_scores(_as_uint8_pairs(preds, gts)))


def _as_uint8_pairs(preds, gts):
    """What the reference sees for the mixed inputs of the evaluate test."""
    out = []
    for pred, gt in zip(preds, gts, strict=True):
        if pred.dtype != np.uint8:
            pred = (pred.astype(np.float32) * 255).astype(np.uint8)
        gt = gt.astype(np.uint8) * 255 if gt.dtype == bool else gt
        if pred.shape != gt.shape:
            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]))
        out.append((pred, gt))
    return out


def test_evaluate_load_with_path(tmp_path, monkeypatch):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(str(DIS_METRICS_PATH), cache_dir=str(tmp_path), keep_in_memory=True)
    gt = np.zeros((40, 50), np.uint8)
    gt[10:30, 10:40] = 255
    assert metric.compute(predictions=[gt], references=[gt]) == _scores([gt], [gt])


def test_evaluate_module_raw_hce_configuration(tmp_path, monkeypatch, pairs):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(str(DIS_METRICS_PATH), "raw_hce", cache_dir=str(tmp_path), keep_in_memory=True)
    preds, gts = [p for p, _ in pairs[:10]], [g for _, g in pairs[:10]]
    raw = DISMetrics(hce_binarization="raw")
    raw.update_batch(preds, gts)
    assert metric.compute(predictions=preds, references=gts) == raw.compute()
    with pytest.raises(ValueError, match="config_name must be one of"):
        evaluate.load(str(DIS_METRICS_PATH), "otsu", cache_dir=str(tmp_path))


def test_evaluate_module_errors(dis_metric):
    with pytest.raises(ValueError, match="No maps were added"):
        dis_metric.compute()
    with pytest.raises(ValueError, match=r"predictions\[0\] must be a 2-D array"):
        dis_metric.add_batch(predictions=[np.zeros((8, 8, 3))], references=[GOOD])
    with pytest.raises(ValueError, match="prediction must be a 2-D array"):
        dis_metric.add(prediction=np.zeros((8, 8, 3)), reference=GOOD)
    with pytest.raises(ValueError, match="NaN"):
        dis_metric.add_batch(predictions=[np.full((8, 8), np.nan)], references=[GOOD])
    with pytest.raises(ValueError, match="empty"):
        dis_metric.add_batch(predictions=[], references=[])
    with pytest.raises(ValueError, match="same length, got 1 and 2"):
        dis_metric.add_batch(predictions=[GOOD], references=[GOOD, GOOD])
    with pytest.raises(ValueError, match="references is missing"):
        dis_metric.add_batch(predictions=[GOOD])
    with pytest.raises(ValueError, match=r"lists of 2-D maps or \(N, H, W\) arrays"):
        dis_metric.add_batch(predictions=GOOD, references=GOOD)
    # Nothing bad was stored: a valid batch still computes.
    result = dis_metric.compute(predictions=[GOOD], references=[GOOD])
    assert set(result) == ALL_KEYS


# ----------------------------------------------------------------------------------------------------------------
# Issue 13: 0/1 masks, partly-NaN predictions, one-pixel maps
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture
def fresh_warnings():
    """Warnings given once per process (``logger.warning_once``) are given again in each test."""
    from transformers.utils import logging as hf_logging

    hf_logging.warning_once.cache_clear()


def _square(size: int = 32) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[8:24, 10:20] = 255
    return mask


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_zero_one_ground_truth_is_read_as_a_binary_mask(dtype, caplog, fresh_warnings):
    gt = _square()
    prediction = cv2.GaussianBlur(gt, (5, 5), 2)
    expected = DISMetrics()
    expected.update(prediction, gt)
    metrics = DISMetrics()
    with caplog.at_level("WARNING"):
        metrics.update(prediction, (gt // 255).astype(dtype))  # the same mask saved as 0/1
    assert metrics.compute() == expected.compute()  # not an empty ground truth
    assert "0/1 mask" in caplog.text
    # PySODMetrics reads it as empty (foreground > 128): the departure is deliberate and documented.
    reference = py_sod_metrics.MAE()
    reference.step(prediction, (gt // 255).astype(np.uint8))
    assert reference.get_results()["mae"] == pytest.approx(prediction.mean() / 255)


def test_zero_one_prediction_is_scaled_and_bool_or_all_zero_maps_are_unchanged(caplog, fresh_warnings):
    gt = _square()
    expected = DISMetrics(hce_binarization="raw")
    expected.update(gt, gt)
    metrics = DISMetrics(hce_binarization="raw")
    with caplog.at_level("WARNING"):
        metrics.update(gt // 255, gt)
    assert metrics.compute() == expected.compute() and "0/1 map" in caplog.text
    empty = DISMetrics()
    empty.update(np.zeros((32, 32), np.uint8), np.zeros((32, 32), np.uint8))  # an empty mask stays empty
    assert empty.compute()["mae"] == 0.0


def test_partly_nan_prediction_message_counts_the_nans_and_quotes_the_finite_range():
    prediction = np.full((8, 8), 0.25, np.float32)
    prediction[0, :3] = np.nan
    prediction[1, 0] = np.inf
    prediction[2, 0] = 0.75
    with pytest.raises(ValueError) as info:
        DISMetrics().update(prediction, _square(8))
    message = str(info.value)
    assert "3 NaN and 1 infinite value(s) out of 64" in message
    assert "[0.25, 0.75]" in message and "prediction" in message
    with pytest.raises(ValueError, match="no value is finite"):
        DISMetrics().update(torch.full((8, 8), float("nan")), _square(8))


def test_one_pixel_map_e_measure_is_bounded_with_a_warning(caplog, fresh_warnings):
    metrics = DISMetrics()
    with caplog.at_level("WARNING"):
        metrics.update(np.array([[200]], np.uint8), np.array([[255]], np.uint8))
    scores = metrics.compute()
    assert all(0.0 <= scores[key] <= 1.0 for key in ("max_em", "mean_em", "adp_em")), scores
    assert "1x1 map" in caplog.text
    # PySODMetrics scores ~4.5e15 here (its denominator is H*W - 1 + eps).
    reference = py_sod_metrics.Emeasure()
    reference.step(np.array([[200]], np.uint8), np.array([[255]], np.uint8))
    assert reference.get_results()["em"]["curve"].max() > 1e15
    # Larger maps are untouched (identical to PySODMetrics).
    prediction, gt = np.array([[200, 10]], np.uint8), np.array([[255, 0]], np.uint8)
    ours, reference = DISMetrics(), py_sod_metrics.Emeasure()
    ours.update(prediction, gt)
    reference.step(prediction, gt)
    assert ours.compute()["max_em"] == pytest.approx(reference.get_results()["em"]["curve"].max(), abs=1e-12)
