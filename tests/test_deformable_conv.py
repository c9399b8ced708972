# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Our deformable convolution against torchvision.ops.deform_conv2d (the authors' operator)."""

import pytest
import torch
from torchvision.ops import deform_conv2d

from birefnet_hf.deformable_conv import modulated_deform_conv2d


@pytest.mark.parametrize("sampler", ["gather", "grid_sample"])
@pytest.mark.parametrize(
    "shape,kernel,offset_scale",
    [((2, 8, 13, 17), 3, 2.0), ((1, 4, 1, 1), 1, 1.0), ((2, 6, 9, 9), 7, 3.0), ((2, 5, 8, 6), 1, 5.0),
     ((1, 3, 16, 4), 3, 20.0)],
)
def test_matches_torchvision_forward_and_backward(shape, kernel, offset_scale, sampler):
    generator = torch.Generator().manual_seed(sum(shape) + kernel)
    batch, channels, height, width = shape
    taps = kernel * kernel
    x = torch.randn(shape, generator=generator, dtype=torch.float64, requires_grad=True)
    offset = (torch.randn(batch, 2 * taps, height, width, generator=generator, dtype=torch.float64) * offset_scale)
    offset.requires_grad_(True)
    mask = torch.rand(batch, taps, height, width, generator=generator, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, channels, kernel, kernel, generator=generator, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, generator=generator, dtype=torch.float64, requires_grad=True)
    padding = (kernel // 2, kernel // 2)

    expected = deform_conv2d(x, offset, weight, bias, padding=padding, mask=mask)
    actual = modulated_deform_conv2d(x, offset, mask, weight, bias, padding=padding, sampler=sampler)
    assert actual.shape == expected.shape
    assert torch.allclose(actual, expected, atol=1e-6, rtol=1e-6)

    upstream = torch.randn(expected.shape, generator=generator, dtype=torch.float64)
    inputs = (x, offset, mask, weight, bias)
    grads_expected = torch.autograd.grad(expected, inputs, upstream)
    grads_actual = torch.autograd.grad(actual, inputs, upstream)
    for name, g_e, g_a in zip(("input", "offset", "mask", "weight", "bias"), grads_expected, grads_actual):
        assert torch.allclose(g_a, g_e, atol=1e-6, rtol=1e-6), name


@pytest.mark.parametrize("sampler", ["gather", "grid_sample"])
def test_chunking_does_not_change_the_result(monkeypatch, sampler):
    import birefnet_hf.deformable_conv as module

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 12, 10, generator=generator)
    offset = torch.randn(2, 18, 12, 10, generator=generator)
    mask = torch.rand(2, 9, 12, 10, generator=generator)
    weight = torch.randn(3, 4, 3, 3, generator=generator)
    whole = modulated_deform_conv2d(x, offset, mask, weight, None, (1, 1), sampler=sampler)
    monkeypatch.setattr(module, "_MAX_COLUMN_ELEMENTS", 4 * 9 * 7)  # 7 positions per chunk
    chunked = modulated_deform_conv2d(x, offset, mask, weight, None, (1, 1), sampler=sampler)
    assert torch.allclose(whole, chunked, atol=1e-6)


@pytest.mark.parametrize("sampler", ["gather", "grid_sample"])
def test_bfloat16_inputs_sample_in_float32(sampler):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 40, 40, generator=generator)
    offset = torch.randn(1, 18, 40, 40, generator=generator) * 0.3 + 0.25
    mask = torch.rand(1, 9, 40, 40, generator=generator)
    weight = torch.randn(6, 4, 3, 3, generator=generator) * 0.1
    reference = deform_conv2d(x, offset, weight, None, padding=(1, 1), mask=mask)
    out = modulated_deform_conv2d(
        x.bfloat16(), offset.bfloat16(), mask.bfloat16(), weight.bfloat16(), None, (1, 1), sampler=sampler
    )
    assert out.dtype == torch.bfloat16
    relative = (out.float() - reference).norm() / reference.norm()
    assert relative < 2e-2


def test_mismatched_offsets_are_rejected():
    with pytest.raises(ValueError, match="offset"):
        modulated_deform_conv2d(torch.zeros(1, 2, 5, 5), torch.zeros(1, 4, 5, 5), torch.zeros(1, 9, 5, 5),
                                torch.zeros(1, 2, 3, 3), None, (1, 1))


@pytest.mark.parametrize("sampler", ["gather", "grid_sample"])
def test_samples_on_and_beyond_the_border_match_torchvision(sampler):
    """Sampling positions exactly on the border cases of the zero-padded gather (-1, between -1 and 0, the last row
    and column, between it and the map's edge, exactly on the edge, far outside in every direction) read what
    torchvision reads."""
    height, width, kernel = 6, 5, 3
    taps = kernel * kernel
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(1, 3, height, width, generator=generator, dtype=torch.float64)
    weight = torch.randn(4, 3, kernel, kernel, generator=generator, dtype=torch.float64)
    mask = torch.rand(1, taps, height, width, generator=generator, dtype=torch.float64)
    targets = torch.tensor([-1e4, -2.0, -1.5, -1.0, -0.5, 0.0, 0.25, 3.0, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0, 1e4],
                           dtype=torch.float64)
    # offset = target - (output row/column - padding + tap row/column): every tap of every position hits a target
    rows = torch.arange(height, dtype=torch.float64).view(1, height, 1) - 1
    cols = torch.arange(width, dtype=torch.float64).view(1, 1, width) - 1
    tap = torch.arange(kernel, dtype=torch.float64)
    index = torch.randint(len(targets), (2, taps, height, width), generator=generator)
    offset = torch.empty(1, 2 * taps, height, width, dtype=torch.float64)
    offset[0, 0::2] = targets[index[0]] - (rows + tap.repeat_interleave(kernel).view(taps, 1, 1))
    offset[0, 1::2] = targets[index[1]] - (cols + tap.repeat(kernel).view(taps, 1, 1))

    expected = deform_conv2d(x, offset, weight, None, padding=(1, 1), mask=mask)
    with torch.no_grad():
        actual = modulated_deform_conv2d(x, offset, mask, weight, None, (1, 1), sampler=sampler)
        single = modulated_deform_conv2d(x.float(), offset.float(), mask.float(), weight.float(), None, (1, 1),
                                         sampler=sampler)
    assert torch.allclose(actual, expected, atol=1e-10, rtol=1e-10)
    assert torch.allclose(single.double(), expected, atol=1e-5, rtol=1e-5)  # float32: the oneDNN product on CPU


