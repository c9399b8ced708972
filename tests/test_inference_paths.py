# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The inference-only fast paths compute the same function as the training forward.

Eval-mode parity with the authors (tests/test_parity.py) runs under ``torch.no_grad`` and so goes through these
paths; the tests here pin each one against its literal counterpart on shapes the parity data does not cover
(batch 2, several non-square sizes, patch split on and off, chunked deformable products).
"""

import pytest
import torch
import torch.nn.functional as F

from birefnet_hf import BiRefNetConfig
from birefnet_hf.deformable_conv import modulated_deform_conv2d
from birefnet_hf.modeling_birefnet import DeformableASPP, InwardReference, ReconstructionModule


def _randomise(module, generator):
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return module


@pytest.mark.parametrize("shape", [(2, 3, 224, 320), (1, 3, 416, 160)])
@pytest.mark.parametrize("chunk_bytes", [None, 4 * 49 * 1152 * 3])  # default; ~3 windows / a few hundred tokens
# (both shapes pad at stride 4 and deeper, so the windows with padding take the real-slots-only q/k/v path)
def test_swin_inference_blocks_match_the_training_forward(monkeypatch, shape, chunk_bytes):
    import birefnet_hf.window_attention as window_attention
    from birefnet_hf.backbones import SwinBackbone

    if chunk_bytes is not None:  # several window groups of each kind per image, many MLP row groups
        monkeypatch.setattr(window_attention, "INFERENCE_CHUNK_BYTES", chunk_bytes)

    torch.manual_seed(0)
    backbone = SwinBackbone(BiRefNetConfig(backbone="swin_v1_t")).eval()
    with torch.no_grad():  # timm initialises biases to zero: perturb everything so that every term counts
        for parameter in backbone.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    with torch.enable_grad():  # recording gradients -> the portable block (gathered window layout)
        literal = [level.detach() for level in backbone(x)]
    with torch.inference_mode():  # -> cpu_inference_block
        fast = backbone(x)
    for level, (a, b) in enumerate(zip(literal, fast)):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() < 1e-4, f"level {level}"


@pytest.mark.parametrize("size", [(14, 14), (16, 23), (8, 5)])
@pytest.mark.parametrize("shifted", [False, True])
def test_plain_first_window_layout(size, shifted):
    """Plain windows (no padding slot, all-zero region mask) come first, the others after; the reordered layout is
    still a layout: every token is read by exactly its own slot, and each window keeps its own region mask."""
    from timm.models.swin_transformer import SwinTransformerBlock

    from birefnet_hf.window_attention import window_layout as _window_layout

    block = SwinTransformerBlock(8, (7, 7), num_heads=2, window_size=7, shift_size=3 if shifted else 0,
                                 always_partition=True, dynamic_mask=True)
    height, width = size
    natural = _window_layout(block, height, width)
    ordered = _window_layout(block, height, width, plain_first=True)
    area = block.window_area
    for layout in (natural, ordered):
        tokens = torch.arange(height * width)
        assert torch.equal(layout.source[layout.slot_of_token], tokens)
        assert torch.equal(torch.nonzero(~layout.inside).flatten(), layout.padding)
    windows = natural.source.view(-1, area)
    has_padding = ~natural.inside.view(-1, area).all(dim=1)
    has_mask = natural.region_mask.flatten(1).any(dim=1) if shifted else torch.zeros_like(has_padding)
    assert ordered.plain_windows == int((~has_padding & ~has_mask).sum())
    assert natural.plain_windows == 0
    assert ordered.inside.view(-1, area)[: ordered.plain_windows].all()
    # each reordered window is a natural one: same slots (by token read and padding) and the same region mask
    for index, slots in enumerate(ordered.source.view(-1, area)):
        inside = ordered.inside.view(-1, area)[index]
        match = [w for w in range(windows.shape[0])
                 if torch.equal(windows[w][inside], slots[inside]) and torch.equal(natural.inside.view(-1, area)[w], inside)]
        assert len(match) == 1
        if shifted:
            assert torch.equal(ordered.region_mask[index], natural.region_mask[match[0]])
            if index < ordered.plain_windows:
                assert not ordered.region_mask[index].any()


def _timm_block(dim=16, window=7, shifted=True, heads=2, generator=None):
    from timm.models.swin_transformer import SwinTransformerBlock

    block = SwinTransformerBlock(dim, (window, window), num_heads=heads, window_size=window,
                                 shift_size=window // 2 if shifted else 0, always_partition=True, dynamic_mask=True)
    return _randomise(block, generator or torch.Generator().manual_seed(3)).eval()


@pytest.mark.parametrize("size", [(14, 14), (16, 23), (9, 5)])
@pytest.mark.parametrize("shifted", [False, True])
def test_region_mask_is_timms_mask_of_the_padded_grid(size, shifted):
    from birefnet_hf.window_attention import region_mask

    block = _timm_block(shifted=shifted)
    padded = [s + (-s) % 7 for s in size]
    expected = block.get_attn_mask(torch.empty(1, *padded, 1))
    actual = region_mask(block, *padded, "cpu", torch.float32)
    if not shifted:
        assert expected is None and actual is None
    else:
        assert torch.equal(actual, expected)


@pytest.mark.parametrize("shape", [(2, 16, 23), (1, 14, 14), (3, 9, 12)])
@pytest.mark.parametrize("shifted", [False, True])
def test_window_attention_forms_agree(shape, shifted):
    """The traced form (pad/roll/partition), the eager gathered form and the CPU inference block compute the same
    block, with batches (per-image masked attention) and maps that need padding."""
    from birefnet_hf.window_attention import (
        WindowLayoutCache,
        cpu_inference_block,
        gathered_window_attention,
        literal_window_attention,
    )

    generator = torch.Generator().manual_seed(4)
    block = _timm_block(shifted=shifted, generator=generator)
    x = torch.randn(*shape, 16, generator=generator)
    layouts = WindowLayoutCache()
    with torch.no_grad():
        literal = literal_window_attention(block, block.norm1(x))
        gathered = gathered_window_attention(block, block.norm1(x), layouts)
        assert torch.allclose(literal, gathered, atol=1e-5), (literal - gathered).abs().max()
        full = x + literal
        full = full + block.mlp(block.norm2(full))
        fast = cpu_inference_block(block, x.clone(), layouts, chunk_bytes=4 * 49 * 48 * 2)
    assert torch.allclose(full, fast, atol=1e-4), (full - fast).abs().max()
    assert len(layouts) == 2  # natural and plain-first layouts of this shape, each computed once


def test_window_layouts_are_cached_per_shape_and_bounded():
    from birefnet_hf.window_attention import WindowLayoutCache

    block = _timm_block()
    layouts = WindowLayoutCache(max_entries=2)
    first = layouts.get(block, 14, 14, "cpu", torch.float32)
    assert layouts.get(block, 14, 14, "cpu", torch.float32) is first
    layouts.get(block, 21, 14, "cpu", torch.float32)
    layouts.get(block, 28, 14, "cpu", torch.float32)
    assert len(layouts) == 2 and layouts.get(block, 14, 14, "cpu", torch.float32) is not first


def test_the_boundary_chooses_cpu_kernels_only_for_eager_float32_cpu_inference():
    from birefnet_hf.inference_paths import use_cpu_inference_kernels, use_cpu_kernels

    x = torch.zeros(2)
    module = torch.nn.Linear(2, 2).eval()
    with torch.no_grad():
        assert use_cpu_inference_kernels(x, module) and use_cpu_kernels(x)
        assert not use_cpu_inference_kernels(x.bfloat16())
        assert not use_cpu_inference_kernels(x.to("meta")) and not use_cpu_kernels(x.to("meta"))
        assert not use_cpu_inference_kernels(x, module.train())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not use_cpu_inference_kernels(x)
    assert not use_cpu_inference_kernels(x)  # autograd recording

    seen = []

    def probe(t):
        seen.append((use_cpu_kernels(t), use_cpu_inference_kernels(t)))
        return t + 1

    with torch.no_grad():
        torch.compile(probe, backend="eager", fullgraph=True)(x)
    assert seen == [(False, False)]  # traced: the portable forms


@pytest.mark.parametrize("patch_split", [True, False])
@pytest.mark.parametrize("grid,size", [(1, (64, 96)), (2, (32, 48)), (4, (8, 24))])
@pytest.mark.parametrize("outputs", [1, 2])
def test_inward_reference_projection_equals_conv_of_its_output(patch_split, grid, size, outputs):
    generator = torch.Generator().manual_seed(2)
    in_channels = 3 * grid * grid if patch_split else 3
    inward = _randomise(InwardReference(in_channels, 8, patch_split), generator)
    image = torch.randn(2, 3, size[0] * grid, size[1] * grid, generator=generator)
    projection = torch.randn(outputs, 8, 1, 1, generator=generator)
    expected = F.conv2d(inward(image, size), projection)
    actual = inward.projected(image, size, projection)
    assert actual.shape == expected.shape
    assert torch.allclose(actual, expected, atol=1e-4, rtol=1e-4), (actual - expected).abs().max()


@pytest.mark.parametrize("inward_reference", [True, False])
def test_full_resolution_head_eval_order_equals_training_order(inward_reference):
    config = BiRefNetConfig(backbone="pvt_v2_b0", inward_reference=inward_reference)
    generator = torch.Generator().manual_seed(3)
    module = _randomise(ReconstructionModule(config), generator)
    c1 = config.encoder_channels[0]
    features = torch.randn(2, c1 // 2, 24, 40, generator=generator)
    image = torch.randn(2, 3, 96, 160, generator=generator)
    with torch.no_grad():
        training_order = module.train()._full_resolution_head(features, image)
        eval_order = module.eval()._full_resolution_head(features, image)
    assert eval_order.shape == (2, 1, 96, 160)
    assert torch.allclose(eval_order, training_order, atol=1e-4, rtol=1e-4)


def test_aspp_fusion_equals_the_projection_of_the_concatenation():
    generator = torch.Generator().manual_seed(4)
    aspp = _randomise(DeformableASPP(16, 8), generator).eval()
    x = torch.randn(2, 16, 12, 20, generator=generator)
    with torch.no_grad():
        branches = [aspp.aspp1(x), *(branch(x) for branch in aspp.aspp_deforms)]
        pooled = aspp.global_avg_pool(x).expand(-1, -1, 12, 20)
        concatenated = torch.cat((*branches, pooled), dim=1)
        expected = aspp.relu(aspp.bn1(aspp.conv1(concatenated)))
        actual = aspp(x)
    assert torch.allclose(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_deformable_conv_in_place_product_equals_the_autograd_path(monkeypatch, bias):
    import birefnet_hf.deformable_conv as module

    generator = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, 14, 11, generator=generator)
    offset = torch.randn(2, 2 * 9, 14, 11, generator=generator)
    mask = torch.rand(2, 9, 14, 11, generator=generator)
    weight = torch.randn(5, 4, 3, 3, generator=generator)
    bias_tensor = torch.randn(5, generator=generator) if bias else None
    monkeypatch.setattr(module, "_MAX_COLUMN_ELEMENTS", 4 * 9 * 13)  # 13 positions per chunk
    with torch.no_grad():  # chunks written in place into one buffer
        in_place = modulated_deform_conv2d(x, offset, mask, weight, bias_tensor, (1, 1), sampler="gather")
    weight.requires_grad_(True)  # chunks concatenated, differentiable
    differentiable = modulated_deform_conv2d(x, offset, mask, weight, bias_tensor, (1, 1), sampler="gather")
    assert differentiable.requires_grad
    assert torch.allclose(in_place, differentiable.detach(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kernel", [1, 3, 7])
def test_deformable_conv_with_channels_last_predictions_matches_torchvision(kernel):
    """The layout the decoder produces (channels-last input, offsets and modulation split off one channels-last
    convolution output, so strided views) through the float32 in-place path, against torchvision."""
    from torchvision.ops import deform_conv2d

    from birefnet_hf.modeling_birefnet import DeformableConv2d

    torch.manual_seed(kernel)
    layer = DeformableConv2d(6, 5, kernel, padding=kernel // 2).eval()
    with torch.no_grad():
        for conv in (layer.offset_conv, layer.modulator_conv):
            conv.weight.normal_(0, 0.3)
            conv.bias.normal_(0, 1.0)
    x = torch.randn(2, 6, 15, 12).contiguous(memory_format=torch.channels_last)
    taps = kernel * kernel
    with torch.no_grad():
        predicted = F.conv2d(
            x,
            torch.cat((layer.offset_conv.weight, layer.modulator_conv.weight)),
            torch.cat((layer.offset_conv.bias, layer.modulator_conv.bias)),
            padding=kernel // 2,
        )
        offset, modulator = predicted.split((2 * taps, taps), dim=1)
        assert not offset.is_contiguous()
        mask = 2.0 * torch.sigmoid(modulator)
        expected = deform_conv2d(x, offset, layer.regular_conv.weight, None, padding=layer.padding, mask=mask)
        assert torch.allclose(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_wrapped_linear_layers_take_the_module_path():
    """A block whose linear layers are wrapped (peft's LoRA) is not run by the CPU inference block, which reads the
    plain weights: the wrapper's extra term must count."""
    from birefnet_hf.window_attention import WindowLayoutCache, swin_block

    class Shifted(torch.nn.Module):  # a wrapper that changes the layer's output, like an adapter
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.weight, self.bias = inner.weight, inner.bias

        def forward(self, x):
            return self.inner(x) + 1.0

    block = _timm_block(shifted=True)
    x = torch.randn(1, 9, 12, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        plain = swin_block(block, x, WindowLayoutCache())
        block.mlp.fc2 = Shifted(block.mlp.fc2)
        wrapped = swin_block(block, x, WindowLayoutCache())
    assert torch.allclose(wrapped, plain + 1.0, atol=1e-5)
