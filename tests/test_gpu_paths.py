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


def test_cuda_inference_decoder_stays_channels_last(model, monkeypatch):
    """The CUDA inference forward's layouts, recorded on the CPU with CUDA's dispatch (the Triton sampler, whose
    columns are not computed here: zeros), product layout and channel padding: the deformable product writes
    channels-last results, so after the squeeze block (whose input is the backbone's) every deformable convolution
    reads a channels-last map (the Triton kernel's coalesced case) and the decoder's resizes of its features are
    channels-last (the NCHW bilinear kernel is 5-10x slower on a GPU). The product's values in either layout are
    checked below and in tests/test_triton_deformable.py."""
    import birefnet_hf.deformable_conv as deformable
    import birefnet_hf.triton_deformable as triton_deformable

    inputs, results, resized = [], [], []
    plain_product, plain_resize = deformable._columns_product, modeling._resize

    def recording_columns(x, offset, mask, kernel_size, padding, positions, dtype):
        inputs.append(x.is_contiguous(memory_format=torch.channels_last))
        launch = triton_deformable.kernel_launch(x, offset, mask, kernel_size, padding, positions, dtype)
        return launch.columns.zero_()

    def recording_product(*args, **kwargs):
        out = plain_product(*args, **kwargs)
        results.append(out.is_contiguous(memory_format=torch.channels_last))
        return out

    in_decoder = []

    def recording_resize(x, size):
        if in_decoder and x.shape[1] > 3 and tuple(x.shape[-2:]) != tuple(size):  # the decoder's feature maps
            resized.append((tuple(x.shape), x.is_contiguous(memory_format=torch.channels_last)))
        return plain_resize(x, size)

    monkeypatch.setattr(deformable, "use_cpu_kernels", lambda *tensors: False)
    monkeypatch.setattr(deformable, "use_cuda_inference_kernels", lambda *tensors: True)
    monkeypatch.setattr(deformable, "channels_last_deformable_product", lambda *tensors: True)
    monkeypatch.setattr(deformable, "_columns_product", recording_product)
    monkeypatch.setattr(modeling, "tensor_core_channel_multiple", lambda tensor: 8)
    monkeypatch.setattr(modeling, "_resize", recording_resize)
    monkeypatch.setattr(triton_deformable, "modulated_deformable_columns", recording_columns)
    hooks = (model.reconstruction.register_forward_pre_hook(lambda *_: in_decoder.append(True)),
             model.reconstruction.register_forward_hook(lambda *_: in_decoder.clear()))  # fmt: skip
    try:
        with torch.no_grad():
            model(pixel_values=torch.randn(2, 3, 128, 128))
    finally:
        for hook in hooks:
            hook.remove()
    assert len(inputs) == len(results) == 20  # five deformable ASPPs of four deformable convolutions
    assert all(results)
    assert all(inputs[4:]), inputs  # every decoder block's
    assert len(resized) == 3 and all(layout for _, layout in resized), resized  # each stage's features upsampled


def test_channels_last_deformable_product_gives_the_same_values():
    """The product's two layouts (channels-first: training and off CUDA; channels-last: CUDA inference) hold the
    same values, in one product or in chunks."""
    import birefnet_hf.deformable_conv as deformable

    torch.manual_seed(0)
    x = torch.randn(2, 5, 7, 6)
    weight, bias = torch.randn(4, 5, 3, 3), torch.randn(4)
    columns = torch.randn(2, 45, 42)
    chunk = lambda a, b: columns[..., a:b]  # noqa: E731
    plain = deformable._columns_product(chunk, x, weight, bias, (7, 6), channels_last=False)
    last = deformable._columns_product(chunk, x, weight, bias, (7, 6), channels_last=True)
    assert plain.is_contiguous() and last.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(last, plain, rtol=1e-5, atol=1e-5)
    with pytest.MonkeyPatch.context() as patch:  # chunked: several products concatenated
        patch.setattr(deformable, "_MAX_PORTABLE_COLUMN_ELEMENTS", 2 * 45 * 10)
        chunked = deformable._columns_product(chunk, x, weight, bias, (7, 6), channels_last=True)
    assert chunked.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(chunked, plain, rtol=1e-5, atol=1e-5)


def test_the_product_layout_is_chosen_by_device_and_autograd():
    """Channels-last in CUDA inference (eager or traced, any float dtype); channels-first with autograd recording
    and off CUDA. Checked through the portable operator on fake CUDA tensors."""
    from torch._subclasses import FakeTensorMode

    from birefnet_hf.deformable_conv import modulated_deform_conv2d
    from birefnet_hf.inference_paths import channels_last_deformable_product

    def layout(device, dtype=torch.float32, requires_grad=False):
        x = torch.zeros(2, 4, 6, 6, device=device, dtype=dtype)
        offset = torch.zeros(2, 18, 6, 6, device=device, dtype=dtype)
        mask = torch.ones(2, 9, 6, 6, device=device, dtype=dtype)
        weight = torch.zeros(5, 4, 3, 3, device=device, dtype=dtype, requires_grad=requires_grad)
        out = modulated_deform_conv2d(x, offset, mask, weight, None, (1, 1), sampler="grid_sample")
        assert channels_last_deformable_product(x, offset, mask, weight) == out.is_contiguous(
            memory_format=torch.channels_last
        )
        return "NHWC" if out.is_contiguous(memory_format=torch.channels_last) else "NCHW"

    with FakeTensorMode():
        with torch.no_grad():
            assert layout("cuda") == "NHWC"
            assert layout("cuda", torch.bfloat16) == "NHWC"
        assert layout("cuda") == "NHWC"  # grad mode on, nothing requires grad: nothing is recorded
        assert layout("cuda", requires_grad=True) == "NCHW"  # training keeps the measured layout
    with torch.no_grad():
        assert layout("cpu") == "NCHW"
        assert layout("meta") == "NCHW"
