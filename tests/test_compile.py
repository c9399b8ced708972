# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""``torch.compile`` and the GPU path's host-synchronisation freedom, checked without a GPU.

* ``torch._dynamo.explain`` counts graph breaks of the whole model (eval and training forward, loss included);
* ``fullgraph=True`` compiles with the cheap ``aot_eager`` backend give the eager logits, and recompile once per
  new input size (never per call);
* the portable path (what CUDA runs) is traced on the meta device under a dispatch mode that records every
  operator: after the first forward of a shape has filled the layout cache, no operator touches a CPU tensor and
  none reads a value back to the host (``item``/``nonzero``/``int(tensor)`` all dispatch ``_local_scalar_dense`` or
  a data-dependent op).
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation


def _model(backbone: str, train: bool = False) -> BiRefNetForImageSegmentation:
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone))
    return model.train(train)


@pytest.mark.parametrize("backbone", ["pvt_v2_b0", "swin_v1_t", "resnet50", "dino_v3_s"])
def test_no_graph_breaks_in_eval(backbone):
    model = _model(backbone)
    with torch.no_grad():
        explanation = torch._dynamo.explain(model)(torch.randn(1, 3, 64, 96))
    assert explanation.graph_break_count == 0, [str(reason.reason)[:300] for reason in explanation.break_reasons]
    assert explanation.graph_count == 1


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["pvt_v2_b0", "swin_v1_t", "swin_v1_b"])
def test_no_graph_breaks_in_training(backbone):
    model = _model(backbone, train=True)
    x, labels = torch.randn(2, 3, 64, 96), (torch.rand(2, 1, 64, 96) > 0.5).float()
    explanation = torch._dynamo.explain(model)(x, labels=labels)
    assert explanation.graph_break_count == 0, [str(reason.reason)[:300] for reason in explanation.break_reasons]


class _CountingBackend:
    """An ``aot_eager`` backend that counts the graphs it is given; with ``aot=False`` it runs dynamo's graph as it
    is (cheaper: no AOT tracing)."""

    def __init__(self, aot: bool = True):
        from torch._dynamo.backends.common import aot_autograd
        from torch._functorch.aot_autograd import make_boxed_func

        self.frames = 0
        self._inner = aot_autograd(fw_compiler=lambda graph, _: make_boxed_func(graph.forward)) if aot else None

    def __call__(self, graph_module, example_inputs):
        self.frames += 1
        return graph_module.forward if self._inner is None else self._inner(graph_module, example_inputs)


def test_fullgraph_compile_matches_eager_and_recompiles_once_per_size():
    torch._dynamo.reset()
    model = _model("swin_v1_t").eval()
    backend = _CountingBackend()
    compiled = torch.compile(model, backend=backend, fullgraph=True, dynamic=False)
    sizes = [(64, 96), (96, 64), (64, 96), (96, 64), (64, 96)]
    with torch.no_grad():
        for height, width in sizes:
            x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(height))
            expected = model(x).logits
            actual = compiled(pixel_values=x).logits
            assert torch.allclose(actual, expected, atol=1e-4, rtol=1e-4), (actual - expected).abs().max()
    assert backend.frames == 2  # one graph per distinct size, none per call


@pytest.mark.slow
def test_inductor_compiles_a_tiny_model():
    torch._dynamo.reset()
    config = BiRefNetConfig(backbone="pvt_v2_b0", multi_scale_input="none", squeeze_block_count=1)
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(config).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x).logits
        actual = torch.compile(model, backend="inductor", fullgraph=True)(x).logits
    assert torch.allclose(actual, expected, atol=1e-3, rtol=1e-3), (actual - expected).abs().max()


