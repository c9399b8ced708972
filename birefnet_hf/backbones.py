# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Backbones of BiRefNet's localization module, built with timm.

Every backbone returns the four-level feature pyramid (strides 4, 8, 16, 32) as NCHW tensors, the way the
authors' backbones do:

* PVT-v2: timm's ``pvt_v2_b*`` reproduce the authors' features exactly (each stage ends with its LayerNorm).
* Swin-v1: timm's ``SwinTransformer`` with two differences from timm's own forward, both needed to reproduce the
  authors' (detection-style) Swin on inputs that are not multiples of the window size (e.g. 1024 / 32 = 32
  tokens with window 7 or 12):

  1. shifted-window attention *pads first, then shifts*, with the attention mask built on the padded grid
     (timm shifts first, then pads), see :mod:`birefnet_hf.window_attention`;
  2. every level's output goes through its own LayerNorm (``output_norms``, the authors' ``norm0..norm3``).

Each Swin block runs :func:`~birefnet_hf.window_attention.swin_block` on timm's block modules (timm's own block
and stage forwards are not used); which form of it runs is decided in :mod:`birefnet_hf.inference_paths`.

timm places the patch-merging layer at the start of stage ``i + 1`` where the authors have it at the end of stage
``i``; both produce the same features (each level is read before merging), only the parameter names differ, which
the checkpoint converter maps.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig
from .window_attention import WindowLayoutCache, swin_block


def _timm():
    import timm  # imported lazily: timm is heavy and only needed when a backbone is built

    return timm


class _TimmPyramid(nn.Module):
    """Shared by the backbones: timm's per-stage activation checkpointing, exposed as the ``gradient_checkpointing``
    flag that transformers' ``activation_checkpointing_enable`` sets."""

    def timm_stages(self) -> nn.Sequential:
        raise NotImplementedError

    @property
    def gradient_checkpointing(self) -> bool:
        return all(stage.grad_checkpointing for stage in self.timm_stages())

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, enable: bool) -> None:
        for stage in self.timm_stages():
            stage.grad_checkpointing = bool(enable)


class SwinBackbone(_TimmPyramid):
    """Swin-v1 pyramid: timm's Swin stages with the original padding order and per-level output norms."""

    def __init__(self, config: BiRefNetConfig):
        super().__init__()
        timm = _timm()
        spec = BACKBONE_SPECS[config.backbone]
        model = timm.create_model(
            spec["timm_name"],
            pretrained=config.use_pretrained_backbone,
            num_classes=0,
            global_pool="",
            strict_img_size=False,
            always_partition=True,
            drop_path_rate=config.backbone_drop_path_rate,
        )
        self.patch_embed = model.patch_embed
        self.layers = model.layers
        self.output_norms = nn.ModuleList(nn.LayerNorm(c, eps=1e-5) for c in spec["channels"])
        # window layouts by shape and device, shared by all blocks (not module state: never saved or moved)
        self.window_layouts = WindowLayoutCache()
        # what runs each block: swin_block, or its compiled form (regional_compile.compile_regions sets it)
        self.block_function = swin_block

    def timm_stages(self) -> nn.Sequential:
        return self.layers

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(pixel_values)  # B, H/4, W/4, C
        features = []
        for stage, norm in zip(self.layers, self.output_norms):
            x = stage.downsample(x)  # timm's patch merging (identity in the first stage)
            for block in stage.blocks:
                if stage.grad_checkpointing and torch.is_grad_enabled():
                    x = checkpoint(swin_block, block, x, self.window_layouts, use_reentrant=False)
                else:
                    x = self.block_function(block, x, self.window_layouts)
            features.append(norm(x).permute(0, 3, 1, 2))  # NCHW view of channels-last memory (what the decoder uses)
        return features


class PvtV2Backbone(_TimmPyramid):
    """PVT-v2 pyramid: timm's model, read after every stage (each stage ends with its own LayerNorm)."""

    def __init__(self, config: BiRefNetConfig):
        super().__init__()
        timm = _timm()
        spec = BACKBONE_SPECS[config.backbone]
        model = timm.create_model(
            spec["timm_name"],
            pretrained=config.use_pretrained_backbone,
            num_classes=0,
            drop_path_rate=config.backbone_drop_path_rate,
        )
        self.patch_embed = model.patch_embed
        self.stages = model.stages

    def timm_stages(self) -> nn.Sequential:
        return self.stages

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(pixel_values)  # B, H/4, W/4, C
        features = []
        for stage in self.stages:
            x = stage(x)  # NCHW out of every stage
            features.append(x)
        return features


def init_backbone_module(module: nn.Module) -> None:
    """timm's initialisation for one module of a backbone (used for weights a checkpoint does not provide, or after
    building on the meta device): linear layers truncated-normal (std 0.02) with zero bias, LayerNorm to identity,
    convolutions and BatchNorm PyTorch's defaults, Swin's relative position bias table truncated-normal (std 0.02),
    any other own parameter truncated-normal (std 0.02). Goes through ``transformers.initialization`` (and torch's
    init functions guarded by transformers), so parameters already loaded are left alone."""
    from transformers import initialization as init

    if isinstance(module, nn.Linear):
        init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        if module.weight is not None:
            init.ones_(module.weight)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
        module.reset_parameters()
    else:
        for parameter in module.parameters(recurse=False):
            init.trunc_normal_(parameter, std=0.02)


def build_backbone(config: BiRefNetConfig) -> nn.Module:
    """The backbone named by ``config.backbone``, returning ``[x1, x2, x3, x4]`` (strides 4, 8, 16, 32)."""
    family = BACKBONE_SPECS[config.backbone]["family"]
    if family == "swin":
        return SwinBackbone(config)
    if family == "pvt_v2":
        return PvtV2Backbone(config)
    if family == "torchvision":
        from .backbones_torchvision import TorchvisionBackbone

        return TorchvisionBackbone(config)
    if family == "dinov3":
        from .backbones_dinov3 import DinoV3Backbone

        return DinoV3Backbone(config)
    raise ValueError(f"No backbone builder for family {family!r}.")


__all__ = ["build_backbone", "SwinBackbone", "PvtV2Backbone"]
