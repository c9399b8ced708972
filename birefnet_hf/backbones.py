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

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig
from .cpu_linear import linear_rows


def _timm():
    import timm  # imported lazily: timm is heavy and only needed when a backbone is built

    return timm


def _window_layout(height: int, width: int, window, shift, device):
    """Token indices of the original Swin window layout: pad the (height, width) grid on the bottom/right to a
    multiple of the window, shift it cyclically by ``-shift``, cut it into windows.

    Returns ``source`` (slot -> token of the unpadded grid read by that window slot; padding slots read token 0
    and are listed in ``padding``) and ``slot_of_token`` (token -> its slot), so that the layout is one gather in
    and one gather out instead of pad, roll, partition, reverse, roll and crop copies. The indices are computed on
    the CPU (a few small integer ops; ``nonzero`` also works there for meta-device inputs) and moved to ``device``."""
    window_h, window_w = window
    padded_h = height + (window_h - height % window_h) % window_h
    padded_w = width + (window_w - width % window_w) % window_w
    grid = torch.arange(padded_h * padded_w).view(padded_h, padded_w)
    if any(shift):
        grid = torch.roll(grid, shifts=(-shift[0], -shift[1]), dims=(0, 1))
    slots = grid.view(padded_h // window_h, window_h, padded_w // window_w, window_w).permute(0, 2, 1, 3).flatten()
    row, col = slots // padded_w, slots % padded_w
    inside = (row < height) & (col < width)
    source = torch.where(inside, row * width + col, 0)
    slot_of_padded = torch.empty_like(slots)
    slot_of_padded[slots] = torch.arange(slots.numel())
    slot_of_token = slot_of_padded.view(padded_h, padded_w)[:height, :width].flatten()
    padding = torch.nonzero(~inside).flatten()
    return source.to(device), padding.to(device), slot_of_token.to(device), (padded_h, padded_w)


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
    source, padding, slot_of_token, padded_size = _window_layout(
        height, width, block.window_size, block.shift_size, x.device
    )
    windows = x.reshape(batch, height * width, channels).index_select(1, source)
    if padding.numel():
        windows.index_fill_(1, padding, 0.0)
    # the mask depends only on the padded grid's size (timm reads it off a tensor's shape)
    region_mask = block.get_attn_mask(x.new_empty((1, *padded_size, 1))) if any(block.shift_size) else None
    return windows.view(-1, block.window_area, channels), slot_of_token, region_mask


#: Largest temporary of :func:`_inference_block_forward`, in bytes (see there).
_INFERENCE_CHUNK_BYTES = 16 * 2**20


def _inference_block_forward(block, x: torch.Tensor) -> torch.Tensor:
    """A Swin block at inference: the same function as the training forward (pad-first window attention, MLP,
    two residual sums) with fewer passes over memory and no large temporaries.

    * The attention runs over groups of windows and the MLP over groups of tokens, each temporary (q/k/v, bias +
      region mask, MLP hidden) at most ``_INFERENCE_CHUNK_BYTES``: below glibc's 32 MiB ``mmap`` ceiling such
      buffers are reused from the heap instead of being page-faulted in afresh in every block, and they stay in
      cache between the GEMM and the elementwise op that follows.
    * The attention output projection runs after the tokens are put back in order (a per-token linear map
      commutes with the reordering), and both residual sums are added in place.
    * The linear layers go through :func:`~birefnet_hf.cpu_linear.linear_rows` (oneDNN on CPU).
    """
    batch, height, width, channels = x.shape
    attn, mlp = block.attn, block.mlp
    heads, area = attn.num_heads, block.window_area
    attn_dim = attn.qkv.out_features // 3
    windows, slot_of_token, region_mask = _partition_windows(block, block.norm1(x))
    per_image = windows.shape[0] // batch
    position_bias = attn._get_rel_pos_bias()  # (1, heads, N, N)

    group = max(1, _INFERENCE_CHUNK_BYTES // (x.element_size() * area * max(3 * attn_dim, heads * area)))
    attended = windows.new_empty(windows.shape[0], area, attn_dim)
    for start in range(0, windows.shape[0], group):
        stop = min(windows.shape[0], start + group)
        qkv = linear_rows(windows[start:stop].reshape(-1, channels), attn.qkv.weight, attn.qkv.bias)
        q, k, v = qkv.view(stop - start, area, 3, heads, -1).permute(2, 0, 3, 1, 4)
        mask = position_bias
        if region_mask is not None:
            window_index = torch.arange(start, stop, device=x.device) % per_image
            mask = position_bias + region_mask[window_index].unsqueeze(1)
        attended[start:stop] = (
            F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(-1, area, attn_dim)
        )
    tokens = attended.view(batch, -1, attn_dim).index_select(1, slot_of_token).view(-1, attn_dim)

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
