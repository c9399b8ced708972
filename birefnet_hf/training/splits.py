# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The training and validation splits of a run: a DIS5K folder, one's own ``im/`` + ``gt/`` folder (with a validation
folder or a seeded held-out fraction) or a 🤗 dataset, cut to ``--max_*_samples``."""

from __future__ import annotations

import argparse

import datasets

from ..data import load_dis5k, load_hub_dataset, load_image_mask_folder
from .arguments import TrainingArgumentError

__all__ = ["load_splits"]


def load_splits(args: argparse.Namespace) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """The training and validation splits (features: image, mask, label, file_name) named by the training script's
    arguments (``dataset_dir`` or ``dataset_name``, ``validation_dir``, ``validation_fraction``, the split names,
    ``max_train_samples``, ``max_eval_samples``, ``seed``); validation is ``None`` when there is none."""
    wanted = [args.train_split] + ([args.validation_split] if args.validation_split else [])
    if args.dataset_dir is not None and (args.dataset_dir / "im").is_dir():
        # your own set in the im/gt layout: a validation folder, or a seeded held-out fraction
        train = load_image_mask_folder(args.dataset_dir)
        validation = None
        if args.validation_dir is not None:
            validation = load_image_mask_folder(args.validation_dir)
        elif args.validation_split and args.validation_fraction > 0:
            held_out = max(1, round(len(train) * args.validation_fraction))
            if held_out >= len(train):
                raise TrainingArgumentError(
                    f"--dataset_dir {args.dataset_dir} has {len(train)} image(s): too few to hold out "
                    f"--validation_fraction {args.validation_fraction}; give --validation_dir or --validation_split none"
                )
            parts = train.train_test_split(test_size=held_out, seed=args.seed, shuffle=True)
            train, validation = parts["train"], parts["test"]
    elif args.dataset_dir is not None:
        loaded = load_dis5k(args.dataset_dir, splits=wanted)
        train, validation = loaded[list(loaded)[0]], loaded[list(loaded)[1]] if len(loaded) > 1 else None
    else:
        loaded = load_hub_dataset(
            args.dataset_name,
            config_name=args.dataset_config_name,
            image_column=args.image_column,
            mask_column=args.mask_column,
        )
        missing = [split for split in wanted if split not in loaded]
        if missing:
            raise ValueError(f"--dataset_name {args.dataset_name} has no split(s) {missing}; it has {list(loaded)}")
        train = loaded[args.train_split]
        validation = loaded[args.validation_split] if args.validation_split else None
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    if validation is not None and args.max_eval_samples is not None:
        validation = validation.select(range(min(args.max_eval_samples, len(validation))))
    return train, validation
