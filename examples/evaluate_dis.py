#!/usr/bin/env python
# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Evaluate BiRefNet on DIS5K (or any ``im/`` + ``gt/`` sets) with the DIS metrics, and write a paper-style table.

Two modes:

* **model** (``--model``): a ``save_pretrained`` folder or a Hub id. Every image is resized to
  ``--resolution`` x ``--resolution`` and normalised by the package's image processor (by default its PIL backend,
  which reproduces the authors' transform chain exactly), predicted, passed through a sigmoid and resized back to
  its ground truth's size with ``F.interpolate(..., mode="bilinear", align_corners=True)``, then quantised to
  ``uint8`` the way the authors save predictions (``ToPILImage``: ``uint8(p * 255)``) -- the order of the
  authors' ``inference.py``. ``--save-predictions DIR`` also writes these maps as PNG files in the authors' layout
  (``DIR/<set>/<ground-truth stem>.png``), which the predictions mode scores identically.
* **predictions** (``--predictions DIR``): saved maps ``DIR/<set>/<stem>.png`` (or ``.jpg``), matched to the ground
  truths by file stem, read as grayscale and, when their size differs, resized to the ground truth with
  ``cv2.resize`` (bilinear), exactly like the authors' ``evaluation/metrics.py``.

The scores are those of :class:`birefnet_hf.metrics.DISMetrics` (identical to PySODMetrics;
``--hce-binarization raw`` binarises predictions for HCE like BiRefNet's own evaluation code). Relaxed HCE needs a
skeleton of each ground truth; ``--skeleton-dir DIR`` caches them as PNG files (``DIR/<set>/<stem>.png``) so that
later evaluations skip the skeletonisation, its most expensive step.

Outputs (in ``--output-dir``): ``results.json``, ``results.md`` and, with ``--plots`` (needs matplotlib),
``pr_curves.png`` and ``f_measure_curves.png``. The table is also printed. ``results.json`` looks like::

    {
      "model": "ZhengPeng7/BiRefNet",          # --name, else the model id / predictions folder
      "mode": "model",                          # or "predictions"
      "resolution": 1024,                       # null in predictions mode
      "hce_binarization": "normalized",         # --hce-binarization
      "metrics": ["max_fm", "wfm", "mae", "sm", "mean_em", "hce", "max_em", "mean_fm", "adp_em", "adp_fm"],
      "sets": {
        "DIS-VD": {"num_images": 470, "max_fm": 0.891, "wfm": 0.854, ..., "adp_fm": 0.857},
        "DIS-TE1": {...}, ...
      },
      "DIS-TE (mean)": {"sets": ["DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4"], "num_images": 2000,
                        "max_fm": ..., ...}
    }

Every score is a float; ``"DIS-TE (mean)"`` (present when ``DIS-TE<k>`` sets were evaluated) is the unweighted
mean of their scores, as the DIS papers report "DIS-TE (1-4)".

Examples::

    # a model on DIS-VD and DIS-TE1..4 (the default sets), with plots
    python examples/evaluate_dis.py --model ZhengPeng7/BiRefNet --data-root /data/DIS5K --plots
    # saved predictions (e.g. the authors' released maps) on two sets
    python examples/evaluate_dis.py --predictions preds/BiRefNet --data-root /data/DIS5K --sets DIS-TE1 DIS-TE2
    # any im/gt folders
    python examples/evaluate_dis.py --model ./my-birefnet --data-root /data/HRSOD --sets TE-HRSOD --resolution 2048
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm
from transformers.utils import logging

from birefnet_hf.atomic_io import atomic_file, write_bytes, write_text
from birefnet_hf.data import DatasetLayoutError
from birefnet_hf.metrics import METRIC_NAMES, DISMetrics, get_metric, skeletonize_mask

logger = logging.get_logger("birefnet_hf.examples.evaluate_dis")

DEFAULT_SETS = ("DIS-VD", "DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4")
TE_MEAN_KEY = "DIS-TE (mean)"
MASK_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
PREDICTION_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


class EvaluationInputError(ValueError):
    """Missing or unreadable sets, ground truths or predictions."""


# ----------------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------------
def _files_by_stem(folder: Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    duplicates = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in extensions:
            if path.stem in files:
                duplicates.append(f"{files[path.stem].name} / {path.name}")
            files[path.stem] = path
    if duplicates:
        raise EvaluationInputError(f"{folder}: several files share a stem: {', '.join(duplicates[:10])}")
    return files


def _missing_error(what: str, folder: Path, stems: list[str]) -> EvaluationInputError:
    listed = ", ".join(stems[:10]) + (f" and {len(stems) - 10} more" if len(stems) > 10 else "")
    return EvaluationInputError(f"{len(stems)} {what} missing in {folder}: {listed}")


def resolve_set(data_root: Path, name: str) -> Path:
    """``data_root/name`` (also ``data_root/DIS5K/name``), or ``name`` itself when it is a folder."""
    for candidate in (data_root / name, data_root / "DIS5K" / name, Path(name)):
        if (candidate / "gt").is_dir():
            return candidate
    raise EvaluationInputError(
        f"Set {name!r}: no folder with a gt/ sub-folder at {data_root / name} (nor {data_root / 'DIS5K' / name})"
    )


def list_ground_truths(folder: Path) -> dict[str, Path]:
    masks = _files_by_stem(folder / "gt", MASK_EXTENSIONS)
    if not masks:
        raise EvaluationInputError(f"{folder / 'gt'} holds no masks ({', '.join(MASK_EXTENSIONS)})")
    return masks


def read_gray(path: Path) -> np.ndarray:
    """A grayscale uint8 image, as the authors read masks and predictions (``cv2.IMREAD_GRAYSCALE``)."""
    array = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if array is None:
        raise EvaluationInputError(f"Cannot read image file {path}")
    return array


def write_png_atomic(path: Path, array: np.ndarray) -> None:
    """Write a PNG atomically (``atomic_io``): ``path`` is never half-written."""
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise RuntimeError(f"Could not encode {path} as PNG")
    write_bytes(path, encoded.tobytes())


class SkeletonCache:
    """Ground-truth skeletons for HCE, cached as PNG files under ``root/<set>/<stem>.png`` (or not at all)."""

    def __init__(self, root: Path | None):
        self.root = root

    def get(self, set_name: str, stem: str, ground_truth: np.ndarray) -> np.ndarray | None:
        if self.root is None:
            return None  # DISMetrics computes it
        path = self.root / set_name / f"{stem}.png"
        if path.is_file():
            skeleton = read_gray(path) > 128
            if skeleton.shape == ground_truth.shape:
                return skeleton
            logger.warning(f"Ignoring cached skeleton {path}: its size differs from the ground truth's")
        skeleton = skeletonize_mask(ground_truth > 128)
        write_png_atomic(path, skeleton.astype(np.uint8) * 255)
        return skeleton


# ----------------------------------------------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------------------------------------------
def saved_prediction_pairs(
    set_folder: Path, prediction_folder: Path, limit: int | None
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(stem, prediction, ground truth) of saved prediction files, in ground-truth file order."""
    ground_truths = list_ground_truths(set_folder)
    if not prediction_folder.is_dir():
        raise EvaluationInputError(f"Prediction folder {prediction_folder} does not exist")
    predictions = _files_by_stem(prediction_folder, PREDICTION_EXTENSIONS)
    stems = sorted(ground_truths)[:limit]
    missing = [stem for stem in stems if stem not in predictions]
    if missing:
        raise _missing_error("predictions are", prediction_folder, missing)
    for stem in stems:
        yield stem, read_gray(predictions[stem]), read_gray(ground_truths[stem])


class ModelPredictor:
    """Runs a BiRefNet model through the package's prediction driver (``birefnet_hf.prediction``): uint8 maps at the
    ground truth's size, as the authors' ``inference.py`` saves them (sigmoid, bilinear resize with
    ``align_corners=True``, ``uint8(255 * p)`` truncating)."""

    def __init__(
        self, model_id: str, resolution: int, device: str, dtype: str, backend: str, autocast: str = "none"
    ):
        import torch

        import birefnet_hf  # noqa: F401  (registers BiRefNet with the Auto classes)
        from birefnet_hf import (
            AutoModelForImageSegmentation,
            BiRefNetImageProcessor,
            BiRefNetImageProcessorPil,
        )

        self.autocast = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[autocast]
        self.model = AutoModelForImageSegmentation.from_pretrained(model_id, dtype=getattr(torch, dtype))
        self.model.to(torch.device(device)).eval()
        processor_class = BiRefNetImageProcessorPil if backend == "pil" else BiRefNetImageProcessor
        self.processor = processor_class(size={"height": resolution, "width": resolution})

    def predict(self, image_paths: list[Path], sizes: list[tuple[int, int]]) -> list[np.ndarray]:
        """The maps of the images at ``image_paths``, each resized to its ``(height, width)`` in ``sizes``."""
        from birefnet_hf.image_processing_birefnet import load_image
        from birefnet_hf.prediction import predict_mattes

        images = [load_image(path) for path in image_paths]
        return predict_mattes(
            self.model, self.processor, images, autocast_dtype=self.autocast, target_sizes=sizes
        )


def model_prediction_pairs(
    set_folder: Path, predictor: ModelPredictor, batch_size: int, limit: int | None
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(stem, prediction, ground truth) for every image of a set, predicted by the model in batches."""
    from birefnet_hf.data import pair_image_mask_files

    # Pairs im/<stem>.* with gt/<stem>.* and lists every missing or extra file (DatasetLayoutError).
    pairs = pair_image_mask_files(set_folder, check_sizes=False)[:limit]
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        truths = [read_gray(pair.mask_path) for pair in batch]
        maps = predictor.predict([pair.image_path for pair in batch], [truth.shape for truth in truths])
        yield from (
            (pair.mask_path.stem, prediction, truth)
            for pair, prediction, truth in zip(batch, maps, truths, strict=True)
        )


# ----------------------------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------------------------
def dis_te_mean(sets: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Unweighted mean of the scores of the evaluated DIS-TE<k> sets (None if there is none)."""
    names = [name for name in sets if re.fullmatch(r"DIS-TE\d+", name)]
    if not names:
        return None
    mean: dict[str, Any] = {"sets": names, "num_images": sum(sets[name]["num_images"] for name in names)}
    for key in METRIC_NAMES:
        mean[key] = float(np.mean([sets[name][key] for name in names]))
    return mean


def markdown_table(results: dict[str, Any]) -> str:
    rows = dict(results["sets"])
    if TE_MEAN_KEY in results:
        rows[TE_MEAN_KEY] = results[TE_MEAN_KEY]
    header = ["Set", "Images", *(get_metric(key).header for key in METRIC_NAMES)]
    lines = [
        f"Model: `{results['model']}`"
        + (f", resolution {results['resolution']}x{results['resolution']}" if results["resolution"] else ""),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for name, scores in rows.items():
        cells = [
            name,
            str(scores["num_images"]),
            *(get_metric(key).format(scores[key]) for key in METRIC_NAMES),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def save_plots(curves: dict[str, dict[str, np.ndarray]], output_dir: Path) -> list[Path]:
    """PR curves and F-measure/threshold curves of every set, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for file_name, x_key, y_key, x_label, y_label in (
        ("pr_curves.png", "recall", "precision", "Recall", "Precision"),
        ("f_measure_curves.png", "thresholds", "f_measure", "Threshold", "F-measure (β² = 0.3)"),
    ):
        figure, axes = plt.subplots(figsize=(5, 4), dpi=120)
        for name, curve in curves.items():
            axes.plot(curve[x_key], curve[y_key], label=name)
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
        figure.tight_layout()
        try:
            with atomic_file(output_dir / file_name) as temporary:
                figure.savefig(temporary)
        finally:
            plt.close(figure)
        written.append(output_dir / file_name)
    return written


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Evaluate a BiRefNet model or saved predictions on DIS5K / im-gt sets with the DIS metrics.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model folder (save_pretrained) or Hub id")
    source.add_argument(
        "--predictions", type=Path, help="folder of saved predictions: <dir>/<set>/<stem>.png"
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        required=True,
        help="folder holding the sets (e.g. the DIS5K folder or its parent)",
    )
    parser.add_argument(
        "--sets",
        nargs="+",
        default=list(DEFAULT_SETS),
        help="set folder names under --data-root (each with gt/, and im/ in model mode) or paths",
    )
    parser.add_argument(
        "--name", help="name of the evaluated model in the outputs (default: --model / --predictions)"
    )
    parser.add_argument(
        "--output-dir", type=Path, default=Path("eval-results"), help="where to write the results"
    )
    parser.add_argument("--resolution", type=int, default=1024, help="model input side (multiple of 32)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per forward pass")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--dtype", choices=("float32", "float16", "bfloat16"), default="float32", help="model dtype"
    )
    parser.add_argument(
        "--autocast",
        choices=("none", "bf16", "fp16"),
        default="none",
        help="run the (float32) model under torch.autocast in this precision (mixed-precision inference)",
    )
    parser.add_argument(
        "--preprocessing",
        choices=("pil", "torchvision"),
        default="pil",
        help="image processor backend: pil reproduces the authors' transforms exactly",
    )
    parser.add_argument(
        "--save-predictions",
        type=Path,
        default=None,
        help="also write the model's predictions as <dir>/<set>/<stem>.png",
    )
    parser.add_argument(
        "--skeleton-dir",
        type=Path,
        default=None,
        help="cache ground-truth skeletons (for HCE) as <dir>/<set>/<stem>.png",
    )
    parser.add_argument(
        "--hce-binarization",
        choices=("normalized", "raw"),
        default="normalized",
        help="HCE's binarisation of predictions: normalized (PySODMetrics: min-max normalised > 0.5) or raw "
        "(BiRefNet's evaluation code: uint8 > 128)",
    )
    parser.add_argument(
        "--metric-workers",
        type=int,
        default=1,
        help="background threads computing the metrics (0: compute inline)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="evaluate only the first N images of each set"
    )
    parser.add_argument(
        "--plots", action="store_true", help="write PR and F-measure/threshold curves (matplotlib)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resolution <= 0 or args.resolution % 32:
        parser.error(f"--resolution must be a positive multiple of 32, got {args.resolution}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be at least 1, got {args.limit}")
    if args.metric_workers < 0:
        parser.error(f"--metric-workers must be >= 0, got {args.metric_workers}")
    if args.predictions is not None and args.save_predictions is not None:
        parser.error("--save-predictions only applies to --model")
    if args.plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plots needs matplotlib: pip install matplotlib")
    if len(set(args.sets)) != len(args.sets):
        parser.error("--sets lists a set twice")

    try:
        set_folders = {Path(name).name: resolve_set(args.data_root, name) for name in args.sets}
        if len(set_folders) != len(args.sets):
            parser.error("--sets holds two sets with the same folder name")

        predictor = None
        if args.model is not None:
            import torch

            device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
            predictor = ModelPredictor(
                args.model, args.resolution, device, args.dtype, args.preprocessing, args.autocast
            )
        skeletons = SkeletonCache(args.skeleton_dir)

        results: dict[str, Any] = {
            "model": args.name or (args.model if args.model is not None else str(args.predictions)),
            "mode": "model" if args.model is not None else "predictions",
            "resolution": args.resolution if args.model is not None else None,
            "hce_binarization": args.hce_binarization,
            "metrics": list(METRIC_NAMES),
            "sets": {},
        }
        curves: dict[str, dict[str, np.ndarray]] = {}
        for set_name, folder in set_folders.items():
            total = len(list_ground_truths(folder))
            total = total if args.limit is None else min(total, args.limit)
            if predictor is not None:
                pairs = model_prediction_pairs(folder, predictor, args.batch_size, args.limit)
            else:
                pairs = saved_prediction_pairs(folder, args.predictions / set_name, args.limit)
            with DISMetrics(
                num_workers=args.metric_workers, hce_binarization=args.hce_binarization
            ) as metrics:
                for stem, prediction, ground_truth in tqdm(
                    pairs, total=total, desc=set_name, unit="img", disable=args.no_progress
                ):
                    if args.save_predictions is not None:
                        write_png_atomic(args.save_predictions / set_name / f"{stem}.png", prediction)
                    skeleton = skeletons.get(set_name, stem, ground_truth)
                    metrics.update(prediction, ground_truth, reference_skeleton=skeleton)
                scores = metrics.compute()
                curves[set_name] = metrics.curves()
                results["sets"][set_name] = {"num_images": len(metrics), **scores}
            logger.info(f"{set_name}: {len(metrics)} images evaluated")
    except (EvaluationInputError, DatasetLayoutError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    te_mean = dis_te_mean(results["sets"])
    if te_mean is not None:
        results[TE_MEAN_KEY] = te_mean

    args.output_dir.mkdir(parents=True, exist_ok=True)
    table = markdown_table(results)
    write_text(args.output_dir / "results.json", json.dumps(results, indent=2) + "\n")
    write_text(args.output_dir / "results.md", table)
    written = [args.output_dir / "results.json", args.output_dir / "results.md"]
    if args.plots:
        written += save_plots(curves, args.output_dir)
    print(table)
    print("Wrote " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
