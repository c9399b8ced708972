#!/usr/bin/env python
# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Turn DIS5K (or any ``im/`` + ``gt/`` image/mask set) into a self-contained 🤗 dataset, optionally on the Hub.

Examples::

    # DIS5K (the DIS5K folder or its parent) -> parquet shards with embedded images + README.md
    python examples/prepare_dataset.py --dataset-root /data/DIS5K --output-dir dis5k-parquet

    # only some splits, as an Arrow folder for datasets.load_from_disk
    python examples/prepare_dataset.py --dataset-root /data/DIS5K --splits train validation \\
        --output-dir dis5k-arrow --format arrow

    # other sets in the im/gt layout (one split per folder, named after it), pushed to the Hub
    python examples/prepare_dataset.py --layout folders --dataset-root /data/HRSOD/TR-HRSOD /data/HRSOD/TE-HRSOD \\
        --push_to_hub your-name/hrsod

    # try it on the synthetic set
    birefnet-hf synthetic --output-dir /tmp/synthetic --num-train 20 --num-val 4 --num-test 4 --size 256
    python examples/prepare_dataset.py --dataset-root /tmp/synthetic --output-dir /tmp/synthetic-parquet

Load the result with ``birefnet_hf.data.load_hub_dataset("dis5k-parquet")`` (or ``datasets.load_dataset``),
or ``datasets.load_from_disk("dis5k-arrow")`` for ``--format arrow``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from transformers.utils import logging

from birefnet_hf.data import DatasetLayoutError, load_dis5k, load_image_mask_folder
from birefnet_hf.data.dis5k import DIS5K_SPLITS
from birefnet_hf.data.export import export_dataset, push_dataset_to_hub

logger = logging.get_logger(__name__)


def _is_dis5k(root: Path) -> bool:
    return any(
        (candidate / folder).is_dir()
        for candidate in (root, root / "DIS5K")
        for folder in DIS5K_SPLITS.values()
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Convert DIS5K or im/gt image/mask folders to a parquet/Arrow dataset with embedded images.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--dataset-root",
        nargs="+",
        required=True,
        type=Path,
        help="the DIS5K folder (or its parent), or one or more im/gt set folders",
    )
    parser.add_argument(
        "--layout",
        choices=("auto", "dis5k", "folders"),
        default="auto",
        help="dis5k: DIS-TR/DIS-VD/DIS-TE1..4 splits; folders: one split per im/gt folder; "
        "auto: dis5k if the single root holds DIS-* folders",
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        default=None,
        help="DIS5K splits to export (train validation test_1 .. test_4, or DIS-TR ...); default all",
    )
    parser.add_argument("--output-dir", type=Path, default=None, help="folder to write the dataset to")
    parser.add_argument(
        "--format",
        choices=("parquet", "arrow"),
        default="parquet",
        help="parquet: Hub layout (data/*.parquet + README.md); arrow: save_to_disk",
    )
    parser.add_argument("--max-shard-size", default="500MB", help="largest shard size")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output-dir")
    parser.add_argument(
        "--push_to_hub",
        "--push-to-hub",
        dest="push_to_hub",
        metavar="REPO",
        default=None,
        help="also upload to this Hub dataset repository (needs a login / HF_TOKEN)",
    )
    parser.add_argument("--private", action="store_true", help="create the Hub repository as private")
    parser.add_argument(
        "--no-size-check",
        action="store_true",
        help="skip checking that every image and its mask have the same size",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.output_dir is None and args.push_to_hub is None:
        parser.error("give --output-dir and/or --push_to_hub")
    layout = args.layout
    if layout == "auto":
        layout = "dis5k" if len(args.dataset_root) == 1 and _is_dis5k(args.dataset_root[0]) else "folders"
    if layout == "dis5k" and len(args.dataset_root) != 1:
        parser.error("--layout dis5k takes a single --dataset-root")
    if layout == "folders" and args.splits is not None:
        parser.error("--splits only applies to DIS5K; with --layout folders every folder is one split")
    try:
        if layout == "dis5k":
            dataset = load_dis5k(args.dataset_root[0], splits=args.splits, check_sizes=not args.no_size_check)
        else:
            dataset = load_image_mask_folder(args.dataset_root, check_sizes=not args.no_size_check)
    except (FileNotFoundError, DatasetLayoutError) as error:
        parser.exit(1, f"error: {error}\n")
    logger.warning(f"Loaded {', '.join(f'{k}: {len(v)}' for k, v in dataset.items())}")

    if args.output_dir is not None:
        try:
            path = export_dataset(
                dataset,
                args.output_dir,
                format=args.format,
                max_shard_size=args.max_shard_size,
                overwrite=args.overwrite,
                progress=not args.no_progress,
            )
        except FileExistsError as error:
            parser.exit(1, f"error: {error}\n")
        print(f"Wrote {args.format} dataset to {path}")
    if args.push_to_hub is not None:
        push_dataset_to_hub(
            dataset, args.push_to_hub, private=args.private or None, max_shard_size=args.max_shard_size
        )
        print(f"Pushed to https://huggingface.co/datasets/{args.push_to_hub}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
