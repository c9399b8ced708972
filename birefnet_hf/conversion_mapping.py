# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The authors' BiRefNet checkpoints (github.com/ZhengPeng7/BiRefNet, their Hub repositories, BRIA's RMBG-2.0) in
this package's terms: pure functions of names, shapes and configs, no model.

* :func:`original_key_mapping` is the one table from the authors' parameter names to ours: ordered regular
  expressions in the form transformers' ``from_pretrained(key_mapping=...)`` applies them (every rule that matches
  fires, in order). ``BiRefNetPreTrainedModel.from_pretrained`` hands it to transformers, so an authors' repository
  loads through transformers' own loader (``device_map``, ``dtype``, meta-device loading, ``revision``,
  ``output_loading_info``, ...); :func:`rename_original_key` applies the same table to one key.
* :func:`infer_config_from_state_dict` reads the backbone and every architectural switch off the tensor shapes
  (shapes only: meta tensors from a ``.safetensors`` header will do, see :func:`original_state_dict_on_meta`);
  :func:`is_original_config` recognises the authors' ``config.json``.
* :func:`convert_state_dict` renames a state dict and checks it against the model's expected one: missing,
  unexpected and mis-shaped keys are errors that name the key.
* :func:`refuse_pre_2024_layout` names the authors' early layout, which this package does not implement;
  :func:`unreadable_weights_error` names a truncated or corrupt weights file.

This module imports only the configuration (and torch, safetensors, the standard library), so the model, the
converter command and the publisher can all use it without importing each other.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig

#: Buffers the authors' model stores but this model computes (timm keeps them non-persistent).
COMPUTED_BUFFER_SUFFIXES = ("relative_position_index",)
#: Wrapper prefixes left by DataParallel/DDP (``module.``) and ``torch.compile`` (``_orig_mod.``).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
#: Top-level modules of the authors' early (pre-2024) BiRefNet, which the released layout no longer has.
PRE_2024_PREFIXES = ("locate_header.", "refiner.", "refiner_", "dec_end.", "stem_layer.")
#: Where every renamed key lands: the two modules of the paper (Fig. 3).
OUR_TOP_LEVEL = ("localization.", "reconstruction.")


# --------------------------------------------------------------------------------------------- key mapping
def _backbone_rules(backbone: str) -> dict[str, str]:
    """The authors' ``bb.*`` names -> ours: specific rules first (each rewrites the ``bb.`` prefix too, so no later
    rule fires on its result), then the plain prefix."""
    family = BACKBONE_SPECS[backbone]["family"]
    ours = "localization.backbone."
    rules: dict[str, str] = {}
    if family == "swin":
        for stage in range(4):  # the authors merge patches at the end of stage i, timm at the start of stage i + 1
            rules[rf"^bb\.layers\.{stage}\.downsample\."] = f"{ours}layers.{stage + 1}.downsample."
        for level in range(4):
            rules[rf"^bb\.norm{level}\."] = f"{ours}output_norms.{level}."
    elif family == "pvt_v2":
        rules[r"^bb\.patch_embed1\."] = f"{ours}patch_embed."
        for stage in range(2, 5):
            rules[rf"^bb\.patch_embed{stage}\."] = f"{ours}stages.{stage - 1}.downsample."
        for stage in range(1, 5):
            rules[rf"^bb\.block{stage}\."] = f"{ours}stages.{stage - 1}.blocks."
            rules[rf"^bb\.norm{stage}\."] = f"{ours}stages.{stage - 1}.norm."
    elif family == "dinov3":
        ours += "vit."
    # torchvision: the authors' conv1..conv4 stages are ours, key for key
    rules[r"^bb\."] = ours
    if family == "pvt_v2":  # timm's MLP holds the depth-wise convolution directly
        rules[r"\.dwconv\.dwconv\."] = ".dwconv."
    return rules


