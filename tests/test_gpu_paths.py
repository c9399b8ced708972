# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The CUDA-only forms of the forward, checked on the CPU: tensor-core channel padding (forced on here) computes the
same function as the plain convolutions, and the CUDA-graph wrapper refuses what it cannot replay, naming why.
The CUDA-graph replay itself is checked in tests/test_cuda.py (needs a GPU)."""

import pytest
import torch

import birefnet_hf.modeling_birefnet as modeling
from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation
from birefnet_hf.cuda_graphs import CUDAGraphForward, capture_cuda_graphs, release_cuda_graphs
from birefnet_hf.inference_paths import tensor_core_channel_multiple


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone="pvt_v2_b0")).eval()
    with torch.no_grad():  # non-zero offsets and modulation, so that the padded predictor is really used
        for module in model.modules():
            if isinstance(module, modeling.DeformableConv2d):
                module.offset_conv.weight.normal_(std=0.05)
                module.modulator_conv.weight.normal_(std=0.05)
    return model


def test_the_channel_multiple_is_chosen_by_device():
    assert tensor_core_channel_multiple(torch.zeros(1)) == 1
    assert tensor_core_channel_multiple(torch.zeros(1, device="meta")) == 1


@pytest.mark.parametrize("grad", [False, True])
def test_tensor_core_padding_leaves_the_forward_unchanged(model, monkeypatch, grad):
    x = torch.randn(2, 3, 128, 160)
    with torch.set_grad_enabled(grad):
        expected = model(pixel_values=x).logits
        calls = []

        def padded(tensor):
            calls.append(tuple(tensor.shape))
            return 8

        monkeypatch.setattr(modeling, "tensor_core_channel_multiple", padded)
        actual = model(pixel_values=x).logits
    assert calls, "the padded form was not taken"
    assert any(shape[1] == 3 for shape in calls), "the full-resolution head's 3-channel source was not padded"
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)
    assert not torch.equal(expected, torch.zeros_like(expected))


def test_padded_helper_pads_input_and_output_channels_with_zeros():
    x = torch.randn(1, 3, 9, 9).contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(1, 3, 5, 5), torch.randn(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(modeling, "tensor_core_channel_multiple", lambda tensor: 8)
        px, pw, pb = modeling._tensor_core_padded(x, weight, bias)
    assert px.shape == (1, 8, 9, 9) and px.is_contiguous(memory_format=torch.channels_last)
    assert pw.shape == (8, 8, 5, 5) and pb.shape == (8,)
    assert torch.equal(px[:, :3], x) and not px[:, 3:].any() and not pw[1:].any() and not pw[:, 3:].any()
    out = torch.nn.functional.conv2d(px, pw, pb, padding=2)
    torch.testing.assert_close(out[:, :1], torch.nn.functional.conv2d(x, weight, bias, padding=2))
    assert not out[:, 1:].any()


def test_cuda_graphs_refuse_a_model_off_cuda(model):
    with pytest.raises(ValueError, match="needs a model on a CUDA device.*cpu"):
        capture_cuda_graphs(model)


def test_cuda_graph_forward_names_what_it_cannot_replay(model):
    forward = CUDAGraphForward(model, model.forward)
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(ValueError, match="pixel_values only; got labels"):
        forward(pixel_values=x, labels=torch.zeros(1, 1, 64, 64))
    with torch.enable_grad(), pytest.raises(RuntimeError, match="for inference"):
        forward(pixel_values=x)
    model.train()
    try:
        with torch.no_grad(), pytest.raises(RuntimeError, match="eval mode"):
            forward(pixel_values=x)
    finally:
        model.eval()
    with torch.no_grad(), pytest.raises(ValueError, match="pixel_values on a CUDA device; got pixel_values on cpu"):
        forward(pixel_values=x)
    assert not forward.graphs


def test_release_without_capture_is_a_no_op(model):
    assert release_cuda_graphs(model) is model
    assert "forward" not in model.__dict__
