# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""PyTorch BiRefNet: Bilateral Reference for High-Resolution Dichotomous Image Segmentation.

Zheng et al., CAAI Artificial Intelligence Research 2024. The model has two parts (paper Fig. 3):

* the **localization module** (Sec. 3.2): a hierarchical transformer backbone run on the image and, with the
  image-pyramid input (IPT), on its half-size copy; context feature fusion (CFF) of the shallower levels into the
  deepest one; a squeeze block that turns the fused feature F^e into F^d;
* the **reconstruction module** (Sec. 3.3): four reconstruction blocks (RB: deformable convolutions with 1x1, 3x3
  and 7x7 receptive fields plus global pooling), lateral connections from the backbone, and the **bilateral
  reference** (Sec. 3.4): the *inward reference* stacks patches of the full-resolution image onto every stage's
  input, the *outward reference* predicts the image gradient in the object's regions and turns it into an attention
  map on the stage's features. In training every stage also predicts a side output (multi-stage supervision).

Two heads on one body, as in transformers' ``XModel`` + ``XForTask`` pattern: [`BiRefNetModel`] returns the encoder
levels and the decoder features, [`BiRefNetForImageSegmentation`] adds the full-resolution head (and, in training,
the side outputs and losses). Both keep the same parameter names, so either loads the other's checkpoint.

Parameter names inside the blocks follow the authors' checkpoints; :mod:`birefnet_hf.conversion_mapping` maps the
authors' top-level names (``bb.``, ``squeeze_module.``, ``decoder.``) to the ones below, and ``from_pretrained`` loads
an authors' repository through transformers' loader with that mapping.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput, logging

from .backbones import build_backbone, init_backbone_module
from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig
from .conversion_mapping import (
    convert_state_dict,
    is_original_config,
    original_key_mapping,
    original_state_dict_on_meta,
    prepare_original_state_dict,
    unreadable_weights_error,
)
from .deformable_conv import modulated_deform_conv2d
from .families import family_for
from .inference_paths import tensor_core_channel_multiple
from .loss_birefnet import BiRefNetLoss

logger = logging.get_logger(__name__)

#: Input sides must be multiples of this (the inward reference cuts the image into a patch grid per stage).
SIZE_DIVISOR = 32