def _decoder_rules() -> dict[str, str]:
    """The authors' ``decoder.*`` names -> ours. Their stage numbers count down (4 = deepest), ours up (0)."""
    ours = "reconstruction."
    rules: dict[str, str] = {}
    for n in range(1, 6):  # inward reference: ipt_blk5 (stride 32) .. ipt_blk1 (full resolution)
        rules[rf"^decoder\.ipt_blk{n}\."] = f"{ours}inward_references.{5 - n}."
    for n in range(1, 5):
        rules[rf"^decoder\.decoder_block{n}\."] = f"{ours}blocks.{4 - n}."
    for n in range(2, 5):
        stage = 4 - n
        rules[rf"^decoder\.lateral_block{n}\.conv\."] = f"{ours}lateral_blocks.{stage}."
        rules[rf"^decoder\.conv_ms_spvn_{n}\."] = f"{ours}stage_heads.{stage}."
        rules[rf"^decoder\.gdt_convs_{n}\.0\."] = f"{ours}outward_references.{stage}.conv."
        rules[rf"^decoder\.gdt_convs_{n}\.1\."] = f"{ours}outward_references.{stage}.norm."
        rules[rf"^decoder\.gdt_convs_pred_{n}\.0\."] = f"{ours}outward_references.{stage}.gradient_head."
        rules[rf"^decoder\.gdt_convs_attn_{n}\.0\."] = f"{ours}outward_references.{stage}.attention_head."
    rules[r"^decoder\.conv_out1\.0\."] = f"{ours}head."
    for level in range(1, 5):  # DINOv3: single-stride ViT levels -> strides 4..32
        rules[rf"^decoder\.pyramid_neck_x{level}\.conv\."] = f"{ours}pyramid_neck.convs.{level - 1}."
    return rules


def original_key_mapping(backbone: str) -> dict[str, str]:
    """The authors' state-dict names -> this package's, for a checkpoint with ``backbone``, as ordered regular
    expressions: ``{pattern: replacement}``, the ``key_mapping`` of transformers' ``from_pretrained``.

    Every pattern is anchored at the start of the key and rewrites its top-level part (``bb.`` ->
    ``localization.backbone.``, ``squeeze_module.`` -> ``localization.squeeze_module.``, ``cls_head.0.`` ->
    ``localization.classifier.``, ``decoder.<part>`` -> ``reconstruction.<part>``), so a key is renamed by exactly
    one of them (plus the PVT depth-wise convolution's inner rule); wrapper prefixes (``module.``, ``_orig_mod.``)
    are dropped first."""
    if backbone not in BACKBONE_SPECS:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONE_SPECS)}.")
    wrappers = "|".join(re.escape(prefix) for prefix in WRAPPER_PREFIXES)
    return {
        rf"^(?:{wrappers})+": "",
        **_backbone_rules(backbone),
        r"^squeeze_module\.": "localization.squeeze_module.",
        r"^cls_head\.0\.": "localization.classifier.",
        **_decoder_rules(),
    }


def apply_key_mapping(key: str, key_mapping: Mapping[str, str]) -> str:
    """``key`` renamed by ``key_mapping`` the way transformers applies a ``key_mapping``: every rule in order, each
    replacing the first text its pattern finds."""
    for pattern, replacement in key_mapping.items():
        match = re.search(pattern, key)
        if match is not None:
            key = key.replace(match.group(0), replacement, 1)
    return key


def rename_original_key(key: str, backbone: str) -> str | None:
    """Our parameter name for an authors' state-dict key; ``None`` for buffers this model computes itself.

    Raises ``KeyError`` naming the key when it belongs to no known part of BiRefNet.
    """
    if key.endswith(COMPUTED_BUFFER_SUFFIXES):
        return None
    renamed = apply_key_mapping(key, original_key_mapping(backbone))
    if not renamed.startswith(OUR_TOP_LEVEL):
        raise KeyError(f"unexpected key in the BiRefNet checkpoint: {key!r}")
    return renamed


