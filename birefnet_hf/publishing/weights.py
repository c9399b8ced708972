# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The weights of a publication: checked against the published configuration, then loaded.

:func:`validate_weights` (phase 1, for every size before anything is built) compares tensor names and shapes, read
from the safetensors headers of a training folder or from the converted authors' checkpoint, with the model built on
the ``meta`` device, so a wrong file is refused without loading a real model. :func:`load_model` (phase 2) builds
the model and loads the weights strictly. Authors' checkpoints (a ``.pth`` / ``.safetensors`` file, or a local
folder in the authors' Hub layout) are converted with :mod:`birefnet_hf.conversion_mapping`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers.utils import logging

from ..configuration_birefnet import BiRefNetConfig
from ..conversion_mapping import is_original_config
from .plan import PublishError, SizePlan

logger = logging.get_logger(__name__)

__all__ = [
    "ARCHITECTURE_FIELDS",
    "CLASSIFIER_PREFIX",
    "authors_checkpoint_file",
    "load_model",
    "validate_weights",
]

#: Configuration fields that decide the architecture (and so the weights); a training folder whose config differs
#: from the published one in any of these is rejected.
ARCHITECTURE_FIELDS = (
    "backbone",
    "multi_scale_input",
    "context_feature_fusion_levels",
    "squeeze_block_type",
    "squeeze_block_count",
    "decoder_block_type",
    "decoder_attention",
    "deformable_kernel_sizes",
    "decoder_inter_channels",
    "inward_reference",
    "inward_reference_patch_split",
    "outward_reference",
    "multi_stage_supervision",
    "use_batch_norm",
)

#: Prefix of the auxiliary classifier's tensors (training only; dropped when the published config has none).
CLASSIFIER_PREFIX = "localization.classifier."


def _meta_state_shapes(config: BiRefNetConfig) -> dict[str, tuple[int, ...]]:
    from ..modeling_birefnet import build_on_meta_device

    model = build_on_meta_device(config)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _weights_files(folder: Path, where: str) -> list[Path]:
    """The safetensors files of a ``save_pretrained`` folder (single file or shards)."""
    if not folder.is_dir():
        raise PublishError(
            f"{where}: {folder} is not a folder (expected a save_pretrained / training output folder)."
        )
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise PublishError(f"{where}: {index} is not a safetensors index: {error}") from error
        files = [folder / name for name in sorted(set(weight_map.values()))]
        missing = [str(path) for path in files if not path.is_file()]
        if missing:
            raise PublishError(f"{where}: shards listed in {index} are missing: {', '.join(missing)}")
        return files
    raise PublishError(f"{where}: no model.safetensors (or model.safetensors.index.json) in {folder}.")


def _compare_tensors(
    found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]], where: str, size: str
) -> None:
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    mismatched = [
        f"{key}: weights {found[key]} vs model {expected[key]}"
        for key in expected
        if key in found and tuple(found[key]) != tuple(expected[key])
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s): " + ", ".join(missing[:10]))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s): " + ", ".join(unexpected[:10]))
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): " + "; ".join(mismatched[:10]))
    if problems:
        raise PublishError(
            f"{where}: the weights do not match the published {size} config: " + " | ".join(problems)
        )


def _training_folder_config_problems(folder: Path, config: BiRefNetConfig) -> tuple[list[str], bool]:
    """Architecture differences between a training folder's ``config.json`` and the published config, and whether
    the folder's model has the (training-only) auxiliary classifier."""
    path = folder / "config.json"
    if not path.is_file():
        return [], False
    try:
        trained = BiRefNetConfig.from_json_file(str(path))
    except (ValueError, TypeError, json.JSONDecodeError) as error:
        raise PublishError(f"{path} is not a BiRefNet config: {error}") from error
    problems = [
        f"{name}: {getattr(trained, name)!r} (weights) vs {getattr(config, name)!r} (published)"
        for name in ARCHITECTURE_FIELDS
        if getattr(trained, name) != getattr(config, name)
    ]
    return problems, bool(trained.auxiliary_classification) and not config.auxiliary_classification


def _read_training_shapes(folder: Path, where: str) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes = {}
    for path in _weights_files(folder, where):
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
        except Exception as error:  # safetensors raises its own error types for corrupt headers
            raise PublishError(f"{where}: cannot read {path}: {error}") from error
    return shapes


def _load_training_state(folder: Path, where: str, drop_classifier: bool) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for path in _weights_files(folder, where):
        state.update(load_file(str(path)))
    if drop_classifier:
        state = {key: value for key, value in state.items() if not key.startswith(CLASSIFIER_PREFIX)}
    return state


