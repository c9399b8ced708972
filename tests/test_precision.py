# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Every precision a GPU user picks, exercised on the CPU: bfloat16/float16 models, and float32 models under
``torch.autocast`` (CPU autocast runs the same portable code as CUDA autocast), in eval and in training.

Stated tolerances (relative L2 error of the logits against the float32 forward, random-init models whose logits are
O(1)): autocast bfloat16 <= 3e-2, autocast float16 <= 5e-3, bfloat16 model <= 5e-2, float16 model <= 5e-3.
(On the GPU with the parity weights the measured errors were bf16 ~9e-3 and fp16 ~1e-3, see shared/gpu.)
"""

import pytest
import torch

from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation

BACKBONES = ["pvt_v2_b0", "swin_v1_t"]
FURTHER_BACKBONES = ["vgg16", "resnet50", "dino_v3_s"]


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.float() - expected).norm() / expected.norm()).item()


@pytest.fixture(scope="module", params=BACKBONES)
def model_and_input(request):
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=request.param)).eval()
    x = torch.randn(2, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = model(x).logits
    return model, x, reference


@pytest.mark.parametrize("dtype,tolerance", [(torch.bfloat16, 3e-2), (torch.float16, 5e-3)])
@pytest.mark.parametrize("grad_mode", ["no_grad", "inference_mode"])
def test_autocast_eval_matches_float32(model_and_input, dtype, tolerance, grad_mode):
    model, x, reference = model_and_input
    context = torch.no_grad() if grad_mode == "no_grad" else torch.inference_mode()
    with context, torch.autocast("cpu", dtype=dtype):
        logits = model(x).logits
    assert logits.shape == reference.shape
    assert torch.isfinite(logits).all()
    assert _relative_error(logits, reference) <= tolerance


@pytest.mark.parametrize("dtype,tolerance", [(torch.bfloat16, 5e-2), (torch.float16, 5e-3)])
def test_half_precision_model_matches_float32(model_and_input, dtype, tolerance):
    model, x, reference = model_and_input
    import copy

    half = copy.deepcopy(model).to(dtype)
    with torch.no_grad():
        logits = half(x.to(dtype)).logits
    assert logits.dtype == dtype
    assert _relative_error(logits, reference) <= tolerance


@pytest.mark.parametrize("backbone", BACKBONES)
def test_training_step_under_autocast(backbone):
    """The mixed-precision training forward (accelerate's bf16), loss and backward: finite, and the loss close to
    the float32 one."""
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone)).train()
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 64, 96, generator=generator)
    labels = (torch.rand(2, 1, 64, 96, generator=generator) > 0.5).float()
    torch.manual_seed(3)
    reference = model(x, labels=labels).loss.item()
    torch.manual_seed(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(x, labels=labels)
    assert outputs.loss.dtype == torch.float32
    outputs.loss.backward()
    assert abs(outputs.loss.item() - reference) <= 2e-2 * abs(reference)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    offsets = [m.offset_conv.weight.grad for m in model.modules() if hasattr(m, "offset_conv")]
    assert offsets and any(g.abs().sum() > 0 for g in offsets)  # the deformable sampler is differentiated


def test_bfloat16_model_trains():
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone="pvt_v2_b0")).train().to(torch.bfloat16)
    x = torch.randn(2, 3, 64, 64).bfloat16()
    labels = (torch.rand(2, 1, 64, 64) > 0.5).bfloat16()
    loss = model(x, labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.reconstruction.head.weight.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("backbone", FURTHER_BACKBONES)
def test_autocast_eval_of_the_further_backbones(backbone):
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone)).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = model(x).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x).logits
    assert _relative_error(logits, reference) <= 3e-2