class _HostTraffic(TorchDispatchMode):
    """Records operators that run on CPU tensors or read a tensor's value back to the host."""

    HOST_READS = {"_local_scalar_dense", "nonzero", "equal", "is_nonzero", "item"}

    def __init__(self):
        super().__init__()
        self.host_ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        tensors = [a for a in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        if name in self.HOST_READS or any(t.device.type == "cpu" for t in tensors):
            self.host_ops.append(name)
        return func(*args, **kwargs)


@pytest.mark.parametrize("backbone", ["pvt_v2_b0", "swin_v1_t"])
@pytest.mark.parametrize("train", [False, True])
def test_device_path_has_no_host_synchronisation(backbone, train):
    """The forward that CUDA runs, on the meta device: the second forward of a shape does no host work at all."""
    model = _model(backbone, train=train).to("meta")
    x = torch.empty(2, 3, 64, 96, device="meta")
    labels = torch.empty(2, 1, 64, 96, device="meta") if train else None
    context = torch.enable_grad() if train else torch.no_grad()
    with context:
        model(x, labels=labels)  # fills the window-layout cache (computed on the CPU once per shape)
        with _HostTraffic() as traffic:
            outputs = model(x, labels=labels)
    assert outputs.logits.device.type == "meta"
    assert traffic.host_ops == []


def test_compile_for_inference_keeps_the_model_usable_by_pipelines():
    from transformers import pipeline

    from birefnet_hf import BiRefNetImageProcessor
    from birefnet_hf.inference_paths import compile_for_inference
    from birefnet_hf.regional_compile import compiled_regions

    torch._dynamo.reset()
    model = _model("pvt_v2_b0").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x).logits
        compiled = compile_for_inference(model, backend="aot_eager")
        assert compiled is model and isinstance(compiled, BiRefNetForImageSegmentation)
        assert compiled_regions(model) > 0  # the default: regional
        assert torch.allclose(model(x).logits, expected, atol=1e-4)
    processor = BiRefNetImageProcessor(size={"height": 64, "width": 64})
    segmenter = pipeline("background-removal", model=model, image_processor=processor)
    import PIL.Image

    result = segmenter(PIL.Image.new("RGB", (80, 48), (120, 30, 200)))
    assert result["matte"].size == (80, 48)


# --- regional compilation (birefnet_hf.regional_compile): the repeated blocks compiled, one graph per kind ---


def _single_scale_model(backbone: str) -> BiRefNetForImageSegmentation:
    """The default config without the image-pyramid input (the backbone runs once: half the graphs to trace)."""
    torch.manual_seed(0)
    return BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone, multi_scale_input="none")).eval()


# Graphs per input size, from the structure: pvt_v2_b0: stage 1's first block (no DropPath) and its second, then
# one per later stage (5); swin_v1_t: per stage, unshifted + shifted windows (8; the first block's missing DropPath
# falls on the unshifted kind); then the five decoder/squeeze reconstruction blocks, all of different widths.
_GRAPHS_PER_SIZE = {"pvt_v2_b0": 5 + 5, "swin_v1_t": 8 + 5}
_BLOCK_CALLS_PER_SIZE = {"pvt_v2_b0": 8 + 5, "swin_v1_t": 12 + 5}


@pytest.mark.parametrize("backbone", ["pvt_v2_b0", "swin_v1_t"])
def test_regional_compile_matches_eager_and_shares_block_graphs(backbone):
    """Every region compiles with ``fullgraph=True`` (a graph break inside one would raise), blocks of one kind share
    a graph, a repeated call compiles nothing, and a second input size compiles each graph kind once more."""
    from birefnet_hf.regional_compile import compile_regions, compiled_regions, region_modules

    torch._dynamo.reset()
    model = _single_scale_model(backbone)
    first, second = torch.randn(1, 3, 64, 96), torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        expected = [model(first).logits, model(second).logits]
        backend = _CountingBackend(aot=False)
        assert compile_regions(model, backend=backend) is model
        regions = len(region_modules(model)) + (backbone == "swin_v1_t")  # + the Swin block function
        assert compiled_regions(model) == regions
        actual = model(first).logits
        graphs_one_size = backend.frames
        assert model(first).logits.equal(actual)
        assert backend.frames == graphs_one_size  # no recompilation per call
        actual_second = model(second).logits
    assert graphs_one_size == _GRAPHS_PER_SIZE[backbone] < _BLOCK_CALLS_PER_SIZE[backbone]
    assert backend.frames == 2 * graphs_one_size  # the second size: each graph kind recompiled exactly once
    # the regions trace the portable forms, the glue runs the eager CPU kernels: equal up to float32 reordering
    for got, want in zip((actual, actual_second), expected, strict=True):
        assert torch.allclose(got, want, atol=1e-4, rtol=1e-4), (got - want).abs().max()


