# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The one place that decides which implementation of a kernel runs.

The model's modules compute the paper's function in one *portable* form: plain PyTorch operators that run on any
device and dtype, under ``torch.autocast``, with autograd, and that ``torch.compile`` / ``torch.export`` / the ONNX
exporters trace without graph breaks or host synchronisation. On a CPU some of them have a faster equivalent tuned
for a few cores (oneDNN products, gather-based deformable sampling, a fused Swin block); each equivalent is pinned to
its portable form by ``tests/test_inference_paths.py``.

The predicates below are the only device/dtype/mode tests in the forward path:

* :func:`use_cpu_kernels` -- the CPU kernels that are exact in any mode (the deformable convolution's gather
  sampler): eager execution on a CPU tensor.
* :func:`use_cpu_inference_kernels` -- the CPU kernels that only exist for inference (in-place products into
  preallocated buffers, the fused Swin block): additionally float32, no autograd recording, no autocast, and the
  module in eval mode.
* :func:`optimizer_kernel_options` -- the optimiser's implementation for the parameters' device (fused on CPU).
* :func:`tensor_core_channel_multiple` -- on CUDA, convolutions with odd channel counts are zero-padded to a
  multiple of 8 so that cuDNN uses tensor cores (exact: the padding adds zero filters / zero inputs).
* :func:`channels_last_deformable_product` -- in CUDA inference the deformable convolution's product is written
  channels-last (the same values), so that the decoder runs channels-last there as it does on the CPU.
