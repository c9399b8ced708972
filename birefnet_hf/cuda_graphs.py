# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""CUDA-graph inference: the eager forward captured once per input shape and replayed.

A batch-1 forward of the large models launches ~1,700 kernels; on a GPU the host then spends more time launching
them than the GPU spends running them. A CUDA graph records the launches of one forward and replays them with one
call. Unlike ``torch.compile(mode="reduce-overhead")``, nothing is compiled: the first call of a shape runs the
forward a few times (warm-up: cuDNN/cuBLAS choose their kernels, the Swin window layouts are cached on the device)
and records it, in about a second; inductor needs minutes for Swin-L.

The forward is capturable because it never synchronises with the host and keeps shape-only index tensors in
per-shape caches filled before the capture (``tests/test_compile.py`` and ``tests/test_cuda.py`` pin both).

    model = BiRefNetForImageSegmentation.from_pretrained(...).to("cuda", torch.bfloat16).eval()
    capture_cuda_graphs(model)           # in place; returns the model
    with torch.inference_mode():
        logits = model(pixel_values=x).logits.clone()   # the graph's output buffer: copy what you keep

Rules (as for any CUDA graph): inference only (eval mode, no autograd), ``pixel_values`` only; the returned tensors
are the graph's static outputs and are overwritten by the next call of the same shape; one graph per (shape, dtype,
device), at most ``max_graphs`` (the oldest is dropped).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.utils import logging

logger = logging.get_logger(__name__)


class CUDAGraphForward:
    """The callable that replaces a model's ``forward`` (see :func:`capture_cuda_graphs`)."""

    def __init__(self, model: nn.Module, eager_forward, warmup: int = 3, max_graphs: int = 8):
        self.model = model
        self.eager_forward = eager_forward
        self.warmup = warmup
        self.max_graphs = max_graphs
        self.pool = None
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor, object]] = {}

    def __call__(self, pixel_values: torch.Tensor | None = None, **kwargs):
        extra = sorted(name for name, value in kwargs.items() if value is not None)
        if extra:
            raise ValueError(
                f"a CUDA-graph forward takes pixel_values only; got {', '.join(extra)} (call the model without "
                "capture_cuda_graphs for training, labels or hidden states)"
            )
        if self.model.training or torch.is_grad_enabled():
            raise RuntimeError(
                "a CUDA-graph forward is for inference: put the model in eval mode and call it under "
                "torch.inference_mode() or torch.no_grad()"
            )
        if pixel_values is None or pixel_values.device.type != "cuda":
            where = "no pixel_values" if pixel_values is None else f"pixel_values on {pixel_values.device}"
            raise ValueError(f"a CUDA-graph forward needs pixel_values on a CUDA device; got {where}")
        key = (tuple(pixel_values.shape), pixel_values.dtype, pixel_values.device, pixel_values.stride())
        entry = self.graphs.get(key)
        if entry is None:
            entry = self._capture(pixel_values)
            while len(self.graphs) >= self.max_graphs:
                self.graphs.pop(next(iter(self.graphs)))
            self.graphs[key] = entry
        graph, static_input, static_output = entry
        static_input.copy_(pixel_values)
        graph.replay()
        return static_output

    def _capture(self, pixel_values: torch.Tensor):
        # outside inference mode, so that the static buffers are ordinary tensors that later calls may write into
        with torch.inference_mode(False), torch.no_grad():
            static_input = pixel_values.clone()
            side = torch.cuda.Stream(device=pixel_values.device)
            side.wait_stream(torch.cuda.current_stream(pixel_values.device))
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self.eager_forward(pixel_values=static_input)
            torch.cuda.current_stream(pixel_values.device).wait_stream(side)
            if self.pool is None:
                self.pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                static_output = self.eager_forward(pixel_values=static_input)
        logger.info(f"Captured a CUDA graph for input {tuple(pixel_values.shape)} {pixel_values.dtype}.")
        return graph, static_input, static_output


def capture_cuda_graphs(model: nn.Module, warmup: int = 3, max_graphs: int = 8) -> nn.Module:
    """Make ``model``'s forward replay a CUDA graph per input shape (in place) and return the model.

    The model must be on a CUDA device and in eval mode; the first call of each input shape warms up and captures
    (about a second), later calls copy the input into the graph's buffer and replay. Undo with
    :func:`release_cuda_graphs`.
    """
    parameter = next(model.parameters(), None)
    if parameter is None or parameter.device.type != "cuda":
        where = "no parameters" if parameter is None else f"parameters on {parameter.device}"
        raise ValueError(f"capture_cuda_graphs needs a model on a CUDA device; this one has {where}")
    if model.training:
        raise ValueError("capture_cuda_graphs is for inference: call model.eval() first")
    if isinstance(model.forward, CUDAGraphForward):
        return model
    model.forward = CUDAGraphForward(model, model.forward, warmup=warmup, max_graphs=max_graphs)
    return model


def release_cuda_graphs(model: nn.Module) -> nn.Module:
    """Drop the captured graphs and give ``model`` its eager forward back."""
    forward = model.__dict__.get("forward")
    if isinstance(forward, CUDAGraphForward):
        forward.graphs.clear()
        del model.forward
    return model


__all__ = ["CUDAGraphForward", "capture_cuda_graphs", "release_cuda_graphs"]
