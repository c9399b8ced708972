# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Run an exported BiRefNet ONNX file with onnxruntime behind the PyTorch model's call interface.

``birefnet-hf segment --backend onnxruntime --model model.onnx`` uses :func:`load_onnx_model_and_processor`: the
same image processor (built from the file's metadata: native size, mean/std), the same post-processing, only the
network runs in onnxruntime. Files written by :mod:`birefnet_hf.onnx_export` with a ``pixel_values`` input are
supported (``logits`` or ``probabilities`` output, float32 or float16); graphs with in-graph preprocessing
(``--include-preprocessing``) take uint8 images and are meant for other clients.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .image_processing_birefnet import BiRefNetImageProcessorPil
from .modeling_birefnet import BiRefNetImageSegmentationOutput
from .onnx_export import METADATA_PREFIX

__all__ = ["ONNXRuntimeBiRefNet", "load_onnx_model_and_processor", "resolve_onnx_path"]


def resolve_onnx_path(model: str | os.PathLike) -> Path:
    """``model`` itself if it is a file, else ``model/onnx/model.onnx`` or ``model/model.onnx`` (the published
    layout, see ``birefnet-hf publish --onnx``)."""
    path = Path(model)
    if path.is_file():
        return path
    if path.is_dir():
        for candidate in (path / "onnx" / "model.onnx", path / "model.onnx"):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"{path} has no onnx/model.onnx or model.onnx; export one with `birefnet-hf export onnx`.")
    raise FileNotFoundError(f"ONNX model {path} not found.")


def _providers(device: str | torch.device | None, onnxruntime) -> list[str]:
    kind = torch.device(device).type if device is not None else "cpu"
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    if kind == "cuda":
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise ValueError(
                "--device cuda with --backend onnxruntime needs onnxruntime-gpu (CUDAExecutionProvider not available)."
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ValueError(f"--backend onnxruntime runs on cpu or cuda, not {device!r}.")


class ONNXRuntimeBiRefNet:
    """An exported BiRefNet (``pixel_values`` input) in an onnxruntime session, called like the PyTorch model:
    ``model(pixel_values=tensor).logits``.

    Args:
        path: the ``.onnx`` file (or a folder with ``onnx/model.onnx``).
        device: ``"cpu"`` (default) or ``"cuda"`` (needs onnxruntime-gpu).
    """

    def __init__(self, path: str | os.PathLike, device: str | torch.device | None = None):
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("--backend onnxruntime needs onnxruntime: pip install 'birefnet-hf[onnx]'") from error
        self.path = resolve_onnx_path(path)
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), providers=_providers(device, onnxruntime))
        except Exception as error:  # onnxruntime's own exception types (invalid graph, not ONNX at all)
            raise ValueError(f"cannot load {self.path} with onnxruntime: {error}") from error
        raw = self.session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, Any] = {}
        for key, value in raw.items():
            if key.startswith(METADATA_PREFIX):
                self.metadata[key[len(METADATA_PREFIX) :]] = json.loads(value)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or inputs[0].name != "pixel_values":
            raise ValueError(
                f"{self.path} takes {[i.name for i in inputs]}, not pixel_values: graphs exported with "
                "--include-preprocessing take uint8 images; export without it for `segment --backend onnxruntime`."
            )
        self.input = inputs[0]
        self.output_name = outputs[0].name
        if self.output_name not in ("logits", "probabilities"):
            raise ValueError(f"{self.path}: unknown output {self.output_name!r} (expected logits or probabilities).")
        self.input_dtype = np.float16 if self.input.type == "tensor(float16)" else np.float32

    def eval(self) -> ONNXRuntimeBiRefNet:
        return self

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        for axis, (declared, actual) in enumerate(zip(self.input.shape, shape)):
            if isinstance(declared, int) and declared != actual:
                what = ("batch size", "channels", "height", "width")[axis]
                raise ValueError(
                    f"{self.path} was exported with a fixed {what} of {declared}, got {actual} "
                    f"(input {tuple(shape)}); export again with --height/--width for this size or use batch size 1."
                )

    def __call__(self, pixel_values: torch.Tensor, **kwargs: Any) -> BiRefNetImageSegmentationOutput:
        self._check_shape(tuple(pixel_values.shape))
        inputs = pixel_values.detach().cpu().float().numpy().astype(self.input_dtype, copy=False)
        output = self.session.run([self.output_name], {"pixel_values": inputs})[0]
        values = torch.from_numpy(np.asarray(output, dtype=np.float32))
        if self.output_name == "probabilities":
            values = torch.logit(values)  # the post-processing applies the sigmoid again (exactly invertible here)
        return BiRefNetImageSegmentationOutput(logits=values)

    def image_processor(self) -> BiRefNetImageProcessorPil:
        """The image processor the file was exported for (PIL backend, like the PyTorch path of ``segment``)."""
        kwargs: dict[str, Any] = {}
        if "native_size" in self.metadata:
            height, width = self.metadata["native_size"]
            kwargs["size"] = {"height": int(height), "width": int(width)}
        for key in ("image_mean", "image_std", "rescale_factor"):
            if key in self.metadata:
                kwargs[key] = self.metadata[key]
        return BiRefNetImageProcessorPil(**kwargs)


def load_onnx_model_and_processor(
    model: str | os.PathLike, processor: Any | None = None, device: str | torch.device | None = None
) -> tuple[ONNXRuntimeBiRefNet, Any]:
    """The onnxruntime counterpart of :func:`birefnet_hf.segment.load_model_and_processor`."""
    runtime = ONNXRuntimeBiRefNet(model, device=device)
    return runtime, processor if processor is not None else runtime.image_processor()
