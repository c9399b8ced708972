"""Convert the authors' BiRefNet checkpoints (github.com/ZhengPeng7/BiRefNet, their Hub repos, BRIA's RMBG-2.0) to
``BiRefNetForImageSegmentation``.

    python -m birefnet_hf.convert_birefnet_original_to_hf --checkpoint BiRefNet-general-epoch_244.pth \\
        [--backbone swin_v1_l] --output_dir ./birefnet-converted
    birefnet-hf convert --checkpoint model.safetensors --output_dir ./birefnet-converted

The authors' state dict has three top-level parts: ``bb.`` (backbone), ``squeeze_module.`` and ``decoder.``
(plus ``cls_head.`` with auxiliary classification). :func:`rename_original_key` maps each key to this package's
names, like timm's ``checkpoint_filter_fn`` does for foreign checkpoints; :func:`infer_config_from_state_dict` reads
the backbone and every architectural switch off the tensor shapes. Missing, unexpected or mis-shaped keys are errors
that name the key.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch

from .cli import apply_umask, interrupted_exit_code, sigterm_as_interrupt
from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig

#: Buffers the authors' model stores but this model computes (timm keeps them non-persistent).
COMPUTED_BUFFER_SUFFIXES = ("relative_position_index",)
#: Wrapper prefixes left by DataParallel/DDP (``module.``) and ``torch.compile`` (``_orig_mod.``).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


# --------------------------------------------------------------------------------------------- key mapping
def _rename_swin(key: str) -> str:
    match = re.match(r"layers\.(\d+)\.downsample\.(.*)", key)
    if match:  # the authors merge patches at the end of stage i, timm at the start of stage i + 1
        return f"layers.{int(match.group(1)) + 1}.downsample.{match.group(2)}"
    match = re.match(r"norm(\d)\.(.*)", key)
    if match:
        return f"output_norms.{match.group(1)}.{match.group(2)}"
    return key


def _rename_pvt(key: str) -> str:
    match = re.match(r"patch_embed(\d)\.(.*)", key)
    if match:
        stage = int(match.group(1)) - 1
        return f"patch_embed.{match.group(2)}" if stage == 0 else f"stages.{stage}.downsample.{match.group(2)}"
    key = key.replace("dwconv.dwconv", "dwconv")
    key = re.sub(r"^block(\d)\.(\d+)\.", lambda m: f"stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}.", key)
    key = re.sub(r"^norm(\d)\.", lambda m: f"stages.{int(m.group(1)) - 1}.norm.", key)
    return key


_DECODER_RULES = (
    # (authors' pattern, our template); stage numbers count down in their names, up in ours
    (r"ipt_blk(\d)\.(.*)", lambda m: f"inward_references.{5 - int(m.group(1))}.{m.group(2)}"),
    (r"decoder_block(\d)\.(.*)", lambda m: f"blocks.{4 - int(m.group(1))}.{m.group(2)}"),
    (r"lateral_block(\d)\.conv\.(.*)", lambda m: f"lateral_blocks.{4 - int(m.group(1))}.{m.group(2)}"),
    (r"conv_ms_spvn_(\d)\.(.*)", lambda m: f"stage_heads.{4 - int(m.group(1))}.{m.group(2)}"),
    (r"gdt_convs_(\d)\.0\.(.*)", lambda m: f"outward_references.{4 - int(m.group(1))}.conv.{m.group(2)}"),
    (r"gdt_convs_(\d)\.1\.(.*)", lambda m: f"outward_references.{4 - int(m.group(1))}.norm.{m.group(2)}"),
    (r"gdt_convs_pred_(\d)\.0\.(.*)", lambda m: f"outward_references.{4 - int(m.group(1))}.gradient_head.{m.group(2)}"),
    (r"gdt_convs_attn_(\d)\.0\.(.*)", lambda m: f"outward_references.{4 - int(m.group(1))}.attention_head.{m.group(2)}"),
    (r"conv_out1\.0\.(.*)", lambda m: f"head.{m.group(1)}"),
    (r"pyramid_neck_x(\d)\.conv\.(.*)", lambda m: f"pyramid_neck.convs.{int(m.group(1)) - 1}.{m.group(2)}"),
)


def rename_original_key(key: str, backbone: str) -> str | None:
    """Our parameter name for an authors' state-dict key; ``None`` for buffers this model computes itself.

    Raises ``KeyError`` naming the key when it belongs to no known part of BiRefNet.
    """
    if key.endswith(COMPUTED_BUFFER_SUFFIXES):
        return None
    if key.startswith("bb."):
        rest = key[3:]
        family = BACKBONE_SPECS[backbone]["family"]
        if family == "torchvision":  # the authors' conv1..conv4 stages are ours, key for key
            return f"localization.backbone.{rest}"
        if family == "dinov3":
            return f"localization.backbone.vit.{rest}"
        rest = _rename_swin(rest) if family == "swin" else _rename_pvt(rest)
        return f"localization.backbone.{rest}"
    if key.startswith("squeeze_module."):
        return "localization." + key
    if key.startswith("cls_head.0."):
        return "localization.classifier." + key[len("cls_head.0.") :]
    if key.startswith("decoder."):
        rest = key[len("decoder.") :]
        for pattern, template in _DECODER_RULES:
            match = re.fullmatch(pattern, rest)
            if match:
                return "reconstruction." + template(match)
    raise KeyError(f"unexpected key in the BiRefNet checkpoint: {key!r}")


# ---------------------------------------------------------------------------------------- config inference
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


# -------------------------------------------------------------------------------------------- conversion
def convert_state_dict(
    original: Mapping[str, torch.Tensor], config: BiRefNetConfig, expected: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename an authors' state dict to ours and check it against ``expected`` (our model's state dict).

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


def convert_checkpoint(state_dict: Mapping[str, torch.Tensor], backbone: str | None = None, config_overrides=None):
    """Build a ``BiRefNetForImageSegmentation`` holding an authors' state dict (in eval mode)."""
    from .modeling_birefnet import BiRefNetForImageSegmentation

    from .families import refuse_pre_2024_layout

    state_dict = strip_wrapper_prefixes(state_dict)
    refuse_pre_2024_layout(state_dict)
    config = infer_config_from_state_dict(state_dict, backbone)  # checks an explicit backbone first
    for key, value in (config_overrides or {}).items():
        setattr(config, key, value)
    model = BiRefNetForImageSegmentation(config)
    converted = convert_state_dict(state_dict, config, model.state_dict())
    model.load_state_dict(converted, strict=True)
    return model.eval()


def write_model_folder(model, output_dir: str | os.PathLike, image_processor=None) -> Path:
    """``save_pretrained`` into ``output_dir`` atomically: written to a sibling temp folder, then renamed."""
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise FileExistsError(f"--output_dir {output_dir} exists and is not empty; choose a new folder.")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        model.save_pretrained(staging)
        if image_processor is not None:
            image_processor.save_pretrained(staging)
        apply_umask(staging)  # mkdtemp makes 0700 folders (and safetensors 0600 files): use the user's umask
        if output_dir.exists():
            output_dir.rmdir()
        os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
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


if __name__ == "__main__":
    raise SystemExit(main())
