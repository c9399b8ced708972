"""Modulated deformable convolution (DCNv2) as bilinear sampling + one matrix product.

``torchvision.ops.deform_conv2d`` computes the same function, but its CPU kernel fills the im2col buffer one scalar
at a time (69 % of BiRefNet's CPU time in the authors' code) and refuses bfloat16 on CUDA. Here the sampling is done
by :func:`torch.nn.functional.grid_sample` for all kernel taps at once, in chunks of output positions so that the
column buffer stays bounded, and the weights are applied with a single ``matmul`` per chunk. Sampling runs in
float32 whatever the input dtype (pixel coordinates do not fit bfloat16's 8-bit mantissa); the product runs in the
weight's dtype.

Semantics are torchvision's: stride 1, dilation 1, one offset group; a sample outside the map reads zeros, with
bilinear weights on the in-range corners. ``tests/test_deformable_conv.py`` checks the match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Largest column buffer (C * K * positions) built at once, in elements (~128 MB of float32).
_MAX_COLUMN_ELEMENTS = 32 * 1024 * 1024


def modulated_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """Deformable convolution with modulation.

    Args:
        x: input (N, C, H, W).
        offset: (N, 2*K, H_out, W_out), for kernel tap ``k = i * kw + j`` the (dy, dx) pair at channels 2k, 2k+1.
        mask: modulation (N, K, H_out, W_out).
        weight: (O, C, kh, kw).
        bias: (O,) or None.
        padding: (pad_h, pad_w).
    Returns:
        (N, O, H_out, W_out) with H_out = H + 2*pad_h - kh + 1 (stride 1).
    """
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    taps = kernel_h * kernel_w
    pad_h, pad_w = padding
    out_h = height + 2 * pad_h - kernel_h + 1
    out_w = width + 2 * pad_w - kernel_w + 1
    positions = out_h * out_w
    if offset.shape != (batch, 2 * taps, out_h, out_w) or mask.shape != (batch, taps, out_h, out_w):
        raise ValueError(
            f"deformable conv: offset {tuple(offset.shape)} / mask {tuple(mask.shape)} do not match "
            f"input {tuple(x.shape)} and a {kernel_h}x{kernel_w} kernel."
        )

    device = x.device
    sample_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    # Absolute sampling positions of every tap, in pixels: base grid + tap displacement + learned offset.
    base_y = torch.arange(out_h, device=device, dtype=sample_dtype) - pad_h
    base_x = torch.arange(out_w, device=device, dtype=sample_dtype) - pad_w
    tap_y = torch.arange(kernel_h, device=device, dtype=sample_dtype).repeat_interleave(kernel_w)
    tap_x = torch.arange(kernel_w, device=device, dtype=sample_dtype).repeat(kernel_h)
    offset = offset.to(sample_dtype).view(batch, taps, 2, out_h, out_w)
    pos_y = offset[:, :, 0] + (tap_y.view(1, taps, 1, 1) + base_y.view(1, 1, out_h, 1))
    pos_x = offset[:, :, 1] + (tap_x.view(1, taps, 1, 1) + base_x.view(1, 1, 1, out_w))
    # grid_sample with align_corners=False maps normalised g to pixel ((g + 1) * size - 1) / 2.
    grid = torch.stack(((2 * pos_x + 1) / width - 1, (2 * pos_y + 1) / height - 1), dim=-1)
    grid = grid.view(batch, taps, positions, 2)
    mask = mask.to(sample_dtype).view(batch, 1, taps, positions)

    source = x.to(sample_dtype)
    weight_matrix = weight.reshape(out_channels, channels * taps)
    chunk = max(1, min(positions, _MAX_COLUMN_ELEMENTS // max(1, channels * taps * batch)))
    outputs = []
    for start in range(0, positions, chunk):
        stop = min(positions, start + chunk)
        columns = F.grid_sample(
            source, grid[:, :, start:stop], mode="bilinear", padding_mode="zeros", align_corners=False
        )  # N, C, K, P
        columns = (columns * mask[:, :, :, start:stop]).reshape(batch, channels * taps, stop - start)
        outputs.append(torch.matmul(weight_matrix, columns.to(weight.dtype)))
    out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
    out = out.view(batch, out_channels, out_h, out_w)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out.to(x.dtype)


__all__ = ["modulated_deform_conv2d"]