# ---------------------------------------------------------------------------------------- checkpoint layouts
def strip_wrapper_prefixes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove ``module.`` / ``_orig_mod.`` prefixes (DDP, torch.compile), in any order or repetition."""
    out = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def refuse_pre_2024_layout(state_dict: Mapping[str, Any]) -> None:
    """Raise a ``ValueError`` naming the layout when ``state_dict`` is an authors' pre-2024 checkpoint (extra
    locate head ``locate_header.*``, refiner ``refiner*.``, ``dec_end.*`` or ``stem_layer.*`` fields), whose model
    this package does not implement."""
    extra = sorted(key for key in state_dict if key.startswith(PRE_2024_PREFIXES))
    if extra:
        shown = ", ".join(extra[:5]) + (f" ... ({len(extra)} keys)" if len(extra) > 5 else "")
        raise ValueError(
            "this is a checkpoint in the authors' pre-2024 BiRefNet layout (locate head / refiner fields: "
            f"{shown}); that early architecture is not supported. Use a released checkpoint (see "
            "birefnet_hf.families.FAMILIES) or the authors' code of that time."
        )


def refuse_dinov3_without_neck(state_dict: Mapping[str, Any], backbone: str) -> None:
    """Raise a ``ValueError`` naming the layout when a DINOv3 checkpoint has no pyramid neck.

    The authors' first DINOv3 code (``models/birefnet.py`` and ``config.py`` at their commit 2a09e98) resized the
    single-stride ViT levels to strides 4-32 and ran the decoder on the ViT's own widths, with ``freeze_bb = False``;
    their current code maps the resized levels to Swin-L's widths with ``decoder.pyramid_neck_x1..4`` (and freezes
    the backbone), which is what this package builds. A checkpoint of the first layout would otherwise be
    misread (its decoder widths look like another image-pyramid setting)."""
    if BACKBONE_SPECS[backbone]["family"] != "dinov3" or "decoder.pyramid_neck_x1.conv.weight" in state_dict:
        return
    if any(key.startswith("decoder.") for key in state_dict):
        raise ValueError(
            f"this {backbone} checkpoint has no pyramid neck (decoder.pyramid_neck_x1..4.conv): it is in the layout "
            "of the authors' first DINOv3 code, whose decoder runs on the ViT's own widths, which is not supported. "
            "The authors' current code (and this package) maps the ViT levels to Swin-L's widths with that neck."
        )


def is_original_config(raw: Mapping[str, Any]) -> bool:
    """Whether a parsed ``config.json`` is the authors' (their Hub repositories, RMBG-2.0): no ``model_type``, and
    ``auto_map`` pointing ``AutoModelForImageSegmentation`` at ``birefnet.BiRefNet`` (or ``architectures`` being
    ``["BiRefNet"]``)."""
    auto_model = (raw.get("auto_map") or {}).get("AutoModelForImageSegmentation", "")
    return "model_type" not in raw and (auto_model.endswith(".BiRefNet") or raw.get("architectures") == ["BiRefNet"])


# ---------------------------------------------------------------------------------------- config inference
def infer_backbone(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The backbone of an authors' checkpoint, from its tensor shapes."""
    if "bb.patch_embed.proj.weight" in state_dict:  # Swin
        embed = state_dict["bb.patch_embed.proj.weight"].shape[0]
        depth3 = len({k.split(".")[4] for k in state_dict if k.startswith("bb.layers.2.blocks.")})
        candidates = [
            name
            for name, spec in BACKBONE_SPECS.items()
            if spec["family"] == "swin" and spec["channels"][0] == embed
        ]
        if embed == 96:
            candidates = ["swin_v1_t" if depth3 == 6 else "swin_v1_s"]
        if len(candidates) == 1:
            return candidates[0]
    elif "bb.patch_embed1.proj.weight" in state_dict:  # PVT-v2
        embed = state_dict["bb.patch_embed1.proj.weight"].shape[0]
        depths = tuple(
            len({k.split(".")[2] for k in state_dict if k.startswith(f"bb.block{s}.")}) for s in (1, 2, 3, 4)
        )
        by_depths = {(2, 2, 2, 2): "pvt_v2_b1", (3, 4, 6, 3): "pvt_v2_b2", (3, 6, 40, 3): "pvt_v2_b5"}
        if embed == 32:
            return "pvt_v2_b0"
        if depths in by_depths:
            return by_depths[depths]
    from .backbones_dinov3 import infer_dinov3_backbone
    from .backbones_torchvision import infer_torchvision_backbone

    other = infer_torchvision_backbone(state_dict) or infer_dinov3_backbone(state_dict)
    if other is not None:
        return other
    raise ValueError(
        "cannot infer the backbone from the checkpoint's tensors (supported: "
        f"{', '.join(sorted(BACKBONE_SPECS))}); pass --backbone."
    )


