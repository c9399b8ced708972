# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Convert the authors' BiRefNet checkpoints (github.com/ZhengPeng7/BiRefNet, their Hub repos, BRIA's RMBG-2.0) to
``BiRefNetForImageSegmentation``.

    python -m birefnet_hf.convert_birefnet_original_to_hf --checkpoint BiRefNet-general-epoch_244.pth \\
        [--backbone swin_v1_l] --output_dir ./birefnet-converted
    birefnet-hf convert --checkpoint model.safetensors --output_dir ./birefnet-converted

The authors' state dict has three top-level parts: ``bb.`` (backbone), ``squeeze_module.`` and ``decoder.``
(plus ``cls_head.`` with auxiliary classification). The mapping itself (key names, config inference from the tensor
shapes, the checks that name a missing, unexpected or mis-shaped key) is :mod:`birefnet_hf.conversion_mapping`,
which ``from_pretrained`` uses too; this module builds the model and holds the command, and re-exports the mapping's
names for the imports that predate it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import torch

from .atomic_io import atomic_folder
from .cli import apply_umask, interrupted_exit_code, sigterm_as_interrupt
from .configuration_birefnet import BACKBONE_SPECS
from .conversion_mapping import (  # re-exported: the public names of this module before the split
    COMPUTED_BUFFER_SUFFIXES,
    WRAPPER_PREFIXES,
    convert_state_dict,
    infer_backbone,
    infer_config_from_state_dict,
    load_original_state_dict,
    prepare_original_state_dict,
    rename_original_key,
    strip_wrapper_prefixes,
    unreadable_weights_error,
)
from .modeling_birefnet import BiRefNetForImageSegmentation


def convert_checkpoint(state_dict: Mapping[str, torch.Tensor], backbone: str | None = None, config_overrides=None):
    """Build a ``BiRefNetForImageSegmentation`` holding an authors' state dict (in eval mode)."""
    state_dict, config = prepare_original_state_dict(state_dict, backbone)  # checks an explicit backbone first
    for key, value in (config_overrides or {}).items():
        setattr(config, key, value)
    model = BiRefNetForImageSegmentation(config)
    converted = convert_state_dict(state_dict, config, model.state_dict())
    model.load_state_dict(converted, strict=True)
    return model.eval()


def write_model_folder(model, output_dir: str | os.PathLike, image_processor=None) -> Path:
    """``save_pretrained`` into ``output_dir`` atomically (:func:`~birefnet_hf.atomic_io.atomic_folder`): written to
    a sibling staging folder, then renamed. A non-empty ``output_dir`` is refused."""
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise FileExistsError(f"--output_dir {output_dir} exists and is not empty; choose a new folder.")
    with atomic_folder(output_dir) as staging:
        model.save_pretrained(staging)
        if image_processor is not None:
            image_processor.save_pretrained(staging)
        apply_umask(staging)  # safetensors writes 0600 files: give them the user's umask
    return output_dir


def _default_image_processor():
    try:
        from .image_processing_birefnet import BiRefNetImageProcessor
    except ImportError:
        return None
    return BiRefNetImageProcessor()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="birefnet-hf convert",
        description="Convert an authors' BiRefNet checkpoint (.pth or .safetensors) to a save_pretrained folder.",
    )
    parser.add_argument("--checkpoint", required=True, help="authors' checkpoint: .pth/.pt/.bin or .safetensors")
    parser.add_argument(
        "--backbone", choices=sorted(BACKBONE_SPECS), default=None, help="backbone (inferred from the tensors if omitted)"
    )
    parser.add_argument("--output_dir", required=True, help="new folder for the converted model")
    args = parser.parse_args(argv)

    from transformers.utils import logging

    logger = logging.get_logger("birefnet_hf.convert")
    logging.set_verbosity_info()
    output_dir = Path(args.output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        parser.error(f"--output_dir {output_dir} exists and is not an empty folder; choose a new folder.")
    try:
        with sigterm_as_interrupt():
            state_dict = load_original_state_dict(args.checkpoint)
            model = convert_checkpoint(state_dict, args.backbone)
            model.config.architectures = ["BiRefNetForImageSegmentation"]
            write_model_folder(model, output_dir, _default_image_processor())
    except (OSError, ValueError) as error:
        print(f"birefnet-hf convert: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        print(f"birefnet-hf convert: interrupted; {output_dir} was not written.", file=sys.stderr)
        return interrupted_exit_code(error)
    parameters = sum(p.numel() for p in model.parameters())
    logger.info(
        f"converted {args.checkpoint} ({model.config.backbone}, {parameters / 1e6:.1f}M parameters) -> {args.output_dir}"
    )
    return 0


__all__ = [
    "COMPUTED_BUFFER_SUFFIXES",
    "WRAPPER_PREFIXES",
    "convert_checkpoint",
    "convert_state_dict",
    "infer_backbone",
    "infer_config_from_state_dict",
    "load_original_state_dict",
    "main",
    "rename_original_key",
    "strip_wrapper_prefixes",
    "unreadable_weights_error",
    "write_model_folder",
]


if __name__ == "__main__":
    raise SystemExit(main())