def test_stochastic_depth_rate_is_shared_in_eval_and_kept_in_training():
    """Blocks that differ only in their DropPath rate share one graph in eval mode; in training each keeps its own
    rate (a block with rate 1 drops its residual branches whatever another block's graph holds)."""
    import copy

    from birefnet_hf.regional_compile import compile_regions

    torch._dynamo.reset()
    template = _model("pvt_v2_b0").localization.backbone.stages[0].blocks[1]  # a block with a DropPath
    rare, always = copy.deepcopy(template), copy.deepcopy(template)
    rare.drop_path1.drop_prob = rare.drop_path2.drop_prob = 1e-9
    always.drop_path1.drop_prob = always.drop_path2.drop_prob = 1.0
    container = torch.nn.Module()
    container.blocks = torch.nn.ModuleList([rare, always])
    backend = _CountingBackend(aot=False)
    compile_regions(container, backend=backend)
    x, size = torch.randn(2, 16 * 16, 32), (16, 16)
    with torch.no_grad():
        container.eval()
        assert torch.allclose(always(x, size), template.eval()(x, size), atol=1e-6)
        assert rare(x, size).equal(always(x, size))
        assert backend.frames == 1
        container.train()
        assert always(x, size).equal(x)  # both residual branches dropped: the block is the identity
        assert not rare(x, size).equal(x)
    assert backend.frames == 3


@pytest.mark.slow
def test_regional_compile_in_training_gives_eager_gradients():
    """Training through compiled regions (aot_eager: forward and backward graphs): the loss and every gradient
    equal eager's. Without stochastic depth and with the decoder's dropout at 0 both runs compute the same
    function (a traced dropout draws its mask differently from eager's)."""
    from birefnet_hf.regional_compile import compile_regions

    torch._dynamo.reset()
    torch.manual_seed(0)
    config = BiRefNetConfig(backbone="pvt_v2_b0", backbone_drop_path_rate=0.0)
    eager = BiRefNetForImageSegmentation(config).train()
    compiled = BiRefNetForImageSegmentation(config).train()
    compiled.load_state_dict(eager.state_dict())
    for module in (*eager.modules(), *compiled.modules()):
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    compile_regions(compiled, backend="aot_eager")
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    labels = (torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    losses = []
    for model in (eager, compiled):
        loss = model(x, labels=labels).loss
        loss.backward()
        losses.append(loss.detach())
    assert torch.allclose(losses[0], losses[1], rtol=1e-5), losses
    # gradients: relative L2 error per tensor (float32 sums in another order, the traced deformable sampler against
    # the eager gather sampler, amplified by the batch-2 BatchNorm backward: at most 6.4e-3 measured, in a
    # deformable layer). Biases of convolutions followed by BatchNorm have an analytically zero gradient (rounding
    # noise in both runs): they are compared against the largest gradient.
    pairs = [(name, a.grad, b.grad) for (name, a), b in zip(eager.named_parameters(), compiled.parameters(),
                                                            strict=True) if a.grad is not None]
    largest = max(float(g.norm()) for _, g, _ in pairs)
    errors = {name: float((g - h).norm() / max(float(g.norm()), 1e-3 * largest)) for name, g, h in pairs}
    assert errors and max(errors.values()) < 2e-2, sorted(errors.items(), key=lambda item: -item[1])[:3]


def test_compile_for_inference_whole_model_path():
    """``regional=False`` compiles the whole forward as one graph (the regional default is exercised by the
    pipeline test above and the CLI test below)."""
    from birefnet_hf.inference_paths import compile_for_inference
    from birefnet_hf.regional_compile import compiled_regions

    torch._dynamo.reset()
    model = _single_scale_model("pvt_v2_b0")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x).logits
        compile_for_inference(model, backend="aot_eager", regional=False)
        assert torch.allclose(model(x).logits, expected, atol=1e-4, rtol=1e-4)
    assert compiled_regions(model) == 0
    assert model._compiled_call_impl is not None


