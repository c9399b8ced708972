# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""A fused Triton sampler for the modulated deformable convolution's column buffer (CUDA inference).

The portable path of :func:`birefnet_hf.deformable_conv.modulated_deform_conv2d` builds the columns with
``grid_sample`` of a float32 copy of the input into an (N, C, K, P) float32 tensor, multiplies by the modulation
(another tensor), reshapes and casts to the weight's dtype (a third): four passes over a buffer K times the size of
the input. Here one kernel reads the input, offsets and modulation and writes each column element once, in the
weight's dtype, straight into the (N, C*K, P) buffer the product reads.

Semantics are the portable path's (torchvision's ``deform_conv2d``): stride 1, dilation 1, one offset group; the
position of tap ``k = i * kw + j`` at output ``(oy, ox)`` is ``offset + (oy - pad_h + i)`` (resp. ``x``), added
in float32 in one rounding; bilinear interpolation with zero padding (a corner outside the map reads zero, so a
sample on or beyond ``-1`` / ``H`` reads zero); the blend is computed in float32 and multiplied by the modulation;
a non-finite position (NaN or inf) gives a NaN column element, as the portable path documents. Row ``c * K + k``
of the buffer is channel ``c``, tap ``k``: the order of ``weight.reshape(O, C * K)``.

Layout: each program takes one image, one tap and ``BLOCK_P`` output positions; it computes those positions'
corners and weights once and then loops over the channels in blocks of ``BLOCK_C``, loading the four corners of a
(channels, positions) tile and storing it along the positions (contiguous in the buffer). The input is read in its
own dtype through its own strides, without a copy: the decoder feeds channels-last maps, where a corner's channels
are contiguous (Triton specialises the unit channel stride, so these gathers coalesce along channels); a
channels-first input is read as it is, which costs scattered reads but saves a full read and write of the input
that a channels-last copy would take (the input is 1/K of the buffer written: K = 1 for the 1x1 branches). Offsets
and modulation are read through their strides too (the predictor's channels-last slices). Addresses are 64-bit.

Inference only: the kernel records nothing for autograd (the dispatch takes it only when autograd is not
recording). No autotuning and no host synchronisation, so a launch can be captured in a CUDA graph once the kernel
is compiled (the graph's warm-up calls compile it). ``triton`` is imported by this module; the package imports this
module only when the CUDA kernel is chosen (:func:`birefnet_hf.inference_paths.use_cuda_inference_kernels`). With
``TRITON_INTERPRET=1`` set before this module is imported, the kernel runs on CPU tensors through Triton's
interpreter (how ``tests/test_triton_deformable.py`` checks it without a GPU).
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
import triton
import triton.language as tl

#: dtypes the kernel reads and writes (float64 takes the portable path).
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

#: Default tile: positions per program and channels per inner step (not tuned on a GPU yet; see
#: ``benchmarks/deformable_sampler.py --blocks``).
BLOCK_POSITIONS = 64
BLOCK_CHANNELS = 32


@triton.jit
def _round_to_bfloat16(value):
    """``value`` (float32) rounded to the nearest bfloat16 (ties to even), still as float32, so that the cast that
    follows is exact. Compiled Triton rounds float32 -> bfloat16 this way itself; Triton's interpreter truncates
    (3.8), so without this the interpreter checks would not check what the GPU computes. A few integer operations
    per element of a memory-bound kernel. NaN stays NaN (its payload could otherwise round up to infinity)."""
    bits = value.to(tl.uint32, bitcast=True)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return tl.where(value != value, value, rounded.to(tl.float32, bitcast=True))


@triton.jit
def _modulated_deformable_columns_kernel(
    x_ptr,
    offset_ptr,
    mask_ptr,
    columns_ptr,
    channels,
    height,
    width,
    out_w,
    taps,
    kernel_w,
    pad_h,
    pad_w,
    position_start,
    chunk_positions,
    x_stride_n,
    x_stride_c,
    x_stride_h,
    x_stride_w,
    offset_stride_n,
    offset_stride_c,
    offset_stride_h,
    offset_stride_w,
    mask_stride_n,
    mask_stride_c,
    mask_stride_h,
    mask_stride_w,
    BLOCK_C: tl.constexpr,
    BLOCK_P: tl.constexpr,
):
    tap = tl.program_id(1)
    image = tl.program_id(2).to(tl.int64)
    local = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)  # position within the chunk
    in_chunk = local < chunk_positions
    position = position_start + local
    out_y = (position // out_w).to(tl.int64)
    out_x = (position % out_w).to(tl.int64)

    # offsets (dy, dx) at channels 2k, 2k + 1 and the modulation at channel k, read in their dtype
    offset_at = offset_ptr + image * offset_stride_n + out_y * offset_stride_h + out_x * offset_stride_w
    offset_y = tl.load(offset_at + (2 * tap) * offset_stride_c, mask=in_chunk, other=0.0).to(tl.float32)
    offset_x = tl.load(offset_at + (2 * tap + 1) * offset_stride_c, mask=in_chunk, other=0.0).to(tl.float32)
    mask_at = (
        mask_ptr + image * mask_stride_n + tap * mask_stride_c + out_y * mask_stride_h + out_x * mask_stride_w
    )
    modulation = tl.load(mask_at, mask=in_chunk, other=0.0).to(tl.float32)

    # the undeformed grid position is an integer: the offset is added in one float32 rounding, as in torchvision
    pos_y = offset_y + (out_y - pad_h + tap // kernel_w).to(tl.float32)
    pos_x = offset_x + (out_x - pad_w + tap % kernel_w).to(tl.float32)
    y0 = tl.floor(pos_y)
    x0 = tl.floor(pos_x)
    frac_y = pos_y - y0  # NaN for a NaN or infinite position: its four weights, and so the sample, are NaN
    frac_x = pos_x - x0
    # which of the four corners (y0 | y0 + 1, x0 | x0 + 1) lie in the map (float compares: False for NaN)
    top = (y0 >= 0) & (y0 <= height - 1)
    bottom = (y0 >= -1) & (y0 <= height - 2)
    left = (x0 >= 0) & (x0 <= width - 1)
    right = (x0 >= -1) & (x0 <= width - 2)
    # element offsets of the corners; 0 for a corner outside (never read: its load is masked)
    row_top = tl.where(top, y0, 0.0).to(tl.int64) * x_stride_h
    row_bottom = tl.where(bottom, y0 + 1, 0.0).to(tl.int64) * x_stride_h
    col_left = tl.where(left, x0, 0.0).to(tl.int64) * x_stride_w
    col_right = tl.where(right, x0 + 1, 0.0).to(tl.int64) * x_stride_w
    weight_tl = (1.0 - frac_y) * (1.0 - frac_x)
    weight_tr = (1.0 - frac_y) * frac_x
    weight_bl = frac_y * (1.0 - frac_x)
    weight_br = frac_y * frac_x

    image_x = x_ptr + image * x_stride_n
    # row c * K + k of this image's (C * K, chunk) block
    column_at = columns_ptr + image * channels * taps * chunk_positions + tap * chunk_positions + local
    for channel_start in range(0, channels, BLOCK_C):
        channel = channel_start + tl.arange(0, BLOCK_C)
        channel_ok = (channel < channels)[:, None]
        source = image_x + channel.to(tl.int64)[:, None] * x_stride_c
        value_tl = tl.load(
            source + (row_top + col_left)[None, :], mask=channel_ok & (top & left)[None, :], other=0.0
        )
        value_tr = tl.load(
            source + (row_top + col_right)[None, :], mask=channel_ok & (top & right)[None, :], other=0.0
        )
        value_bl = tl.load(
            source + (row_bottom + col_left)[None, :], mask=channel_ok & (bottom & left)[None, :], other=0.0
        )
        value_br = tl.load(
            source + (row_bottom + col_right)[None, :], mask=channel_ok & (bottom & right)[None, :], other=0.0
        )
        blend = (
            weight_tl[None, :] * value_tl.to(tl.float32)
            + weight_tr[None, :] * value_tr.to(tl.float32)
            + weight_bl[None, :] * value_bl.to(tl.float32)
            + weight_br[None, :] * value_br.to(tl.float32)
        )
        sample = blend * modulation[None, :]
        if columns_ptr.dtype.element_ty == tl.bfloat16:
            sample = _round_to_bfloat16(sample)
        target = column_at[None, :] + channel.to(tl.int64)[:, None] * (taps * chunk_positions)
        tl.store(target, sample.to(columns_ptr.dtype.element_ty), mask=channel_ok & in_chunk[None, :])


def modulated_deformable_columns(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    kernel_size: tuple[int, int],
    padding: tuple[int, int],
    positions: tuple[int, int],
    dtype: torch.dtype,
    block_channels: int = BLOCK_CHANNELS,
    block_positions: int = BLOCK_POSITIONS,
) -> torch.Tensor:
    """The modulated deformable columns of output positions ``positions = (start, stop)`` (row-major over the
    output map) as a new (N, C * K, stop - start) tensor of ``dtype``.

    Args:
        x: input (N, C, H, W), float32/float16/bfloat16, any strides.
        offset: (N, 2 * K, H_out, W_out), the (dy, dx) pair of tap ``k`` at channels 2k, 2k + 1; any float dtype of
            the three and any strides.
        mask: modulation (N, K, H_out, W_out).
        kernel_size: (kh, kw), K = kh * kw.
        padding: (pad_h, pad_w); stride and dilation are 1, so H_out = H + 2 * pad_h - kh + 1.
        positions: the chunk of output positions (``0 <= start < stop <= H_out * W_out``).
        dtype: the buffer's dtype (the weight's).
        block_channels, block_positions: the tile (powers of two).
    """
    launch = kernel_launch(
        x, offset, mask, kernel_size, padding, positions, dtype, block_channels, block_positions
    )
    # Triton launches on the current CUDA device: make it x's (a model on cuda:1 while cuda:0 is current)
    on_device = torch.cuda.device(x.device) if x.device.type == "cuda" else contextlib.nullcontext()
    with on_device:
        _modulated_deformable_columns_kernel[launch.grid](*launch.arguments, **launch.constants)
    return launch.columns


@dataclasses.dataclass(frozen=True)
class KernelLaunch:
    """What :func:`modulated_deformable_columns` launches: the kernel's grid, its arguments (the new column buffer
    ``columns`` among them) and its compile-time constants. Built apart from the launch so that
    ``tests/test_triton_deformable.py`` can compile, without a GPU, exactly the kernels a forward would launch."""

    columns: torch.Tensor
    grid: tuple[int, int, int]
    arguments: tuple
    constants: dict[str, int]


def kernel_launch(x, offset, mask, kernel_size, padding, positions, dtype, block_channels=BLOCK_CHANNELS,
                  block_positions=BLOCK_POSITIONS) -> KernelLaunch:  # fmt: skip
    """Checks the arguments of :func:`modulated_deformable_columns` (same names, types and meaning), allocates the
    column buffer and returns the launch that fills it."""
    batch, channels, height, width = x.shape
    kernel_h, kernel_w = kernel_size
    taps = kernel_h * kernel_w
    out_h, out_w = offset.shape[-2:]
    start, stop = positions
    for name, tensor in (("x", x), ("offset", offset), ("mask", mask)):
        if tensor.dtype not in SUPPORTED_DTYPES:
            raise ValueError(
                f"triton deformable sampler: {name} is {tensor.dtype}; supported: {SUPPORTED_DTYPES}"
            )
        if tensor.device != x.device:
            raise ValueError(f"triton deformable sampler: {name} is on {tensor.device}, x on {x.device}")
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"triton deformable sampler: columns dtype {dtype}; supported: {SUPPORTED_DTYPES}")
    if offset.shape != (batch, 2 * taps, out_h, out_w) or mask.shape != (batch, taps, out_h, out_w):
        raise ValueError(
            f"triton deformable sampler: offset {tuple(offset.shape)} / mask {tuple(mask.shape)} do not match "
            f"input {tuple(x.shape)} and a {kernel_h}x{kernel_w} kernel"
        )
    if not 0 <= start < stop <= out_h * out_w:
        raise ValueError(f"triton deformable sampler: positions {positions} outside 0..{out_h * out_w}")
    chunk = stop - start
    columns = torch.empty(batch, channels * taps, chunk, dtype=dtype, device=x.device)
    arguments = (
        x, offset, mask, columns, channels, height, width, out_w, taps, kernel_w, padding[0], padding[1], start,
        chunk, *x.stride(), *offset.stride(), *mask.stride(),
    )  # fmt: skip
    grid = (triton.cdiv(chunk, block_positions), taps, batch)
    return KernelLaunch(columns, grid, arguments, {"BLOCK_C": block_channels, "BLOCK_P": block_positions})


__all__ = [
    "BLOCK_CHANNELS",
    "BLOCK_POSITIONS",
    "SUPPORTED_DTYPES",
    "KernelLaunch",
    "kernel_launch",
    "modulated_deformable_columns",
]
