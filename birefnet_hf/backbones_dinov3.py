# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""DINOv3 backbones (``dino_v3_s`` .. ``dino_v3_7b``) and the authors' pyramid neck.

The authors build each DINOv3 ViT with timm's ``vit_*_patch16_dinov3`` (``features_only=True``,
``dynamic_img_size=True``) and read four blocks (``out_indices``, e.g. 5, 11, 17, 23 for ViT-L). Every block gives the
same stride-16 map with the ViT's width, so the network has no pyramid: the authors' decoder

1. resizes the four levels bilinearly (``align_corners=True``) to strides 4, 8, 16 and 32 of the input, and
2. maps each with a 1x1 convolution (their ``pyramid_neck_x1`` .. ``pyramid_neck_x4``) to Swin-L's widths
   (192, 384, 768, 1536; doubled with the image-pyramid input ``"cat"``),

after the image-pyramid input, context fusion and squeeze block have run on the ViT widths; the backbone is frozen
(``freeze_bb = 'dino_v3' in bb``; ``BiRefNetConfig.freeze_backbone``, applied by the model). :class:`PyramidNeck` is that neck (in the reconstruction module, where the authors
have it), :class:`DinoV3Backbone` the ViT. Keys: the authors' ``bb.model.*`` are ``localization.backbone.vit.model.*``
here and their ``decoder.pyramid_neck_x{k}.conv.*`` are ``reconstruction.pyramid_neck.convs.{k-1}.*``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig


class DinoV3Backbone(nn.Module):
    """timm DINOv3 ViT, ``features_only``: four stride-16 maps of the ViT's width (NCHW), from ``out_indices``."""

    def __init__(self, config: BiRefNetConfig):
        super().__init__()
        import timm  # imported lazily: timm is heavy and only needed when a backbone is built

        spec = BACKBONE_SPECS[config.backbone]
        self.vit = timm.create_model(
            spec["timm_name"],
            pretrained=config.use_pretrained_backbone,
            features_only=True,
            dynamic_img_size=True,
            out_indices=spec["out_indices"],
            drop_path_rate=config.backbone_drop_path_rate,
        )

    @property
    def gradient_checkpointing(self) -> bool:
        return bool(getattr(self.vit.model, "grad_checkpointing", False))

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, enable: bool) -> None:
        self.vit.model.set_grad_checkpointing(bool(enable))

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        return list(self.vit(pixel_values))


class PyramidNeck(nn.Module):
    """The authors' pyramid neck: level ``k`` (k = 0..3, shallow to deep) resized to stride ``4 * 2**k`` of the
    input and mapped by a 1x1 convolution from ``in_channels[k]`` to ``out_channels[k]``."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 1) for i, o in zip(in_channels, out_channels))

    def forward(self, levels, input_size) -> list[torch.Tensor]:
        height, width = input_size
        out = []
        for k, (level, conv) in enumerate(zip(levels, self.convs)):
            stride = 4 * 2**k
            level = F.interpolate(level, size=(height // stride, width // stride), mode="bilinear", align_corners=True)
            out.append(conv(level))
        return out


def infer_dinov3_backbone(state_dict) -> str | None:
    """The DINOv3 backbone of an authors' state dict (``bb.model.*``) from its width, depth and MLP type; else
    ``None``."""
    embed = state_dict.get("bb.model.patch_embed.proj.weight")
    if embed is None:
        return None
    width = int(embed.shape[0])
    depth = len({key.split(".")[3] for key in state_dict if key.startswith("bb.model.blocks.")})
    gated = "bb.model.blocks.0.mlp.fc1_g.weight" in state_dict
    for name, spec in BACKBONE_SPECS.items():
        if spec["family"] != "dinov3" or spec["channels"][0] != width or max(spec["out_indices"]) + 1 != depth:
            continue
        if width == 384 and gated != (name == "dino_v3_s_plus"):
            continue
        return name
    return None


__all__ = ["DinoV3Backbone", "PyramidNeck", "infer_dinov3_backbone"]
