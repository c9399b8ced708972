# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""examples/evaluate_dis.py: predictions-folder and model modes on a tiny generated DIS5K-like set."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import py_sod_metrics
import pytest
import torch

from birefnet_hf.metrics import METRIC_NAMES, DISMetrics

REPO_ROOT = Path(__file__).resolve().parents[1]
SETS = ("DIS-VD", "DIS-TE1", "DIS-TE2")
SIZES = ((40, 56), (64, 48), (50, 50))


def load_script():
    spec = importlib.util.spec_from_file_location("example_evaluate", REPO_ROOT / "examples" / "evaluate_dis.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return load_script()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path]:
    """DIS5K-like root with three sets (im/ JPG + gt/ PNG) and a folder of saved soft predictions.

    Two predictions per set are saved at another size than their ground truth, to exercise the resize.
    """
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    dis5k, predictions = root / "DIS5K", root / "preds" / "method"
    for set_index, set_name in enumerate(SETS):
        for image_index in range(3 + set_index):
            height, width = SIZES[(image_index + set_index) % len(SIZES)]
            stem = f"{set_index + 1}#Group#{image_index}#Class#img{image_index}"
            gt = np.zeros((height, width), np.uint8)
            cv2.ellipse(
                gt, (width // 2, height // 2), (width // 4, height // 3), 20.0 * image_index, 0, 360, 255, -1
            )
            cv2.line(gt, (2, 3), (width - 3, height - 5), 255, 1)
            image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            soft = cv2.GaussianBlur(gt.astype(np.float32), (0, 0), 1.5) + rng.normal(0, 15, gt.shape)
            pred = np.clip(soft, 0, 255).astype(np.uint8)
            if image_index < 2:
                pred = cv2.resize(pred, (width // 2 + 1, height // 2 + 3), interpolation=cv2.INTER_AREA)
            for folder in (dis5k / set_name / "im", dis5k / set_name / "gt", predictions / set_name):
                folder.mkdir(parents=True, exist_ok=True)
            PIL.Image.fromarray(image).save(dis5k / set_name / "im" / f"{stem}.jpg")
            PIL.Image.fromarray(gt).save(dis5k / set_name / "gt" / f"{stem}.png")
            PIL.Image.fromarray(pred).save(predictions / set_name / f"{stem}.png")
    return root, predictions


def direct_scores(gt_folder: Path, prediction_folder: Path) -> dict[str, float]:
    metrics = DISMetrics()
    for gt_path in sorted(gt_folder.glob("*.png")):
        gt = np.array(PIL.Image.open(gt_path))
        pred = np.array(PIL.Image.open(prediction_folder / gt_path.name))
        metrics.update(pred, gt)
    return metrics.compute()


def reference_scores(gt_folder: Path, prediction_folder: Path) -> dict[str, float]:
    """PySODMetrics on the same files, read and resized like the authors' evaluation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm, em, sm = py_sod_metrics.Fmeasure(), py_sod_metrics.Emeasure(), py_sod_metrics.Smeasure()
        wfm, mae = py_sod_metrics.WeightedFmeasure(), py_sod_metrics.MAE()
        hce = py_sod_metrics.HumanCorrectionEffortMeasure()
        for gt_path in sorted(gt_folder.glob("*.png")):
            gt = cv2.imread(str(gt_path), cv2.IMREAD_GRAYSCALE)
            pred = cv2.imread(str(prediction_folder / gt_path.name), cv2.IMREAD_GRAYSCALE)
            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]))
            for measure in (fm, em, sm, wfm, mae, hce):
                measure.step(pred, gt)
        f, e = fm.get_results()["fm"], em.get_results()["em"]
        return {
            "sm": sm.get_results()["sm"], "wfm": wfm.get_results()["wfm"], "mae": mae.get_results()["mae"],
            "max_fm": f["curve"].max(), "mean_fm": f["curve"].mean(), "adp_fm": f["adp"],
            "max_em": e["curve"].max(), "mean_em": e["curve"].mean(), "adp_em": e["adp"],
            "hce": hce.get_results()["hce"],
        }  # fmt: skip


def test_predictions_mode_writes_tables_with_the_metric_values(script, dataset, tmp_path, capsys):
    root, predictions = dataset
    output = tmp_path / "out"
    code = script.main(
        ["--predictions", str(predictions), "--data-root", str(root), "--sets", *SETS,
         "--output-dir", str(output), "--plots", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    results = json.loads((output / "results.json").read_text())
    assert results["model"] == str(predictions) and results["mode"] == "predictions"
    assert results["resolution"] is None and results["hce_binarization"] == "normalized"
    assert results["metrics"] == list(METRIC_NAMES)
    assert list(results["sets"]) == list(SETS)
    for set_index, set_name in enumerate(SETS):
        scores = results["sets"][set_name]
        assert scores["num_images"] == 3 + set_index
        gt_folder = root / "DIS5K" / set_name / "gt"
        expected = direct_scores(gt_folder, predictions / set_name)
        reference = reference_scores(gt_folder, predictions / set_name)
        for key in METRIC_NAMES:
            assert scores[key] == pytest.approx(expected[key], abs=1e-12), key
            assert scores[key] == pytest.approx(reference[key], abs=1e-6), key

    te_mean = results["DIS-TE (mean)"]
    assert te_mean["sets"] == ["DIS-TE1", "DIS-TE2"] and te_mean["num_images"] == 4 + 5
    for key in METRIC_NAMES:
        assert te_mean[key] == pytest.approx(
            (results["sets"]["DIS-TE1"][key] + results["sets"]["DIS-TE2"][key]) / 2
        )

    markdown = (output / "results.md").read_text()
    lines = markdown.strip().splitlines()
    assert lines[0] == f"Model: `{predictions}`"
    assert lines[2].startswith("| Set | Images | maxFβ ↑ | Fβω ↑ | M ↓ | Sα ↑ | meanEφ ↑ | HCEγ ↓")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[4:]}
    assert list(rows) == [*SETS, "DIS-TE (mean)"]
    vd = results["sets"]["DIS-VD"]
    assert f"| {vd['max_fm']:.3f} | {vd['wfm']:.3f} | {vd['mae']:.3f} | {vd['sm']:.3f} |" in rows["DIS-VD"]
    assert f"| {vd['hce']:.0f} |" in rows["DIS-VD"]
    assert markdown in capsys.readouterr().out

    for plot in ("pr_curves.png", "f_measure_curves.png"):
        with PIL.Image.open(output / plot) as image:
            assert image.size[0] > 100
    assert not list(output.glob(".*.tmp")) and not list(output.glob(".*png"))


def test_skeleton_cache_gives_the_same_scores(script, dataset, tmp_path):
    root, predictions = dataset
    common = [
        "--predictions",
        str(predictions),
        "--data-root",
        str(root / "DIS5K"),
        "--sets",
        "DIS-VD",
        "--no-progress",
    ]
    assert script.main([*common, "--output-dir", str(tmp_path / "plain")]) == 0
    skeletons = tmp_path / "skeletons"
    for run in ("first", "second"):  # computes and writes, then reads the cache
        assert (
            script.main([*common, "--output-dir", str(tmp_path / run), "--skeleton-dir", str(skeletons)]) == 0
        )
    cached = sorted(path.name for path in (skeletons / "DIS-VD").glob("*.png"))
    assert cached == sorted(path.name for path in (root / "DIS5K" / "DIS-VD" / "gt").glob("*.png"))
    plain = json.loads((tmp_path / "plain" / "results.json").read_text())
    for run in ("first", "second"):
        assert json.loads((tmp_path / run / "results.json").read_text())["sets"] == plain["sets"]

    assert script.main([*common, "--output-dir", str(tmp_path / "raw"), "--hce-binarization", "raw"]) == 0
    raw = json.loads((tmp_path / "raw" / "results.json").read_text())
    assert raw["hce_binarization"] == "raw"
    expected = DISMetrics(hce_binarization="raw")
    for gt_path in sorted((root / "DIS5K" / "DIS-VD" / "gt").glob("*.png")):
        expected.update(
            np.array(PIL.Image.open(predictions / "DIS-VD" / gt_path.name)), np.array(PIL.Image.open(gt_path))
        )
    assert raw["sets"]["DIS-VD"]["hce"] == expected.compute()["hce"]


def test_limit_and_errors(script, dataset, tmp_path, capsys):
    root, predictions = dataset
    base = ["--data-root", str(root), "--no-progress", "--output-dir", str(tmp_path / "out")]
    assert script.main(["--predictions", str(predictions), "--sets", "DIS-TE2", "--limit", "2", *base]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["sets"]["DIS-TE2"]["num_images"] == 2
    assert "DIS-VD" not in results["sets"]

    assert script.main(["--predictions", str(predictions), "--sets", "DIS-TE9", *base]) == 2
    assert "Set 'DIS-TE9'" in capsys.readouterr().err

    incomplete = tmp_path / "incomplete"
    (incomplete / "DIS-VD").mkdir(parents=True)
    assert script.main(["--predictions", str(incomplete), "--sets", "DIS-VD", *base]) == 2
    assert "3 predictions are missing" in capsys.readouterr().err

    for bad in (["--resolution", "100"], ["--batch-size", "0"], ["--limit", "0"]):
        with pytest.raises(SystemExit):
            script.main(["--predictions", str(predictions), *bad, *base])
    with pytest.raises(SystemExit):
        script.main(["--predictions", str(predictions), "--save-predictions", str(tmp_path), *base])


def test_model_mode_matches_saved_predictions(script, dataset, tmp_path, tiny_model_dir):
    root, _ = dataset
    saved = tmp_path / "saved"
    common = ["--data-root", str(root), "--sets", "DIS-TE1", "--limit", "2", "--no-progress"]
    code = script.main(
        ["--model", str(tiny_model_dir), "--resolution", "64", "--batch-size", "2", "--device", "cpu",
         "--save-predictions", str(saved), "--output-dir", str(tmp_path / "model"), *common]
    )  # fmt: skip
    assert code == 0
    from_model = json.loads((tmp_path / "model" / "results.json").read_text())
    assert from_model["mode"] == "model" and from_model["resolution"] == 64
    assert from_model["model"] == str(tiny_model_dir)
    assert from_model["sets"]["DIS-TE1"]["num_images"] == 2
    assert from_model["DIS-TE (mean)"]["sets"] == ["DIS-TE1"]

    # The saved maps score exactly like the in-memory ones.
    assert script.main(["--predictions", str(saved), "--output-dir", str(tmp_path / "preds"), *common]) == 0
    from_files = json.loads((tmp_path / "preds" / "results.json").read_text())
    assert from_files["sets"] == from_model["sets"]

    # The maps are the authors' inference: sigmoid at model resolution, bilinear (align_corners) to GT size, uint8.
    from birefnet_hf import BiRefNetForImageSegmentation, BiRefNetImageProcessorPil

    model = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir).eval()
    processor = BiRefNetImageProcessorPil(size={"height": 64, "width": 64})
    gt_path = sorted((root / "DIS5K" / "DIS-TE1" / "gt").glob("*.png"))[0]
    image = PIL.Image.open(gt_path.parent.parent / "im" / f"{gt_path.stem}.jpg")
    with torch.no_grad():
        probabilities = model(processor(images=image, return_tensors="pt")["pixel_values"]).logits.sigmoid()
    size = PIL.Image.open(gt_path).size[::-1]
    expected = torch.nn.functional.interpolate(probabilities, size=size, mode="bilinear", align_corners=True)
    expected = (expected[0, 0].numpy() * 255).astype(np.uint8)
    saved_map = np.array(PIL.Image.open(saved / "DIS-TE1" / gt_path.name))
    assert saved_map.shape == expected.shape
    assert np.abs(saved_map.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("precision", [["--dtype", "bfloat16"], ["--autocast", "bf16"], ["--autocast", "fp16"]])
def test_model_mode_in_reduced_precision(script, dataset, tmp_path, tiny_model_dir, precision):
    root, _ = dataset
    common = ["--data-root", str(root), "--sets", "DIS-TE1", "--limit", "2", "--no-progress", "--resolution", "64",
              "--device", "cpu", "--model", str(tiny_model_dir)]
    assert script.main([*common, "--output-dir", str(tmp_path / "fp32")]) == 0
    assert script.main([*common, *precision, "--output-dir", str(tmp_path / "low")]) == 0
    full = json.loads((tmp_path / "fp32" / "results.json").read_text())["sets"]["DIS-TE1"]
    low = json.loads((tmp_path / "low" / "results.json").read_text())["sets"]["DIS-TE1"]
    assert low["num_images"] == 2
    assert abs(low["mae"] - full["mae"]) < 0.02  # same predictions up to the precision's rounding
