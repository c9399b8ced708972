# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""``linear_rows``: oneDNN's product on CPU float32 without autograd, ``F.linear`` everywhere else."""

import pytest
import torch
import torch.nn.functional as F

import birefnet_hf.cpu_linear as cpu_linear
from birefnet_hf.cpu_linear import linear_rows


@pytest.fixture
def onednn_calls(monkeypatch):
    calls = []
    original = torch.mkldnn_convolution

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(cpu_linear.torch, "mkldnn_convolution", spy)
    return calls


@pytest.mark.parametrize("rows,inner,outputs", [(1, 1, 1), (7, 3, 5), (300, 64, 257), (1152, 96, 288)])
@pytest.mark.parametrize("bias", [True, False])
def test_equals_linear_through_onednn(onednn_calls, rows, inner, outputs, bias):
    generator = torch.Generator().manual_seed(rows + inner)
    x = torch.randn(rows, inner, generator=generator)
    weight = torch.randn(outputs, inner, generator=generator)
    bias_tensor = torch.randn(outputs, generator=generator) if bias else None
    with torch.no_grad():
        out = linear_rows(x, weight, bias_tensor)
    assert len(onednn_calls) == 1
    assert out.shape == (rows, outputs) and out.is_contiguous()
    assert torch.allclose(out, F.linear(x, weight, bias_tensor), atol=1e-5, rtol=1e-5)


def test_non_contiguous_rows(onednn_calls):
    x = torch.randn(20, 40)[:, ::2]
    weight = torch.randn(6, 20)
    with torch.no_grad():
        assert torch.allclose(linear_rows(x, weight), x @ weight.t(), atol=1e-5)


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # emitted by mkldnn.flags() itself
def test_autograd_other_dtypes_and_disabled_onednn_use_linear(onednn_calls):
    x = torch.randn(9, 4)
    weight = torch.randn(3, 4, requires_grad=True)
    out = linear_rows(x, weight)  # gradients recorded: differentiable F.linear
    out.sum().backward()
    assert torch.allclose(weight.grad, x.sum(0).expand(3, 4))
    with torch.no_grad():
        assert linear_rows(x.double(), weight.double()).dtype == torch.float64
        assert linear_rows(x.bfloat16(), weight.bfloat16()).dtype == torch.bfloat16
        assert linear_rows(x.to("meta"), weight.to("meta")).device.type == "meta"
        with torch.backends.mkldnn.flags(enabled=False):
            linear_rows(x, weight)
    assert onednn_calls == []
