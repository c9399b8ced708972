# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The fused Triton deformable sampler (birefnet_hf/triton_deformable.py) against the portable path, on the CPU.

Triton's interpreter runs the kernel on CPU tensors, but only for kernels decorated while ``TRITON_INTERPRET=1`` is
set, and the setting would leak into every other test of the process: so the kernel runs in one subprocess (this
file run as a script) that computes the Triton columns and outputs of every case below and saves them; the tests
compare them here with the portable ``grid_sample`` path and a float64 reference. The CUDA runs of the same kernel
(and under CUDA-graph capture) are in tests/test_cuda.py. The dispatch is checked on fake CUDA tensors.

Tolerances: float32 columns and outputs within 1e-5 (relative and absolute; both paths compute the same float32
positions and blend, they differ in rounding order only). Reduced-precision columns are the float32 columns rounded
once to the dtype (round-to-nearest: at most half a unit in the last place, 2^-8 of the value for bfloat16's 8
significant bits, 2^-11 for float16's 11), so they are checked against the float64 columns of the same rounded
inputs at that bound; outputs add the product's rounding: relative L2 error against the float32 computation of the
same rounded inputs below 1e-2 (bfloat16) / 2e-3 (float16), and the same columns as the portable reduced-precision
path up to one rounding (relative L2 below 2e-3 / 5e-4).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("triton")

from birefnet_hf.deformable_conv import modulated_deform_conv2d  # noqa: E402

#: name -> (shape (N, C, H, W), kernel, offset scale, dtype of x / offset / mask / weight)
CASES: dict[str, tuple] = {
    "odd-3x3": ((2, 5, 9, 11), 3, 3.0, ("float32",) * 4),
    "7x7": ((1, 3, 8, 7), 7, 2.0, ("float32",) * 4),
    "1x1": ((2, 4, 6, 5), 1, 4.0, ("float32",) * 4),
    "wide-channels": ((1, 40, 5, 6), 3, 1.5, ("float32",) * 4),
    "border": ((1, 3, 6, 5), 3, 0.0, ("float32",) * 4),
    "bfloat16": ((2, 6, 10, 9), 3, 1.5, ("bfloat16",) * 4),
    "float16": ((2, 6, 10, 9), 3, 1.5, ("float16",) * 4),
    "mixed-dtypes": ((1, 4, 7, 8), 3, 1.5, ("bfloat16", "bfloat16", "float32", "float32")),
    "strided": ((2, 6, 9, 10), 3, 2.0, ("float32",) * 4),
    "non-finite": ((2, 4, 9, 7), 3, 1.0, ("float32",) * 4),
    "chunked": ((2, 4, 12, 10), 3, 2.0, ("float32",) * 4),
    "autocast": ((1, 4, 8, 8), 3, 1.5, ("float32",) * 4),
    "rounding": ((1, 1, 1, 12), 1, 0.0, ("float32", "float32", "float32", "bfloat16")),
}
#: float32 values whose bfloat16 rounding is a corner case: ties (to even, up and down), overflow to infinity,
#: the smallest normal numbers, plain values. Not subnormals: Triton 3.8's interpreter converts those wrongly
#: (9.2e-41 -> 0) whatever the kernel does; activations are never that small.
ROUNDING_VALUES = (1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 1 + 2**-8 + 2**-20, 3.4e38, -3.4e38, 3.38e38,
                   2**-126 * (1 + 2**-8), -1.5e-38, 2**-100 * (1 + 3 * 2**-8), 0.1, 0.0)
#: the chunk bound of the "chunked" case: 37 positions per chunk (120 positions: 37, 37, 37, 9)
CHUNK_ELEMENTS = 2 * 4 * 9 * 37
#: positions the "non-finite" case makes non-finite: (image, offset channel, row, column, value)
NON_FINITE = ((0, 0, 1, 2, float("nan")), (-1, 17, -1, -1, float("inf")))
#: exact border positions (as in test_deformable_conv.py): on, between and beyond -1, 0, H - 1 and H
BORDER_TARGETS = (-1e4, -2.0, -1.5, -1.0, -0.5, 0.0, 0.25, 3.0, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0, 1e4)


def make_case(name: str) -> dict:
    """The inputs of a case (deterministic): x, offset, mask, weight, bias, padding."""
    shape, kernel, scale, dtypes = CASES[name]
    batch, channels, height, width = shape
    taps = kernel * kernel
    generator = torch.Generator().manual_seed(sum(shape) + kernel)
    x = torch.randn(shape, generator=generator)
    offset = torch.randn(batch, 2 * taps, height, width, generator=generator) * scale
    mask = torch.rand(batch, taps, height, width, generator=generator) * 2
    weight = torch.randn(7, channels, kernel, kernel, generator=generator) / (channels * taps) ** 0.5
    bias = torch.randn(7, generator=generator)
    if name == "border":  # every tap of every position lands on one of the border targets
        targets = torch.tensor(BORDER_TARGETS)
        rows = torch.arange(height).view(height, 1).float() - 1 + torch.arange(kernel).repeat_interleave(kernel).view(
            taps, 1, 1
        )
        cols = torch.arange(width).view(1, width).float() - 1 + torch.arange(kernel).repeat(kernel).view(taps, 1, 1)
        index = torch.randint(len(targets), (2, taps, height, width), generator=generator)
        offset[0, 0::2] = targets[index[0]] - rows
        offset[0, 1::2] = targets[index[1]] - cols
    if name == "non-finite":
        for image, channel, row, column, value in NON_FINITE:
            offset[image, channel, row, column] = value
    if name == "rounding":  # every column element is one value of x: the sample at offset 0 with modulation 1
        x = torch.tensor(ROUNDING_VALUES).view(shape)
        mask = torch.ones_like(mask)
    if name == "strided":  # channels-last x with every other channel, offsets sliced from a wider prediction
        wide = torch.randn(batch, 2 * channels, height, width, generator=generator)
        x = wide.contiguous(memory_format=torch.channels_last)[:, 1::2]
        prediction = torch.randn(batch, 3 * taps + 5, height, width, generator=generator)
        prediction = prediction.contiguous(memory_format=torch.channels_last)
        offset = prediction[:, : 2 * taps] * scale
        mask = torch.rand(batch, taps, width, height, generator=generator).transpose(2, 3)
    x, offset, mask, weight = (t.to(getattr(torch, d)) for t, d in zip((x, offset, mask, weight), dtypes, strict=True))
    return {"x": x, "offset": offset, "mask": mask, "weight": weight, "bias": bias.to(weight.dtype),
            "padding": (kernel // 2, kernel // 2)}


def _forward(case: dict, sampler: str) -> torch.Tensor:
    with torch.no_grad():
        return modulated_deform_conv2d(case["x"], case["offset"], case["mask"], case["weight"], case["bias"],
                                       case["padding"], sampler=sampler)


def _triton_results(path: str) -> None:
    """Run in the interpreter subprocess: the Triton outputs and columns of every case, saved to ``path``."""
    import birefnet_hf.deformable_conv as deformable
    from birefnet_hf.triton_deformable import modulated_deformable_columns

    results = {}
    for name in CASES:
        case = make_case(name)
        if name == "chunked":
            deformable._MAX_PORTABLE_COLUMN_ELEMENTS = CHUNK_ELEMENTS
        if name == "autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                results[f"{name}/out"] = _forward(case, "triton")
        else:
            results[f"{name}/out"] = _forward(case, "triton")
        deformable._MAX_PORTABLE_COLUMN_ELEMENTS = 64 * 1024 * 1024
        out_h, out_w = case["offset"].shape[-2:]
        results[f"{name}/columns"] = modulated_deformable_columns(
            case["x"], case["offset"], case["mask"], tuple(case["weight"].shape[-2:]), case["padding"],
            (0, out_h * out_w), case["weight"].dtype,
        )
        if name == "strided":
            contiguous = {key: value.contiguous() if torch.is_tensor(value) else value for key, value in case.items()}
            results[f"{name}/contiguous-out"] = _forward(contiguous, "triton")
    torch.save(results, path)


@pytest.fixture(scope="module")
def triton_results(tmp_path_factory) -> dict[str, torch.Tensor]:
    path = tmp_path_factory.mktemp("triton") / "results.pt"
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    process = subprocess.run([sys.executable, __file__, str(path)], env=env, capture_output=True, text=True,
                             timeout=600)
    if process.returncode != 0:
        pytest.fail(f"the Triton interpreter run failed:\n{process.stderr[-4000:]}")
    return torch.load(path, weights_only=True)


def _reference_columns(case: dict) -> torch.Tensor:
    """The float64 columns (N, C*K, P) of the case's inputs: the portable path with an identity weight."""
    x = case["x"].double()
    batch, channels = x.shape[:2]
    kernel_h, kernel_w = case["weight"].shape[-2:]
    rows = channels * kernel_h * kernel_w
    identity = torch.eye(rows, dtype=torch.float64).view(rows, channels, kernel_h, kernel_w)
    with torch.no_grad():
        columns = modulated_deform_conv2d(x, case["offset"].double(), case["mask"].double(), identity, None,
                                          case["padding"], sampler="grid_sample")
    return columns.reshape(batch, rows, -1)


def _relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.double() - expected.double()).norm() / expected.double().norm()).item()


@pytest.mark.parametrize("name", ["odd-3x3", "7x7", "1x1", "wide-channels", "border", "strided", "chunked"])
def test_float32_matches_the_portable_path(triton_results, name):
    case = make_case(name)
    columns, out = triton_results[f"{name}/columns"], triton_results[f"{name}/out"]
    assert columns.dtype == out.dtype == torch.float32
    torch.testing.assert_close(columns.double(), _reference_columns(case), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, _forward(case, "grid_sample"), rtol=1e-5, atol=1e-5)
    assert columns.abs().sum() > 0


def test_samples_outside_the_map_read_zeros(triton_results):
    """The border case: a tap at -1e4 / 1e4 or on -1 / H in either coordinate reads nothing: its column elements
    are exactly zero (the float64 reference, through grid_sample's normalised coordinates, is zero up to 1e-12)."""
    columns = triton_results["border/columns"]
    reference = _reference_columns(make_case("border"))
    outside = reference.abs() < 1e-12
    assert outside.float().mean() > 0.1 and (reference.abs() > 1e-3).float().mean() > 0.1
    assert (columns[outside] == 0).all()


def test_strided_inputs_are_read_through_their_strides(triton_results):
    case = make_case("strided")
    assert not case["x"].is_contiguous() and not case["offset"].is_contiguous() and not case["mask"].is_contiguous()
    assert torch.equal(triton_results["strided/out"], triton_results["strided/contiguous-out"])


@pytest.mark.parametrize("name,half_ulp,output_error,path_difference", [
    ("bfloat16", 2.0**-8, 1e-2, 2e-3),
    ("float16", 2.0**-11, 2e-3, 5e-4),
])
def test_reduced_precision(triton_results, name, half_ulp, output_error, path_difference):
    case = make_case(name)
    dtype = case["weight"].dtype
    columns, out = triton_results[f"{name}/columns"], triton_results[f"{name}/out"]
    assert columns.dtype == out.dtype == dtype
    reference = _reference_columns(case)  # float64, from the same rounded inputs
    error = (columns.double() - reference).abs()
    assert (error <= half_ulp * reference.abs() * (1 + 1e-5) + 1e-6).all(), error.max()
    as_float32 = {key: value.float() if torch.is_tensor(value) else value for key, value in case.items()}
    assert _relative_l2(out, _forward(as_float32, "grid_sample")) < output_error
    assert _relative_l2(out, _forward(case, "grid_sample")) < path_difference


def test_bfloat16_columns_are_rounded_to_nearest_even(triton_results):
    """What compiled Triton does for the float32 -> bfloat16 store (and torch's ``.to``); Triton's interpreter alone
    would truncate, so the kernel rounds explicitly and the interpreter checks the GPU's arithmetic."""
    case = make_case("rounding")
    columns = triton_results["rounding/columns"]
    assert columns.dtype == torch.bfloat16
    assert torch.equal(columns.view(-1), case["x"].view(-1).to(torch.bfloat16))


def test_mixed_input_dtypes_are_read_in_their_own_dtype(triton_results):
    """bfloat16 input and offsets, float32 modulation and weight (as under autocast): float32 columns equal to the
    portable path, which also samples the bfloat16 input in float32."""
    case = make_case("mixed-dtypes")
    assert triton_results["mixed-dtypes/columns"].dtype == torch.float32
    assert triton_results["mixed-dtypes/out"].dtype == torch.bfloat16  # x's dtype, as the portable path
    torch.testing.assert_close(triton_results["mixed-dtypes/columns"].double(), _reference_columns(case),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(triton_results["mixed-dtypes/out"], _forward(case, "grid_sample"))


def test_autocast_writes_the_columns_in_the_autocast_dtype(triton_results):
    case = make_case("autocast")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = _forward(case, "grid_sample")
    actual = triton_results["autocast/out"]
    assert actual.dtype == expected.dtype
    assert _relative_l2(actual, expected) < 2e-3


def test_non_finite_positions_give_nan(triton_results):
    """NaN in, NaN out (the portable path's contract): exactly the columns of the non-finite taps are NaN, so the
    outputs at those positions are NaN and every other output matches the portable path."""
    case = make_case("non-finite")
    columns, out = triton_results["non-finite/columns"], triton_results["non-finite/out"]
    batch, _, height, width = case["x"].shape
    taps = case["offset"].shape[1] // 2
    expected_nan = torch.zeros(batch, case["x"].shape[1], taps, height, width, dtype=torch.bool)
    for image, channel, row, column, _ in NON_FINITE:
        expected_nan[image, :, channel // 2, row, column] = True
    assert torch.equal(columns.isnan(), expected_nan.view(batch, -1, height * width))
    portable = _forward(case, "grid_sample")
    assert torch.equal(out.isnan(), portable.isnan())
    finite = ~portable.isnan()
    assert finite.sum() > 0 and out.isnan().any()
    torch.testing.assert_close(out[finite], portable[finite], rtol=1e-5, atol=1e-5)


def test_triton_sampler_refuses_autograd():
    case = make_case("odd-3x3")
    weight = case["weight"].clone().requires_grad_(True)
    with pytest.raises(RuntimeError, match="inference"):
        modulated_deform_conv2d(case["x"], case["offset"], case["mask"], weight, None, case["padding"],
                                sampler="triton")


def test_triton_sampler_refuses_float64():
    case = make_case("odd-3x3")
    with pytest.raises(ValueError, match="float64"), torch.no_grad():
        modulated_deform_conv2d(case["x"].double(), case["offset"], case["mask"], case["weight"].double(), None,
                                case["padding"], sampler="triton")


def test_dispatch_takes_triton_only_for_cuda_inference(monkeypatch):
    """On (fake) CUDA tensors the default sampler is the Triton one without autograd recording, the portable one
    with autograd, under a tracer, for float64 and without triton; CPU tensors never take it."""
    from torch._subclasses import FakeTensorMode

    import birefnet_hf.deformable_conv as deformable
    import birefnet_hf.inference_paths as inference_paths

    calls = []

    def recording(x, offset, mask, weight, bias, padding, out_size, channels_last):
        calls.append(x.device.type)
        return torch.zeros(x.shape[0], weight.shape[0], *out_size, dtype=x.dtype, device=x.device)

    monkeypatch.setattr(deformable, "_triton_deform_conv", recording)

    def run(device, requires_grad=False, dtype=torch.float32):
        weight = torch.zeros(4, 3, 3, 3, device=device, dtype=dtype, requires_grad=requires_grad)
        deformable.modulated_deform_conv2d(torch.zeros(1, 3, 6, 6, device=device, dtype=dtype),
                                           torch.zeros(1, 18, 6, 6, device=device, dtype=dtype),
                                           torch.ones(1, 9, 6, 6, device=device, dtype=dtype), weight, None, (1, 1))
        return calls.pop() if calls else None

    with FakeTensorMode():
        with torch.no_grad():
            assert run("cuda") == "cuda"
            assert run("cuda", dtype=torch.bfloat16) == "cuda"
            assert run("cuda", dtype=torch.float64) is None
        assert run("cuda") == "cuda"  # grad mode on, but nothing requires grad: nothing is recorded
        assert run("cuda", requires_grad=True) is None
        with torch.no_grad():
            with monkeypatch.context() as patch:
                patch.setattr(inference_paths, "is_tracing", lambda: True)
                assert run("cuda") is None
            with monkeypatch.context() as patch:
                patch.setitem(sys.modules, "triton", None)  # as if triton were not installed
                inference_paths._triton_installed.cache_clear()
                assert run("cuda") is None
            inference_paths._triton_installed.cache_clear()
            assert run("cuda") == "cuda"
    with torch.no_grad():
        assert run("cpu") is None



# --- the kernels a forward launches, compiled for real GPUs (no GPU needed) ---------------------------------------
#: compute capabilities the kernel is compiled for: Hopper (H100/H200, where benchmarks/gpu.py runs), Ampere
#: (A100), Ada (L4, RTX 4090) and Blackwell (B200); sm_90 gets every kernel a forward launches, the others one per
#: dtype
CUDA_CAPABILITIES = (90, 80, 89, 100)


def _cuda_compile(launch, capability: int):
    """Compile the kernel as Triton's just-in-time launcher would for ``launch`` on a GPU of ``capability``:
    the same binder specialises on the arguments (dtypes, 16-byte alignment, integers equal to 1 or divisible by
    16), then ``triton.compile`` lowers to PTX and ``ptxas`` (shipped with triton) assembles the cubin. Returns
    (the specialisation, the compiled kernel). Uses Triton's internal launcher API (triton 3.x)."""
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile, make_backend
    from triton.runtime.jit import create_function_from_signature

    from birefnet_hf import triton_deformable

    kernel = triton_deformable._modulated_deformable_columns_kernel
    target = GPUTarget("cuda", capability, 32)
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    options = {**launch.constants, "debug": False,
               "instrumentation_mode": knobs.compilation.instrumentation_mode}  # fmt: skip
    bound, specialization, _ = binder(*launch.arguments, **options)
    compile_options, signature, constants, attributes = kernel._pack_args(
        backend, options, bound, specialization, options
    )
    source = ASTSource(kernel, signature, constants, attributes)
    return str(specialization), compile(source, target=target, options=compile_options.__dict__)


def _forward_launches(monkeypatch, model, size: int, dtype: torch.dtype, autocast: torch.dtype | None) -> list:
    """The Triton launches of one CUDA inference forward of ``model`` at ``size``, recorded on the CPU: the
    dispatch, the product's layout and the tensor-core channel padding are CUDA's (the layouts the sampler reads are
    those of a GPU run), the columns are not computed (zeros)."""
    import birefnet_hf.deformable_conv as deformable
    import birefnet_hf.modeling_birefnet as modeling
    from birefnet_hf import triton_deformable

    launches = []

    def recording(*arguments):
        launches.append(triton_deformable.kernel_launch(*arguments))
        return torch.zeros_like(launches[-1].columns)

    with monkeypatch.context() as patch:
        patch.setattr(deformable, "use_cpu_kernels", lambda *tensors: False)
        patch.setattr(deformable, "use_cuda_inference_kernels", lambda *tensors: True)
        patch.setattr(deformable, "channels_last_deformable_product", lambda *tensors: True)
        patch.setattr(modeling, "tensor_core_channel_multiple", lambda tensor: 8)
        patch.setattr(triton_deformable, "modulated_deformable_columns", recording)
        image = torch.randn(1, 3, size, size, dtype=dtype)
        with torch.no_grad(), torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            model.to(dtype)(image)
    return launches


def test_every_kernel_a_forward_launches_compiles_for_cuda(monkeypatch, tmp_path, tiny_config):
    """The interpreter (above) checks the kernel's values, not that it compiles: here every distinct kernel that a
    CUDA inference forward launches (bfloat16, float16 and float32 models, a float32 model under bfloat16
    autocast; the deformable ASPP's 1x1, 3x3 and 7x7 kernels at every decoder level) is compiled to a cubin for
    sm_90, and one of each dtype for sm_80, sm_89 and sm_100, as the GPU's first call would."""
    from birefnet_hf import BiRefNetForImageSegmentation

    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "triton-cache"))  # compile: no earlier build reused
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(tiny_config).eval()
    launches = {
        "bfloat16": _forward_launches(monkeypatch, model, 256, torch.bfloat16, None),
        "float32": _forward_launches(monkeypatch, model, 256, torch.float32, None),
        "autocast": _forward_launches(monkeypatch, model, 256, torch.float32, torch.bfloat16),
        # float16 convolutions are slow on a CPU: a smaller image (the same kernels, other spatial sizes)
        "float16": _forward_launches(monkeypatch, model, 64, torch.float16, None),
    }
    for name, recorded in launches.items():
        assert len(recorded) == 20, (name, len(recorded))  # every deformable convolution took the Triton sampler
    assert {launch.columns.dtype for launch in launches["autocast"]} == {torch.bfloat16}
    assert {launch.arguments[0].dtype for launch in launches["float16"]} == {torch.float16}
    # the recorded layouts: channels-first inputs in the squeeze block (PVT's levels are channels-first),
    # channels-last ones in the decoder (tests/test_gpu_paths.py), the offsets and modulation read from the padded
    # predictor's output (the 7x7 one's 147 channels padded to 152)
    layouts = {launch.arguments[0].is_contiguous(memory_format=torch.channels_last) for launch in launches["bfloat16"]}
    assert layouts == {True, False}
    assert 152 in {launch.arguments[1].stride(-1) for launch in launches["bfloat16"]}

    compiled = {}
    for recorded in launches.values():
        for launch in recorded:
            key, kernel = _cuda_compile(launch, 90)
            if key not in compiled:
                compiled[key] = kernel
        for capability in CUDA_CAPABILITIES[1:]:
            _, kernel = _cuda_compile(recorded[0], capability)
            assert kernel.metadata.target.arch == capability
            assert kernel.asm["cubin"][:4] == b"\x7fELF"
    assert len(compiled) >= 9  # the 1x1/3x3/7x7 kernels, with and without unit strides, per dtype
    for kernel in compiled.values():
        assert kernel.metadata.target.arch == 90
        assert kernel.asm["cubin"][:4] == b"\x7fELF"  # assembled by ptxas
        assert ".target sm_90a" in kernel.asm["ptx"]
        # shared memory only for the channels-last tiles' transposition (loaded along channels, stored along
        # positions): within the 48 KiB every CUDA GPU gives a block without opting in
        assert kernel.metadata.shared <= 48 * 1024


if __name__ == "__main__":  # the interpreter subprocess of the `triton_results` fixture
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise SystemExit("run with TRITON_INTERPRET=1 (the kernel must be decorated for the interpreter)")
    _triton_results(sys.argv[1])