def _check_backbone_matches(state_dict: Mapping[str, torch.Tensor], backbone: str) -> None:
    """Refuse an explicit ``--backbone`` that the checkpoint's backbone tensors contradict, before anything else is
    read off the shapes (a wrong backbone otherwise surfaces as an obscure decoder-width mismatch)."""
    try:
        detected = infer_backbone(state_dict)
    except ValueError:  # not recognisable: the key-by-key check names what does not fit
        return
    if detected != backbone:
        raise ValueError(
            f"--backbone {backbone} does not match the checkpoint, whose backbone tensors are {detected}'s; "
            f"pass --backbone {detected} or leave --backbone out."
        )


def infer_config_from_state_dict(state_dict: Mapping[str, torch.Tensor], backbone: str | None = None) -> BiRefNetConfig:
    """A :class:`BiRefNetConfig` whose architecture matches an authors' state dict (backbone and every switch)."""
    if backbone is not None and backbone not in BACKBONE_SPECS:
        raise ValueError(f"unknown --backbone {backbone!r}; choose one of {sorted(BACKBONE_SPECS)}.")
    if backbone is not None:
        _check_backbone_matches(state_dict, backbone)
    inferred = infer_backbone(state_dict) if backbone is None else backbone
    refuse_dinov3_without_neck(state_dict, inferred)
    keys = set(state_dict)
    channels = BACKBONE_SPECS[inferred]["channels"]

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    lateral = state_dict.get("decoder.lateral_block2.conv.weight")
    if lateral is None:
        raise ValueError("not a BiRefNet checkpoint: 'decoder.lateral_block2.conv.weight' is missing.")
    # 'add' and 'none' have the same tensors; 'add' is the only published one of the two
    decoder_first = BiRefNetConfig(backbone=inferred, multi_scale_input="none").decoder_channels[0]
    multi_scale_input = "cat" if lateral.shape[0] == 2 * decoder_first else "add"
    deepest = 2 * channels[3] if multi_scale_input == "cat" else channels[3]

    if has("decoder.decoder_block4.dec_att.aspp_deforms."):
        attention = "aspp_deformable"
        kernel_sizes = []
        index = 0
        while f"decoder.decoder_block4.dec_att.aspp_deforms.{index}.atrous_conv.regular_conv.weight" in keys:
            kernel_sizes.append(
                int(state_dict[f"decoder.decoder_block4.dec_att.aspp_deforms.{index}.atrous_conv.regular_conv.weight"].shape[-1])
            )
            index += 1
    elif has("decoder.decoder_block4.dec_att.aspp2."):
        attention, kernel_sizes = "aspp", [1, 3, 7]
    else:
        attention, kernel_sizes = "none", [1, 3, 7]

    squeeze_count = len({k.split(".")[1] for k in keys if k.startswith("squeeze_module.")})
    squeeze_type, context_levels = "none", 0
    if squeeze_count:
        if "squeeze_module.0.conv_in.weight" in keys:
            squeeze_type = "residual" if "squeeze_module.0.conv_resi.weight" in keys else "basic"
            squeeze_in = state_dict["squeeze_module.0.conv_in.weight"].shape[1]
        elif has("squeeze_module.0.aspp_deforms."):
            squeeze_type = "aspp_deformable"
            squeeze_in = state_dict["squeeze_module.0.aspp1.atrous_conv.regular_conv.weight"].shape[1]
        else:
            squeeze_type = "aspp"
            squeeze_in = state_dict["squeeze_module.0.aspp1.atrous_conv.weight"].shape[1]
        factor = 2 if multi_scale_input == "cat" else 1
        context = squeeze_in - deepest
        sums = {n: sum(c * factor for c in channels[3 - n : 3]) for n in range(4)}
        matches = [n for n, s in sums.items() if s == context]
        if not matches:
            raise ValueError(f"squeeze block input width {squeeze_in} matches no context-fusion setting.")
        context_levels = matches[0]
    else:
        block4_in = state_dict["decoder.decoder_block4.conv_in.weight"].shape[1]
        inref = state_dict["decoder.ipt_blk5.conv_out.weight"].shape[0] if "decoder.ipt_blk5.conv_out.weight" in keys else 0
        context_levels = 0 if block4_in - inref == deepest else 3

    inward = "decoder.ipt_blk5.conv1.weight" in keys
    patch_split = inward and state_dict["decoder.ipt_blk5.conv1.weight"].shape[1] != 3
    inter = state_dict["decoder.decoder_block4.conv_in.weight"].shape[0]
    block4_in = state_dict["decoder.decoder_block4.conv_in.weight"].shape[1]
    config = BiRefNetConfig(
        backbone=inferred,
        multi_scale_input=multi_scale_input,
        context_feature_fusion_levels=context_levels,
        squeeze_block_type=squeeze_type,
        squeeze_block_count=max(1, squeeze_count),
        decoder_block_type="residual" if "decoder.decoder_block4.conv_resi.weight" in keys else "basic",
        decoder_attention=attention,
        deformable_kernel_sizes=kernel_sizes or [1, 3, 7],
        decoder_inter_channels="adaptive" if inter != 64 and inter == block4_in // 4 else "fixed",
        inward_reference=inward,
        inward_reference_patch_split=bool(patch_split) if inward else True,
        outward_reference="decoder.gdt_convs_4.0.weight" in keys,
        multi_stage_supervision="decoder.conv_ms_spvn_4.weight" in keys,
        auxiliary_classification="cls_head.0.weight" in keys,
        num_auxiliary_classes=int(state_dict["cls_head.0.weight"].shape[0]) if "cls_head.0.weight" in keys else 219,
        use_batch_norm="decoder.decoder_block4.bn_in.weight" in keys,
    )
    return config


