# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""CUDA-only checks (run when a GPU is present; CI has none, so they are skipped there with this reason).

The same code paths are covered on the CPU by test_precision.py (autocast, half precision), test_compile.py (graph
breaks, recompiles, host synchronisation on the meta device) and test_inference_paths.py (each kernel form).
"""

import copy

import pytest
import torch

from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module", params=["pvt_v2_b0", "swin_v1_t"])
def models(request):
    torch.manual_seed(0)
    cpu = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=request.param)).eval()
    return cpu, copy.deepcopy(cpu).cuda()


def _relative_error(actual, expected):
    return ((actual.float().cpu() - expected).norm() / expected.norm()).item()


def test_float32_on_the_gpu_matches_the_cpu(models):
    cpu, gpu = models
    x = torch.randn(2, 3, 224, 320)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            expected = cpu(x).logits
            actual = gpu(x.cuda()).logits
    finally:
        torch.backends.cudnn.allow_tf32 = True
    assert (actual.cpu() - expected).abs().max() < 1e-3


@pytest.mark.parametrize("mode", ["bf16", "fp16", "autocast-bf16", "autocast-fp16"])
def test_reduced_precision_on_the_gpu(models, mode):
    cpu, gpu = models
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        expected = cpu(x).logits
        dtype = torch.float16 if mode.endswith("fp16") else torch.bfloat16
        if mode.startswith("autocast"):
            with torch.autocast("cuda", dtype=dtype):
                actual = gpu(x.cuda()).logits
        else:
            actual = copy.deepcopy(gpu).to(dtype)(x.cuda().to(dtype)).logits
    assert _relative_error(actual, expected) < (5e-2 if dtype == torch.bfloat16 else 5e-3)


def test_forward_does_not_synchronise_with_the_host(models):
    _, gpu = models
    x = torch.randn(2, 3, 256, 320, device="cuda")
    with torch.no_grad():
        gpu(x)  # fills the shape's layout cache
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            gpu(x)
        finally:
            torch.cuda.set_sync_debug_mode("default")


def test_training_step_under_bf16_autocast(models):
    _, gpu = models
    model = copy.deepcopy(gpu).train()
    x = torch.randn(2, 3, 256, 256, device="cuda")
    labels = (torch.rand(2, 1, 256, 256, device="cuda") > 0.5).float()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(x, labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_cuda_graph_compile_matches_eager(models):
    _, gpu = models
    torch._dynamo.reset()
    model = copy.deepcopy(gpu).to(torch.bfloat16)
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True, dynamic=False)
    x = torch.randn(1, 3, 256, 256, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        expected = model(x).logits.float()
        for _ in range(3):
            actual = compiled(pixel_values=x).logits.float().clone()
    assert _relative_error(actual, expected.cpu()) < 2e-2


def test_cuda_graph_capture_replays_the_eager_forward(models):
    from birefnet_hf.cuda_graphs import capture_cuda_graphs, release_cuda_graphs

    _, gpu = models
    eager = copy.deepcopy(gpu).to(torch.bfloat16)
    graphed = capture_cuda_graphs(copy.deepcopy(eager))
    with torch.inference_mode():
        for shape in ((1, 3, 256, 256), (1, 3, 256, 256), (2, 3, 192, 256)):
            x = torch.randn(*shape, device="cuda", dtype=torch.bfloat16)
            expected = eager(pixel_values=x).logits.float()
            actual = graphed(pixel_values=x).logits.float().clone()
            assert _relative_error(actual, expected.cpu()) < 1e-2, shape
    assert len(graphed.forward.graphs) == 2
    release_cuda_graphs(graphed)
    assert "forward" not in graphed.__dict__


def _with_random_offsets(model):
    """A copy of ``model`` whose deformable convolutions predict non-zero offsets and modulation (the initial
    predictors are zero: every sample would sit on the grid)."""
    from birefnet_hf.modeling_birefnet import DeformableConv2d

    model = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, DeformableConv2d):
                for predictor in (module.offset_conv, module.modulator_conv):
                    noise = torch.randn(predictor.weight.shape, generator=generator) * 0.05
                    predictor.weight.copy_(noise.to(predictor.weight.device))
    return model


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kernel", [1, 3, 7])
def test_triton_deformable_sampler_matches_the_portable_path(dtype, kernel):
    """The fused Triton sampler on the GPU (tests/test_triton_deformable.py checks it on the CPU interpreter): its
    columns against the float64 columns of the same inputs (float32 within 1e-5; bfloat16 rounded to nearest, at
    most 2^-8 of the value), and the whole operator against the portable path; the default dispatch takes it."""
    pytest.importorskip("triton")
    from birefnet_hf.deformable_conv import modulated_deform_conv2d
    from birefnet_hf.triton_deformable import modulated_deformable_columns

    generator = torch.Generator().manual_seed(kernel)
    batch, channels, height, width, taps = 2, 64, 33, 40, kernel * kernel
    x = torch.randn(batch, channels, height, width, generator=generator)
    x = x.to("cuda", dtype).contiguous(memory_format=torch.channels_last)
    offset = (torch.randn(batch, 2 * taps, height, width, generator=generator) * 3).to("cuda", dtype)
    mask = (torch.rand(batch, taps, height, width, generator=generator) * 2).to("cuda", dtype)
    weight = torch.randn(96, channels, kernel, kernel, generator=generator) / (channels * taps) ** 0.5
    weight = weight.to("cuda", dtype)
    bias = torch.randn(96, generator=generator).to("cuda", dtype)
    padding = (kernel // 2, kernel // 2)
    with torch.no_grad():
        rows = channels * taps
        identity = torch.eye(rows, dtype=torch.float64, device="cuda").view(rows, channels, kernel, kernel)
        reference = modulated_deform_conv2d(x.double(), offset.double(), mask.double(), identity, None, padding,
                                            sampler="grid_sample").reshape(batch, rows, -1)
        columns = modulated_deformable_columns(
            x, offset, mask, (kernel, kernel), padding, (0, height * width), dtype
        )
        portable = modulated_deform_conv2d(x, offset, mask, weight, bias, padding, sampler="grid_sample")
        fused = modulated_deform_conv2d(x, offset, mask, weight, bias, padding, sampler="triton")
        default = modulated_deform_conv2d(x, offset, mask, weight, bias, padding)
    assert torch.equal(default, fused)
    # CUDA inference writes the product channels-last, whichever sampler (the decoder stays channels-last)
    assert fused.is_contiguous(memory_format=torch.channels_last)
    assert portable.is_contiguous(memory_format=torch.channels_last)
    if dtype == torch.float32:
        torch.testing.assert_close(columns.double(), reference, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(fused, portable, rtol=1e-4, atol=1e-4)
    else:
        assert ((columns.double() - reference).abs() <= 2.0**-8 * reference.abs() * (1 + 1e-5) + 1e-6).all()
        assert _relative_error(fused, portable.float().cpu()) < 2e-3


def _count_triton_columns(monkeypatch) -> list:
    import birefnet_hf.triton_deformable as triton_deformable

    calls = []
    original = triton_deformable.modulated_deformable_columns

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(triton_deformable, "modulated_deformable_columns", counting)
    return calls


def test_triton_sampler_in_the_model_matches_the_portable_path(models, monkeypatch):
    pytest.importorskip("triton")
    import birefnet_hf.deformable_conv as deformable

    _, gpu = models
    model = _with_random_offsets(gpu).to(torch.bfloat16)
    x = torch.randn(2, 3, 256, 320, device="cuda", dtype=torch.bfloat16)
    calls = _count_triton_columns(monkeypatch)
    with torch.inference_mode():
        fused = model(pixel_values=x).logits.float()
        assert calls, "the Triton sampler was not taken"
        with monkeypatch.context() as patch:
            patch.setattr(deformable, "use_cuda_inference_kernels", lambda *tensors: False)
            calls.clear()
            portable = model(pixel_values=x).logits.float()
            assert not calls
    assert _relative_error(fused, portable.cpu()) < 1e-2


def test_cuda_graph_capture_with_the_triton_sampler(models, monkeypatch):
    """The Triton kernel launches are captured and replayed: for two inputs in turn, the graph's output equals the
    eager forward of each (portable sampler), and the graph is not re-captured."""
    pytest.importorskip("triton")
    import birefnet_hf.deformable_conv as deformable
    from birefnet_hf.cuda_graphs import capture_cuda_graphs

    _, gpu = models
    eager = _with_random_offsets(gpu).to(torch.bfloat16)
    graphed = capture_cuda_graphs(copy.deepcopy(eager))
    calls = _count_triton_columns(monkeypatch)
    inputs = [torch.randn(1, 3, 256, 256, device="cuda", dtype=torch.bfloat16) for _ in range(2)]
    with torch.inference_mode():
        graphed(pixel_values=inputs[0])  # warm-up (compiles the kernels) and capture
        assert calls, "the Triton sampler was not captured"
        captured_calls = len(calls)
        with monkeypatch.context() as patch:
            patch.setattr(deformable, "use_cuda_inference_kernels", lambda *tensors: False)
            expected = [eager(pixel_values=x).logits.float().cpu() for x in inputs]
        for x, reference in zip(inputs + inputs, expected + expected, strict=True):
            actual = graphed(pixel_values=x).logits.float().clone()
            assert _relative_error(actual, reference) < 1e-2
    assert len(calls) == captured_calls  # replays launch no Python code
    assert len(graphed.forward.graphs) == 1