* :func:`use_cuda_inference_kernels` -- the CUDA kernels that only exist for inference (the deformable
  convolution's fused Triton sampler, :mod:`birefnet_hf.triton_deformable`): eager execution on CUDA tensors of
  float32/float16/bfloat16 with autograd not recording, and ``triton`` installed. Autocast is allowed (the kernel
  reads each tensor in its own dtype and the product after it runs under autocast as in the portable form).

Every other case -- other accelerators, the meta device, CUDA with autograd recording or without ``triton``,
tracing for compile or export -- takes the portable form (on CPU, bfloat16/float16 models and autocast take it
too), so a CPU trick can never slow (or break) the GPU path, and ``torch.compile`` always sees the portable form.
"""

from __future__ import annotations

import functools
import importlib.util

import torch
from torch import nn


def is_tracing() -> bool:
    """Whether the code runs under a tracer (``torch.compile``/``torch.export``/dynamo ONNX export, TorchScript
    tracing or the TorchScript ONNX exporter): the graph must then hold only portable, shape-static operators."""
    if torch.compiler.is_compiling():
        return True
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    return bool(torch.onnx.is_in_onnx_export())


def _autocast_enabled(device_type: str) -> bool:
    return torch.is_autocast_enabled(device_type)


def use_cpu_kernels(tensor: torch.Tensor) -> bool:
    """Whether the CPU kernels that are valid in training and inference alike apply to ``tensor``."""
    return tensor.device.type == "cpu" and not is_tracing()


def use_cpu_inference_kernels(tensor: torch.Tensor, module: nn.Module | None = None) -> bool:
    """Whether the inference-only CPU kernels apply: an eager float32 CPU forward without autograd recording or
    autocast, with ``module`` (if given) in eval mode."""
    return (
        tensor.device.type == "cpu"
        and tensor.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not (module is not None and module.training)
        and not _autocast_enabled("cpu")
        and not is_tracing()
    )


@functools.cache
def _triton_installed() -> bool:
    """Whether ``triton`` can be imported; looked up once per process (a failed look-up scans ``sys.path``, too
    slow to repeat for every deformable convolution of a launch-bound CUDA forward)."""
    return importlib.util.find_spec("triton") is not None


def use_cuda_inference_kernels(*tensors: torch.Tensor) -> bool:
    """Whether the inference-only CUDA kernels apply to an operation on ``tensors`` (the first one decides the
    device): eager execution (not tracing) on a CUDA device, every tensor float32/float16/bfloat16, autograd not
    recording the operation (grad mode off, or no tensor requires grad), and ``triton`` importable (CUDA wheels of
    PyTorch ship it on Linux)."""
    if not tensors or tensors[0].device.type != "cuda" or is_tracing():
        return False
    if any(t.dtype not in (torch.float32, torch.float16, torch.bfloat16) for t in tensors):
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    return _triton_installed()


def tensor_core_channel_multiple(tensor: torch.Tensor) -> int:
    """The channel multiple a convolution's output (and input) channels are zero-padded to: 8 on CUDA, where cuDNN
    runs bfloat16/float16 convolutions on tensor cores only for channel counts that are multiples of 8 (147-channel
    offset predictors and 1-channel heads otherwise fall back to kernels 5-20x slower); 1 (no padding) elsewhere.
    Padding with zero filters and zero input channels leaves every real output channel's value unchanged."""
    return 8 if tensor.device.type == "cuda" else 1


def channels_last_deformable_product(*tensors: torch.Tensor) -> bool:
    """Whether the deformable convolution on ``tensors`` (input, offset, modulation, weight; the first decides the
    device) writes its result channels-last in the portable and Triton forms: on CUDA without autograd recording,
    eager or traced (compiled regions return the layout the eager forward would). The decoder then stays
    channels-last after its first deformable convolution, as the CPU gather path (always channels-last) makes it:
    the Triton sampler reads a corner's channels contiguously, cuDNN runs its NHWC tensor-core kernels without
    transposing, and the decoder's bilinear upsamplings take PyTorch's NHWC kernel (the NCHW one took 2.5-4.7 ms
    per call on 768-1536-channel maps at batch 8 on an H200, ``benchmarks/README.md``). Training (autograd
    recording) and other devices keep the channels-first product, whose speed on CUDA training is the measured
    one. The product is the same either way (its operands' transposition flipped, no copy)."""
    if not tensors or tensors[0].device.type != "cuda":
        return False
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def optimizer_kernel_options(device: torch.device | str) -> dict:
    """Keyword arguments that pick the implementation of ``torch.optim.Adam``/``AdamW`` for parameters on
    ``device``: on a CPU ``fused=True`` (one kernel per parameter instead of about a dozen elementwise operations,
    each a parallel region whose barrier waits for a descheduled thread on a shared CPU: issue 19; the same
    update up to float rounding, and the same state-dict layout, so checkpoints resume either way); elsewhere
    nothing (torch's default: the multi-tensor ``foreach`` path on CUDA)."""
    return {"fused": True} if torch.device(device).type == "cpu" else {}


def compile_for_inference(
    model: nn.Module,
    backend: str | None = None,
    regional: bool = True,
    cuda_graphs: bool | None = None,
    input_shapes: int = 4,
) -> nn.Module:
    """Compile ``model`` in place for repeated inference at a few fixed input sizes and return it
    (``birefnet-hf segment --compile``).

    ``regional=True`` (the default; compile time and speed in ``benchmarks/README.md``): the repeated blocks are
    compiled, one graph per kind of block and input size, and the glue between them runs eagerly
    (:func:`birefnet_hf.regional_compile.compile_regions`; inductor unless ``backend`` is given, at most
    ``input_shapes`` sizes before the recompile limit). On CUDA (``cuda_graphs=None`` means: on CUDA with the
    default backend) the whole forward -- the eager glue and the compiled regions' kernels -- is then recorded as a
    CUDA graph per input shape and replayed (:func:`birefnet_hf.cuda_graphs.capture_cuda_graphs`): the low-latency
    batch-1 path. The model must then be in eval mode and called with ``pixel_values`` only, under ``no_grad`` or
    ``inference_mode``; the first call of a size compiles the regions during the capture's warm-up.

    ``regional=False``: the whole forward as one graph (``fullgraph=True``, ``dynamic=False``, see
    ``tests/test_compile.py``), replayed as a CUDA graph on CUDA (``mode="reduce-overhead"``), inductor's default
    mode elsewhere. Its first call of each size compiles the whole model: minutes on a CPU, and Swin-L did not
    finish in 190 s on an H200.

    ``backend`` overrides the compiler backend (tests use ``"aot_eager"``). Outputs of a CUDA-graph call are
    overwritten by the next call of the same size, so copy what you keep.
    """
    parameter = next(model.parameters(), None)
    on_cuda = parameter is not None and parameter.device.type == "cuda"
    if regional:
        from .regional_compile import compile_regions

        compile_regions(model, backend=backend or "inductor", input_shapes=input_shapes)
        if cuda_graphs if cuda_graphs is not None else (on_cuda and backend is None):
            from .cuda_graphs import capture_cuda_graphs

            capture_cuda_graphs(model)
        return model
    if cuda_graphs:
        raise ValueError("cuda_graphs=True needs regional=True (the whole-model graph uses mode='reduce-overhead')")
    options: dict = {"fullgraph": True, "dynamic": False}
    if backend is not None:
        options["backend"] = backend
    elif on_cuda:
        options["mode"] = "reduce-overhead"
    model.compile(**options)
    return model


def compile_for_training(model: nn.Module, backend: str = "inductor", input_shapes: int = 1) -> nn.Module:
    """Compile ``model``'s forward in place for training (``examples/train.py --torch_compile``) and return it:
    ``fullgraph=True``, ``dynamic=False``, one graph per input shape. In place, so the module object, its state-dict
    keys and Accelerate's wrapping stay as they are.

    ``input_shapes`` is the number of training shapes: 1 at a fixed ``--image_size``, ``N`` with
    ``--dynamic_size_buckets N`` (:mod:`birefnet_hf.training.dynamic_sizes`). The model's recompile limit is
    ``input_shapes`` plus dynamo's default allowance (``torch._dynamo.config.recompile_limit``, 8; validation batches
    and eval mode take a few), set for this model alone through ``torch.compile(recompile_limit=...)``; PyTorch
    versions without that argument get the process-wide limit raised to it instead. With ``fullgraph=True`` a
    shape beyond the limit raises instead of silently running eagerly.

    Not for the authors' unbucketed dynamic sizes (height and width drawn independently per batch: thousands of
    graphs), and not with ``dynamic=True``: a symbolic-shape graph of the whole model does not finish compiling in
    practice (its shape guards grow without bound; tried with PyTorch 2.14)."""
    import inspect

    import torch._dynamo

    if input_shapes < 1:
        raise ValueError(f"input_shapes must be at least 1, got {input_shapes}")
    limit = input_shapes + torch._dynamo.config.recompile_limit
    options: dict = {"backend": backend, "fullgraph": True, "dynamic": False}
    if "recompile_limit" in inspect.signature(torch.compile).parameters:
        options["recompile_limit"] = limit
    else:  # PyTorch before the per-call limit
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, limit)
    model.compile(**options)
    return model


__all__ = [
    "channels_last_deformable_product",
    "compile_for_inference",
    "compile_for_training",
    "is_tracing",
    "optimizer_kernel_options",
    "tensor_core_channel_multiple",
    "use_cpu_inference_kernels",
    "use_cpu_kernels",
    "use_cuda_inference_kernels",
]
