# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Export BiRefNet to ONNX: standard operators only, dynamic batch and size, validated against PyTorch.

```
birefnet-hf export onnx --model path/to/birefnet --output model.onnx [--dtype fp16] [--sigmoid]
                        [--include-preprocessing] [--height H --width W] [--static-size]
```

```python
from birefnet_hf.onnx_export import export_onnx

report = export_onnx("path/to/birefnet", "model.onnx")   # raises ONNXValidationError if parity fails
print(report.format())
```

**Exporter.** ``torch.onnx.export(..., dynamo=False)``, the TorchScript tracer, at opset :data:`OPSET` (18: the
first with ``Resize(antialias=1)``, used by ``--include-preprocessing``; supported by onnxruntime >= 1.14 and
onnxruntime-web). It was chosen over the dynamo exporter (``torch.export``) after trying both on this model
(torch 2.14): the dynamo exporter took 5 min for a pvt_v2_b0 BiRefNet at 128 px (against 20 s) and produced a graph
fixed to the traced shape, because ``torch.export`` specialises every Python-level size computation of the model
(``int(size)`` in resizes, the patch grid of the inward reference, the chunk loops of the deformable sampler),
while the tracer records the same arithmetic on tensor sizes as ``Shape``/``Gather``/``Div`` nodes, so the graph
stays valid for other batch sizes and image sizes wherever the model keeps sizes as values. The tracer runs the
model's *portable* path automatically (:func:`birefnet_hf.inference_paths.is_tracing`): ``grid_sample`` for the
deformable convolutions (ONNX ``GridSample``), the literal window attention for Swin; the result has only standard
``ai.onnx`` operators (checked on every export).

**Dynamic shapes.** The batch, height and width axes are exported as dynamic, then :func:`export_onnx` *checks*
that the graph generalises: onnxruntime against PyTorch at batch 2 and at a second image size. An axis on which it
does not (a size the model turned into a Python number during tracing) is declared fixed in the file, so that
onnxruntime refuses other sizes with a clear error instead of computing something wrong, and the report says so
(export again with ``--height/--width`` for another size).

**Validation** (:func:`validate_onnx`): onnxruntime's CPU provider with default settings against this package's
PyTorch model in float32 on a synthetic photo (``birefnet_hf.data.synthetic``) and on Gaussian noise: maximal
absolute logit difference at most :data:`FP32_LOGIT_TOLERANCE` (1e-4) for float32 files; float16 files are compared
on probabilities (sigmoid) with :data:`FP16_PROBABILITY_TOLERANCE`. The numbers are printed; a failure raises
:class:`ONNXValidationError` and leaves no output file.

**float16** (``--dtype fp16``) is traced from the model in float16, so the graph keeps the model's own mixed
precision: the deformable convolutions' sampling positions stay float32 (pixel coordinates do not fit float16).

**Metadata** (``metadata_props``, read back with :func:`read_metadata`): ``birefnet.*`` keys with the backbone and
its family, the released family when known, the native input size, the normalisation (mean/std, rescale factor), the
input/output layout, dynamic axes, opset, dtype and the measured parity.

**Pre/post-processing in the graph** (``--include-preprocessing``): input ``image``, uint8 RGB
``(batch, height, width, 3)`` of any size; ``Resize`` (bilinear, antialiased when shrinking, half-pixel) to the
model size, rounding to 8 bits (as the image processors do), ``(x / 255 - mean) / std``; after the model, sigmoid at
model resolution and a bilinear ``align_corners`` resize back to the input size (the authors' post-processing):
output ``matte``, float32 ``(batch, 1, height, width)`` in [0, 1]. ``--sigmoid`` alone outputs ``probabilities``
at the model resolution instead of ``logits``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers.utils import logging

from .atomic_io import write_bytes

logger = logging.get_logger(__name__)

#: ONNX opset of the exported graphs.
OPSET = 18
#: Largest accepted |logit difference| between onnxruntime (float32 file) and PyTorch (float32).
FP32_LOGIT_TOLERANCE = 1e-4
#: Largest accepted |probability difference| between onnxruntime (float16 file) and PyTorch (float32).
FP16_PROBABILITY_TOLERANCE = 2e-2
#: Largest accepted |matte difference| for graphs with in-graph preprocessing against the PyTorch path (image
#: processor, model, post-processing): the in-graph resize rounds like the processors but not bit for bit (pixels
#: may differ by one 8-bit level), so the bound is looser than the model's own parity.
PREPROCESSING_MATTE_TOLERANCE = 2e-2
#: Prefix of the metadata keys written into the model.
METADATA_PREFIX = "birefnet."
#: Operator domains a valid export may use (the default ONNX domain).
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})

_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16}
_SIZE_DIVISOR = 32

