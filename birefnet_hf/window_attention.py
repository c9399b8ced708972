# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Swin-v1 blocks in the original (pad first, then shift) window order, on timm's block modules.

The authors' Swin, like the original Swin for detection, pads a map to a multiple of the window on the bottom/right
*before* the cyclic shift and builds the shifted-window attention mask on the padded grid (timm shifts first, then
pads). The function is written here three times, each pinned to the others by ``tests/test_inference_paths.py``:

* :func:`literal_window_attention` -- pad, roll, partition, attend, reverse, roll back, crop: shape operations only,
  what ``torch.compile``/``torch.export``/ONNX trace (no index tensors, no data-dependent shapes);
* :func:`gathered_window_attention` -- the same layout as two index gathers whose indices (and the region mask)
  depend only on the map's shape and are computed once per shape and cached on the tensor's device
  (:class:`WindowLayoutCache`): the eager form on every device, in training and inference;
* :func:`cpu_inference_block` -- a whole block for eager float32 CPU inference, tuned for a few cores (plain windows
  first, q/k/v for the real slots only, bounded temporaries, oneDNN products, in-place residuals).

:func:`swin_block` picks between them through :mod:`birefnet_hf.inference_paths`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .cpu_linear import linear_rows
from .inference_paths import is_tracing, use_cpu_inference_kernels

#: Masked attention logits of the shifted-window mask (the value of the original Swin and of timm).
REGION_MASK_VALUE = -100.0


class WindowLayout(NamedTuple):
    """Index form of the window layout of one (height, width) map; the same for every image of a batch."""

    source: torch.Tensor  # slot -> token of the unpadded grid that the slot reads (padding slots: token 0)
    padding: torch.Tensor  # indices of the padding slots
    inside: torch.Tensor  # per slot: True unless it is padding (kept on the CPU)
    slot_of_token: torch.Tensor  # token -> its slot
    region_mask: torch.Tensor | None  # shifted blocks: (windows, N, N) additive mask in window order, else None
    plain_windows: int  # with ``plain_first``: how many leading windows have no padding and no region mask


def _padded_size(block, height: int, width: int) -> tuple[int, int]:
    window_h, window_w = block.window_size
    return height + (-height) % window_h, width + (-width) % window_w


