# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Seeded training augmentation: the same image gets the same augmentation in a given epoch whichever process or
data worker loads it, and a resumed run sees exactly the images an uninterrupted one would have seen."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..data import make_train_transform

#: The authors' augmentations, in their order (``config.preproc_methods``); the paper uses flips only.
AUGMENTATIONS = ("flip", "enhance", "rotate", "pepper", "crop")

__all__ = ["AUGMENTATIONS", "SeededAugmentation", "augmentation_seed", "make_augmentation_transform"]


def make_augmentation_transform(image_size: Sequence[int], augmentations: Sequence[str]):
    """The training transform at ``image_size`` with the named :data:`AUGMENTATIONS` switched on."""
    unknown = sorted(set(augmentations) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; choose from {list(AUGMENTATIONS)}")
    return make_train_transform(
        image_size=tuple(image_size),
        hflip="flip" in augmentations,
        color_enhance="enhance" in augmentations,
        rotate="rotate" in augmentations,
        pepper="pepper" in augmentations,
        crop="crop" in augmentations,
    )


def augmentation_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of example ``index`` in ``epoch``: a hash of the three numbers (``numpy.random.SeedSequence``), a
    non-negative 63-bit integer."""
    return int(np.random.SeedSequence([seed, epoch, int(index)]).generate_state(1, np.uint64)[0] >> 1)


class SeededAugmentation(torch.utils.data.Dataset):
    """Apply a random training transform to example ``index`` with torch's CPU generator seeded by
    ``(seed, epoch, index)`` (the global state is restored afterwards), so that augmentations do not depend on which
    process or worker loads the example, nor on the batches skipped when resuming. ``set_epoch`` is called by
    Accelerate's data loader at the start of every epoch.

    Args:
        dataset: a 🤗 dataset (or any indexable of example dicts).
        transform: a batched transform (``make_train_transform``: dict of lists in, dict of lists out).
        seed: the run's seed.
    """

    def __init__(self, dataset, transform: Callable[[dict[str, list]], dict[str, list]], seed: int):
        self.dataset = dataset
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = self.dataset[int(index)]
        with torch.random.fork_rng(devices=[]):
            # CPU only: an accelerator's generators stay untouched
            torch.default_generator.manual_seed(augmentation_seed(self.seed, self.epoch, index))
            batch = self.transform({key: [value] for key, value in example.items()})
        return {key: values[0] for key, values in batch.items()}
