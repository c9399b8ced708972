# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Modulated deformable convolution (DCNv2) as bilinear sampling + one matrix product.

``torchvision.ops.deform_conv2d`` computes the same function, but its CPU kernel fills the im2col buffer one scalar
at a time (69 % of BiRefNet's CPU time in the authors' code) and it refuses bfloat16 on CUDA. Here the column
buffer is built by a vectorised sampler, in chunks of output positions so that it stays bounded, and the weights
are applied with one ``matmul`` per chunk:

* on CPU, ``gather``: each sample is the weighted sum of four rows of the channels-last input, done for all taps at
  once by :func:`torch.nn.functional.embedding_bag` (``mode="sum"`` with per-sample weights = bilinear weights times
  the modulation), which reads whole channel rows and is ~4x faster than ``grid_sample`` on CPU. The input gets a
  one-pixel zero border, so the four corners of a sample are one index plus four constants: a sample whose
  top-left corner is off that border reads nothing (weight zero), one that straddles the map's edge reads zeros
  for its outside corners;
* on CUDA without autograd recording, ``triton``: a fused Triton kernel writes the columns in the weight's dtype
  straight from the input, offsets and modulation (:mod:`birefnet_hf.triton_deformable`; the portable path makes
  four passes over a float32 buffer for the same columns);
* elsewhere (any other device, autograd on CUDA, and whenever the forward is traced for compile/export),
  ``grid_sample`` over all images and taps at once (:mod:`birefnet_hf.inference_paths` decides).