@dataclass
class BiRefNetImageSegmentationOutput(ModelOutput):
    """
    Output of [`BiRefNetForImageSegmentation`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Total training loss (paper Eq. 1 over all side outputs plus the outward reference's gradient loss),
            returned when `labels` are given.
        logits (`torch.FloatTensor` of shape `(batch_size, 1, height, width)`):
            Foreground logits (before sigmoid) at the input resolution.
        stage_logits (`tuple(torch.FloatTensor)`, *optional*):
            Training only, with multi-stage supervision: side-output logits of the reconstruction stages, coarse to
            fine (strides 32, 16, 8), each `(batch_size, 1, h, w)`.
        gradient_logits (`tuple(torch.FloatTensor)`, *optional*):
            Training only, with the outward reference: the predicted gradient maps of the same stages (logits).
        gradient_labels (`tuple(torch.FloatTensor)`, *optional*):
            Training only, with the outward reference: their targets, the image's Laplacian times the stage's side
            output upsampled to the input size, as the authors compute them (before their sigmoid in the loss).
        class_logits (`torch.FloatTensor` of shape `(batch_size, num_auxiliary_classes)`, *optional*):
            Training only, with auxiliary classification.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            With `output_hidden_states=True`: the four encoder levels (after the image-pyramid input, before context
            fusion), strides 4 to 32.
        loss_terms (`dict[str, torch.FloatTensor]`, *optional*):
            The weighted loss terms that add up to `loss` (for logging).
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    stage_logits: tuple[torch.FloatTensor, ...] | None = None
    gradient_logits: tuple[torch.FloatTensor, ...] | None = None
    gradient_labels: tuple[torch.FloatTensor, ...] | None = None
    class_logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    loss_terms: dict[str, torch.FloatTensor] | None = None


@dataclass
class BiRefNetModelOutput(ModelOutput):
    """
    Output of [`BiRefNetModel`]: the features of both modules, before any head.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, channels, height / 4, width / 4)`):
            The reconstruction module's last feature map (stride 4), which the full-resolution head of
            [`BiRefNetForImageSegmentation`] turns into the foreground logits; `channels` is half the first decoder
            width (`config.decoder_channels[0] // 2`).
        encoder_hidden_states (`tuple(torch.FloatTensor)`):
            The four encoder levels of the localization module (after the image-pyramid input, before context
            feature fusion), strides 4, 8, 16 and 32, widths `config.encoder_channels` (the backbone's, doubled by
            `multi_scale_input="cat"`).
        decoder_hidden_states (`tuple(torch.FloatTensor)`):
            The reconstruction module's feature map after each of its four stages (reconstruction block, then the
            outward reference's gating where it is on), coarse to fine: strides 32, 16, 8 and 4. The last one is
            `last_hidden_state`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    """The authors' resize everywhere in the model: bilinear, ``align_corners=True`` (skipped at equal size).
    ``size`` stays as given (no ``int()``), so that a traced graph keeps it as a function of the input's shape."""
    size = tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def _batch_norm(channels: int, enabled: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if enabled else nn.Identity()


def image_patches(image: torch.Tensor, size) -> torch.Tensor:
    """Cut ``image`` (N, C, H, W) into the grid of (H/h) x (W/w) patches of size ``(h, w)`` and stack them on the
    channel axis, channel-major then row-major over the grid: output (N, C * gh * gw, h, w)."""
    batch, channels, height, width = image.shape
    patch_h, patch_w = size[0], size[1]  # no int(): traced graphs keep the sizes symbolic
    grid_h, grid_w = height // patch_h, width // patch_w
    patches = image.view(batch, channels, grid_h, patch_h, grid_w, patch_w)
    return patches.permute(0, 1, 2, 4, 3, 5).reshape(batch, channels * grid_h * grid_w, patch_h, patch_w)


def _tensor_core_padded(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
    """``(x, weight, bias)`` with the input and output channels zero-padded to the device's tensor-core multiple
    (:func:`~birefnet_hf.inference_paths.tensor_core_channel_multiple`; unchanged off CUDA). The first
    ``weight.shape[0]`` output channels of the convolution are unchanged."""
    multiple = tensor_core_channel_multiple(x)
    spare_out, spare_in = -weight.shape[0] % multiple, -weight.shape[1] % multiple
    if spare_in:
        x = F.pad(x, (0, 0, 0, 0, 0, spare_in))  # keeps a channels-last input channels-last
    if spare_in or spare_out:
        weight = F.pad(weight, (0, 0, 0, 0, 0, spare_in, 0, spare_out))
        bias = F.pad(bias, (0, spare_out))
    return x, weight, bias


class ZeroInitConv2d(nn.Conv2d):
    """A convolution initialised to zero (the deformable convolutions' offset and modulation predictors)."""


class DeformableConv2d(nn.Module):
    """Modulated deformable convolution (DCNv2) whose offsets and modulation are predicted from its input by two
    convolutions of the same kernel; the modulation is ``2 * sigmoid(.)``. Offsets start at zero (authors' init)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int, bias: bool = False):
        super().__init__()
        taps = kernel_size * kernel_size
        self.padding = (padding, padding)
        self.offset_conv = ZeroInitConv2d(in_channels, 2 * taps, kernel_size, padding=padding, bias=True)
        self.modulator_conv = ZeroInitConv2d(in_channels, taps, kernel_size, padding=padding, bias=True)
        self.regular_conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the two predictors read the same input with the same kernel: one convolution with both weights
        taps = self.modulator_conv.out_channels
        weight = torch.cat((self.offset_conv.weight, self.modulator_conv.weight))
        bias = torch.cat((self.offset_conv.bias, self.modulator_conv.bias))
        # on CUDA the 3 * taps filters are padded with zero filters to a tensor-core multiple (3 * taps is odd)
        predicted = F.conv2d(*_tensor_core_padded(x, weight, bias), padding=self.padding)
        offset, modulator = predicted[:, : 2 * taps], predicted[:, 2 * taps : 3 * taps]
        modulator = 2.0 * torch.sigmoid(modulator)
        return modulated_deform_conv2d(
            x, offset, modulator, self.regular_conv.weight, self.regular_conv.bias, padding=self.padding
        )


class ASPPBranch(nn.Module):
    """One receptive field of an (deformable) ASPP module: convolution, BatchNorm, ReLU."""

    def __init__(self, in_channels, planes, kernel_size, padding, dilation=1, deformable=False, use_batch_norm=True):
        super().__init__()
        if deformable:
            self.atrous_conv = DeformableConv2d(in_channels, planes, kernel_size, padding=padding)
        else:
            self.atrous_conv = nn.Conv2d(
                in_channels, planes, kernel_size, padding=padding, dilation=dilation, bias=False
            )
        self.bn = _batch_norm(planes, use_batch_norm)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.atrous_conv(x)))


class _ASPPBase(nn.Module):
    """Shared tail of the ASPP modules: global-pooling branch, concatenation, 1x1 projection, BN, ReLU, dropout."""

    inter_channels = 256

    def _build_tail(self, in_channels: int, out_channels: int, num_branches: int, use_batch_norm: bool) -> None:
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Conv2d(in_channels, self.inter_channels, 1, bias=False),
            _batch_norm(self.inter_channels, use_batch_norm),
            nn.ReLU(inplace=True),
        )
        self.conv1 = nn.Conv2d(self.inter_channels * (num_branches + 1), out_channels, 1, bias=False)
        self.bn1 = _batch_norm(out_channels, use_batch_norm)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(0.5)

    def _fuse(self, x: torch.Tensor, branches: list[torch.Tensor]) -> torch.Tensor:
        """``conv1`` over the concatenation [branches, pooled], computed as the sum of each branch's 1x1 product
        (the same linear map, without materialising the wide concatenation). The pooled branch is a 1x1 map
        broadcast over the positions (the authors' bilinear resize of a 1x1 map), so its product is too."""
        pooled = self.global_avg_pool(x)
        weights = self.conv1.weight.split(self.inter_channels, dim=1)
        x = F.conv2d(pooled, weights[-1])
        for weight, branch in zip(weights, branches):
            x = x + F.conv2d(branch, weight)
        return self.dropout(self.relu(self.bn1(x)))


class ASPP(_ASPPBase):
    """Atrous spatial pyramid pooling (dilations 1, 6, 12, 18), the `"aspp"` decoder attention."""

    def __init__(self, in_channels: int, out_channels: int | None = None, use_batch_norm: bool = True):
        super().__init__()
        out_channels = out_channels or in_channels
        for index, dilation in enumerate((1, 6, 12, 18), start=1):
            kernel = 1 if dilation == 1 else 3
            padding = 0 if dilation == 1 else dilation
            branch = ASPPBranch(in_channels, self.inter_channels, kernel, padding, dilation, False, use_batch_norm)
            self.add_module(f"aspp{index}", branch)
        self._build_tail(in_channels, out_channels, 4, use_batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fuse(x, [self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x)])


class DeformableASPP(_ASPPBase):
    """The reconstruction block's multi-receptive-field module (Sec. 3.3): a 1x1 deformable branch, deformable
    branches with hierarchical kernels (1x1, 3x3, 7x7) and a global-pooling branch."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        kernel_sizes=(1, 3, 7),
        use_batch_norm: bool = True,
    ):
        super().__init__()
        out_channels = out_channels or in_channels
        planes = self.inter_channels
        self.aspp1 = ASPPBranch(in_channels, planes, 1, 0, deformable=True, use_batch_norm=use_batch_norm)
        self.aspp_deforms = nn.ModuleList(
            ASPPBranch(in_channels, planes, k, k // 2, deformable=True, use_batch_norm=use_batch_norm)
            for k in kernel_sizes
        )
        self._build_tail(in_channels, out_channels, 1 + len(kernel_sizes), use_batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fuse(x, [self.aspp1(x), *(branch(x) for branch in self.aspp_deforms)])


def _decoder_attention(config: BiRefNetConfig, channels: int) -> nn.Module | None:
    if config.decoder_attention == "aspp":
        return ASPP(channels, use_batch_norm=config.use_batch_norm)
    if config.decoder_attention == "aspp_deformable":
        return DeformableASPP(channels, kernel_sizes=config.deformable_kernel_sizes, use_batch_norm=config.use_batch_norm)
    return None


class ReconstructionBlock(GradientCheckpointingLayer):
    """Reconstruction block (RB, Sec. 3.3): 3x3 conv-BN-ReLU into a narrow width, the multi-receptive-field module,
    3x3 conv-BN out (no ReLU after it, as in the authors' code). ``residual=True`` adds a 1x1 shortcut (ResBlk)."""

    def __init__(self, config: BiRefNetConfig, in_channels: int, out_channels: int, residual: bool = False):
        super().__init__()
        inter = in_channels // 4 if config.decoder_inter_channels == "adaptive" else 64
        self.conv_in = nn.Conv2d(in_channels, inter, 3, padding=1)
        self.bn_in = _batch_norm(inter, config.use_batch_norm)
        self.relu_in = nn.ReLU(inplace=True)
        attention = _decoder_attention(config, inter)
        if attention is not None:
            self.dec_att = attention
        self.conv_out = nn.Conv2d(inter, out_channels, 3, padding=1)
        self.bn_out = _batch_norm(out_channels, config.use_batch_norm)
        if residual:
            self.conv_resi = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_resi(x) if hasattr(self, "conv_resi") else None
        x = self.relu_in(self.bn_in(self.conv_in(x)))
        if hasattr(self, "dec_att"):
            x = self.dec_att(x)
        x = self.bn_out(self.conv_out(x))
        return x if shortcut is None else x + shortcut


class InwardReference(nn.Module):
    """Inward reference (InRef, Sec. 3.4): the source image at its original resolution, cut into patches of the
    stage's size and stacked on the channel axis (or, without patch split, resized to it), then two 3x3 convs
    (no nonlinearity between them, as in the authors' code). The result is concatenated to the stage's input."""

    def __init__(self, in_channels: int, out_channels: int, patch_split: bool, inter_channels: int = 64):
        super().__init__()
        self.patch_split = patch_split
        self.conv1 = nn.Conv2d(in_channels, inter_channels, 3, padding=1)
        self.conv_out = nn.Conv2d(inter_channels, out_channels, 3, padding=1)

    def _source(self, image: torch.Tensor, size) -> torch.Tensor:
        source = image_patches(image, size) if self.patch_split else _resize(image, size)
        # channels-last like the decoder features it is concatenated to (a mixed-format concatenation is ~3x
        # slower) and for the full-resolution head's 5x5 convolution (~2x faster)
        return source.contiguous(memory_format=torch.channels_last)

    def forward(self, image: torch.Tensor, size) -> torch.Tensor:
        return self.conv_out(self.conv1(self._source(image, size)))

    def projected(self, image: torch.Tensor, size, projection: torch.Tensor) -> torch.Tensor:
        """``F.conv2d(self(image, size), projection)`` for a 1x1 ``projection`` (K, out_channels, 1, 1), at the
        cost of one K-output 5x5 convolution of the source.

        With no nonlinearity between them, ``conv1``, ``conv_out`` and the projection compose into one 5x5 kernel
        (the full convolution of the 3x3 kernels) and one bias. That is exact wherever ``conv_out`` reads no
        zero padding; on the one-pixel border of the map it does, so the border is computed the literal way, on
        strips three pixels wide. Used by the full-resolution head at inference (3 -> 64 -> 8 channels at the
        input resolution become 3 -> K).
        """
        source = self._source(image, size)
        second = torch.einsum("ko,omij->kmij", projection.flatten(1), self.conv_out.weight)
        second_bias = projection.flatten(1) @ self.conv_out.bias
        first = self.conv1
        # composed[k, c] = sum_m full_conv(second[k, m], first[m, c]); conv_transpose2d computes full convolutions
        kernel = F.conv_transpose2d(first.weight.transpose(0, 1), second.transpose(0, 1)).transpose(0, 1)
        bias = second_bias + second.sum(dim=(2, 3)) @ first.bias
        out = F.conv2d(*_tensor_core_padded(source, kernel, bias), padding=2)[:, : kernel.shape[0]]

        def literal(strip):
            return F.conv2d(first(strip), second, second_bias, padding=1)

        out[..., :1, :] = literal(source[..., :3, :])[..., :1, :]
        out[..., -1:, :] = literal(source[..., -3:, :])[..., -1:, :]
        out[..., :, :1] = literal(source[..., :, :3])[..., :, :1]
        out[..., :, -1:] = literal(source[..., :, -3:])[..., :, -1:]
        return out


class OutwardReference(nn.Module):
    """Outward reference (OutRef, Sec. 3.4): features sensitive to fine detail (conv-BN-ReLU) predict the gradient
    map (``gradient_head``, supervised in training) and an attention map (``attention_head`` + sigmoid) that
    multiplies the stage's features. The gating runs at inference too."""

    def __init__(self, in_channels: int, use_batch_norm: bool, hidden_channels: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden_channels, 3, padding=1)
        self.norm = _batch_norm(hidden_channels, use_batch_norm)
        self.relu = nn.ReLU(inplace=True)
        self.gradient_head = nn.Conv2d(hidden_channels, 1, 1)
        self.attention_head = nn.Conv2d(hidden_channels, 1, 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        gradient_features = self.relu(self.norm(self.conv(features)))
        gradient_logits = self.gradient_head(gradient_features) if self.training else None
        attention = torch.sigmoid(self.attention_head(gradient_features))
        return features * attention, gradient_logits


class LocalizationModule(nn.Module):
    """Localization module (Sec. 3.2): backbone (twice with the image-pyramid input), context feature fusion, and
    the squeeze block(s) F^e -> F^d; with auxiliary classification (and ``with_classifier``, the task model's), a
    classifier on the pooled deepest level."""

    def __init__(self, config: BiRefNetConfig, with_classifier: bool = True):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config)
        if config.freezes_backbone:  # the authors freeze DINOv3 backbones (their `freeze_bb`)
            self.backbone.requires_grad_(False)
        channels = config.encoder_channels  # shallow -> deep
        self.context_channels = sum(channels[3 - config.context_feature_fusion_levels : 3])
        squeeze_in = channels[3] + self.context_channels
        if config.squeeze_block_type != "none":
            widths = [squeeze_in] + [channels[3]] * (config.squeeze_block_count - 1)
            self.squeeze_module = nn.Sequential(*(self._squeeze_block(config, w, channels[3]) for w in widths))
        if config.auxiliary_classification and with_classifier:
            self.classifier = nn.Linear(channels[3], config.num_auxiliary_classes)

    @staticmethod
    def _squeeze_block(config: BiRefNetConfig, in_channels: int, out_channels: int) -> nn.Module:
        kind = config.squeeze_block_type
        if kind in ("basic", "residual"):
            return ReconstructionBlock(config, in_channels, out_channels, residual=kind == "residual")
        if kind == "aspp":
            return ASPP(in_channels, out_channels, use_batch_norm=config.use_batch_norm)
        return DeformableASPP(
            in_channels, out_channels, kernel_sizes=config.deformable_kernel_sizes, use_batch_norm=config.use_batch_norm
        )

    def encode(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """The four encoder levels, with the image-pyramid input (IPT) merged in."""
        features = self.backbone(pixel_values)
        mode = self.config.multi_scale_input
        if mode != "none":
            height, width = pixel_values.shape[-2:]
            half = self.backbone(_resize(pixel_values, (height // 2, width // 2)))
            half = [_resize(h, f.shape[-2:]) for h, f in zip(half, features)]
            if mode == "cat":
                features = [torch.cat((f, h), dim=1) for f, h in zip(features, half)]
            else:
                features = [f + h for f, h in zip(features, half)]
        return features

    def forward(self, pixel_values: torch.Tensor):
        x1, x2, x3, x4 = encoder_levels = self.encode(pixel_values)
        class_logits = None
        if self.training and hasattr(self, "classifier"):
            class_logits = self.classifier(x4.mean(dim=(2, 3)))
        levels = self.config.context_feature_fusion_levels
        if levels:
            context = [_resize(f, x4.shape[-2:]) for f in (x1, x2, x3)[3 - levels :]]
            x4 = torch.cat((*context, x4), dim=1)
        if hasattr(self, "squeeze_module"):
            x4 = self.squeeze_module(x4)
        return (x1, x2, x3, x4), encoder_levels, class_logits


class ReconstructionOutput(NamedTuple):
    """What :class:`ReconstructionModule` computes; the side outputs and gradient maps are training-only (empty
    otherwise), ``logits`` is ``None`` without the heads."""

    logits: torch.Tensor | None
    stage_features: tuple[torch.Tensor, ...]
    stage_logits: tuple[torch.Tensor, ...]
    gradient_logits: tuple[torch.Tensor, ...]
    gradient_labels: tuple[torch.Tensor, ...]


class ReconstructionModule(nn.Module):
    """Reconstruction module (Sec. 3.3) with the bilateral reference: four stages from stride 32 to stride 4, then
    the full-resolution head. Stage ``i`` = [inward reference] -> reconstruction block -> [side output] ->
    [outward reference] -> upsample + lateral feature of the next level.

    ``with_heads=False`` (the base [`BiRefNetModel`]) leaves out what only the segmentation task uses: the
    full-resolution head with its inward reference, and the side-output heads."""

    def __init__(self, config: BiRefNetConfig, with_heads: bool = True):
        super().__init__()
        self.config = config
        e1, e2, e3, e4 = config.encoder_channels
        c1, c2, c3, c4 = config.decoder_channels  # the encoder's, or (ViT backbones) the pyramid neck's widths
        block_out = (c3, c2, c1, c1 // 2)
        deepest = c4
        context = 0
        if config.squeeze_block_type == "none":  # the context-fused F^e goes to the first block unsqueezed
            context = sum((e1, e2, e3)[3 - config.context_feature_fusion_levels :])
        if config.uses_pyramid_neck:  # the authors' neck: single-stride ViT levels -> strides 4-32, Swin-L widths
            from .backbones_dinov3 import PyramidNeck

            self.pyramid_neck = PyramidNeck((e1, e2, e3, e4 + context), (c1, c2, c3, c4))
        else:
            deepest += context
        lateral_in = (deepest, c3, c2, c1)  # what each stage receives before the inward reference
        inref_out = (e4 // 8, e4 // 8, e3 // 8, e2 // 8, e1 // 8)
        if config.inward_reference:
            split = config.inward_reference_patch_split
            grids = (32, 16, 8, 4, 1)  # image patches per side at strides 32, 16, 8, 4, 1
            stages = zip(grids, inref_out) if with_heads else zip(grids[:4], inref_out[:4])
            self.inward_references = nn.ModuleList(
                InwardReference(3 * g * g if split else 3, out, split) for g, out in stages
            )
        else:
            inref_out = (0, 0, 0, 0, 0)
        residual = config.decoder_block_type == "residual"
        self.blocks = nn.ModuleList(
            ReconstructionBlock(config, lateral_in[i] + inref_out[i], block_out[i], residual) for i in range(4)
        )
        self.lateral_blocks = nn.ModuleList(nn.Conv2d(c, c, 1) for c in (c3, c2, c1))
        if with_heads:
            self.head = nn.Conv2d(c1 // 2 + inref_out[4], 1, 1)
        if with_heads and config.multi_stage_supervision:
            self.stage_heads = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in (c3, c2, c1))
        if config.outward_reference:
            self.outward_references = nn.ModuleList(OutwardReference(c, config.use_batch_norm) for c in (c3, c2, c1))

    def _with_inward_reference(self, index: int, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if not self.config.inward_reference:
            return features
        return torch.cat((features, self.inward_references[index](image, features.shape[-2:])), dim=1)

    def forward(self, image, levels, gradient_target=None) -> ReconstructionOutput:
        """``gradient_target`` (training with the outward reference): the image's gradient prior, see
        :func:`image_gradient_target`; the gradient maps and their labels are returned when it is given."""
        # The decoder runs channels-last: oneDNN's 1x1 convolutions are ~1.8x faster so on CPU and the deformable
        # convolutions produce channels-last maps anyway (swin_v1_l forward -3 %). Values are unchanged.
        if hasattr(self, "pyramid_neck"):
            levels = self.pyramid_neck(levels, image.shape[-2:])
        x1, x2, x3, x4 = (level.contiguous(memory_format=torch.channels_last) for level in levels)
        laterals = (x3, x2, x1)
        stage_features, stage_logits, gradient_logits, gradient_labels = [], [], [], []
        features = x4
        for index in range(3):
            features = self.blocks[index](self._with_inward_reference(index, features, image))
            side_output = None
            if self.training and hasattr(self, "stage_heads"):
                side_output = self.stage_heads[index](features)
                stage_logits.append(side_output)
            if self.config.outward_reference:
                features, gradient_pred = self.outward_references[index](features)
                if gradient_target is not None:
                    gradient_logits.append(gradient_pred)
                    gradient_labels.append(gradient_target * _resize(side_output, image.shape[-2:]))
            stage_features.append(features)
            lateral = laterals[index]
            features = _resize(features, lateral.shape[-2:]) + self.lateral_blocks[index](lateral)
        features = self.blocks[3](self._with_inward_reference(3, features, image))
        stage_features.append(features)
        logits = self._full_resolution_head(features, image) if hasattr(self, "head") else None
        return ReconstructionOutput(
            logits, tuple(stage_features), tuple(stage_logits), tuple(gradient_logits), tuple(gradient_labels)
        )

    def _full_resolution_head(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Upsample the stride-4 features to the input size, [concatenate the inward reference], 1x1 conv to one
        channel. At inference the same linear map runs in a cheaper order: the head's 1x1 conv commutes with the
        bilinear upsampling (its weights sum to one), so it runs at stride 4 and one channel is upsampled instead
        of c1/2; the inward reference's share comes from :meth:`InwardReference.projected`."""
        size = image.shape[-2:]
        if self.training:
            features = _resize(features, size)
            return self.head(self._with_inward_reference(4, features, image))
        channels = features.shape[1]
        logits = _resize(F.conv2d(features, self.head.weight[:, :channels], self.head.bias), size)
        if self.config.inward_reference:
            logits = logits + self.inward_references[4].projected(image, size, self.head.weight[:, channels:])
        return logits


def image_gradient_target(pixel_values: torch.Tensor) -> torch.Tensor:
    """The outward reference's gradient prior: 5x5 Laplacian (kornia's kernel, reflect padding, normalised by the
    kernel's absolute sum) of the channel-mean image, as the authors compute it."""
    gray = pixel_values.mean(dim=1, keepdim=True)
    kernel = torch.ones(5, 5, dtype=gray.dtype, device=gray.device)
    kernel[2, 2] = 1 - 25
    kernel = kernel / kernel.abs().sum()
    gray = F.pad(gray, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(gray, kernel.view(1, 1, 5, 5))


_HUB_KWARGS = ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")
#: `from_pretrained` keyword arguments that set config fields (as transformers' own config loading applies them);
#: `dtype` is a loading option there.
_CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(BiRefNetConfig)) - {"dtype"}


def _original_layout_weights(name_or_path, kwargs) -> str | None:
    """Path of the weights if ``name_or_path`` holds a checkpoint in the authors' layout, else ``None``."""
    from transformers.utils import cached_file

    if kwargs.get("config") is not None or not isinstance(name_or_path, (str, os.PathLike)):
        return None
    hub_kwargs = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
    config_file = cached_file(
        name_or_path, "config.json", _raise_exceptions_for_missing_entries=False, **hub_kwargs
    )
    if config_file is None:
        return None
    with open(config_file, encoding="utf-8") as handle:
        try:
            raw = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise OSError(f"{config_file} is not a valid JSON file: {error}") from error
    if not isinstance(raw, dict):
        raise OSError(f"{config_file} does not hold a JSON object (it holds a {type(raw).__name__}).")
    if not is_original_config(raw):
        return None
    return cached_file(name_or_path, "model.safetensors", **hub_kwargs)


def _copy_unaligned_cpu_tensors(model: nn.Module) -> None:
    """Copy CPU parameters and buffers that sit unaligned in a memory-mapped ``.safetensors`` file into fresh
    (64-byte aligned) memory. SIMD kernels may round the last bit differently on unaligned data; with this, an
    authors' checkpoint loaded by ``from_pretrained`` computes exactly what the explicit converter's model does."""
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            if tensor.device.type == "cpu" and tensor.data_ptr() % 64:
                tensor.data = tensor.data.clone()


class BiRefNetPreTrainedModel(PreTrainedModel):
    config_class = BiRefNetConfig
    base_model_prefix = "birefnet"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["ReconstructionBlock"]
    # the authors' checkpoints store Swin's relative-position index, which timm computes (a non-persistent buffer)
    _keys_to_ignore_on_load_unexpected = [r"relative_position_index$"]

    def _init_weights(self, module: nn.Module) -> None:
        """The authors' initialisation: PyTorch's defaults for the decoder, zero offsets and modulation for the
        deformable convolutions (so they start as plain convolutions with modulation 1); timm's initialisation for
        backbone weights that are not loaded (:func:`~birefnet_hf.backbones.init_backbone_module`). A backbone
        that timm built on a real device (randomly initialised or with its ImageNet weights) is marked initialised
        when it is built, except for the buffers timm computes (recomputed here)."""
        if hasattr(module, "_init_buffers"):
            # timm's non-persistent buffers (Swin's relative_position_index) are not in checkpoints: recompute them
            module._init_buffers()
        if getattr(module, "is_backbone_module", False):
            init_backbone_module(module)
        elif isinstance(module, ZeroInitConv2d):
            init.zeros_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
            module.reset_parameters()

    def _mark_backbone(self, backbone: nn.Module) -> None:
        """Mark ``backbone``'s modules for :meth:`_init_weights`. timm initialised the backbone (or loaded ImageNet
        weights); only its computed buffers are left to ``_init_weights``. On the meta device (``from_pretrained``,
        deferred init) nothing is initialised yet: ``_init_weights`` then initialises whatever the checkpoint does
        not provide."""
        built_on_device = not any(p.is_meta for p in backbone.parameters())
        for module in backbone.modules():
            module.is_backbone_module = True
            if built_on_device and not hasattr(module, "_init_buffers"):
                module._is_hf_initialized = True

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Load a saved BiRefNet, or an authors' repository / folder (``config.json`` without ``model_type`` that
        points ``auto_map`` at ``birefnet.BiRefNet``, plus ``model.safetensors``), which is converted on load; e.g.
        ``BiRefNetForImageSegmentation.from_pretrained("ZhengPeng7/BiRefNet")``. Both go through transformers'
        loading, so every option of [`~transformers.PreTrainedModel.from_pretrained`] works (``device_map``,
        ``dtype``, ``revision``, ``subfolder``, ``output_loading_info``, ...). An authors' checkpoint loads in
        float32 unless a ``dtype`` is given (their Hub weights are float16)."""
        original_weights = _original_layout_weights(pretrained_model_name_or_path, kwargs)
        if original_weights is None:
            # The checkpoint holds the backbone: never fetch ImageNet weights for it while loading.
            if isinstance(kwargs.get("config"), BiRefNetConfig):
                kwargs["config"] = copy.deepcopy(kwargs["config"])
                kwargs["config"].use_pretrained_backbone = False
            elif kwargs.get("config") is None:
                kwargs["use_pretrained_backbone"] = False
        else:
            kwargs = cls._original_layout_loading_kwargs(original_weights, kwargs)
        from safetensors import SafetensorError

        try:
            loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        except SafetensorError as error:  # truncated / corrupt weights: name the file
            subfolder = kwargs.get("subfolder", "")
            raise unreadable_weights_error(pretrained_model_name_or_path, error, subfolder) from error
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading_info) with output_loading_info
        if original_weights is not None:
            # saved from here on in this package's layout: transformers would otherwise write back the authors' names
            model._weight_conversions = None
            _copy_unaligned_cpu_tensors(model)
            family = family_for(pretrained_model_name_or_path)
            if family is not None and family.backbone == model.config.backbone:
                model.config.released_family = family.name  # its native input size survives save_pretrained
        if getattr(model.config, "freezes_backbone", False):  # loading materialises fresh (trainable) parameters
            model.localization.backbone.requires_grad_(False)
        return loaded

    @staticmethod
    def _original_layout_loading_kwargs(weights_file: str, kwargs: dict) -> dict:
        """The ``from_pretrained`` arguments that load an authors' checkpoint through transformers: the config
        read off the tensor shapes in the file's header (keyword arguments naming config fields applied to it), the
        key mapping of :mod:`~birefnet_hf.conversion_mapping`, float32 unless a ``dtype`` is given. The checkpoint's
        names and shapes are checked first, so a missing, unexpected or mis-shaped tensor is an error naming it."""
        kwargs = dict(kwargs)
        original, config = prepare_original_state_dict(original_state_dict_on_meta(weights_file))
        for name in [name for name in kwargs if name in _CONFIG_FIELDS]:
            setattr(config, name, kwargs.pop(name))
        config.use_pretrained_backbone = False
        convert_state_dict(original, config, build_on_meta_device(config).state_dict())
        dtype = kwargs.pop("dtype", None)
        torch_dtype = kwargs.pop("torch_dtype", None)
        dtype = dtype if dtype is not None else torch_dtype
        kwargs["dtype"] = torch.float32 if dtype is None or dtype == "auto" else dtype
        kwargs["key_mapping"] = {**original_key_mapping(config.backbone), **(kwargs.get("key_mapping") or {})}
        kwargs["config"] = config
        return kwargs

    def _check_input(self, pixel_values: torch.Tensor) -> None:
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(
                f"`pixel_values` must be a (batch, 3, height, width) tensor, got shape {tuple(pixel_values.shape)}."
            )
        height, width = pixel_values.shape[-2:]
        if height % SIZE_DIVISOR or width % SIZE_DIVISOR or height == 0 or width == 0:
            raise ValueError(
                f"BiRefNet needs height and width that are multiples of {SIZE_DIVISOR}, got {height}x{width}; "
                "resize the image first (BiRefNetImageProcessor does)."
            )
        minimum = self.minimum_input_size
        if height < minimum or width < minimum:
            raise ValueError(
                f"BiRefNet with the {self.config.backbone} backbone needs inputs of at least {minimum}x{minimum}, "
                f"got {height}x{width}."
            )

    @property
    def minimum_input_size(self) -> int:
        """Smallest side the model accepts: PVT-v2's first spatial-reduction conv (stride 8 on the stride-4 map) and
        VGG-16's last max-pool (2x2 on the stride-16 map, no padding) need 32 px, doubled when the backbone also sees
        the half-size image. Swin, ResNet-50 (padded stride-2 convolutions) and DINOv3 run at 32 px either way."""
        spec = BACKBONE_SPECS[self.config.backbone]
        if spec["family"] != "pvt_v2" and "stage_slices" not in spec:  # "stage_slices": the VGG-16 cuts
            return SIZE_DIVISOR
        return SIZE_DIVISOR * (2 if self.config.multi_scale_input != "none" else 1)


class BiRefNetModel(BiRefNetPreTrainedModel):
    """The bare BiRefNet: the localization module and the reconstruction module with the bilateral reference,
    returning their features ([`BiRefNetModelOutput`]) without the full-resolution head. Its parameters are named as
    in [`BiRefNetForImageSegmentation`], so ``AutoModel.from_pretrained`` of a segmentation checkpoint loads every
    weight but the task's heads (the full-resolution head with its inward reference, the side-output heads and the
    auxiliary classifier)."""

    _keys_to_ignore_on_load_unexpected = [
        r"relative_position_index$",
        r"^reconstruction\.head\.",
        r"^reconstruction\.stage_heads\.",
        r"^reconstruction\.inward_references\.4\.",
        r"^localization\.classifier\.",
    ]

    def __init__(self, config: BiRefNetConfig):
        super().__init__(config)
        self.localization = LocalizationModule(config, with_classifier=False)
        self.reconstruction = ReconstructionModule(config, with_heads=False)
        self._mark_backbone(self.localization.backbone)
        self.post_init()

    def forward(
        self, pixel_values: torch.Tensor, return_dict: bool | None = None, **kwargs
    ) -> BiRefNetModelOutput | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, 3, height, width)`):
            Normalised images (see [`BiRefNetImageProcessor`]); height and width must be multiples of 32.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        self._check_input(pixel_values)
        levels, encoder_levels, _ = self.localization(pixel_values)
        decoded = self.reconstruction(pixel_values, levels)
        output = BiRefNetModelOutput(
            last_hidden_state=decoded.stage_features[-1],
            encoder_hidden_states=tuple(encoder_levels),
            decoder_hidden_states=decoded.stage_features,
        )
        return output if return_dict else output.to_tuple()


class BiRefNetForImageSegmentation(BiRefNetPreTrainedModel):
    """BiRefNet for dichotomous image segmentation: one foreground logit per pixel at the input resolution."""

    def __init__(self, config: BiRefNetConfig):
        super().__init__(config)
        self.localization = LocalizationModule(config)
        self.reconstruction = ReconstructionModule(config)
        self.criterion = BiRefNetLoss(config)
        self._mark_backbone(self.localization.backbone)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        class_labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BiRefNetImageSegmentationOutput | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, 3, height, width)`):
            Normalised images (see [`BiRefNetImageProcessor`]); height and width must be multiples of 32.
        labels (`torch.FloatTensor` of shape `(batch_size, 1, height, width)`, *optional*):
            Ground-truth masks in [0, 1]. In training mode the loss is computed and returned.
        class_labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Image classes for the auxiliary classification loss.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        self._check_input(pixel_values)
        if labels is not None and (labels.ndim != 4 or labels.shape[0] != pixel_values.shape[0] or labels.shape[1] != 1
                                   or labels.shape[-2:] != pixel_values.shape[-2:]):
            raise ValueError(
                f"`labels` must be masks in [0, 1] of shape (batch, 1, height, width) = "
                f"{(pixel_values.shape[0], 1, *pixel_values.shape[-2:])}, got {tuple(labels.shape)}."
            )

        levels, encoder_levels, class_logits = self.localization(pixel_values)
        gradient_target = None
        if self.training and self.config.outward_reference:
            gradient_target = image_gradient_target(pixel_values)
        decoded = self.reconstruction(pixel_values, levels, gradient_target)

        output = BiRefNetImageSegmentationOutput(
            logits=decoded.logits,
            stage_logits=decoded.stage_logits or None,
            gradient_logits=decoded.gradient_logits or None,
            gradient_labels=decoded.gradient_labels or None,
            class_logits=class_logits,
            hidden_states=tuple(encoder_levels) if output_hidden_states else None,
        )
        if labels is not None:
            output.loss, output.loss_terms = self.criterion(output, labels.to(decoded.logits.dtype), class_labels)
        return output if return_dict else output.to_tuple()


def build_on_meta_device(
    config: BiRefNetConfig, model_class: type[BiRefNetPreTrainedModel] = BiRefNetForImageSegmentation
) -> BiRefNetPreTrainedModel:
    """``model_class(config)`` with every parameter and buffer on the meta device, in eval mode: the names, shapes
    and dtypes of its state dict without allocating memory (even ``dino_v3_7b`` builds in a moment). The one place
    the package builds such a model: to check a checkpoint against the architecture, count parameters and plan a
    publication."""
    with torch.device("meta"):
        return model_class(config).eval()


__all__ = [
    "BiRefNetForImageSegmentation",
    "BiRefNetImageSegmentationOutput",
    "BiRefNetModel",
    "BiRefNetModelOutput",
    "BiRefNetPreTrainedModel",
    "build_on_meta_device",
]