def authors_checkpoint_file(path: str | os.PathLike, where: str) -> Path:
    """The weights file of an authors' checkpoint: ``path`` itself (``.pth`` / ``.safetensors``), or the
    ``model.safetensors`` of a folder in the authors' Hub layout (``config.json`` without ``model_type``, pointing
    ``auto_map`` at ``birefnet.BiRefNet``: a local copy of e.g. ``ZhengPeng7/BiRefNet_HR``)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise PublishError(f"{where}: {path} not found.")
    config_path, weights = path / "config.json", path / "model.safetensors"
    if not config_path.is_file() or not weights.is_file():
        raise PublishError(
            f"{where}: {path} is not a folder in the authors' layout: it needs config.json and model.safetensors "
            f"(found: {', '.join(sorted(p.name for p in path.iterdir())) or 'nothing'})."
        )
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PublishError(f"{where}: {config_path} is not a JSON file: {error}") from error
    if not isinstance(raw, dict):
        raise PublishError(f"{where}: {config_path} does not hold a JSON object.")
    if not is_original_config(raw):
        raise PublishError(
            f"{where}: {config_path} is not an authors' BiRefNet config (it has model_type "
            f"{raw.get('model_type')!r}; the authors' config has none and points auto_map at birefnet.BiRefNet). "
            "An already converted folder is published with --weights-dir."
        )
    return weights


def _convert_authors_checkpoint(
    path: Path, config: BiRefNetConfig, expected, where: str
) -> dict[str, torch.Tensor]:
    from ..conversion_mapping import convert_state_dict, infer_backbone, load_original_state_dict, refuse_pre_2024_layout

    path = authors_checkpoint_file(path, where)
    try:
        original = load_original_state_dict(path)
    except (OSError, ValueError) as error:
        raise PublishError(f"{where}: {error}") from error
    try:
        refuse_pre_2024_layout(original)
        detected = infer_backbone(original)
    except ValueError as error:
        raise PublishError(
            f"{where}: {path} is not a BiRefNet checkpoint of a published size: {error}"
        ) from error
    if detected != config.backbone:
        raise PublishError(f"{where}: {path} holds a {detected} model, not {config.backbone}.")
    try:
        return convert_state_dict(original, config, expected)
    except ValueError as error:
        raise PublishError(f"{where}: {error}") from error


def validate_weights(plan: SizePlan, config: BiRefNetConfig) -> None:
    """Check, without building the real model, that ``plan``'s weights fit ``config`` (names and shapes)."""
    source = plan.weights
    if source.kind == "random":
        return
    where = f"{'--weights-dir' if source.kind == 'trained' else '--checkpoint'} {plan.size}"
    expected = _meta_state_shapes(config)
    if source.kind == "trained":
        folder = Path(source.path)
        problems, has_classifier = _training_folder_config_problems(folder, config)
        if problems:
            raise PublishError(
                f"{where}: {folder / 'config.json'} describes another architecture than the published {plan.size} "
                "config: " + "; ".join(problems)
            )
        found = _read_training_shapes(folder, where)
        if has_classifier:
            found = {key: shape for key, shape in found.items() if not key.startswith(CLASSIFIER_PREFIX)}
        _compare_tensors(found, expected, where, plan.size)
    else:
        from ..modeling_birefnet import build_on_meta_device

        meta_state = build_on_meta_device(config).state_dict()
        _convert_authors_checkpoint(Path(source.path), config, meta_state, where)


def load_model(plan: SizePlan, config: BiRefNetConfig, seed: int = 0):
    """The model to publish for ``plan`` (eval mode), with its weights loaded strictly."""
    from ..modeling_birefnet import BiRefNetForImageSegmentation

    source = plan.weights
    if source.kind == "random":
        torch.manual_seed(seed)
        return BiRefNetForImageSegmentation(config).eval()
    model = BiRefNetForImageSegmentation(config)
    if source.kind == "trained":
        where = f"--weights-dir {plan.size}"
        _, has_classifier = _training_folder_config_problems(Path(source.path), config)
        state = _load_training_state(Path(source.path), where, drop_classifier=has_classifier)
        if has_classifier:
            logger.info(
                f"{plan.size}: dropping the auxiliary classifier (training only) from the published weights."
            )
    else:
        state = _convert_authors_checkpoint(
            Path(source.path), config, model.state_dict(), f"--checkpoint {plan.size}"
        )
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    _compare_tensors(
        {key: tuple(value.shape) for key, value in state.items()}, expected, str(source.path), plan.size
    )
    model.load_state_dict(state, strict=True)
    return model.eval()
