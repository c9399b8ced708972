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