def prepare_original_state_dict(
    state_dict: Mapping[str, torch.Tensor], backbone: str | None = None
) -> tuple[dict[str, torch.Tensor], BiRefNetConfig]:
    """The first steps of every conversion: wrapper prefixes dropped, the pre-2024 layout refused, an explicit
    ``backbone`` checked against the tensors, the config inferred. Returns the cleaned state dict and its config."""
    state_dict = strip_wrapper_prefixes(state_dict)
    refuse_pre_2024_layout(state_dict)
    return state_dict, infer_config_from_state_dict(state_dict, backbone)


# -------------------------------------------------------------------------------------------- conversion
def convert_state_dict(
    original: Mapping[str, torch.Tensor], config: BiRefNetConfig, expected: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename an authors' state dict to ours and check it against ``expected`` (our model's state dict; meta tensors
    will do).

    Every expected key must be produced exactly once with the expected shape; anything else is a ``ValueError``
    naming the offending keys.
    """
    converted: dict[str, torch.Tensor] = {}
    unexpected, mismatched = [], []
    for key, tensor in original.items():
        try:
            new_key = rename_original_key(key, config.backbone)
        except KeyError:
            unexpected.append(key)
            continue
        if new_key is None:
            continue
        if new_key not in expected:
            unexpected.append(key)
            continue
        if tuple(tensor.shape) != tuple(expected[new_key].shape):
            mismatched.append(f"{key} -> {new_key}: checkpoint {tuple(tensor.shape)} vs model {tuple(expected[new_key].shape)}")
            continue
        converted[new_key] = tensor
    missing = [k for k in expected if k not in converted]
    problems = []
    if missing:
        problems.append("missing keys (model parameters the checkpoint lacks): " + ", ".join(missing[:20]))
    if unexpected:
        problems.append("unexpected keys (checkpoint tensors the model has no place for): " + ", ".join(unexpected[:20]))
    if mismatched:
        problems.append("shape mismatches: " + "; ".join(mismatched[:20]))
    if problems:
        raise ValueError(f"checkpoint does not fit BiRefNet ({config.backbone}): " + " | ".join(problems))
    return {k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in converted.items()}


# ---------------------------------------------------------------------------------------------- reading
def unreadable_weights_error(name_or_path: str | os.PathLike, error: BaseException, subfolder: str = "") -> OSError:
    """An ``OSError`` naming the ``.safetensors`` file(s) of a model folder that cannot be read (``error`` is what
    safetensors raised), for loaders to raise instead of safetensors' bare ``SafetensorError``."""
    from safetensors import safe_open

    path = Path(name_or_path)
    folder = path / subfolder if subfolder else path
    if path.is_file():
        candidates = [path]
    elif folder.is_dir():
        candidates = sorted(folder.glob("*.safetensors"))
    else:
        candidates = []
    broken = []
    for candidate in candidates:
        try:
            with safe_open(str(candidate), framework="pt") as handle:
                handle.keys()
        except Exception:  # safetensors raises its own error type (and OSError) for unreadable files
            broken.append(str(candidate))
    where = ", ".join(broken) if broken else f"the weights of {str(name_or_path)!r}"
    return OSError(
        f"cannot read {where}: {error}. The file is truncated or corrupt (an interrupted download, copy or save?); "
        "download or write it again."
    )


