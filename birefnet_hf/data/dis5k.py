# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""DIS5K (Qin et al., 2022), the dichotomous image segmentation benchmark, as a 🤗 ``DatasetDict``.

Layout of the released dataset::

    DIS5K/DIS-TR/{im,gt}     3,000 training images  -> split "train"
    DIS5K/DIS-VD/{im,gt}       470 validation images -> split "validation"
    DIS5K/DIS-TE1/{im,gt}      500 test images       -> split "test_1"
    ...
    DIS5K/DIS-TE4/{im,gt}      500 test images       -> split "test_4"

Images are ``.jpg`` and masks ``.png`` named like ``1#Accessories#1#Bag#2339506821_83cf9f1d22_o.jpg``;
the fourth ``#`` field is the class, one of 219 training classes (``class_names.txt``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import datasets
from transformers.utils import logging

from .folders import (
    NO_CLASS_LABEL,
    _dis5k_class_ids,
    _raise_problems,
    dataset_from_pairs,
    pair_image_mask_files,
    parse_dis5k_class_name,
)

logger = logging.get_logger(__name__)

#: 🤗 split name -> DIS5K folder name, in the dataset's order.
DIS5K_SPLITS: dict[str, str] = {
    "train": "DIS-TR",
    "validation": "DIS-VD",
    "test_1": "DIS-TE1",
    "test_2": "DIS-TE2",
    "test_3": "DIS-TE3",
    "test_4": "DIS-TE4",
}
_FOLDER_TO_SPLIT = {folder: split for split, folder in DIS5K_SPLITS.items()}


def resolve_dis5k_root(root: str | os.PathLike) -> Path:
    """Return the ``DIS5K`` folder given either that folder or its parent.

    Raises:
        FileNotFoundError: neither ``root`` nor ``root/DIS5K`` holds any ``DIS-*`` split folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"DIS5K root {root} is not a directory")
    for candidate in (root, root / "DIS5K"):
        if candidate.is_dir() and any((candidate / folder).is_dir() for folder in DIS5K_SPLITS.values()):
            return candidate
    raise FileNotFoundError(
        f"{root} is not a DIS5K folder: expected split folders {', '.join(DIS5K_SPLITS.values())} "
        f"in {root} or in {root / 'DIS5K'}"
    )


def _normalise_splits(splits: Sequence[str] | None) -> list[str]:
    if splits is None:
        return list(DIS5K_SPLITS)
    if isinstance(splits, str):
        splits = [splits]
    normalised = []
    for split in splits:
        name = _FOLDER_TO_SPLIT.get(split, split)
        if name not in DIS5K_SPLITS:
            raise ValueError(
                f"Unknown DIS5K split {split!r}; use one of {list(DIS5K_SPLITS)} or a folder name "
                f"{list(DIS5K_SPLITS.values())}"
            )
        if name not in normalised:
            normalised.append(name)
    if not normalised:
        raise ValueError("splits must name at least one DIS5K split")
    return normalised


def _dis5k_labels(file_names: Sequence[str], folder: Path, split: str) -> list[int]:
    """Class ids of a split's files. Malformed names are errors everywhere; names of classes outside the 219
    training classes are errors in ``train`` and ``-1`` elsewhere (DIS5K's 225 categories include a few
    that only occur in DIS-VD/DIS-TE)."""
    class_ids = _dis5k_class_ids()
    labels, problems, unseen = [], [], set()
    for file_name in file_names:
        class_name = parse_dis5k_class_name(file_name)
        if class_name is None:
            problems.append(
                f"{folder / 'im' / file_name}: not a DIS5K file name (expected "
                "'<group id>#<group>#<class id>#<class>#<name>.jpg')"
            )
            labels.append(NO_CLASS_LABEL)
        elif class_name in class_ids:
            labels.append(class_ids[class_name])
        elif split == "train":
            problems.append(
                f"{folder / 'im' / file_name}: unknown DIS5K class {class_name!r} (not in class_names.txt)"
            )
            labels.append(NO_CLASS_LABEL)
        else:
            unseen.add(class_name)
            labels.append(NO_CLASS_LABEL)
    if problems:
        _raise_problems(f"DIS5K split {split!r} ({folder})", problems)
    if unseen:
        logger.info(f"{folder.name}: classes outside the 219 training classes get label -1: {sorted(unseen)}")
    return labels


def load_dis5k(
    root: str | os.PathLike,
    splits: Sequence[str] | None = None,
    *,
    check_sizes: bool = True,
) -> datasets.DatasetDict:
    """Load DIS5K as a ``DatasetDict`` with splits ``train``, ``validation``, ``test_1`` .. ``test_4``.

    Features: ``image`` (RGB), ``mask`` (L), ``label`` (``ClassLabel`` of the 219 DIS5K classes) and
    ``file_name``. The dataset is backed by the file paths: building it only lists folders and reads image
    headers; pixels are decoded when examples are accessed.

    Args:
        root: the ``DIS5K`` folder or its parent.
        splits: the splits to load, by 🤗 name (``"train"``, ``"test_1"``) or folder name (``"DIS-TR"``).
            By default all six, and a missing split folder is an error.
        check_sizes: check (from file headers) that every image and its mask have the same size.

    Raises:
        FileNotFoundError: no DIS5K folder at ``root``, or a requested split folder is missing.
        DatasetLayoutError: images without masks, masks without images, size mismatches, file names that are
            not DIS5K-style, or training files of a class not among the 219 -- each offending file is listed.
    """
    dis5k_root = resolve_dis5k_root(root)
    wanted = _normalise_splits(splits)
    missing = [DIS5K_SPLITS[s] for s in wanted if not (dis5k_root / DIS5K_SPLITS[s]).is_dir()]
    if missing:
        hint = "" if splits is not None else " (pass splits=[...] to load only some splits)"
        raise FileNotFoundError(f"DIS5K root {dis5k_root} lacks split folder(s) {', '.join(missing)}{hint}")
    loaded = {}
    for split in wanted:
        folder = dis5k_root / DIS5K_SPLITS[split]
        pairs = pair_image_mask_files(folder, check_sizes=check_sizes)
        labels = _dis5k_labels([pair.file_name for pair in pairs], folder, split)
        loaded[split] = dataset_from_pairs(pairs, labels, split=split)
        logger.info(f"DIS5K {split} ({folder.name}): {len(pairs)} images")
    return datasets.DatasetDict(loaded)
