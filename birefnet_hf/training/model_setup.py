# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The model and image processor a training run starts from.

* :func:`build_model`: a fresh BiRefNet (``--backbone``, ``--config_overrides``) or one to fine-tune
  (``--init_from``: a ``save_pretrained`` folder, a Hub repository or an authors' checkpoint file), with the
  BatchNorm rule for one image per device;
* :func:`set_train_mode`: training mode, with frozen BatchNorm layers kept on their running statistics;
* :func:`checkpoint_image_processor`, :func:`processor_size`, :func:`make_image_processor`: the image processor
  that comes with ``--init_from`` (a released family's native size) and the one saved with the trained model.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from ..configuration_birefnet import BiRefNetConfig
from ..image_processing_birefnet import BiRefNetImageProcessor
from ..modeling_birefnet import BiRefNetForImageSegmentation

__all__ = [
    "build_model",
    "checkpoint_image_processor",
    "make_image_processor",
    "parse_config_overrides",
    "processor_size",
    "set_train_mode",
]


def parse_config_overrides(text: str | None) -> dict[str, Any]:
    """``"decoder_attention=aspp,inward_reference=false"`` -> ``{"decoder_attention": "aspp", "inward_reference": False}``,
    typed after :class:`BiRefNetConfig`'s defaults."""
    if not text:
        return {}
    defaults = BiRefNetConfig()
    overrides = {}
    for item in text.split(","):
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or not hasattr(defaults, key):
            raise ValueError(f"--config_overrides: {item!r} is not 'field=value' with a BiRefNetConfig field")
        default = getattr(defaults, key)
        if isinstance(default, bool):
            if value.lower() not in ("true", "false"):
                raise ValueError(f"--config_overrides: {key} takes true or false, got {value!r}")
            overrides[key] = value.lower() == "true"
        elif isinstance(default, int):
            overrides[key] = int(value)
        elif isinstance(default, float):
            overrides[key] = float(value)
        elif isinstance(default, (list, tuple)):
            overrides[key] = [int(v) for v in value.split()]
        else:
            overrides[key] = value
    return overrides


def build_model(args: argparse.Namespace) -> tuple[BiRefNetForImageSegmentation, bool, list[str]]:
    """The model to train, whether its BatchNorm statistics must stay frozen, and warnings for the user.

    Reads ``init_from``, ``backbone``, ``use_pretrained_backbone``, ``auxiliary_classification``,
    ``config_overrides``, ``freeze_batch_norm`` and ``per_device_train_batch_size`` of the script's arguments."""
    notes = []
    batch_of_one = args.per_device_train_batch_size == 1
    if args.init_from is not None:
        if Path(args.init_from).is_file():
            from ..convert_birefnet_original_to_hf import convert_checkpoint, load_original_state_dict

            model = convert_checkpoint(load_original_state_dict(args.init_from))
        else:
            model = BiRefNetForImageSegmentation.from_pretrained(args.init_from)
        if args.auxiliary_classification and not model.config.auxiliary_classification:
            raise ValueError(f"--init_from {args.init_from} has no auxiliary classification head")
        freeze = args.freeze_batch_norm
        if batch_of_one and model.config.use_batch_norm and not freeze:
            notes.append(
                "One image per device with a pretrained model that has BatchNorm: BatchNorm cannot estimate statistics "
                "from one image (and fails on the 1x1 global-pooling branch), so its layers stay frozen on their "
                "running statistics (--freeze_batch_norm)."
            )
            freeze = True
        return model, freeze, notes

    config_kwargs = dict(
        backbone=args.backbone,
        use_pretrained_backbone=args.use_pretrained_backbone,
        auxiliary_classification=args.auxiliary_classification,
    )
    config_kwargs.update(parse_config_overrides(args.config_overrides))
    if batch_of_one and config_kwargs.get("use_batch_norm", True):
        notes.append(
            "One image per device: building the decoder without BatchNorm (use_batch_norm=False), as the authors do "
            "for batch size 1 (BatchNorm cannot train on one image). Use a per-device batch of 2 or more to keep it."
        )
        config_kwargs["use_batch_norm"] = False
    return BiRefNetForImageSegmentation(BiRefNetConfig(**config_kwargs)), args.freeze_batch_norm, notes


def set_train_mode(model: torch.nn.Module, freeze_batch_norm: bool) -> None:
    """``model.train()``, with every BatchNorm layer back in eval mode (running statistics) if ``freeze_batch_norm``."""
    model.train()
    if freeze_batch_norm:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


def checkpoint_image_processor(init_from: str | None) -> BiRefNetImageProcessor | None:
    """The image processor that comes with ``--init_from``: its ``preprocessor_config.json``, or for a released
    family without one (the authors' repositories) the family's processor at its native size (2048 for
    ``BiRefNet_HR``, ...); ``None`` for a fresh model, an authors' ``.pth`` or an unknown folder."""
    if init_from is None or Path(init_from).is_file():
        return None
    try:
        return BiRefNetImageProcessor.from_pretrained(init_from)
    except (OSError, ValueError, TypeError):
        from ..families import image_processor_for

        return image_processor_for(init_from)


def processor_size(init_from: str | None) -> list[int] | None:
    """``[height, width]`` of :func:`checkpoint_image_processor` (``longest_edge`` N gives N x N), or ``None``."""
    processor = checkpoint_image_processor(init_from)
    size = {key: value for key, value in dict(processor.size or {}).items() if value} if processor else {}
    if size.get("height") and size.get("width"):
        return [int(size["height"]), int(size["width"])]
    if size.get("longest_edge"):
        return [int(size["longest_edge"])] * 2
    return None


def make_image_processor(args: argparse.Namespace) -> BiRefNetImageProcessor:
    """The processor saved with the model: the checkpoint's (:func:`checkpoint_image_processor`, its size kept
    unless ``--image_size`` was given), else the default processor at the training size."""
    size = {"height": args.image_size[0], "width": args.image_size[1]}
    processor = checkpoint_image_processor(args.init_from)
    if processor is None:
        return BiRefNetImageProcessor(size=size)
    if args.image_size_given:
        processor.size = type(processor.size)(**size) if not isinstance(processor.size, dict) else size
    return processor