def load_original_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an authors' checkpoint: ``.safetensors``, or ``.pth``/``.pt``/``.bin`` with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state_dict = load_file(str(path))
        except SafetensorError as error:
            raise unreadable_weights_error(path, error) from error
    else:
        try:
            state_dict = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as error:  # pickle errors come in many types
            raise ValueError(f"cannot read checkpoint {path} as a weights-only PyTorch file: {error}") from error
        if isinstance(state_dict, Mapping) and "state_dict" in state_dict and isinstance(state_dict["state_dict"], Mapping):
            state_dict = state_dict["state_dict"]
        if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
            raise ValueError(f"checkpoint {path} does not hold a state dict of tensors.")
    return strip_wrapper_prefixes(state_dict)


def original_state_dict_on_meta(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The names and shapes of a ``.safetensors`` checkpoint as meta tensors, read from its header only (no tensor
    data is read): enough for :func:`infer_config_from_state_dict` and :func:`convert_state_dict`."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            shapes = {key: handle.get_slice(key).get_shape() for key in handle.keys()}
    except SafetensorError as error:
        raise unreadable_weights_error(path, error) from error
    return strip_wrapper_prefixes({key: torch.empty(shape, device="meta") for key, shape in shapes.items()})


__all__ = [
    "COMPUTED_BUFFER_SUFFIXES",
    "PRE_2024_PREFIXES",
    "WRAPPER_PREFIXES",
    "apply_key_mapping",
    "convert_state_dict",
    "infer_backbone",
    "infer_config_from_state_dict",
    "is_original_config",
    "load_original_state_dict",
    "original_key_mapping",
    "original_state_dict_on_meta",
    "prepare_original_state_dict",
    "refuse_dinov3_without_neck",
    "refuse_pre_2024_layout",
    "rename_original_key",
    "strip_wrapper_prefixes",
    "unreadable_weights_error",
]
