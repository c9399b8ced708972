# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""``rows @ weight.T + bias`` for the inference fast paths, through oneDNN on CPU.

On this project's CPUs oneDNN's convolution is 5-20 % faster than MKL's GEMM for the products BiRefNet's inference
is made of (Swin's linear layers, the deformable convolutions' column products), and it keeps that edge with one
thread, where ``F.conv2d`` would leave oneDNN for its own GEMM. A (M, K) matrix of rows is a channels-last
(1, K, M, 1) image without a copy, and a 1x1 convolution of it is the product, returned as a (M, N) view of the
channels-last output. ``benchmarks/README.md`` has the measurements.

Anywhere else (CUDA, the meta device, other dtypes, PyTorch without oneDNN, or when gradients are recorded) it is
``F.linear``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _use_onednn(rows: torch.Tensor, weight: torch.Tensor) -> bool:
    return (
        rows.device.type == "cpu"
        and rows.dtype == weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and not (torch.is_grad_enabled() and (rows.requires_grad or weight.requires_grad))
    )


def linear_rows(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(rows, weight, bias)`` for a 2-D ``rows`` (M, K) and ``weight`` (N, K); the same values up to
    float rounding. The result is (M, N) and contiguous."""
    if not _use_onednn(rows, weight):
        return F.linear(rows, weight, bias)
    count, width = rows.shape
    image = rows.contiguous().view(1, count, 1, width).permute(0, 3, 1, 2)  # channels-last (1, K, M, 1)
    out = torch.mkldnn_convolution(image, weight.view(*weight.shape, 1, 1), bias, (0, 0), (1, 1), (1, 1), 1)
    return out.permute(0, 2, 3, 1).reshape(count, weight.shape[0])


__all__ = ["linear_rows"]