def region_mask(block, padded_h: int, padded_w: int, device, dtype) -> torch.Tensor | None:
    """The shifted-window attention mask of the padded (padded_h, padded_w) grid: (windows, N, N), 0 within a region
    and ``REGION_MASK_VALUE`` across regions (windows in natural row-major order); ``None`` for unshifted blocks."""
    if not any(block.shift_size):
        return None
    window_h, window_w = block.window_size
    shift_h, shift_w = block.shift_size
    rows = torch.arange(padded_h, device=device)
    cols = torch.arange(padded_w, device=device)
    # the nine regions of the shifted grid: 0 | 1 | 2 along each axis, split at -window and -shift from the end
    row_id = (rows >= padded_h - window_h).long() + (rows >= padded_h - shift_h).long()
    col_id = (cols >= padded_w - window_w).long() + (cols >= padded_w - shift_w).long()
    ids = (3 * row_id[:, None] + col_id[None, :]).view(padded_h // window_h, window_h, padded_w // window_w, window_w)
    ids = ids.permute(0, 2, 1, 3).reshape(-1, window_h * window_w)
    different = ids[:, None, :] != ids[:, :, None]
    return torch.zeros(different.shape, device=device, dtype=dtype).masked_fill_(different, REGION_MASK_VALUE)


def window_layout(block, height: int, width: int, plain_first: bool = False) -> WindowLayout:
    """The window layout of a (height, width) map for a timm ``SwinTransformerBlock``, computed on the CPU: pad the
    grid on the bottom/right to a multiple of the window, shift it cyclically by ``-shift``, cut it into windows of
    N slots. With its indices the layout is one gather in and one gather out.

    The order of the windows is free (attention is per window): with ``plain_first`` the windows without padding
    slots and with an all-zero region mask come first, the others (on the map's bottom/right edge and along the
    shift's seams) after them, so that the CPU inference block can treat the two kinds apart."""
    window_h, window_w = block.window_size
    padded_h, padded_w = _padded_size(block, height, width)
    grid = torch.arange(padded_h * padded_w).view(padded_h, padded_w)
    if any(block.shift_size):
        grid = torch.roll(grid, shifts=(-block.shift_size[0], -block.shift_size[1]), dims=(0, 1))
    slots = grid.view(padded_h // window_h, window_h, padded_w // window_w, window_w).permute(0, 2, 1, 3)
    slots = slots.reshape(-1, window_h * window_w)  # (windows, N)
    inside = (slots // padded_w < height) & (slots % padded_w < width)
    mask = region_mask(block, padded_h, padded_w, "cpu", torch.float32)
    plain_windows = 0
    if plain_first:
        plain = inside.all(dim=1)
        if mask is not None:
            plain &= ~mask.flatten(1).any(dim=1)
        order = torch.argsort(~plain, stable=True)
        slots, inside, plain_windows = slots[order], inside[order], int(plain.sum())
        mask = None if mask is None else mask[order]
    slots, inside = slots.flatten(), inside.flatten()
    source = torch.where(inside, (slots // padded_w) * width + slots % padded_w, 0)
    slot_of_padded = torch.empty_like(slots)
    slot_of_padded[slots] = torch.arange(slots.numel())
    slot_of_token = slot_of_padded.view(padded_h, padded_w)[:height, :width].flatten()
    padding = torch.nonzero(~inside).flatten()
    return WindowLayout(source, padding, inside, slot_of_token, mask, plain_windows)


class WindowLayoutCache:
    """Window layouts by map shape, block geometry and device: computed once on the CPU, moved to the device once,
    then reused by every block and every forward of that shape (no host work or host->device copy per block).
    Holds at most ``max_entries`` layouts (the least recently added are dropped first)."""

    def __init__(self, max_entries: int = 64):
        self.max_entries = max_entries
        self._entries: dict[tuple, WindowLayout] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, block, height: int, width: int, device, dtype, plain_first: bool = False) -> WindowLayout:
        device = torch.device(device)
        key = (height, width, tuple(block.window_size), tuple(block.shift_size), plain_first, device, dtype)
        layout = self._entries.get(key)
        if layout is None:
            cpu = window_layout(block, height, width, plain_first)
            mask = None if cpu.region_mask is None else cpu.region_mask.to(device=device, dtype=dtype)
            layout = WindowLayout(
                cpu.source.to(device), cpu.padding.to(device), cpu.inside, cpu.slot_of_token.to(device), mask,
                cpu.plain_windows,
            )
            while len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = layout
        return layout


def relative_position_bias(attn: nn.Module) -> torch.Tensor:
    """The window attention's learned relative position bias, (1, heads, N, N)."""
    area = attn.relative_position_index.shape[0]
    bias = attn.relative_position_bias_table[attn.relative_position_index.view(-1)].view(area, area, -1)
    return bias.permute(2, 0, 1).contiguous().unsqueeze(0)  # contiguous: SDPA on CPU copies a strided mask per call


def _attend(attn: nn.Module, windows: torch.Tensor, mask: torch.Tensor | None, batch: int) -> torch.Tensor:
    """timm's ``WindowAttention`` on (batch * windows, N, C) windows, image-major, with the position bias and the
    (windows, N, N) region mask (or ``None``). The combined mask is built once per call, (windows, heads, N, N), and
    each image attends with it (no batch-sized copy of the mask)."""
    count, area, channels = windows.shape
    qkv = attn.qkv(windows).reshape(count, area, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    bias = relative_position_bias(attn)
    dropout = attn.attn_drop.p if attn.training else 0.0
    if mask is None:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=dropout)
    else:
        # (windows, heads, N, N), written once in q's dtype. Under autocast (float32 bias and mask, bfloat16 q)
        # adding in float32 and casting after would also write and read a float32 copy: 10 instead of 2 bytes per
        # element, 2.6 instead of 0.5 GB per Swin-L forward at 1024. Where the mask is 0 the value is the same; at
        # -100 the bias is rounded once more (masked logits, e^-100 either way).
        combined = torch.add(bias.to(q.dtype), mask.unsqueeze(1).to(q.dtype))
        per_image = count // batch
        if torch.jit.is_tracing():  # the TorchScript tracer (ONNX) would unroll the loop below for one batch size
            combined = combined.unsqueeze(0).expand(batch, -1, -1, -1, -1).reshape(count, *combined.shape[1:])
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=combined, dropout_p=dropout)
            return attn.proj_drop(attn.proj(out.transpose(1, 2).reshape(count, area, -1)))
        out = torch.cat([
            F.scaled_dot_product_attention(
                q[i * per_image : (i + 1) * per_image], k[i * per_image : (i + 1) * per_image],
                v[i * per_image : (i + 1) * per_image], attn_mask=combined, dropout_p=dropout,
            )
            for i in range(batch)
        ]) if batch > 1 else F.scaled_dot_product_attention(q, k, v, attn_mask=combined, dropout_p=dropout)
    out = out.transpose(1, 2).reshape(count, area, -1)
    return attn.proj_drop(attn.proj(out))


def literal_window_attention(block, x: torch.Tensor) -> torch.Tensor:
    """Pad-first (shifted-)window attention of ``x`` (B, H, W, C) as shape operations: pad, roll, partition,
    attend, reverse, roll back, crop."""
    batch, height, width, channels = x.shape
    window_h, window_w = block.window_size
    padded_h, padded_w = _padded_size(block, height, width)
    shift = tuple(block.shift_size)
    x = F.pad(x, (0, 0, 0, padded_w - width, 0, padded_h - height))
    if any(shift):
        x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    windows = x.view(batch, padded_h // window_h, window_h, padded_w // window_w, window_w, channels)
    windows = windows.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_h * window_w, channels)
    mask = region_mask(block, padded_h, padded_w, x.device, x.dtype)
    windows = _attend(block.attn, windows, mask, batch)
    x = windows.view(batch, padded_h // window_h, padded_w // window_w, window_h, window_w, channels)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, padded_h, padded_w, channels)
    if any(shift):
        x = torch.roll(x, shifts=shift, dims=(1, 2))
    return x[:, :height, :width]


def gathered_window_attention(block, x: torch.Tensor, layouts: WindowLayoutCache) -> torch.Tensor:
    """The same function as :func:`literal_window_attention`, the layout moves done as index gathers with the
    shape's cached indices."""
    batch, height, width, channels = x.shape
    layout = layouts.get(block, height, width, x.device, x.dtype)
    windows = x.reshape(batch, height * width, channels).index_select(1, layout.source)
    if layout.padding.numel():
        windows.index_fill_(1, layout.padding, 0.0)
    windows = _attend(block.attn, windows.view(-1, block.window_area, channels), layout.region_mask, batch)
    x = windows.view(batch, -1, channels).index_select(1, layout.slot_of_token)
    return x.view(batch, height, width, channels)


def _plain_linear_layers(block) -> bool:
    """Whether the block's linear layers are plain ``nn.Linear`` (the CPU inference block reads their weights;
    wrapped layers, e.g. peft's LoRA adapters, must be called as modules)."""
    layers = (block.attn.qkv, block.attn.proj, block.mlp.fc1, block.mlp.fc2)
    return all(type(layer) is nn.Linear for layer in layers)


def swin_block(block, x: torch.Tensor, layouts: WindowLayoutCache) -> torch.Tensor:
    """One timm ``SwinTransformerBlock`` with pad-first window attention: ``x + attention(norm1(x))``, then
    ``x + mlp(norm2(x))`` (with timm's stochastic depth in training)."""
    if use_cpu_inference_kernels(x, block) and _plain_linear_layers(block):
        return cpu_inference_block(block, x, layouts)
    normed = block.norm1(x)
    if is_tracing():
        attended = literal_window_attention(block, normed)
    else:
        attended = gathered_window_attention(block, normed, layouts)
    x = x + block.drop_path1(attended)
    return x + block.drop_path2(block.mlp(block.norm2(x)))


#: Largest temporary of :func:`cpu_inference_block`, in bytes (see there).
INFERENCE_CHUNK_BYTES = 16 * 2**20


def cpu_inference_block(block, x: torch.Tensor, layouts: WindowLayoutCache, chunk_bytes: int | None = None):
    """A Swin block for eager float32 CPU inference: the function of :func:`swin_block` with less arithmetic, fewer
    passes over memory and no large temporaries.

    * The windows come plain ones first (:func:`window_layout`): those attend with the position bias alone
      (broadcast, no per-window mask); in the others the region mask is added, and q/k/v are computed for the real
      slots only (a padding slot is zero after ``norm1``, so its q/k/v are the bias), which saves a quarter of the
      q/k/v products in the deeper stages (a 64-token side pads to 72 for window 12).
    * The attention runs over groups of windows and the MLP over groups of tokens, each temporary (q/k/v, bias +
      region mask, MLP hidden) at most ``chunk_bytes`` (default ``INFERENCE_CHUNK_BYTES``): below glibc's 32 MiB
      ``mmap`` ceiling such buffers are reused from the heap instead of being page-faulted in afresh in every
      block, and they stay in cache between the product and the elementwise op that follows.
    * The attention output projection runs after the tokens are put back in order (a per-token linear map
      commutes with the reordering), and both residual sums are added in place.
    * The linear layers go through :func:`~birefnet_hf.cpu_linear.linear_rows` (oneDNN).
    """
    chunk_bytes = INFERENCE_CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    batch, height, width, channels = x.shape
    attn, mlp = block.attn, block.mlp
    heads, area = attn.num_heads, block.window_area
    attn_dim = attn.qkv.out_features // 3
    layout = layouts.get(block, height, width, x.device, x.dtype, plain_first=True)
    slots = layout.source.numel()
    windows = block.norm1(x).reshape(batch, height * width, channels).index_select(1, layout.source)
    position_bias = relative_position_bias(attn)  # (1, heads, N, N)
    region = None if layout.region_mask is None else layout.region_mask.unsqueeze(1)
    padded_qkv = attn.qkv.bias if attn.qkv.bias is not None else windows.new_zeros(3 * attn_dim)

    group = max(1, chunk_bytes // (x.element_size() * area * max(3 * attn_dim, heads * area)))
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
                real = torch.nonzero(real).flatten()
                qkv = padded_qkv.expand(rows.shape[0], -1).clone()
                qkv.index_copy_(0, real, linear_rows(rows.index_select(0, real), attn.qkv.weight, attn.qkv.bias))
            q, k, v = qkv.view(stop - start, area, 3, heads, -1).permute(2, 0, 3, 1, 4)
            mask = position_bias
            if start >= plain and region is not None:
                mask = position_bias + region[start:stop]
            attended[image, start:stop] = (
                F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(-1, area, attn_dim)
            )
    tokens = attended.view(batch, slots, attn_dim).index_select(1, layout.slot_of_token).view(-1, attn_dim)

    out = linear_rows(tokens, attn.proj.weight, attn.proj.bias)
    out += x.reshape(-1, channels)
    rows = max(1, chunk_bytes // (x.element_size() * mlp.fc1.out_features))
    for start in range(0, out.shape[0], rows):
        part = out[start : start + rows]
        hidden = linear_rows(block.norm2(part), mlp.fc1.weight, mlp.fc1.bias)
        if type(mlp.act) is nn.GELU:
            hidden = torch.ops.aten.gelu_(hidden, approximate=mlp.act.approximate)
        else:
            hidden = mlp.act(hidden)
        part += linear_rows(mlp.norm(hidden), mlp.fc2.weight, mlp.fc2.bias)
    return out.view(batch, height, width, channels)


__all__ = [
    "WindowLayout",
    "WindowLayoutCache",
    "cpu_inference_block",
    "gathered_window_attention",
    "literal_window_attention",
    "region_mask",
    "relative_position_bias",
    "swin_block",
    "window_layout",
]
