#!/usr/bin/env python
# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Time the DIS metrics: ``birefnet_hf.metrics`` against PySODMetrics, plus the ``evaluate`` wrapper's overhead.

Every variant evaluates the same synthetic maps (DIS-like: large blobs, holes and thin structures as ground truth;
blurred, shifted, noisy soft predictions) and is repeated, the variants' runs interleaved; the table shows the
median wall-clock and CPU time (all threads of the process) per run, the speed-ups over PySODMetrics, and the
largest difference of each variant's scores from PySODMetrics'. On a shared machine prefer the CPU column for the
single-threaded variants (it ignores time spent waiting for other processes).

Variants:

* ``pysodmetrics``: Fmeasure, Emeasure, Smeasure, WeightedFmeasure, MAE and HumanCorrectionEffortMeasure
  ``step()`` on every map, as BiRefNet's ``evaluation/metrics.py`` does;
* ``DISMetrics``: :class:`birefnet_hf.metrics.DISMetrics` (one thread);
* ``DISMetrics (skeletons given)``: the same with precomputed ground-truth skeletons, i.e. the cost left when
  skeletons are cached (HCE's skeletonisation is otherwise the single most expensive step);
* ``DISMetrics (N workers)``: with ``num_workers=N`` background threads;
* ``evaluate module``: ``load_dis_metrics()``, ``add_batch`` per map, ``compute()`` (Arrow cache on disk); its
  overhead is the difference to ``DISMetrics``.

Usage::

    python benchmarks/metrics.py                      # 50 maps of 1024x1024, 3 repeats
    python benchmarks/metrics.py --num-maps 10 --size 512 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_maps(num_maps: int, size: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic (uint8 prediction, uint8 0/255 ground truth) pairs of ``size`` x ``size``."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(num_maps):
        gt = np.zeros((size, size), np.uint8)
        for _ in range(rng.integers(1, 4)):  # large objects
            center = (
                int(rng.integers(size // 4, 3 * size // 4)),
                int(rng.integers(size // 4, 3 * size // 4)),
            )
            axes = (int(rng.integers(size // 10, size // 3)), int(rng.integers(size // 10, size // 3)))
            cv2.ellipse(gt, center, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        for _ in range(rng.integers(2, 6)):  # holes
            center = (int(rng.integers(0, size)), int(rng.integers(0, size)))
            cv2.circle(gt, center, int(rng.integers(size // 80, size // 20)), 0, -1)
        for _ in range(rng.integers(5, 30)):  # thin structures
            start = (int(rng.integers(0, size)), int(rng.integers(0, size)))
            end = (int(rng.integers(0, size)), int(rng.integers(0, size)))
            cv2.line(gt, start, end, 255, int(rng.integers(1, 4)))
        soft = cv2.GaussianBlur(gt.astype(np.float32), (0, 0), float(rng.uniform(1, 4)))
        soft = np.roll(soft, int(rng.integers(-4, 5)), axis=int(rng.integers(0, 2)))
        soft += rng.normal(0, 12, soft.shape).astype(np.float32)
        pairs.append((np.clip(soft, 0, 255).astype(np.uint8), gt))
    return pairs


def run_pysodmetrics(pairs) -> dict[str, float]:
    import py_sod_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Fmeasure's deprecation notice
        fm, em = py_sod_metrics.Fmeasure(), py_sod_metrics.Emeasure()
        sm, wfm = py_sod_metrics.Smeasure(), py_sod_metrics.WeightedFmeasure()
        mae, hce = py_sod_metrics.MAE(), py_sod_metrics.HumanCorrectionEffortMeasure()
        for pred, gt in pairs:
            for measure in (fm, em, sm, wfm, mae, hce):
                measure.step(pred, gt)
        f, e = fm.get_results()["fm"], em.get_results()["em"]
    return {
        "sm": float(sm.get_results()["sm"]),
        "wfm": float(wfm.get_results()["wfm"]),
        "mae": float(mae.get_results()["mae"]),
        "max_fm": float(f["curve"].max()),
        "mean_fm": float(f["curve"].mean()),
        "adp_fm": float(f["adp"]),
        "max_em": float(e["curve"].max()),
        "mean_em": float(e["curve"].mean()),
        "adp_em": float(e["adp"]),
        "hce": float(hce.get_results()["hce"]),
    }


def run_dis_metrics(pairs, num_workers: int = 0, skeletons=None) -> dict[str, float]:
    from birefnet_hf.metrics import DISMetrics

    with DISMetrics(num_workers=num_workers) as metrics:
        for index, (pred, gt) in enumerate(pairs):
            metrics.update(pred, gt, reference_skeleton=None if skeletons is None else skeletons[index])
        return metrics.compute()


def run_evaluate_module(pairs, cache_dir: str) -> dict[str, float]:
    from birefnet_hf.metrics import load_dis_metrics

    metric = load_dis_metrics(cache_dir=cache_dir)
    for pred, gt in pairs:
        metric.add_batch(predictions=[pred], references=[gt])
    return metric.compute()


def time_run(function: Callable[[], dict]) -> tuple[float, float, dict]:
    """Wall-clock and CPU seconds (all threads of this process) of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-maps", type=int, default=50, help="maps per run")
    parser.add_argument("--size", type=int, default=1024, help="side of the square maps")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (the median is reported)")
    parser.add_argument(
        "--workers", type=int, default=2, help="num_workers of the threaded DISMetrics variant"
    )
    parser.add_argument("--skip-reference", action="store_true", help="do not time PySODMetrics")
    args = parser.parse_args(argv)

    import cv2 as _cv2  # noqa: F401  (import cost outside the timings)
    import py_sod_metrics  # noqa: F401

    from birefnet_hf.metrics import load_dis_metrics, skeletonize_mask

    load_dis_metrics()  # copy the module into the evaluate cache once, outside the timings
    pairs = make_maps(args.num_maps, args.size)
    skeletons = [skeletonize_mask(gt > 128) for _, gt in pairs]

    with tempfile.TemporaryDirectory() as cache_dir:
        variants: list[tuple[str, Callable[[], dict]]] = []
        if not args.skip_reference:
            variants.append(("pysodmetrics", lambda: run_pysodmetrics(pairs)))
        variants += [
            ("DISMetrics", lambda: run_dis_metrics(pairs)),
            ("DISMetrics (skeletons given)", lambda: run_dis_metrics(pairs, skeletons=skeletons)),
            (
                f"DISMetrics ({args.workers} workers)",
                lambda: run_dis_metrics(pairs, num_workers=args.workers),
            ),
            ("evaluate module", lambda: run_evaluate_module(pairs, cache_dir)),
        ]
        # Interleave the variants' repeats, so that load changes on the machine hit all of them alike.
        walls: dict[str, list[float]] = {name: [] for name, _ in variants}
        cpus: dict[str, list[float]] = {name: [] for name, _ in variants}
        results: dict[str, dict] = {}
        for _ in range(args.repeats):
            for name, function in variants:
                wall, cpu, results[name] = time_run(function)
                walls[name].append(wall)
                cpus[name].append(cpu)

    reference = results.get("pysodmetrics")
    wall = {name: statistics.median(values) for name, values in walls.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    print(f"\n{args.num_maps} maps of {args.size}x{args.size}, median of {args.repeats} run(s)\n")
    columns = [
        "variant",
        "wall s",
        "CPU s",
        "wall ms/map",
        "speed-up (wall)",
        "speed-up (CPU)",
        "max abs diff",
    ]
    widths = [30, 7, 7, 11, 15, 14, 12]
    print(
        "| "
        + " | ".join(
            f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
            for i, (c, w) in enumerate(zip(columns, widths, strict=True))
        )
        + " |"
    )
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for name in walls:
        cells = [name, f"{wall[name]:.2f}", f"{cpu[name]:.2f}", f"{1000 * wall[name] / args.num_maps:.1f}"]
        if reference:
            cells += [f"{wall['pysodmetrics'] / wall[name]:.2f}x", f"{cpu['pysodmetrics'] / cpu[name]:.2f}x"]
            diffs = [abs(results[name][key] - reference[key]) for key in reference if key != "hce"]
            cells.append(f"{max(diffs):.1e}" + ("" if results[name]["hce"] == reference["hce"] else " HCE!"))
        else:
            cells += ["-", "-", "-"]
        print(
            "| "
            + " | ".join(
                f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )
    for clock, medians in (("CPU", cpu), ("wall", wall)):
        overhead = medians["evaluate module"] - medians["DISMetrics"]
        print(
            f"evaluate wrapper overhead ({clock}): {overhead:+.2f} s per run "
            f"({1000 * overhead / args.num_maps:+.1f} ms per map, {100 * overhead / medians['DISMetrics']:+.1f}%)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
