# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Image/mask datasets from the Hugging Face Hub (or any ``datasets.load_dataset`` source) by name.

:func:`load_hub_dataset` maps a dataset's columns onto the features every loader of this package returns
(``image``, ``mask``, ``label``, ``file_name``; see :mod:`birefnet_hf.data.folders`), so that a Hub set can
be concatenated with local ones and fed to the same transforms.
"""

from __future__ import annotations

from typing import Any

import datasets
from transformers.utils import logging

from .folders import NO_CLASS_LABEL, _dis5k_class_ids, dis5k_class_names, image_mask_features

logger = logging.get_logger(__name__)

_AnyDataset = datasets.Dataset | datasets.IterableDataset


def _label_mapper(feature: Any, column: str):
    """A function turning values of ``column`` (with ``feature``) into DIS5K class ids (-1 if none)."""
    class_ids = _dis5k_class_ids()
    if isinstance(feature, datasets.ClassLabel):
        to_dis5k = [class_ids.get(name, NO_CLASS_LABEL) for name in feature.names]
        return lambda value: NO_CLASS_LABEL if value is None or value < 0 else to_dis5k[value]
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        return lambda value: class_ids.get(value, NO_CLASS_LABEL) if value is not None else NO_CLASS_LABEL
    if isinstance(feature, datasets.Value) and "int" in feature.dtype:
        num_classes = len(dis5k_class_names())

        def check(value):
            if value is None:
                return NO_CLASS_LABEL
            if not NO_CLASS_LABEL <= value < num_classes:
                raise ValueError(
                    f"Label column {column!r} holds {value}, not a DIS5K class id in [-1, {num_classes})"
                )
            return int(value)

        return check
    raise ValueError(
        f"Label column {column!r} has feature {feature}; expected a ClassLabel, string class names or DIS5K ids"
    )


def _standardise(
    dataset: _AnyDataset,
    *,
    image_column: str,
    mask_column: str,
    label_column: str | None,
    file_name_column: str | None,
    split_name: str,
) -> _AnyDataset:
    features = dataset.features
    if features is None:  # a streamed dataset whose features are not known before iteration
        raise ValueError(f"Cannot map the columns of {split_name!r}: its features are unknown")
    available = list(features)
    for argument, column in (
        ("image_column", image_column),
        ("mask_column", mask_column),
        ("label_column", label_column),
        ("file_name_column", file_name_column),
    ):
        if column is not None and column not in features:
            raise ValueError(
                f"{argument}={column!r} is not a column of split {split_name!r}; columns: {available}"
            )
    for argument, column in (("image_column", image_column), ("mask_column", mask_column)):
        if not isinstance(features[column], datasets.Image):
            raise ValueError(
                f"{argument}={column!r} of split {split_name!r} has feature {features[column]}, not datasets.Image"
            )
    if image_column == mask_column:
        raise ValueError(f"image_column and mask_column are both {image_column!r}")

    default_labels = dis5k_class_names()
    if label_column is None and isinstance(features.get("label"), datasets.ClassLabel):
        if (
            tuple(features["label"].names) == default_labels
        ):  # e.g. a set exported by examples/prepare_dataset.py
            label_column = "label"
    if file_name_column is None and features.get("file_name") == datasets.Value("string"):
        file_name_column = "file_name"
    to_label = _label_mapper(features[label_column], label_column) if label_column is not None else None

    target = image_mask_features()
    if isinstance(dataset, datasets.Dataset):
        labels = (
            [to_label(value) for value in dataset[label_column]]
            if to_label is not None
            else [NO_CLASS_LABEL] * len(dataset)
        )
        file_names = (
            list(dataset[file_name_column])
            if file_name_column is not None
            else [f"{split_name}-{index:06d}" for index in range(len(dataset))]
        )
        dataset = dataset.select_columns([image_column, mask_column])
        dataset = dataset.rename_columns({image_column: "image", mask_column: "mask"})
        dataset = dataset.add_column("label", labels, feature=target["label"])
        dataset = dataset.add_column("file_name", file_names, feature=target["file_name"])
        # Image -> Image casts only change how examples are decoded: no data is rewritten.
        return dataset.cast_column("image", target["image"]).cast_column("mask", target["mask"])

    def standardise_example(example: dict, index: int) -> dict:
        return {
            "image": example[image_column],
            "mask": example[mask_column],
            "label": to_label(example[label_column]) if to_label is not None else NO_CLASS_LABEL,
            "file_name": example[file_name_column]
            if file_name_column is not None
            else f"{split_name}-{index:06d}",
        }

    return dataset.map(standardise_example, with_indices=True, remove_columns=available, features=target)


def load_hub_dataset(
    name: str,
    *,
    config_name: str | None = None,
    image_column: str = "image",
    mask_column: str = "mask",
    split: str | None = None,
    label_column: str | None = None,
    file_name_column: str | None = None,
    **load_dataset_kwargs: Any,
) -> datasets.Dataset | datasets.DatasetDict | datasets.IterableDataset | datasets.IterableDatasetDict:
    """Load an image/mask dataset with ``datasets.load_dataset(name, split=split, ...)`` and map its columns.

    ``name`` is anything ``load_dataset`` accepts: a Hub repository id (``"user/my-dis-set"``) or a local
    folder of parquet/Arrow files (e.g. one written by ``examples/prepare_dataset.py``).

    Args:
        config_name: the dataset's configuration (``load_dataset``'s second argument, e.g. one subset of a
            repository whose README lists several ``configs``); ``None`` = its default.
        image_column / mask_column: the columns (``datasets.Image`` features) holding images and masks; they
            become ``image`` (decoded as RGB) and ``mask`` (decoded as L).
        split: a split name (returns a ``Dataset``) or ``None`` for all splits (returns a ``DatasetDict``).
        label_column: a column of DIS5K class names or ids (ClassLabel, string or int); classes outside the
            219 DIS5K classes become -1. By default a ``label`` ClassLabel column with exactly the DIS5K
            names is kept and otherwise every ``label`` is -1.
        file_name_column: a string column naming examples; by default ``file_name`` if present, else
            ``"<split>-<index>"``.
        **load_dataset_kwargs: passed on to ``datasets.load_dataset`` (``revision``, ``cache_dir``,
            ``streaming``, ``token``, ...).

    Other columns are dropped, so that every loader returns the same features.
    """
    loaded = datasets.load_dataset(name, config_name, split=split, **load_dataset_kwargs)
    options = dict(
        image_column=image_column,
        mask_column=mask_column,
        label_column=label_column,
        file_name_column=file_name_column,
    )
    if isinstance(loaded, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        return type(loaded)(
            {key: _standardise(value, split_name=key, **options) for key, value in loaded.items()}
        )
    return _standardise(loaded, split_name=str(split), **options)