__all__ = [
    "FP16_PROBABILITY_TOLERANCE",
    "FP32_LOGIT_TOLERANCE",
    "OPSET",
    "ONNXExportReport",
    "ONNXValidationError",
    "ValidationCase",
    "check_standard_operators",
    "export_onnx",
    "export_onnx_folder",
    "main",
    "read_metadata",
    "transformers_js_preprocessor_config",
    "validate_onnx",
]


class ONNXValidationError(RuntimeError):
    """The exported graph does not reproduce the PyTorch model within tolerance (or does not run)."""


@dataclass
class ValidationCase:
    """One onnxruntime-vs-PyTorch comparison."""

    name: str
    shape: tuple[int, ...]
    max_abs_logit_diff: float | None = None
    max_abs_probability_diff: float | None = None
    passed: bool = False
    error: str | None = None

    def format(self) -> str:
        shape = "x".join(str(s) for s in self.shape)
        if self.error is not None:
            return f"  {self.name:<34} {shape:<16} FAILED: {self.error}"
        logit = "-" if self.max_abs_logit_diff is None else f"{self.max_abs_logit_diff:.3g}"
        prob = "-" if self.max_abs_probability_diff is None else f"{self.max_abs_probability_diff:.3g}"
        status = "ok" if self.passed else "EXCEEDS TOLERANCE"
        return f"  {self.name:<34} {shape:<16} max|dlogit| {logit:<10} max|dprob| {prob:<10} {status}"


@dataclass
class ONNXExportReport:
    """What :func:`export_onnx` did and measured."""

    path: str
    dtype: str
    opset: int
    input_name: str
    output_name: str
    trace_size: tuple[int, int]
    dynamic_batch: bool
    dynamic_size: bool
    file_size: int
    export_seconds: float
    validation_seconds: float = 0.0
    tolerance: str = ""
    cases: list[ValidationCase] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def format(self) -> str:
        size = f"{self.trace_size[0]}x{self.trace_size[1]}"
        lines = [
            f"wrote {self.path} ({self.file_size / 2**20:.1f} MiB, {self.dtype}, opset {self.opset}, "
            f"export {self.export_seconds:.1f} s, validation {self.validation_seconds:.1f} s)",
            f"  input {self.input_name}, output {self.output_name}; batch "
            f"{'dynamic' if self.dynamic_batch else 'fixed at 1'}; model size "
            f"{'dynamic (multiples of 32, traced at ' + size + ')' if self.dynamic_size else 'fixed at ' + size}",
            f"validation against PyTorch (float32), onnxruntime CPU, tolerance {self.tolerance}:",
            *(case.format() for case in self.cases),
            *(f"note: {note}" for note in self.notes),
        ]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ helpers
def _resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float16):
            raise ValueError(f"ONNX export supports float32 and float16, got {dtype}.")
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"Unknown --dtype {dtype!r}; choose fp32 or fp16.")
    return _DTYPES[dtype]


def _dtype_name(dtype: torch.dtype) -> str:
    return "fp16" if dtype == torch.float16 else "fp32"


def _check_size(name: str, value: int) -> None:
    if value <= 0 or value % _SIZE_DIVISOR:
        raise ValueError(f"{name} must be a positive multiple of {_SIZE_DIVISOR}, got {value}.")


def _import_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            "ONNX export needs onnx and onnxruntime: pip install 'birefnet-hf[onnx]'"
        ) from error
    return onnx, onnxruntime


def check_standard_operators(model_proto) -> None:
    """Raise ``ValueError`` if any node (or local function) of ``model_proto`` is outside the standard ONNX domain."""
    custom = sorted(
        {f"{node.domain}::{node.op_type}" for node in model_proto.graph.node if node.domain not in STANDARD_DOMAINS}
    )
    custom += [f"function {function.domain}::{function.name}" for function in model_proto.functions]
    if custom:
        raise ValueError(f"the exported graph uses non-standard operators: {', '.join(custom)}")


def read_metadata(path_or_proto: str | os.PathLike | Any) -> dict[str, Any]:
    """The ``birefnet.*`` metadata of an exported file (JSON values decoded), without the prefix."""
    if isinstance(path_or_proto, (str, os.PathLike)):
        onnx, _ = _import_onnx()
        path_or_proto = onnx.load(os.fspath(path_or_proto), load_external_data=False)
    metadata = {}
    for prop in path_or_proto.metadata_props:
        if prop.key.startswith(METADATA_PREFIX):
            try:
                metadata[prop.key[len(METADATA_PREFIX) :]] = json.loads(prop.value)
            except json.JSONDecodeError:
                metadata[prop.key[len(METADATA_PREFIX) :]] = prop.value
    return metadata


def _set_metadata(model_proto, metadata: dict[str, Any]) -> None:
    keep = [prop for prop in model_proto.metadata_props if not prop.key.startswith(METADATA_PREFIX)]
    del model_proto.metadata_props[:]
    model_proto.metadata_props.extend(keep)
    for key, value in metadata.items():
        prop = model_proto.metadata_props.add()
        prop.key = METADATA_PREFIX + key
        prop.value = json.dumps(value)


