# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Regional compilation: ``torch.compile`` of the model's repeated blocks, one compiled graph per kind of block.

Compiling the whole forward as one graph (``torch.compile(model, fullgraph=True)``) gives inductor the whole model
unrolled: every one of Swin-L's 24 blocks is traced, lowered and code-generated again, and on an H200 that did not
finish in 190 s at 1024 px. PyTorch's recipe for such models is *regional compilation*: compile the block that
repeats, once, and run the glue between blocks eagerly. Dynamo inlines every module and lifts its parameters and
buffers to graph inputs, so two blocks of the same class, structure and input shape pass the same guards and share
one compiled graph: Swin-L's 18 third-stage blocks cost two compiles (shifted and unshifted windows) per input size.

The regions (:func:`region_modules`):

* modules that run their blocks through a ``block_function`` attribute (:class:`~birefnet_hf.backbones.SwinBackbone`
  calls ``block_function(block, x, layouts)`` for each timm block, never the block's own forward): the function is
  compiled, once for all of them;
* every item of a ``ModuleList``/``Sequential`` named ``blocks`` (timm's PVT-v2 stages, the DINOv3 ViT, the
  decoder's reconstruction blocks) or ``squeeze_module`` (the squeeze blocks): ``nn.Module.compile`` on each.

Each region is compiled with ``fullgraph=True`` (a graph break inside a region is an error) and ``dynamic=False``
(one graph per input shape). Inside a region the model's portable forms run (``inference_paths.is_tracing``);
between regions the eager forms run (on CPU, the tuned kernels).

Stochastic depth: timm gives each block its own ``DropPath(drop_prob)``, and dynamo would guard on that float,
one graph per block. In eval mode ``DropPath`` is the identity whatever its probability, so
:func:`eval_mode_guard_filter` drops the probability's guard from graphs traced with that ``DropPath`` in eval mode;
graphs traced in training keep it (each block then gets its own training graph, correct but not shared).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch
from torch import nn

#: Names of the containers whose items are compiled as regions.
_REGION_CONTAINER = re.compile(r"(?:^|\.)(?:blocks|squeeze_module)\.\d+$")


def _block_function_owners(model: nn.Module) -> list[nn.Module]:
    """Modules that run their blocks through a ``block_function`` attribute (Swin backbones)."""
    return [module for module in model.modules() if callable(getattr(module, "block_function", None))]


def region_modules(model: nn.Module, backbone_only: bool = False) -> list[nn.Module]:
    """The modules :func:`compile_regions` compiles with ``nn.Module.compile``: the items of every ``blocks`` or
    ``squeeze_module`` container, except blocks run through a ``block_function`` (their forward is never called);
    with ``backbone_only``, those inside a ``backbone`` module only (the decoder stays eager: on CUDA its
    deformable convolutions then use the fused Triton sampler, which a traced forward never does)."""
    function_run = {id(block) for owner in _block_function_owners(model) for block in owner.modules()}
    return [
        module
        for name, module in model.named_modules()
        if _REGION_CONTAINER.search(name)
        and id(module) not in function_run
        and (not backbone_only or re.search(r"(?:^|\.)backbone\.", name))
    ]


def eval_mode_guard_filter(entries: Sequence) -> list[bool]:
    """A dynamo ``guard_filter_fn``: keep every guard except ``<module>.drop_prob`` where the same graph guards
    ``<module>.training`` to be ``False`` (timm's ``DropPath`` in eval mode is the identity, whatever the
    probability), so that blocks that differ only in their stochastic-depth rate share one inference graph."""
    in_eval = {
        entry.name[: -len(".training")]
        for entry in entries
        if entry.name.endswith(".training") and entry.has_value and entry.value is False
    }
    return [
        not (entry.name.endswith(".drop_prob") and entry.name[: -len(".drop_prob")] in in_eval)
        for entry in entries
    ]


def compile_regions(
    model: nn.Module,
    backend: str | Callable = "inductor",
    input_shapes: int = 4,
    backbone_only: bool = False,
    **compile_options,
) -> nn.Module:
    """Compile ``model``'s repeated blocks in place (see the module docstring) and return the model.

    ``backend`` is the ``torch.compile`` backend; ``input_shapes`` the number of input sizes the model is expected
    to see: every region may compile once per size and per backbone pass (the image-pyramid input runs the backbone
    at two sizes), and the recompile limit is raised to that bound (per compiled callable, through
    ``torch.compile(recompile_limit=...)``; all ``nn.Module.compile`` regions share one cache, that of
    ``nn.Module._call_impl``). ``backbone_only``: see :func:`region_modules`. ``compile_options`` go to
    ``torch.compile`` (``options`` is merged with the guard filter). Calling it again on the same model compiles
    nothing more."""
    if input_shapes < 1:
        raise ValueError(f"input_shapes must be at least 1, got {input_shapes}")
    owners = _block_function_owners(model)
    modules = region_modules(model, backbone_only)
    regions = len(modules) + sum(len(region_modules_of(owner)) for owner in owners)
    limit = 2 * input_shapes * max(regions, 1) + torch._dynamo.config.recompile_limit
    options = dict(compile_options.pop("options", None) or {})
    options.setdefault("guard_filter_fn", eval_mode_guard_filter)
    settings = {
        "backend": backend,
        "fullgraph": True,
        "dynamic": False,
        **compile_options,
        "recompile_limit": limit,
    }
    # a fresh options dict per call: torch.compile pops the guard filter out of the one it is given
    for owner in owners:
        if not getattr(owner, "block_function_compiled", False):
            owner.block_function = torch.compile(owner.block_function, options=dict(options), **settings)
            owner.block_function_compiled = True
    for module in modules:
        if getattr(module, "_compiled_call_impl", None) is None:
            module.compile(options=dict(options), **settings)
    return model


def region_modules_of(owner: nn.Module) -> list[nn.Module]:
    """The blocks a ``block_function`` owner runs: the items of its ``blocks`` containers."""
    return [module for name, module in owner.named_modules() if re.search(r"(?:^|\.)blocks\.\d+$", name)]


def compiled_regions(model: nn.Module) -> int:
    """How many regions of ``model`` are compiled: ``nn.Module.compile``-d blocks plus compiled block functions."""
    functions = sum(
        bool(getattr(owner, "block_function_compiled", False)) for owner in _block_function_owners(model)
    )
    return functions + sum(getattr(m, "_compiled_call_impl", None) is not None for m in region_modules(model))


__all__ = [
    "compile_regions",
    "compiled_regions",
    "eval_mode_guard_filter",
    "region_modules",
    "region_modules_of",
]
