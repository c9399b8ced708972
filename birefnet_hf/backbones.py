"""Backbones of BiRefNet's localization module, built with timm.

Every backbone returns the four-level feature pyramid (strides 4, 8, 16, 32) as NCHW tensors, the way the
authors' backbones do:

* PVT-v2: timm's ``pvt_v2_b*`` reproduce the authors' features exactly (each stage ends with its LayerNorm).
* Swin-v1: timm's ``SwinTransformer`` with two differences from timm's own forward, both needed to reproduce the
  authors' (detection-style) Swin on inputs that are not multiples of the window size (e.g. 1024 / 32 = 32
  tokens with window 7 or 12):

  1. shifted-window attention *pads first, then shifts*, with the attention mask built on the padded grid
     (timm shifts first, then pads), see :class:`PadFirstSwinTransformerBlock`;
  2. every level's output goes through its own LayerNorm (``output_norms``, the authors' ``norm0..norm3``).

timm places the patch-merging layer at the start of stage ``i + 1`` where the authors have it at the end of stage
``i``; both produce the same features (each level is read before merging), only the parameter names differ, which
the checkpoint converter maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig


def _timm():
    import timm  # imported lazily: timm is heavy and only needed when a backbone is built

    return timm


def _pad_first_attention(block, x: torch.Tensor) -> torch.Tensor:
    """(Shifted-)window attention of a timm ``SwinTransformerBlock`` in the original Swin order.

    ``x`` is (B, H, W, C). The map is padded on the bottom/right to a multiple of the window, then cyclically
    shifted; the attention mask separates the regions of the *padded* grid; the result is shifted back and cropped.
    """
    batch, height, width, channels = x.shape
    window_h, window_w = block.window_size
    pad_h = (window_h - height % window_h) % window_h
    pad_w = (window_w - width % window_w) % window_w
    x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    padded_h, padded_w = x.shape[1], x.shape[2]

    has_shift = any(block.shift_size)
    if has_shift:
        x = torch.roll(x, shifts=(-block.shift_size[0], -block.shift_size[1]), dims=(1, 2))
    attn_mask = block.get_attn_mask(x) if has_shift else None

    windows = x.view(batch, padded_h // window_h, window_h, padded_w // window_w, window_w, channels)
    windows = windows.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_h * window_w, channels)
    windows = block.attn(windows, mask=attn_mask)
    x = windows.view(batch, padded_h // window_h, padded_w // window_w, window_h, window_w, channels)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, padded_h, padded_w, channels)

    if has_shift:
        x = torch.roll(x, shifts=block.shift_size, dims=(1, 2))
    return x[:, :height, :width, :].contiguous()


def _make_pad_first_block_class(base: type) -> type:
    """A subclass of timm's ``SwinTransformerBlock`` whose attention step pads before shifting."""
    return type(
        "PadFirstSwinTransformerBlock",
        (base,),
        {"_attn": _pad_first_attention, "__module__": __name__},
    )


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
        from timm.models.swin_transformer import SwinTransformerBlock

        pad_first_class = _make_pad_first_block_class(SwinTransformerBlock)
        for module in model.modules():
            if type(module) is SwinTransformerBlock:
                module.__class__ = pad_first_class
        self.patch_embed = model.patch_embed
        self.layers = model.layers
        self.output_norms = nn.ModuleList(nn.LayerNorm(c, eps=1e-5) for c in spec["channels"])

    def timm_stages(self) -> nn.Sequential:
        return self.layers

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(pixel_values)  # B, H/4, W/4, C
        features = []
        for stage, norm in zip(self.layers, self.output_norms):
            x = stage(x)
            features.append(norm(x).permute(0, 3, 1, 2).contiguous())
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


def build_backbone(config: BiRefNetConfig) -> nn.Module:
    """The backbone named by ``config.backbone``, returning ``[x1, x2, x3, x4]`` (strides 4, 8, 16, 32)."""
    family = BACKBONE_SPECS[config.backbone]["family"]
    if family == "swin":
        return SwinBackbone(config)
    if family == "pvt_v2":
        return PvtV2Backbone(config)
    raise ValueError(f"No backbone builder for family {family!r}.")


__all__ = ["build_backbone", "SwinBackbone", "PvtV2Backbone"]
