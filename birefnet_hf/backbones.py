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

At inference (eval mode, no autograd) each Swin block runs :func:`_inference_block_forward`: the same function
with timm's fused attention, index gathers for the window layout, oneDNN products and in-place residual sums.

timm places the patch-merging layer at the start of stage ``i + 1`` where the authors have it at the end of stage
``i``; both produce the same features (each level is read before merging), only the parameter names differ, which
the checkpoint converter maps.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig
from .cpu_linear import linear_rows


def _timm():
    import timm  # imported lazily: timm is heavy and only needed when a backbone is built

    return timm


class _WindowLayout(NamedTuple):
    """Index form of the Swin window layout of one image (see :func:`_window_layout`); the same for every image."""

    source: torch.Tensor  # slot -> token of the unpadded grid that the slot reads (padding slots: token 0)
    padding: torch.Tensor  # indices of the padding slots
    inside: torch.Tensor  # per slot: True unless it is padding (kept on the CPU)
    slot_of_token: torch.Tensor  # token -> its slot
    region_mask: torch.Tensor | None  # shifted blocks: (windows, N, N) attention mask in window order, else None
    plain_windows: int  # with ``plain_first``: how many windows come first that have no padding and no region mask


def _crosses_regions(block, padded_h: int, padded_w: int) -> torch.Tensor:
    """Per window of a shifted block's (padded, shifted) grid: whether it spans more than one of the nine regions
    that its attention mask keeps apart (Swin's definition, as in timm's ``get_attn_mask``), i.e. whether its mask
    has any non-zero entry. Computed from region ids on the CPU, without building the (windows, N, N) mask."""
    window_h, window_w = block.window_size
    shift_h, shift_w = block.shift_size
    regions = torch.zeros(padded_h, padded_w, dtype=torch.long)
    for i, rows in enumerate((slice(0, -window_h), slice(-window_h, -shift_h), slice(-shift_h, None))):
        for j, cols in enumerate((slice(0, -window_w), slice(-window_w, -shift_w), slice(-shift_w, None))):
            regions[rows, cols] = 3 * i + j
    windows = regions.view(padded_h // window_h, window_h, padded_w // window_w, window_w).permute(0, 2, 1, 3)
    windows = windows.reshape(-1, window_h * window_w)
    return (windows != windows[:, :1]).any(dim=1)


def _window_layout(block, height: int, width: int, device, plain_first: bool = False) -> _WindowLayout:
    """The original Swin window layout of a (height, width) map for a timm ``SwinTransformerBlock``: pad the grid
    on the bottom/right to a multiple of the window, shift it cyclically by ``-shift``, cut it into windows of
    N slots. With its indices the layout is one gather in and one gather out instead of pad, roll, partition,
    reverse, roll and crop copies.

    The order of the windows is free (attention is per window): with ``plain_first`` the windows without padding
    slots and with an all-zero region mask come first, the others (on the map's bottom/right edge and along the
    shift's seams) after them, so that the inference forward can treat the two kinds apart.

    The indices are computed on the CPU (a few small integer ops) and moved to ``device``; timm builds the region
    mask on ``device`` from a shape (which also works on the meta device)."""
    window_h, window_w = block.window_size
    padded_h = height + (window_h - height % window_h) % window_h
    padded_w = width + (window_w - width % window_w) % window_w
    grid = torch.arange(padded_h * padded_w).view(padded_h, padded_w)
    if any(block.shift_size):
        grid = torch.roll(grid, shifts=(-block.shift_size[0], -block.shift_size[1]), dims=(0, 1))
    slots = grid.view(padded_h // window_h, window_h, padded_w // window_w, window_w).permute(0, 2, 1, 3)
    slots = slots.reshape(-1, window_h * window_w)  # (windows, N)
    inside = (slots // padded_w < height) & (slots % padded_w < width)
    region_mask = None
    if any(block.shift_size):  # the mask depends only on the padded grid's size (timm reads it off a shape)
        region_mask = block.get_attn_mask(torch.empty((1, padded_h, padded_w, 1), device=device))
    plain_windows = 0
    if plain_first:
        plain = inside.all(dim=1)
        if region_mask is not None:
            plain &= ~_crosses_regions(block, padded_h, padded_w)
        order = torch.argsort(~plain, stable=True)
        slots, inside, plain_windows = slots[order], inside[order], int(plain.sum())
        region_mask = None if region_mask is None else region_mask[order.to(device)]
    slots, inside = slots.flatten(), inside.flatten()
    source = torch.where(inside, (slots // padded_w) * width + slots % padded_w, 0)
    slot_of_padded = torch.empty_like(slots)
    slot_of_padded[slots] = torch.arange(slots.numel())
    slot_of_token = slot_of_padded.view(padded_h, padded_w)[:height, :width].flatten()
    padding = torch.nonzero(~inside).flatten()
    return _WindowLayout(
        source.to(device),
        padding.to(device),
        inside,
        slot_of_token.to(device),
        region_mask,
        plain_windows,
    )


def _pad_first_attention(block, x: torch.Tensor) -> torch.Tensor:
    """(Shifted-)window attention of a timm ``SwinTransformerBlock`` in the original Swin order.

    ``x`` is (B, H, W, C). The map is padded with zeros on the bottom/right to a multiple of the window, then
    cyclically shifted; the attention mask separates the regions of the *padded* grid; the result is shifted back
    and cropped. The layout moves are done as index gathers (see :func:`_window_layout`).
    """
    batch, height, width, channels = x.shape
    windows, slot_of_token, region_mask = _partition_windows(block, x)
    windows = block.attn(windows, mask=region_mask)
    x = windows.view(batch, -1, channels).index_select(1, slot_of_token)
    return x.view(batch, height, width, channels)


def _partition_windows(block, x: torch.Tensor):
    """``x`` (B, H, W, C) as zero-padded, shifted windows (B * windows, N, C), image-major; the token -> slot
    index that undoes it; and the shifted block's region mask (windows, N, N) or ``None``."""
    batch, height, width, channels = x.shape
    layout = _window_layout(block, height, width, x.device)
    windows = x.reshape(batch, height * width, channels).index_select(1, layout.source)
    if layout.padding.numel():
        windows.index_fill_(1, layout.padding, 0.0)
    region_mask = None if layout.region_mask is None else layout.region_mask.to(x.dtype)
    return windows.view(-1, block.window_area, channels), layout.slot_of_token, region_mask


#: Largest temporary of :func:`_inference_block_forward`, in bytes (see there).
_INFERENCE_CHUNK_BYTES = 16 * 2**20


def _inference_block_forward(block, x: torch.Tensor) -> torch.Tensor:
    """A Swin block at inference: the same function as the training forward (pad-first window attention, MLP,
    two residual sums) with less arithmetic, fewer passes over memory and no large temporaries.

    * The windows come plain ones first (:func:`_window_layout`): those attend with the position bias alone
      (broadcast, no per-window mask); in the others the region mask is added, and q/k/v are computed for the real
      slots only (a padding slot is zero after ``norm1``, so its q/k/v are the bias), which saves a quarter of the
      q/k/v products in the deeper stages (a 64-token side pads to 72 for window 12).
    * The attention runs over groups of windows and the MLP over groups of tokens, each temporary (q/k/v, bias +
      region mask, MLP hidden) at most ``_INFERENCE_CHUNK_BYTES``: below glibc's 32 MiB ``mmap`` ceiling such
      buffers are reused from the heap instead of being page-faulted in afresh in every block, and they stay in
      cache between the product and the elementwise op that follows.
    * The attention output projection runs after the tokens are put back in order (a per-token linear map
      commutes with the reordering), and both residual sums are added in place.
    * The linear layers go through :func:`~birefnet_hf.cpu_linear.linear_rows` (oneDNN on CPU).
    """
    batch, height, width, channels = x.shape
    attn, mlp = block.attn, block.mlp
    heads, area = attn.num_heads, block.window_area
    attn_dim = attn.qkv.out_features // 3
    layout = _window_layout(block, height, width, x.device, plain_first=True)
    slots = layout.source.numel()
    windows = block.norm1(x).reshape(batch, height * width, channels).index_select(1, layout.source)
    position_bias = attn._get_rel_pos_bias()  # (1, heads, N, N)
    region_mask = None if layout.region_mask is None else layout.region_mask.to(x.dtype).unsqueeze(1)
    padded_qkv = attn.qkv.bias if attn.qkv.bias is not None else windows.new_zeros(3 * attn_dim)

    group = max(1, _INFERENCE_CHUNK_BYTES // (x.element_size() * area * max(3 * attn_dim, heads * area)))
    count, plain = slots // area, layout.plain_windows
    spans = [(start, min(start + group, end)) for begin, end in ((0, plain), (plain, count))
             for start in range(begin, end, group)]
    attended = windows.new_empty(batch, count, area, attn_dim)
    for image in range(batch):
        for start, stop in spans:
            rows = windows[image, start * area : stop * area]
            real = layout.inside[start * area : stop * area]
            if start < plain or bool(real.all()):
                qkv = linear_rows(rows, attn.qkv.weight, attn.qkv.bias)
            else:  # the padding slots' q/k/v are the bias; only the real slots go through the product
                real = torch.nonzero(real).flatten().to(x.device)
                qkv = padded_qkv.expand(rows.shape[0], -1).clone()
                qkv.index_copy_(0, real, linear_rows(rows.index_select(0, real), attn.qkv.weight, attn.qkv.bias))
            q, k, v = qkv.view(stop - start, area, 3, heads, -1).permute(2, 0, 3, 1, 4)
            mask = position_bias
            if start >= plain and region_mask is not None:
                mask = position_bias + region_mask[start:stop]
            attended[image, start:stop] = (
                F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(-1, area, attn_dim)
            )
    tokens = attended.view(batch, slots, attn_dim).index_select(1, layout.slot_of_token).view(-1, attn_dim)

    out = linear_rows(tokens, attn.proj.weight, attn.proj.bias)
    out += x.reshape(-1, channels)
    rows = max(1, _INFERENCE_CHUNK_BYTES // (x.element_size() * mlp.fc1.out_features))
    for start in range(0, out.shape[0], rows):
        part = out[start : start + rows]
        hidden = linear_rows(block.norm2(part), mlp.fc1.weight, mlp.fc1.bias)
        if type(mlp.act) is nn.GELU:
            hidden = torch.ops.aten.gelu_(hidden, approximate=mlp.act.approximate)
        else:
            hidden = mlp.act(hidden)
        part += linear_rows(mlp.norm(hidden), mlp.fc2.weight, mlp.fc2.bias)
    return out.view(batch, height, width, channels)


def _block_forward(block, x: torch.Tensor) -> torch.Tensor:
    """timm's block forward (with pad-first attention) when training or recording gradients, else the same function
    through :func:`_inference_block_forward`."""
    if block.training or torch.is_grad_enabled():
        return super(type(block), block).forward(x)
    return _inference_block_forward(block, x)


def _make_pad_first_block_class(base: type) -> type:
    """A subclass of timm's ``SwinTransformerBlock`` whose attention step pads before shifting, with a faster
    forward at inference (:func:`_inference_block_forward`)."""
    return type(
        "PadFirstSwinTransformerBlock",
        (base,),
        {"_attn": _pad_first_attention, "forward": _block_forward, "__module__": __name__},
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
                # timm's fused path (scaled_dot_product_attention with bias + mask as attn_mask) computes the same
                # attention; timm leaves it off by default for Swin (``experimental``), we turn it on: ~15 % of
                # Swin-L's CPU time at 1024.
                module.attn.fused_attn = True
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


def build_backbone(config: BiRefNetConfig) -> nn.Module:
    """The backbone named by ``config.backbone``, returning ``[x1, x2, x3, x4]`` (strides 4, 8, 16, 32)."""
    family = BACKBONE_SPECS[config.backbone]["family"]
    if family == "swin":
        return SwinBackbone(config)
    if family == "pvt_v2":
        return PvtV2Backbone(config)
    raise ValueError(f"No backbone builder for family {family!r}.")


__all__ = ["build_backbone", "SwinBackbone", "PvtV2Backbone"]