Sampling positions and weights are computed in float32 whatever the input dtype (pixel coordinates do not fit
bfloat16's 8-bit mantissa; float64 inputs stay float64); the product runs in the weight's dtype.

Semantics are torchvision's: stride 1, dilation 1, one offset group; a sample outside the map reads zeros, with
bilinear weights on the in-range corners. ``tests/test_deformable_conv.py`` checks values and gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .cpu_linear import linear_rows
from .inference_paths import (
    channels_last_deformable_product,
    use_cpu_inference_kernels,
    use_cpu_kernels,
    use_cuda_inference_kernels,
)

#: Largest column buffer (channels * taps * positions) built at once, in elements (16 MiB of float32). Small enough
#: to be reused from the heap chunk after chunk (larger buffers are mapped and page-faulted in afresh each time)
#: and to stay in cache between sampling and product: 1.4x faster than 128 MiB chunks for the 7x7 layer at 256x256.
_MAX_COLUMN_ELEMENTS = 4 * 1024 * 1024

#: Largest number of samples (image, position, tap) whose corner rows and weights the CPU path computes at once
#: (~120 bytes each with the temporaries): few, large elementwise operations instead of one set per column chunk,
#: since each is a parallel region that ends in a barrier, and on a shared CPU every barrier waits for a
#: descheduled thread (issue 19).
_MAX_PLAN_SAMPLES = 1024 * 1024

#: The same bound for the portable path, over the whole batch (256 MiB of float32): few, large kernels on a GPU.
_MAX_PORTABLE_COLUMN_ELEMENTS = 64 * 1024 * 1024


def _sampling_positions(offset, taps_h, taps_w, out_h, out_w, pad_h, pad_w, dtype):
    """Absolute (y, x) pixel positions of every tap at every output position: (N, K, P) each."""
    batch = offset.shape[0]
    taps = taps_h * taps_w
    device = offset.device
    base_y = torch.arange(out_h, device=device, dtype=dtype) - pad_h
    base_x = torch.arange(out_w, device=device, dtype=dtype) - pad_w
    tap_y = torch.arange(taps_h, device=device, dtype=dtype).repeat_interleave(taps_w)
    tap_x = torch.arange(taps_w, device=device, dtype=dtype).repeat(taps_h)
    offset = offset.to(dtype).view(batch, taps, 2, out_h, out_w)
    pos_y = offset[:, :, 0] + (tap_y.view(1, taps, 1, 1) + base_y.view(1, 1, out_h, 1))
    pos_x = offset[:, :, 1] + (tap_x.view(1, taps, 1, 1) + base_x.view(1, 1, 1, out_w))
    return pos_y.reshape(batch, taps, -1), pos_x.reshape(batch, taps, -1)


def _padded_rows(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` (N, C, H, W) as the rows (N * (H + 2) * (W + 2), C) of its channels-last copy with a zero border around
    each image: image ``n``'s padded pixel (i, j) is row ``n * (H + 2) * (W + 2) + i * (W + 2) + j``."""
    batch, channels, height, width = x.shape
    padded = x.new_zeros(batch, height + 2, width + 2, channels, dtype=dtype)
    padded[:, 1:-1, 1:-1] = x.permute(0, 2, 3, 1)
    return padded.view(-1, channels)


def _sampling_plan(offsets, modulation, grid_y, grid_x, first_row, height, width):
    """The four corner rows and weights of every sample: ``index`` and ``weight``, both (S, 4), S = the number of
    (image, position, tap) samples, in that order.

    ``offsets`` (n, p, K, 2) are the (dy, dx) pairs of ``n`` images at ``p`` output positions, ``modulation``
    (n, p, K); ``grid_y``/``grid_x`` (p, K) the undeformed sampling positions (integers, in the sampling dtype);
    ``first_row`` (n, 1, 1) the row of each image's padded top-left pixel in :func:`_padded_rows`. As in
    torchvision, the position is the integer grid position plus the offset, in one rounding. Elementwise operations
    over whole blocks of samples (each a parallel region that waits for every thread: few and large is what a
    shared CPU needs, issue 19)."""
    padded_width = width + 2
    pos_y = offsets[..., 0].to(grid_y.dtype) + grid_y
    pos_x = offsets[..., 1].to(grid_x.dtype) + grid_x
    y0, x0 = pos_y.floor(), pos_x.floor()
    frac_y, frac_x = pos_y - y0, pos_x - x0  # NaN for a non-finite position: its weights, and the sample, are NaN
    # the corners (y0, x0) .. (y0 + 1, x0 + 1) lie in the padded map iff -1 <= y0 <= H - 1 and -1 <= x0 <= W - 1;
    # clamping makes every index valid, and a sample that had to be clamped (or is NaN) reads nothing (weight zero)
    y0_in, x0_in = y0.clamp(-1, height - 1), x0.clamp(-1, width - 1)
    scale = modulation.to(grid_y.dtype) * ((y0_in == y0) & (x0_in == x0))
    # row of the top-left corner within the image's padded map, minus (W + 3); NaN (read nowhere) -> the border
    top_left = torch.add(x0_in, y0_in, alpha=padded_width).nan_to_num_(-(padded_width + 1.0)).long()
    corners = torch.tensor((0, 1, padded_width, padded_width + 1), device=offsets.device) + (padded_width + 1)
    index = ((top_left + first_row).unsqueeze(-1) + corners).reshape(-1, 4)
    bottom = frac_y * scale  # weight of the lower corner row (y0 + 1), times the modulation
    weight_y = torch.stack((scale - bottom, bottom), dim=-1)
    weight_x = torch.stack((1 - frac_x, frac_x), dim=-1)
    weight = (weight_y.unsqueeze(-1) * weight_x.unsqueeze(-2)).reshape(-1, 4)  # corners in the order of ``corners``
    return index, weight


def modulated_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: tuple[int, int] = (0, 0),
    sampler: str | None = None,
) -> torch.Tensor:
    """Deformable convolution with modulation.

    Args:
        x: input (N, C, H, W).
        offset: (N, 2*K, H_out, W_out), for kernel tap ``k = i * kw + j`` the (dy, dx) pair at channels 2k, 2k+1.
        mask: modulation (N, K, H_out, W_out).
        weight: (O, C, kh, kw).
        bias: (O,) or None.
        padding: (pad_h, pad_w).
        sampler: ``"gather"``, ``"grid_sample"`` or ``"triton"`` (inference only: CUDA tensors, or CPU tensors under
            ``TRITON_INTERPRET=1``); by default ``"gather"`` in eager CPU code, ``"triton"`` in eager CUDA
            inference with ``triton`` installed, ``"grid_sample"`` elsewhere.
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

    if sampler not in (None, "gather", "grid_sample", "triton"):
        raise ValueError(f"deformable conv: unknown sampler {sampler!r}; use 'gather', 'grid_sample' or 'triton'.")
    sample_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if sampler == "gather" or (sampler is None and use_cpu_kernels(x)):
        chunk_rows = max(1, _MAX_COLUMN_ELEMENTS // max(1, channels * taps))
        plan_samples = _MAX_PLAN_SAMPLES
        if torch.is_grad_enabled() and any(t.requires_grad for t in (x, offset, mask, weight)):
            # autograd keeps every chunk's columns and plan for the backward anyway, so chunks would bound nothing
            # and only multiply the small operations (each a parallel region that waits for every thread: costly on
            # a shared CPU, issue 19): one plan and one chunk for the whole batch
            chunk_rows = plan_samples = batch * positions * taps
        return _gather_deform_conv(
            x, offset, mask, weight, bias, padding, (out_h, out_w), chunk_rows, plan_samples, sample_dtype
        )
    channels_last = channels_last_deformable_product(x, offset, mask, weight)
    if sampler == "triton" or (sampler is None and use_cuda_inference_kernels(x, offset, mask, weight)):
        return _triton_deform_conv(x, offset, mask, weight, bias, padding, (out_h, out_w), channels_last)
    return _grid_sample_deform_conv(
        x, offset, mask, weight, bias, padding, (out_h, out_w), sample_dtype, channels_last
    )


def _grid_sample_deform_conv(x, offset, mask, weight, bias, padding, out_size, sample_dtype, channels_last):
    """The portable path (any device and dtype, autocast, autograd, tracing): ``grid_sample`` of all images and
    taps at once, then one batched product per chunk of output positions. No host synchronisation; the column
    buffer of a chunk is at most ``_MAX_PORTABLE_COLUMN_ELEMENTS``. ``channels_last``: the result's layout
    (:func:`~birefnet_hf.inference_paths.channels_last_deformable_product`)."""
    batch, channels, height, width = x.shape
    kernel_h, kernel_w = weight.shape[-2:]
    taps = kernel_h * kernel_w
    out_h, out_w = out_size
    positions = out_h * out_w
    pos_y, pos_x = _sampling_positions(offset, kernel_h, kernel_w, out_h, out_w, padding[0], padding[1], sample_dtype)
    # grid_sample with align_corners=False maps normalised g to pixel ((g + 1) * size - 1) / 2
    grid = torch.stack(((2 * pos_x + 1) / width - 1, (2 * pos_y + 1) / height - 1), dim=-1)  # (N, K, P, 2)
    # a non-finite position gives a NaN sample weight (grid_sample alone would read zeros there): NaN in, NaN out,
    # like the gather sampler
    modulation = mask.to(sample_dtype).reshape(batch, 1, taps, positions) + (pos_y + pos_x).unsqueeze(1) * 0
    source = x.to(sample_dtype)

    def columns(start: int, stop: int) -> torch.Tensor:
        sampled = F.grid_sample(
            source, grid[:, :, start:stop], mode="bilinear", padding_mode="zeros", align_corners=False
        )  # (N, C, K, p)
        return (sampled * modulation[..., start:stop]).reshape(batch, channels * taps, stop - start).to(weight.dtype)

    return _columns_product(columns, x, weight, bias, out_size, channels_last)


def _triton_deform_conv(x, offset, mask, weight, bias, padding, out_size, channels_last):
    """The CUDA inference path: the columns of each chunk from the fused Triton sampler, in the weight's dtype,
    then the same chunked product as the portable path. Refuses autograd (the kernel has no backward)."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, offset, mask, weight)):
        raise RuntimeError(
            "deformable conv: the 'triton' sampler is for inference (it has no backward); call it under "
            "torch.no_grad() / torch.inference_mode(), or use sampler='grid_sample'"
        )
    from . import triton_deformable  # imports triton: only when this path is taken

    if weight.dtype not in triton_deformable.SUPPORTED_DTYPES:
        raise ValueError(
            f"deformable conv: the 'triton' sampler writes float32/float16/bfloat16 columns; the weight is "
            f"{weight.dtype} (use sampler='grid_sample')"
        )
    kernel_size = tuple(weight.shape[-2:])
    # under autocast the product casts the columns to the autocast dtype: write them in it (the same rounding)
    dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else weight.dtype

    def columns(start: int, stop: int) -> torch.Tensor:
        return triton_deformable.modulated_deformable_columns(x, offset, mask, kernel_size, padding, (start, stop), dtype)

    return _columns_product(columns, x, weight, bias, out_size, channels_last)


def _columns_product(columns, x, weight, bias, out_size, channels_last: bool):
    """``weight`` (O, C, kh, kw) times the columns (N, C*K, p) that ``columns(start, stop)`` builds for each chunk
    of output positions (at most ``_MAX_PORTABLE_COLUMN_ELEMENTS`` elements), plus ``bias``; (N, O, H_out, W_out)
    in ``x``'s dtype, channels-last in memory when ``channels_last`` (the same products, with the operands'
    transposition flipped: no copy either way). Chunk bounds depend on shapes only: no host synchronisation."""
    batch = x.shape[0]
    out_channels, channels, kernel_h, kernel_w = weight.shape
    taps = kernel_h * kernel_w
    out_h, out_w = out_size
    positions = out_h * out_w
    # one (O, C*K) weight for every image, as a stride-0 batch: (O, C*K) @ (N, C*K, p) would be computed as
    # (N*p, C*K) @ (C*K, O) after a transposed copy of the whole column buffer
    weight_matrix = weight.reshape(out_channels, channels * taps).expand(batch, -1, -1)
    chunk = max(1, min(positions, _MAX_PORTABLE_COLUMN_ELEMENTS // max(1, batch * channels * taps)))
    if torch.jit.is_tracing():  # the TorchScript tracer (ONNX) would fix the chunk bounds to the traced size
        chunk = positions
    pieces = []
    for start in range(0, positions, chunk):
        stop = min(positions, start + chunk)
        if channels_last:  # (N, p, C*K) @ (N, C*K, O): both operands transposed views, read as they lie
            pieces.append(torch.bmm(columns(start, stop).transpose(1, 2), weight_matrix.transpose(1, 2)))
        else:
            pieces.append(torch.bmm(weight_matrix, columns(start, stop)))  # (N, O, p)
    if channels_last:
        out = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)
        if bias is not None:
            out = out + bias
        out = out.view(batch, out_h, out_w, out_channels).permute(0, 3, 1, 2)
    else:
        out = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)
        out = out.view(batch, out_channels, out_h, out_w)
        if bias is not None:
            out = out + bias.view(1, -1, 1, 1)
    return out.to(x.dtype)


def _gather_deform_conv(x, offset, mask, weight, bias, padding, out_size, chunk_rows, plan_samples, sample_dtype):
    """The CPU path: position-major columns (rows, K*C) from ``embedding_bag`` times the (K*C, O) weight into a
    channels-last (N, H_out, W_out, O) result, over the batch's N * H_out * W_out output rows at once.

    The sampling plan (corner rows and weights, :func:`_sampling_plan`) is made for blocks of whole images, or of
    one image's positions when an image alone has more than ``plan_samples`` samples; columns are built and
    multiplied ``chunk_rows`` rows at a time. Without autograd each chunk's product goes through
    :func:`~birefnet_hf.cpu_linear.linear_rows` (oneDNN) straight into the result; with autograd the chunks'
    products are concatenated."""
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    taps = kernel_h * kernel_w
    out_h, out_w = out_size
    positions = out_h * out_w
    # the undeformed sampling grid (P, K): output row/column minus padding, plus the tap's row/column
    grid = dict(device=x.device, dtype=sample_dtype)
    if (height + 2) * (width + 2) > 2**24 and sample_dtype == torch.float32:  # pixel rows exact in float
        grid["dtype"] = torch.float64
    grid_y = (torch.arange(out_h, **grid) - padding[0]).repeat_interleave(out_w).unsqueeze(1) + torch.arange(
        kernel_h, **grid
    ).repeat_interleave(kernel_w)
    grid_x = (torch.arange(out_w, **grid) - padding[1]).repeat(out_h).unsqueeze(1) + torch.arange(
        kernel_w, **grid
    ).repeat(kernel_h)
    rows = _padded_rows(x, sample_dtype)
    image_rows = (height + 2) * (width + 2)
    first_rows = torch.arange(batch, device=x.device).mul_(image_rows).view(batch, 1, 1)
    offsets = offset.permute(0, 2, 3, 1).reshape(batch, positions, taps, 2)  # a view for channels-last offsets
    modulation = mask.permute(0, 2, 3, 1).reshape(batch, positions, taps)
    # columns are ordered (tap, channel), so the weight goes (O, kh, kw, C)
    weight_matrix = weight.permute(0, 2, 3, 1).reshape(out_channels, taps * channels)
    in_place = use_cpu_inference_kernels(x) and x.dtype == weight.dtype
    out = torch.empty(batch * positions, out_channels, dtype=weight.dtype, device=x.device) if in_place else None
    pieces = []
    images_per_block = max(1, plan_samples // max(1, positions * taps))
    positions_per_block = positions if images_per_block > 1 else max(1, min(positions, plan_samples // taps))
    for first in range(0, batch, images_per_block):
        last = min(batch, first + images_per_block)
        for start in range(0, positions, positions_per_block):
            stop = min(positions, start + positions_per_block)
            index, sample_weight = _sampling_plan(
                offsets[first:last, start:stop],
                modulation[first:last, start:stop],
                grid_y[start:stop],
                grid_x[start:stop],
                first_rows[first:last],
                height,
                width,
            )
            sample_weight = sample_weight.to(rows.dtype)
            block_rows, row = (last - first) * (stop - start), first * positions + start  # contiguous output rows
            for chunk in range(0, block_rows, chunk_rows):
                count = min(chunk_rows, block_rows - chunk)
                samples = slice(chunk * taps, (chunk + count) * taps)
                columns = F.embedding_bag(index[samples], rows, per_sample_weights=sample_weight[samples], mode="sum")
                columns = columns.view(count, taps * channels).to(weight.dtype)
                if out is None:
                    pieces.append(F.linear(columns, weight_matrix, bias))
                else:
                    out[row + chunk : row + chunk + count] = linear_rows(columns, weight_matrix, bias)
    if out is None:
        out = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=0)
    return out.view(batch, out_h, out_w, out_channels).permute(0, 3, 1, 2).to(x.dtype)


__all__ = ["modulated_deform_conv2d"]