def test_compile_for_inference_cuda_graph_option_needs_cuda_and_regions():
    """The CUDA path (regions + a CUDA graph of the whole forward) is wired to capture_cuda_graphs, which refuses a
    CPU model by name; asking for CUDA graphs with the whole-model compile is refused."""
    from birefnet_hf.inference_paths import compile_for_inference

    model = _model("pvt_v2_b0").eval()
    with pytest.raises(ValueError, match="capture_cuda_graphs needs a model on a CUDA device"):
        compile_for_inference(model, backend="aot_eager", cuda_graphs=True)
    with pytest.raises(ValueError, match="cuda_graphs=True needs regional=True"):
        compile_for_inference(_model("pvt_v2_b0").eval(), regional=False, cuda_graphs=True)
    with pytest.raises(ValueError, match="input_shapes must be at least 1"):
        compile_for_inference(_model("pvt_v2_b0").eval(), backend="aot_eager", input_shapes=0)


def test_segment_compile_flag_compiles_regions(tiny_model_dir_64, tmp_path, capsys, monkeypatch):
    """`birefnet-hf segment --compile` runs compile_for_inference's default (regional) path; here with aot_eager
    instead of inductor. The mattes equal the eager run's within one 8-bit step."""
    import functools

    import numpy as np
    import PIL.Image

    from birefnet_hf import segment
    from birefnet_hf.inference_paths import compile_for_inference
    from birefnet_hf.regional_compile import compiled_regions

    torch._dynamo.reset()
    compiled = []

    def cheap_compile(model, **kwargs):
        compiled.append(functools.partial(compile_for_inference, backend="aot_eager", **kwargs)(model))
        return compiled[-1]

    monkeypatch.setattr(segment, "compile_for_inference", cheap_compile)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name, (height, width) in {"a.png": (50, 70), "b.png": (64, 40)}.items():
        PIL.Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8)).save(photos / name)
    outputs = {}
    for flag in ([], ["--compile"]):
        out = tmp_path / ("compiled" if flag else "eager")
        code = segment.main([str(photos), "-m", str(tiny_model_dir_64), "-o", str(out), "-f", "alpha",
                             "--device", "cpu", "--no-progress", *flag])
        assert code == 0, capsys.readouterr().err
        outputs[bool(flag)] = {p.name: np.array(PIL.Image.open(p), dtype=int) for p in sorted(out.glob("*.png"))}
    assert len(compiled) == 1 and compiled_regions(compiled[0]) > 0
    assert sorted(outputs[True]) == sorted(outputs[False]) == ["a.png", "b.png"]
    for name, eager in outputs[False].items():
        assert np.abs(eager - outputs[True][name]).max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_regional_compile_with_cuda_graph_on_cuda():
    """What `segment --compile` does on CUDA: inductor regions, the whole forward captured as a CUDA graph; the
    replay equals the eager forward and a second call of the same shape compiles nothing more."""
    from torch._dynamo.utils import counters

    from birefnet_hf.inference_paths import compile_for_inference

    torch._dynamo.reset()
    counters.clear()
    model = _model("swin_v1_t").eval().cuda()
    x = torch.randn(1, 3, 128, 128, device="cuda")
    with torch.no_grad():
        expected = model(x).logits
        compile_for_inference(model)
        first = model(pixel_values=x).logits.clone()
        graphs = counters["stats"]["unique_graphs"]
        second = model(pixel_values=x).logits.clone()
    assert counters["stats"]["unique_graphs"] == graphs > 0
    assert torch.allclose(first, expected, atol=1e-3, rtol=1e-3), (first - expected).abs().max()
    assert second.equal(first)
