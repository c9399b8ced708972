# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Datasets for BiRefNet: DIS5K and other image/mask sets as 🤗 Datasets, transforms, collation, synthetic data.

Typical training input pipeline::

    from torch.utils.data import DataLoader
    from birefnet_hf.data import DISCollator, load_dis5k, make_train_transform

    dis5k = load_dis5k("/data/DIS5K")
    train = dis5k["train"].with_transform(make_train_transform(image_size=(1024, 1024)))
    loader = DataLoader(train, batch_size=4, shuffle=True, collate_fn=DISCollator())
"""

from .collate import IGNORE_INDEX, DISCollator
from .dis5k import DIS5K_SPLITS, load_dis5k, resolve_dis5k_root
from .folders import (
    IMAGE_EXTENSIONS,
    MASK_EXTENSIONS,
    NO_CLASS_LABEL,
    DatasetLayoutError,
    ImageMaskPair,
    dis5k_class_id,
    dis5k_class_names,
    image_mask_features,
    load_image_mask_folder,
    pair_image_mask_files,
    parse_dis5k_class_name,
)
from .hub import load_hub_dataset
from .transforms import (
    DISEvalTransform,
    DISTrainTransform,
    make_eval_transform,
    make_train_transform,
    mask_to_uint8,
)


def __getattr__(name: str):
    # ``synthetic`` is imported on first use, so that ``python -m birefnet_hf.data.synthetic`` does not find
    # the module already imported by its package (runpy warns about that).
    if name in ("SYNTHETIC_CLASSES", "generate_synthetic_dis5k"):
        from . import synthetic

        return getattr(synthetic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DIS5K_SPLITS",
    "IGNORE_INDEX",
    "IMAGE_EXTENSIONS",
    "MASK_EXTENSIONS",
    "NO_CLASS_LABEL",
    "SYNTHETIC_CLASSES",
    "DISCollator",
    "DISEvalTransform",
    "DISTrainTransform",
    "DatasetLayoutError",
    "ImageMaskPair",
    "dis5k_class_id",
    "dis5k_class_names",
    "generate_synthetic_dis5k",
    "image_mask_features",
    "load_dis5k",
    "load_hub_dataset",
    "load_image_mask_folder",
    "make_eval_transform",
    "make_train_transform",
    "mask_to_uint8",
    "pair_image_mask_files",
    "parse_dis5k_class_name",
    "resolve_dis5k_root",
]
