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
    """An ``aot_eager`` backend that counts the graphs it is given."""

    def __init__(self):
        from torch._dynamo.backends.common import aot_autograd
        from torch._functorch.aot_autograd import make_boxed_func

        self.frames = 0
        self._inner = aot_autograd(fw_compiler=lambda graph, _: make_boxed_func(graph.forward))

    def __call__(self, graph_module, example_inputs):
        self.frames += 1
        return self._inner(graph_module, example_inputs)


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

    torch._dynamo.reset()
    model = _model("pvt_v2_b0").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x).logits
        compiled = compile_for_inference(model, backend="aot_eager")
        assert compiled is model and isinstance(compiled, BiRefNetForImageSegmentation)
        assert torch.allclose(model(x).logits, expected, atol=1e-4)
    processor = BiRefNetImageProcessor(size={"height": 64, "width": 64})
    segmenter = pipeline("background-removal", model=model, image_processor=processor)
    import PIL.Image

    result = segmenter(PIL.Image.new("RGB", (80, 48), (120, 30, 200)))
    assert result["matte"].size == (80, 48)