def _fix_dims(model_proto, batch: int | None, size: tuple[int, int] | None, axes: dict[str, dict[int, str]]) -> None:
    """Declare fixed values for the dynamic axes named ``batch`` (and ``height``/``width``) of the graph's inputs and
    outputs listed in ``axes``."""
    values = {"batch": batch}
    if size is not None:
        values.update(height=size[0], width=size[1])
    for value_info in [*model_proto.graph.input, *model_proto.graph.output]:
        for axis, name in axes.get(value_info.name, {}).items():
            if values.get(name) is not None:
                value_info.type.tensor_type.shape.dim[axis].dim_value = values[name]


# ------------------------------------------------------------------------------------------------ tracing
class _ExportWrapper(nn.Module):
    """``pixel_values -> logits`` (or probabilities) as one tensor-to-tensor module for the tracer."""

    def __init__(self, model: nn.Module, sigmoid: bool, compute_dtype: torch.dtype | None = None):
        super().__init__()
        self.model = model
        self.sigmoid = sigmoid
        self.compute_dtype = compute_dtype  # set: float32 in and out, the model runs in this dtype inside

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.compute_dtype is not None:
            pixel_values = pixel_values.to(self.compute_dtype)
        logits = self.model(pixel_values=pixel_values, return_dict=True).logits
        output = torch.sigmoid(logits) if self.sigmoid else logits
        return output.float() if self.compute_dtype is not None else output