@pytest.mark.parametrize("sampler", ["gather", "grid_sample"])
@pytest.mark.parametrize("shape,kernel", [((1, 4, 9, 7), 3), ((2, 8, 16, 16), 7), ((1, 3, 5, 5), 1)])
def test_non_finite_offsets_give_nan_never_an_index_error(sampler, shape, kernel):
    """NaN in, NaN out, on every shape and both samplers (the gather sampler used to compute an index from NaN:
    `Index -9223372036854775808` inside embedding_bag on some shapes, zeros on others)."""
    batch, channels, height, width = shape
    taps, pad = kernel * kernel, kernel // 2
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=generator)
    offset = torch.randn(batch, 2 * taps, height, width, generator=generator)
    mask = torch.rand(batch, taps, height, width, generator=generator)
    weight = torch.randn(5, channels, kernel, kernel, generator=generator)
    offset[0, 0, 1, 2] = float("nan")
    offset[-1, 2 * taps - 1, -1, -1] = float("inf")
    out = modulated_deform_conv2d(x, offset, mask, weight, None, (pad, pad), sampler=sampler)
    assert torch.isnan(out[0, :, 1, 2]).all() and torch.isnan(out[-1, :, -1, -1]).all()
    finite = torch.ones(batch, height, width, dtype=torch.bool)
    finite[0, 1, 2] = finite[-1, -1, -1] = False
    assert torch.isfinite(out.permute(0, 2, 3, 1)[finite]).all()
    reference = modulated_deform_conv2d(
        x, offset.nan_to_num(0.0, 0.0, 0.0), mask, weight, None, (pad, pad), sampler=sampler
    )
    assert torch.allclose(out.permute(0, 2, 3, 1)[finite], reference.permute(0, 2, 3, 1)[finite], atol=1e-5)


def test_the_gather_sampler_works_over_the_whole_batch_in_few_operations(monkeypatch):
    """Each operation of the CPU sampler is a parallel region that ends in a barrier, and on a shared CPU every
    barrier waits for a descheduled thread (issue 19): the sampler chunks the batch's output rows as one sequence
    (chunks span images), with autograd it makes one embedding_bag for the whole batch (the backward keeps the
    columns anyway), and the values are the same."""
    import birefnet_hf.deformable_conv as deformable

    calls = []
    original = deformable.F.embedding_bag

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(deformable.F, "embedding_bag", counting)
    monkeypatch.setattr(deformable, "_MAX_COLUMN_ELEMENTS", 4 * 9 * 30)  # 30 rows per chunk
    torch.manual_seed(0)
    x = torch.randn(2, 4, 12, 12)
    offset, mask = torch.randn(2, 18, 12, 12), torch.rand(2, 9, 12, 12)
    weight = torch.randn(5, 4, 3, 3, requires_grad=True)
    with torch.no_grad():
        chunked = deformable.modulated_deform_conv2d(x, offset, mask, weight, padding=(1, 1), sampler="gather")
    assert len(calls) == 10  # 2 x 144 output rows in chunks of 30
    calls.clear()
    whole = deformable.modulated_deform_conv2d(x, offset, mask, weight, padding=(1, 1), sampler="gather")
    assert len(calls) == 1
    torch.testing.assert_close(whole.detach(), chunked, rtol=1e-5, atol=1e-5)
    whole.sum().backward()
    assert weight.grad is not None and torch.isfinite(weight.grad).all()


@pytest.mark.parametrize("plan_samples", [1, 9 * 50, 9 * 144, 9 * 144 * 2, 9 * 144 * 3])
def test_sampling_plan_blocks_do_not_change_the_result(monkeypatch, plan_samples):
    """The CPU sampler plans blocks of whole images, or parts of one image when an image alone exceeds
    _MAX_PLAN_SAMPLES; chunks of columns inside a block may end anywhere: every split gives the same result as
    the portable path, with odd sizes, offsets reaching outside the map and a non-contiguous offset."""
    import birefnet_hf.deformable_conv as deformable

    generator = torch.Generator().manual_seed(3)
    x = torch.randn(3, 5, 12, 12, generator=generator)
    offset = (torch.randn(3, 12, 12, 18, generator=generator) * 4).permute(0, 3, 1, 2)  # channels-last view
    mask = torch.rand(3, 9, 12, 12, generator=generator)
    weight, bias = torch.randn(4, 5, 3, 3, generator=generator), torch.randn(4, generator=generator)
    expected = deformable.modulated_deform_conv2d(x, offset, mask, weight, bias, (1, 1), sampler="grid_sample")
    monkeypatch.setattr(deformable, "_MAX_PLAN_SAMPLES", plan_samples)
    monkeypatch.setattr(deformable, "_MAX_COLUMN_ELEMENTS", 5 * 9 * 37)  # 37 rows per chunk
    with torch.no_grad():
        actual = deformable.modulated_deform_conv2d(x, offset, mask, weight, bias, (1, 1), sampler="gather")
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)
