#!/usr/bin/env python
# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Input-pipeline throughput: decode + augment + collate, in samples/s, for 0, 1 and 2 DataLoader workers.

Generates a synthetic DIS5K-layout set in a temporary folder (JPEG images, PNG masks of
``--source-size`` pixels), loads it with ``load_dis5k``, applies ``make_train_transform`` at
``--image-size`` and collates with ``DISCollator``. Each configuration runs ``--repeats`` epochs; the
first batch of each epoch (worker start-up) is excluded from the timing. Prints the median (and range) of
the repeats as a table.

    python benchmarks/data.py                       # 1024x1024 output, 1024 px sources
    python benchmarks/data.py --source-size 2048 --workers 0 1 2 --repeats 5
    python benchmarks/data.py --main-threads 1 --workers 0   # workers run with 1 torch thread each anyway
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from birefnet_hf.data import DISCollator, generate_synthetic_dis5k, load_dis5k, make_train_transform  # noqa: E402

PRESETS = {
    "flip (paper)": dict(hflip=True),
    "all (flip+crop+rotate+colour+pepper)": dict(
        hflip=True, crop=True, rotate=True, color_enhance=True, pepper=True
    ),
}


def epoch_throughput(dataset, batch_size: int, workers: int, collator: DISCollator) -> float:
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, collate_fn=collator
    )
    iterator = iter(loader)
    next(iterator)  # warm-up: worker start-up and first decode
    start, samples = time.perf_counter(), 0
    for batch in iterator:
        samples += batch["pixel_values"].shape[0]
    elapsed = time.perf_counter() - start
    return samples / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num-images", type=int, default=48, help="training images to generate")
    parser.add_argument("--source-size", type=int, default=1024, help="side of the generated images")
    parser.add_argument("--image-size", type=int, default=1024, help="training resolution")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--main-threads",
        type=int,
        default=None,
        help="torch.set_num_threads in the main process (default: torch's)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--dynamic-size", action="store_true", help="also time DISCollator(dynamic_size=(256, 2304))"
    )
    args = parser.parse_args(argv)
    if args.main_threads is not None:
        torch.set_num_threads(args.main_threads)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        root = generate_synthetic_dis5k(
            folder,
            num_train=args.num_images,
            num_val=1,
            num_test=1,
            size=args.source_size,
            seed=0,
            progress=False,
        )
        print(
            f"generated {args.num_images + 5} images of {args.source_size}px in {time.perf_counter() - start:.1f} s"
        )
        train = load_dis5k(root, splits=["train"])["train"]
        configurations = [
            (name, options, DISCollator(), args.image_size) for name, options in PRESETS.items()
        ]
        if args.dynamic_size:
            configurations.append(
                (
                    "flip, dynamic size 256..2304",
                    dict(hflip=True),
                    DISCollator(dynamic_size=(256, 2304)),
                    None,
                )
            )
        for name, options, collator, image_size in configurations:
            dataset = train.with_transform(make_train_transform(image_size, **options))
            for workers in args.workers:
                torch.manual_seed(0)
                rates = [
                    epoch_throughput(dataset, args.batch_size, workers, collator) for _ in range(args.repeats)
                ]
                rows.append((name, workers, statistics.median(rates), min(rates), max(rates)))
                print(f"  {name}, {workers} worker(s): {statistics.median(rates):.1f} samples/s", flush=True)

    print()
    print(
        f"Input pipeline at {args.image_size}x{args.image_size} (sources {args.source_size}px JPEG/PNG, "
        f"batch {args.batch_size}, {torch.get_num_threads()} torch threads in the main process, "
        f"median of {args.repeats} epochs of {args.num_images} images)"
    )
    print()
    print("| augmentations | workers | samples/s (median) | min | max |")
    print("|---|---:|---:|---:|---:|")
    for name, workers, median, low, high in rows:
        print(f"| {name} | {workers} | {median:.1f} | {low:.1f} | {high:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