def _trace_to_onnx(model: nn.Module, example: torch.Tensor, sigmoid: bool, opset: int, output_name: str,
                   keep_io_types: bool = False) -> bytes:
    """Trace ``model`` on ``example`` with the TorchScript ONNX exporter; batch, height and width dynamic. With
    ``keep_io_types`` the graph takes and returns float32 around a model in another dtype (casts at its ends)."""
    import io

    compute_dtype = next(model.parameters()).dtype if keep_io_types else None
    wrapper = _ExportWrapper(model, sigmoid, compute_dtype).eval()
    axes = {"pixel_values": {0: "batch", 2: "height", 3: "width"}, output_name: {0: "batch", 2: "height", 3: "width"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # the tracer warns about every Python-level use of a size (expected, and checked by the validation) and
        # the TorchScript exporter about its deprecation; keep the console readable
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["pixel_values"],
            output_names=[output_name],
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    return buffer.getvalue()


# ------------------------------------------------------------------------------------ pre/post-processing graph
def _add_processing(model_proto, image_size: tuple[int, int], mean: Sequence[float], std: Sequence[float],
                    model_dtype: torch.dtype, logits_name: str) -> None:
    """Wrap the ``pixel_values -> logits`` graph in place: uint8 ``image`` (batch, H, W, 3) in, ``matte``
    (batch, 1, H, W) float32 out (see the module docstring)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model_proto.graph
    fp16 = model_dtype == torch.float16
    height, width = image_size

    def constant(name: str, array: np.ndarray) -> None:
        graph.initializer.append(numpy_helper.from_array(array, name))

    constant("preprocess/size_hw", np.array([height, width], dtype=np.int64))
    constant("preprocess/mean", (255.0 * np.asarray(mean, dtype=np.float32)).reshape(1, 3, 1, 1))
    constant("preprocess/inverse_std", (1.0 / (255.0 * np.asarray(std, dtype=np.float32))).reshape(1, 3, 1, 1))
    constant("preprocess/zero", np.array(0.0, dtype=np.float32))
    constant("preprocess/max", np.array(255.0, dtype=np.float32))
    constant("preprocess/starts", np.array([0], dtype=np.int64))
    constant("preprocess/two", np.array([2], dtype=np.int64))
    constant("preprocess/four", np.array([4], dtype=np.int64))
    model_input = "preprocess/pixel_values_fp16" if fp16 else "preprocess/pixel_values"
    pre = [
        helper.make_node("Cast", ["image"], ["preprocess/float"], to=TensorProto.FLOAT, name="preprocess/cast"),
        helper.make_node("Transpose", ["preprocess/float"], ["preprocess/nchw"], perm=[0, 3, 1, 2],
                         name="preprocess/transpose"),
        helper.make_node("Shape", ["preprocess/nchw"], ["preprocess/shape"], name="preprocess/shape"),
        helper.make_node("Slice", ["preprocess/shape", "preprocess/starts", "preprocess/two"], ["preprocess/nc"],
                         name="preprocess/nc"),
        helper.make_node("Concat", ["preprocess/nc", "preprocess/size_hw"], ["preprocess/sizes"], axis=0,
                         name="preprocess/sizes"),
        helper.make_node("Resize", ["preprocess/nchw", "", "", "preprocess/sizes"], ["preprocess/resized"],
                         mode="linear", antialias=1, coordinate_transformation_mode="half_pixel",
                         name="preprocess/resize"),
        # the image processors resize 8-bit images: round to 8 bits like them
        helper.make_node("Round", ["preprocess/resized"], ["preprocess/rounded"], name="preprocess/round"),
        helper.make_node("Clip", ["preprocess/rounded", "preprocess/zero", "preprocess/max"], ["preprocess/clipped"],
                         name="preprocess/clip"),
        helper.make_node("Sub", ["preprocess/clipped", "preprocess/mean"], ["preprocess/centred"],
                         name="preprocess/sub_mean"),
        helper.make_node("Mul", ["preprocess/centred", "preprocess/inverse_std"], ["preprocess/pixel_values"],
                         name="preprocess/div_std"),
    ]
    if fp16:
        pre.append(helper.make_node("Cast", ["preprocess/pixel_values"], [model_input], to=TensorProto.FLOAT16,
                                    name="preprocess/cast_fp16"))
    # route the model's input to the preprocessed tensor
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name == "pixel_values":
                node.input[index] = model_input
    logits = logits_name
    post = []
    if fp16:
        post.append(helper.make_node("Cast", [logits], ["postprocess/logits_fp32"], to=TensorProto.FLOAT,
                                     name="postprocess/cast"))
        logits = "postprocess/logits_fp32"
    post += [
        helper.make_node("Sigmoid", [logits], ["postprocess/probabilities"], name="postprocess/sigmoid"),
        helper.make_node("Slice", ["preprocess/shape", "preprocess/two", "preprocess/four"], ["postprocess/hw"],
                         name="postprocess/hw"),
        helper.make_node("Shape", [logits], ["postprocess/logits_shape"], name="postprocess/logits_shape"),
        helper.make_node("Slice", ["postprocess/logits_shape", "preprocess/starts", "preprocess/two"],
                         ["postprocess/nc"], name="postprocess/nc"),
        helper.make_node("Concat", ["postprocess/nc", "postprocess/hw"], ["postprocess/sizes"], axis=0,
                         name="postprocess/sizes"),
        helper.make_node("Resize", ["postprocess/probabilities", "", "", "postprocess/sizes"], ["matte"],
                         mode="linear", coordinate_transformation_mode="align_corners", name="postprocess/resize"),
    ]
    nodes = pre + list(graph.node) + post
    del graph.node[:]
    graph.node.extend(nodes)
    old_inputs = [value for value in graph.input if value.name != "pixel_values"]
    del graph.input[:]
    graph.input.extend(
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", "image_height", "image_width", 3])]
        + old_inputs
    )
    del graph.output[:]
    graph.output.extend(
        [helper.make_tensor_value_info("matte", TensorProto.FLOAT, ["batch", 1, "image_height", "image_width"])]
    )
    onnx.checker.check_model(model_proto)


# --------------------------------------------------------------------------------------------- validation
def _synthetic_photo(side: int, seed: int = 0):
    """A real-looking test photo: a thin-structure object on a textured background (birefnet_hf.data.synthetic)."""
    from .data.synthetic import SYNTHETIC_CLASSES, render_example

    rng = np.random.default_rng(seed)
    image, _ = render_example(rng, side, SYNTHETIC_CLASSES[seed % len(SYNTHETIC_CLASSES)], 0.6)
    return image


def _session(onnxruntime, model: str | bytes):
    """An onnxruntime CPU session with default settings (quiet logging)."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # failures are reported by the caller
    return onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def _compare(name, session, input_name, inputs: np.ndarray, reference: torch.Tensor, fp16: bool, sigmoid: bool,
             tolerance: float) -> ValidationCase:
    case = ValidationCase(name, tuple(inputs.shape))
    try:
        output = session.run(None, {input_name: inputs})[0]
    except Exception as error:  # onnxruntime raises its own exception types
        case.error = str(error).splitlines()[0][:300]
        return case
    output = torch.from_numpy(np.asarray(output, dtype=np.float32))
    reference = reference.float()
    if output.shape != reference.shape:
        case.error = f"output shape {tuple(output.shape)}, PyTorch {tuple(reference.shape)}"
        return case
    if sigmoid:
        case.max_abs_probability_diff = float((output - torch.sigmoid(reference)).abs().max())
    else:
        case.max_abs_logit_diff = float((output - reference).abs().max())
        case.max_abs_probability_diff = float((torch.sigmoid(output) - torch.sigmoid(reference)).abs().max())
    measured = case.max_abs_probability_diff if (fp16 or sigmoid) else case.max_abs_logit_diff
    case.passed = bool(math.isfinite(measured) and measured <= tolerance)
    return case


def _second_size(size: tuple[int, int], minimum: int) -> tuple[int, int]:
    """A different, non-square size for the dynamic-size check: height about 3/4, width unchanged."""
    height = max(minimum, _SIZE_DIVISOR * round(0.75 * size[0] / _SIZE_DIVISOR))
    if height == size[0]:
        height = size[0] + _SIZE_DIVISOR
    return height, size[1]


def validate_onnx(
    onnx_model: str | os.PathLike | bytes,
    model: nn.Module,
    processor: Any,
    size: tuple[int, int],
    *,
    fp16: bool = False,
    keep_io_types: bool = False,
    sigmoid: bool = False,
    check_batch: bool = True,
    check_size: bool = True,
    tolerance: float | None = None,
) -> dict[str, ValidationCase]:
    """Compare onnxruntime (CPU provider, default settings) running ``onnx_model`` (a ``pixel_values`` graph) with
    ``model`` in float32: a synthetic photo at ``size`` (batch 1), the photo plus Gaussian noise (batch 2), and,
    with ``check_size``, the photo at a second size. ``fp16``: a float16 graph (float16 input unless
    ``keep_io_types``). Returns the cases by name (``"batch1"``, ``"batch2"``, ``"size2"``); never raises for a
    mismatch (see :func:`export_onnx`)."""
    _, onnxruntime = _import_onnx()
    if tolerance is None:
        tolerance = FP16_PROBABILITY_TOLERANCE if fp16 else FP32_LOGIT_TOLERANCE
    if isinstance(onnx_model, (str, os.PathLike)):
        onnx_model = os.fspath(onnx_model)
    session = _session(onnxruntime, onnx_model)
    input_dtype = np.float16 if fp16 and not keep_io_types else np.float32
    photo = _synthetic_photo(max(size) + 37)

    def pixels(at: tuple[int, int]) -> torch.Tensor:
        return processor(images=photo, size={"height": at[0], "width": at[1]}, return_tensors="pt")["pixel_values"]

    def reference(pixel_values: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(pixel_values=pixel_values).logits.float()

    cases: dict[str, ValidationCase] = {}
    photo_pixels = pixels(size)
    noise = torch.randn(photo_pixels.shape, generator=torch.Generator().manual_seed(0))
    batch = torch.cat((photo_pixels, noise)) if check_batch else photo_pixels
    expected = reference(batch)
    cases["batch1"] = _compare(
        "synthetic photo, batch 1", session, "pixel_values", photo_pixels.numpy().astype(input_dtype), expected[:1],
        fp16, sigmoid, tolerance,
    )
    if check_batch:
        cases["batch2"] = _compare(
            "photo + Gaussian noise, batch 2", session, "pixel_values", batch.numpy().astype(input_dtype), expected,
            fp16, sigmoid, tolerance,
        )
    if check_size:
        minimum = getattr(model, "minimum_input_size", _SIZE_DIVISOR)
        other = pixels(_second_size(size, minimum))
        cases["size2"] = _compare(
            "synthetic photo, second size", session, "pixel_values", other.numpy().astype(input_dtype),
            reference(other), fp16, sigmoid, tolerance,
        )
    return cases


def _validate_processing_graph(onnx_bytes: bytes, model: nn.Module, processor: Any, size: tuple[int, int]) -> ValidationCase:
    """The full uint8 -> matte graph against the PyTorch path (image processor, model, ``post_process_alpha``) on a
    synthetic photo of another size than the model's."""
    _, onnxruntime = _import_onnx()
    photo = _synthetic_photo(max(size) + 37, seed=1).resize((max(size) + 37, max(size) - 11))
    image = np.asarray(photo, dtype=np.uint8)[None]
    case = ValidationCase("uint8 photo -> matte (in-graph pre/post)", tuple(image.shape))
    try:
        matte = _session(onnxruntime, onnx_bytes).run(None, {"image": image})[0]
    except Exception as error:
        case.error = str(error).splitlines()[0][:300]
        return case
    with torch.inference_mode():
        pixel_values = processor(images=photo, size={"height": size[0], "width": size[1]}, return_tensors="pt")
        logits = model(pixel_values=pixel_values["pixel_values"]).logits.float()
    expected = processor.post_process_alpha(logits, [(photo.height, photo.width)])[0]
    if matte.shape != (1, 1, photo.height, photo.width):
        case.error = f"matte shape {matte.shape}, expected {(1, 1, photo.height, photo.width)}"
        return case
    case.max_abs_probability_diff = float(np.abs(matte[0, 0] - expected.numpy()).max())
    case.passed = case.max_abs_probability_diff <= PREPROCESSING_MATTE_TOLERANCE
    return case


# ------------------------------------------------------------------------------------------------- export
def _trace_size(processor: Any, height: int | None, width: int | None) -> tuple[int, int]:
    if (height is None) != (width is None):
        raise ValueError("give both --height and --width (or neither, for the model's native size).")
    if height is not None:
        _check_size("--height", height)
        _check_size("--width", width)
        return height, width
    size = dict(processor.size)
    if size.get("height") and size.get("width"):
        return int(size["height"]), int(size["width"])
    raise ValueError(
        f"the image processor has no fixed size ({size}); pass --height and --width (multiples of 32) to export."
    )


def _metadata(model: nn.Module, processor: Any, source: str | None, **fields: Any) -> dict[str, Any]:
    from . import __version__
    from .configuration_birefnet import BACKBONE_SPECS

    config = model.config
    family = None
    if source is not None:
        with contextlib.suppress(Exception):
            from .families import family_for

            found = family_for(source)
            family = None if found is None else found.name
    return {
        "model_type": "birefnet",
        "backbone": config.backbone,
        "backbone_family": BACKBONE_SPECS[config.backbone]["family"],
        "family": family,
        "source": source,
        "image_mean": [float(v) for v in processor.image_mean],
        "image_std": [float(v) for v in processor.image_std],
        "rescale_factor": float(processor.rescale_factor),
        "size_divisor": _SIZE_DIVISOR,
        "minimum_input_size": int(getattr(model, "minimum_input_size", _SIZE_DIVISOR)),
        "exporter": f"torch.onnx.export (TorchScript tracer), torch {torch.__version__.split('+')[0]}",
        "birefnet_hf_version": __version__,
        **fields,
    }


def export_onnx(
    model: str | os.PathLike | nn.Module,
    output: str | os.PathLike,
    *,
    dtype: str | torch.dtype = "fp32",
    height: int | None = None,
    width: int | None = None,
    static_size: bool = False,
    sigmoid: bool = False,
    include_preprocessing: bool = False,
    keep_io_types: bool = False,
    processor: Any | None = None,
    validate: bool = True,
    opset: int = OPSET,
) -> ONNXExportReport:
    """Export a BiRefNet to ONNX at ``output`` and check it against PyTorch (see the module docstring).

    Args:
        model: a ``save_pretrained`` folder, a Hub id, an authors' repository, or a loaded model.
        output: the ``.onnx`` file to write (atomically; an existing file is replaced only by a validated export).
        dtype: ``"fp32"`` or ``"fp16"``.
        height, width: the size traced and validated (default: the image processor's native size, e.g. 1024x1024);
            also the model size of ``include_preprocessing`` graphs and of graphs with a fixed size.
        static_size: declare height and width fixed (``height`` x ``width``) even if the graph generalises.
        sigmoid: output probabilities (``probabilities``) instead of logits.
        include_preprocessing: uint8 image in, matte at the input size out (resize + normalise + sigmoid + resize
            back inside the graph).
        keep_io_types: with ``dtype="fp16"``, float32 ``pixel_values`` in and float32 output out around the float16
            graph (casts at its two ends): what transformers.js feeds its ``model_fp16.onnx`` files.
        processor: the image processor (default: the model folder's, else the paper's 1024x1024 one).
        validate: run the onnxruntime-vs-PyTorch checks (strongly recommended; without them the axes are left
            dynamic unchecked).
        opset: ONNX opset (default :data:`OPSET`; ``include_preprocessing`` needs >= 18).

    Returns:
        :class:`ONNXExportReport` with the measured differences.

    Raises:
        ONNXValidationError: the graph does not reproduce PyTorch within tolerance (nothing is written).
        ValueError: bad arguments, or a non-standard operator in the graph.
    """
    onnx, _ = _import_onnx()
    from .background_removal import load_model_and_processor

    torch_dtype = _resolve_dtype(dtype)
    output = Path(output)
    if output.is_dir():
        raise ValueError(f"--output {output} is a folder; give the path of the .onnx file to write.")
    if keep_io_types and (torch_dtype != torch.float16 or include_preprocessing):
        raise ValueError(
            "keep_io_types (--keep-io-types) applies to float16 pixel_values graphs only (--dtype fp16, without "
            "--include-preprocessing, whose input is uint8 and output float32 already)."
        )
    if include_preprocessing and opset < 18:
        raise ValueError("--include-preprocessing needs opset 18 or later (Resize with antialias).")
    source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
    model, processor = load_model_and_processor(model, processor=processor, device="cpu", dtype=torch.float32)
    if next(model.parameters()).dtype != torch.float32:
        model = copy.deepcopy(model).float()
    size = _trace_size(processor, height, width)
    minimum = int(getattr(model, "minimum_input_size", _SIZE_DIVISOR))
    if min(size) < minimum:
        raise ValueError(f"the {model.config.backbone} model needs sides of at least {minimum}, got {size}.")
    output_name = "probabilities" if sigmoid else "logits"

    example = processor(images=_synthetic_photo(max(size)), size={"height": size[0], "width": size[1]},
                         return_tensors="pt")["pixel_values"]
    started = time.perf_counter()
    traced_model = model if torch_dtype == torch.float32 else copy.deepcopy(model).to(torch_dtype)
    logger.info(f"tracing {model.config.backbone} at {size[0]}x{size[1]} ({_dtype_name(torch_dtype)}) ...")
    onnx_bytes = _trace_to_onnx(
        traced_model, example if keep_io_types else example.to(torch_dtype), sigmoid, opset, output_name, keep_io_types
    )
    del traced_model
    export_seconds = time.perf_counter() - started
    model_proto = onnx.load_from_string(onnx_bytes)
    check_standard_operators(model_proto)

    fp16 = torch_dtype == torch.float16
    if fp16:
        tolerance, tolerance_text = FP16_PROBABILITY_TOLERANCE, f"float16: max |probability diff| <= {FP16_PROBABILITY_TOLERANCE:g}"
    elif sigmoid:  # a float32 graph's probabilities: held to the logits' bound (sigmoid only shrinks differences)
        tolerance, tolerance_text = FP32_LOGIT_TOLERANCE, f"float32: max |probability diff| <= {FP32_LOGIT_TOLERANCE:g}"
    else:
        tolerance, tolerance_text = FP32_LOGIT_TOLERANCE, f"float32: max |logit diff| <= {FP32_LOGIT_TOLERANCE:g}"
    report = ONNXExportReport(
        path=str(output), dtype=_dtype_name(torch_dtype), opset=opset,
        input_name="image" if include_preprocessing else "pixel_values",
        output_name="matte" if include_preprocessing else output_name,
        trace_size=size, dynamic_batch=True, dynamic_size=not static_size, file_size=0,
        export_seconds=export_seconds, tolerance=tolerance_text,
    )
    axes = {"pixel_values": {0: "batch", 2: "height", 3: "width"}, output_name: {0: "batch", 2: "height", 3: "width"}}
    if validate:
        started = time.perf_counter()
        cases = validate_onnx(onnx_bytes, model, processor, size, fp16=fp16, keep_io_types=keep_io_types,
                              sigmoid=sigmoid, check_size=not static_size, tolerance=tolerance)
        report.cases = list(cases.values())
        if not cases["batch1"].passed:
            report.validation_seconds = time.perf_counter() - started
            raise ONNXValidationError(
                f"the exported graph does not reproduce the PyTorch model; nothing written to {output}.\n"
                + report.format()
            )
        if "batch2" in cases and not cases["batch2"].passed:
            report.dynamic_batch = False
            report.notes.append(
                "the graph does not generalise to batch 2 (a batch size became a constant while tracing): "
                "the batch axis is fixed at 1."
            )
        if "size2" in cases and not cases["size2"].passed:
            report.dynamic_size = False
            report.notes.append(
                f"the graph does not generalise to {'x'.join(map(str, cases['size2'].shape[2:]))} (an image size "
                f"became a constant while tracing): height/width are fixed at {size[0]}x{size[1]}; export again "
                "with --height/--width for another size."
            )
        report.validation_seconds = time.perf_counter() - started
    elif not static_size:
        report.notes.append("not validated: the dynamic axes were not checked.")
    _fix_dims(
        model_proto,
        batch=None if report.dynamic_batch else 1,
        size=None if report.dynamic_size else size,
        axes=axes,
    )

    if include_preprocessing:
        report.dynamic_size = False  # the model runs at `size`; the image input takes any size
        _add_processing(model_proto, size, processor.image_mean, processor.image_std, torch_dtype, output_name)
        if not report.dynamic_batch:
            model_proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
            model_proto.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 1
        if validate:
            started = time.perf_counter()
            case = _validate_processing_graph(model_proto.SerializeToString(), model, processor, size)
            report.cases.append(case)
            report.validation_seconds += time.perf_counter() - started
            if not case.passed:
                raise ONNXValidationError(
                    f"the graph with pre/post-processing does not reproduce the PyTorch path within "
                    f"{PREPROCESSING_MATTE_TOLERANCE:g}; nothing written to {output}.\n" + report.format()
                )

    _set_metadata(
        model_proto,
        _metadata(
            model, processor, source,
            native_size=[size[0], size[1]],
            input=report.input_name,
            input_layout=(
                "uint8 RGB (batch, height, width, 3), any size" if include_preprocessing
                else f"{'float32' if keep_io_types or not fp16 else 'float16'} (batch, 3, height, width), normalised: "
                "(x * rescale_factor - image_mean) / image_std"
            ),
            output=report.output_name,
            output_layout={
                "logits": "float (batch, 1, height, width), foreground logits before sigmoid",
                "probabilities": "float (batch, 1, height, width), foreground probability",
                "matte": "float32 (batch, 1, height, width) in [0, 1] at the input image's size",
            }[report.output_name],
            dtype=report.dtype,
            opset=opset,
            dynamic_batch=report.dynamic_batch,
            dynamic_size=report.dynamic_size,
            validation={case.name: {"shape": list(case.shape), "max_abs_logit_diff": case.max_abs_logit_diff,
                                    "max_abs_probability_diff": case.max_abs_probability_diff,
                                    "passed": case.passed} for case in report.cases},
        ),
    )
    model_proto.producer_name = "birefnet_hf"
    data = model_proto.SerializeToString()
    write_bytes(output, data)
    report.file_size = len(data)
    return report


def export_onnx_folder(
    model: str | os.PathLike | nn.Module, processor: Any | None, folder: str | os.PathLike, **kwargs: Any
) -> list[ONNXExportReport]:
    """Write ``folder/model.onnx`` (float32) and ``folder/model_fp16.onnx`` (float16 inside, float32 in and out),
    each validated: the ``onnx/`` subfolder of a Hub repository as transformers.js reads it (float32
    ``pixel_values`` in, the logits as first output; its image-segmentation pipeline applies the sigmoid).
    ``kwargs`` go to :func:`export_onnx`."""
    folder = Path(folder)
    reports = []
    for name, dtype in (("model.onnx", "fp32"), ("model_fp16.onnx", "fp16")):
        report = export_onnx(
            model, folder / name, dtype=dtype, processor=processor, keep_io_types=dtype == "fp16", **kwargs
        )
        logger.info(report.format())
        reports.append(report)
    return reports


#: The ``feature_extractor_type`` under which transformers.js runs a model it has no image processor class for: its
#: base ``ImageProcessor`` (resize to ``size``, rescale, normalise with ``image_mean``/``image_std``), which is
#: exactly BiRefNet's preprocessing.
TRANSFORMERS_JS_PROCESSOR_TYPE = "ImageFeatureExtractor"


def transformers_js_preprocessor_config(settings: dict[str, Any]) -> dict[str, Any]:
    """``preprocessor_config.json`` settings that both transformers (Python) and transformers.js read.

    transformers.js's ``AutoProcessor`` refuses an ``image_processor_type`` it does not know (``BiRefNetImageProcessor``),
    so a repository with an ``onnx/`` folder names its processor by ``feature_extractor_type`` =
    :data:`TRANSFORMERS_JS_PROCESSOR_TYPE` instead. transformers (Python) then picks the processor from the model's
    ``config.json`` (``model_type`` "birefnet", registered by ``import birefnet_hf``) or from the ``auto_map``
    (remote code), with the same settings."""
    settings = dict(settings)
    settings.pop("image_processor_type", None)
    settings["feature_extractor_type"] = TRANSFORMERS_JS_PROCESSOR_TYPE
    return settings


# ---------------------------------------------------------------------------------------------------- CLI
def _multiple_of_32(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a multiple of 32, got {text!r}") from None
    if value <= 0 or value % _SIZE_DIVISOR:
        raise argparse.ArgumentTypeError(f"expected a positive multiple of 32, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="birefnet-hf export",
        description="Export a BiRefNet model to another format (now: ONNX).",
    )
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    onnx_parser = formats.add_parser(
        "onnx",
        help="ONNX (standard operators, opset 18), validated with onnxruntime against PyTorch",
        description="Export to ONNX with the TorchScript tracer (standard operators only, opset 18; dynamic batch "
        "and size where the graph allows), then check onnxruntime against PyTorch: float32 max |logit diff| <= "
        f"{FP32_LOGIT_TOLERANCE:g}, float16 max |probability diff| <= {FP16_PROBABILITY_TOLERANCE:g}. "
        "Prints the numbers; exit code 1 (and no file) if they are exceeded.",
    )
    onnx_parser.add_argument("--model", "-m", required=True, help="model folder (save_pretrained) or Hub id")
    onnx_parser.add_argument("--output", "-o", required=True, type=Path, help="the .onnx file to write")
    onnx_parser.add_argument("--dtype", choices=("fp32", "fp16"), default="fp32", help="weights and activations")
    onnx_parser.add_argument("--height", type=_multiple_of_32, default=None,
                             help="traced/validated height (default: the model's native size)")
    onnx_parser.add_argument("--width", type=_multiple_of_32, default=None, help="traced/validated width")
    onnx_parser.add_argument("--static-size", action="store_true",
                             help="declare height/width fixed at --height/--width")
    onnx_parser.add_argument("--sigmoid", action="store_true", help="output probabilities instead of logits")
    onnx_parser.add_argument(
        "--keep-io-types", action="store_true",
        help="with --dtype fp16: float32 input and output around the float16 graph (what transformers.js feeds)",
    )
    onnx_parser.add_argument(
        "--include-preprocessing", action="store_true",
        help="uint8 RGB (batch, H, W, 3) in: resize + normalise in the graph; matte at the input size out",
    )
    onnx_parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    onnx_parser.add_argument("--no-validate", action="store_true", help="skip the onnxruntime check (not advised)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``birefnet-hf export onnx``: 0 on success, 1 if the validation fails, 2 on usage or loading errors."""
    args = build_parser().parse_args(argv)
    try:
        report = export_onnx(
            args.model, args.output, dtype=args.dtype, height=args.height, width=args.width,
            static_size=args.static_size, sigmoid=args.sigmoid, include_preprocessing=args.include_preprocessing,
            keep_io_types=args.keep_io_types, validate=not args.no_validate, opset=args.opset,
        )
    except ONNXValidationError as error:
        print(f"birefnet-hf export onnx: validation failed: {error}", file=sys.stderr)
        return 1
    except (OSError, ValueError, ImportError) as error:
        print(f"birefnet-hf export onnx: error: {error}", file=sys.stderr)
        return 2
    print(report.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
