# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The one prediction driver: RGB photos -> BiRefNet -> 8-bit mattes at each photo's own size.

Every inference front end of the package goes through here: the ``background-removal`` pipeline
(``pipelines.py``), the Python API and ``birefnet-hf segment`` (``background_removal.py`` / ``segment.py``),
``examples/evaluate_dis.py`` and ``examples/run_demo.py``. The steps, in the order of the authors' ``inference.py``:

1. **preprocess** (:func:`preprocess_images`): the image processor resizes and normalises each photo (on the
   accelerator when the processor is the torchvision backend and the model sits on CUDA);
2. **forward** (:func:`forward_logits`): photos resized to the same model size share one forward pass; the batch is
   moved to the model's device and dtype here and nowhere else (pinned memory and a non-blocking copy on CUDA),
   optionally under ``torch.autocast``;
3. **sigmoid, then bilinear resize** (``align_corners=True``) back to each photo's size, in row chunks
   (``processor.post_process_alpha``: an 8000x6000 matte costs 48 MB, never a full-size float copy);
4. **quantise** with :func:`quantize_probabilities`.

The quantisation rule is the authors' **truncation**, ``uint8(255 * p)``: their ``inference.py`` saves each
prediction with ``utils.save_tensor_img``, i.e. ``torchvision.transforms.ToPILImage()(p)``, which computes
``p.mul(255).byte()`` (float -> uint8 truncates), and their evaluation (``eval_existingOnes.py`` /
``evaluation/metrics.py``) scores those PNG files. Rounding instead would move about half of the soft pixels up by
one level and change the scores in the third decimal. The DIS metrics quantise float maps the same way
(:mod:`birefnet_hf.metrics.inputs`).

This module imports nothing else from the package at module level, so the image processors' chunked resize can take
its quantisation rule from here without an import cycle.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch
from transformers.image_processing_backends import TorchvisionBackend

__all__ = [
    "forward_logits",
    "logits_to_mattes",
    "model_device_and_dtype",
    "predict_mattes",
    "preprocess_images",
    "quantize_probabilities",
]


def quantize_probabilities(probabilities: torch.Tensor) -> torch.Tensor:
    """The package's one float -> 8-bit rule for mattes: ``uint8(255 * p)``, truncating, as the authors save their
    predictions (``ToPILImage``: ``p.mul(255).byte()``; see the module docstring).

    ``p`` is computed in float32 whatever the input dtype (a bfloat16 probability would otherwise be multiplied in
    bfloat16); values outside [0, 1] (float rounding of a resize) are clamped to 0 / 255. The result stays on
    ``probabilities.device``.

    >>> quantize_probabilities(torch.tensor([0.0, 0.5, 0.999, 1.0])).tolist()
    [0, 127, 254, 255]
    """
    if not torch.is_floating_point(probabilities):
        raise TypeError(f"probabilities must be a floating-point tensor, got {probabilities.dtype}.")
    return probabilities.to(torch.float32).mul(255.0).clamp_(0.0, 255.0).to(torch.uint8)


def model_device_and_dtype(model: Any) -> tuple[torch.device, torch.dtype]:
    """Where a model's parameters live and their dtype; a model that is not a ``torch.nn.Module`` (the onnxruntime
    backend, ``onnx_runtime.py``) takes float32 CPU tensors."""
    if not isinstance(model, torch.nn.Module):
        return torch.device("cpu"), torch.float32
    parameter = next(model.parameters(), None)
    if parameter is None:
        return torch.device("cpu"), torch.float32
    return parameter.device, parameter.dtype


def preprocess_images(
    processor: Any,
    images: Sequence[PIL.Image.Image],
    size: dict | None = None,
    device: torch.device | None = None,
) -> list[torch.Tensor]:
    """One ``(1, 3, h, w)`` float tensor per image (the processor's resize and normalisation, at ``size`` or the
    processor's own). With ``device`` on CUDA and the torchvision backend the work runs there (only the 8-bit photo
    crosses the bus); otherwise on the CPU."""
    kwargs: dict[str, Any] = {"size": size} if size is not None else {}
    if device is not None and device.type == "cuda" and isinstance(processor, TorchvisionBackend):
        kwargs["device"] = device
    return [processor(images=image, return_tensors="pt", **kwargs)["pixel_values"] for image in images]


def forward_logits(
    model: Any, pixel_values: torch.Tensor, autocast_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The model's logits for a ``(batch, 3, h, w)`` batch: moved to the model's device and dtype (page-locked,
    non-blocking on CUDA), run without autograd, optionally under ``torch.autocast(autocast_dtype)``."""
    device, dtype = model_device_and_dtype(model)
    if pixel_values.device != device and device.type == "cuda":
        pixel_values = pixel_values.pin_memory()  # an asynchronous copy that overlaps the host's work
    pixel_values = pixel_values.to(device=device, dtype=dtype, non_blocking=True)
    autocast = (
        torch.autocast(device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        return model(pixel_values=pixel_values).logits


def logits_to_mattes(
    processor: Any, logits: torch.Tensor, sizes: Sequence[tuple[int, int]]
) -> list[np.ndarray]:
    """8-bit mattes ``(height, width)`` at ``sizes``: sigmoid at model resolution, bilinear resize
    (``align_corners=True``) in row chunks, :func:`quantize_probabilities` (``processor.post_process_alpha``)."""
    mattes = processor.post_process_alpha(logits, target_sizes=list(sizes), output_dtype=torch.uint8)
    return [matte.numpy() for matte in mattes]


def predict_mattes(
    model: Any,
    processor: Any,
    images: Sequence[PIL.Image.Image],
    size: dict | None = None,
    autocast_dtype: torch.dtype | None = None,
    target_sizes: Sequence[tuple[int, int]] | None = None,
) -> list[np.ndarray]:
    """The 8-bit mattes (``uint8``, each image's ``(height, width)``) of RGB ``images``, in order.

    Images the processor resizes to the same model size share one forward pass, so one call is one batch; callers
    choose the batch size by how many images they pass.

    Args:
        model: a BiRefNet model in eval mode (or anything called as ``model(pixel_values=...)`` returning
            ``.logits``, e.g. the onnxruntime backend).
        processor: its image processor (either backend).
        images: upright RGB PIL images (``image_io.to_rgb_image``).
        size: model input size for this call (``{"height", "width"}`` or ``{"longest_edge"}``); default the
            processor's.
        autocast_dtype: run the model under ``torch.autocast`` in this dtype (mixed-precision inference).
        target_sizes: one ``(height, width)`` per image to resize the mattes to instead of the images' own sizes
            (the authors evaluate at the ground truth's size).
    """
    if target_sizes is not None and len(target_sizes) != len(images):
        raise ValueError(
            f"got {len(target_sizes)} target sizes for {len(images)} images; pass one per image."
        )
    if target_sizes is None:
        target_sizes = [(image.height, image.width) for image in images]
    device, _ = model_device_and_dtype(model)
    pixel_values = preprocess_images(processor, images, size, device)
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, values in enumerate(pixel_values):
        groups.setdefault(tuple(values.shape), []).append(index)
    mattes: list[np.ndarray | None] = [None] * len(images)
    for indices in groups.values():
        logits = forward_logits(model, torch.cat([pixel_values[i] for i in indices]), autocast_dtype)
        sizes = [tuple(target_sizes[i]) for i in indices]
        for index, matte in zip(indices, logits_to_mattes(processor, logits, sizes), strict=True):
            mattes[index] = matte
    return mattes
