# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Small-GPU fine-tuning helpers: freezing the backbone, and LoRA adapters through 🤗 PEFT.

BiRefNet's backbone is ``model.localization`` (the paper's localization module: the encoder and its context
features) and its decoder ``model.reconstruction`` (the reconstruction module). :func:`apply_lora` adds LoRA
adapters (Hu et al., 2022) to their ``nn.Linear`` and ``nn.Conv2d`` layers (grouped/depthwise convolutions are left
alone, PEFT's LoRA does not support them); everything else is frozen. Adapters are saved and loaded the PEFT way
(``peft_model.save_pretrained(folder)`` / :func:`load_lora`), and :func:`merge_lora` folds them into the weights,
giving a plain :class:`~birefnet_hf.BiRefNetForImageSegmentation` that computes the same function.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from peft import PeftModel

__all__ = [
    "LORA_PARTS",
    "DIRECT_WEIGHT_LAYERS",
    "adapters_merged",
    "apply_lora",
    "freeze_backbone",
    "load_lora",
    "lora_target_modules",
    "merge_lora",
    "unwrap_base_model",
]

#: Parts of the model LoRA can adapt, and the module-name prefixes of each: the backbone is the encoder inside the
#: localization module; the decoder is the rest (the localization module's squeeze block and the reconstruction).
LORA_PARTS = {"backbone": ("localization.backbone.",), "decoder": ("localization.squeeze_module.", "reconstruction.")}
#: Layers whose weights the model reads directly (``F.conv2d(x, layer.weight)``: the deformable convolutions, the
#: ASPP fusion, the inward reference's composed kernel at inference, the full-resolution head at inference) rather
#: than by calling them; an adapter there would be ignored, so they get none.
DIRECT_WEIGHT_LAYERS = re.compile(
    r"(\.atrous_conv\.(offset_conv|modulator_conv|regular_conv)|\.dec_att\.conv1|\.inward_references\.\d+\.(conv1|conv_out)"
    r"|^reconstruction\.head)$"
)


def _require_peft():
    try:
        import peft
    except ImportError as error:  # pragma: no cover - peft is in the `finetune` and `test` extras
        raise ImportError("LoRA needs peft: pip install 'birefnet_hf[finetune]' (or pip install peft)") from error
    return peft


def freeze_backbone(model: nn.Module) -> int:
    """Freeze the backbone (the encoder, ``model.localization.backbone``: ``requires_grad = False``) and return the
    number of frozen parameters; the optimiser then gets only the rest (squeeze block and decoder). The authors freeze
    their DINOv3 backbones the same way (``config.freeze_bb`` freezes ``model.bb``)."""
    backbone = unwrap_base_model(model).localization.backbone
    count = 0
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
        count += parameter.numel()
    return count


def unwrap_base_model(model: nn.Module) -> nn.Module:
    """The :class:`BiRefNetForImageSegmentation` inside a PEFT model (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def lora_target_modules(model: nn.Module, parts: Sequence[str] = ("backbone", "decoder")) -> list[str]:
    """Full names of the ``nn.Linear`` / ungrouped ``nn.Conv2d`` layers of ``parts`` (see :data:`LORA_PARTS`), except
    the :data:`DIRECT_WEIGHT_LAYERS`."""
    unknown = [part for part in parts if part not in LORA_PARTS]
    if unknown or not parts:
        raise ValueError(f"LoRA parts must be a non-empty subset of {sorted(LORA_PARTS)}, got {list(parts)}")
    prefixes = tuple(prefix for part in parts for prefix in LORA_PARTS[part])
    names = []
    for name, module in model.named_modules():
        if not name.startswith(prefixes) or DIRECT_WEIGHT_LAYERS.search(name):
            continue
        if isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1):
            names.append(name)
    return names


def apply_lora(
    model: nn.Module,
    rank: int = 8,
    alpha: float | None = None,
    dropout: float = 0.0,
    parts: Sequence[str] = ("backbone", "decoder"),
    **lora_kwargs: Any,
) -> PeftModel:
    """Wrap ``model`` in a PEFT model with LoRA adapters of ``rank`` on the layers of :func:`lora_target_modules`;
    only the adapters train (``alpha`` defaults to ``2 * rank``). ``lora_kwargs`` go to ``peft.LoraConfig``."""
    peft = _require_peft()
    if rank < 1:
        raise ValueError(f"LoRA rank must be at least 1, got {rank}")
    targets = lora_target_modules(model, parts)
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=2 * rank if alpha is None else alpha,
        lora_dropout=dropout,
        target_modules=targets,
        bias="none",
        **lora_kwargs,
    )
    return peft.get_peft_model(model, config)


def load_lora(model: nn.Module, adapter_dir, is_trainable: bool = False) -> PeftModel:
    """Load adapters saved with ``peft_model.save_pretrained(adapter_dir)`` onto the base ``model``."""
    peft = _require_peft()
    return peft.PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=is_trainable)


@contextlib.contextmanager
def adapters_merged(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, a PEFT model's adapters are folded into the base weights (and taken out again after).

    Evaluation uses it: the model's CPU inference kernels (Swin blocks) read the base layers' weights directly, so
    unmerged adapters would be ignored there. Unmerging subtracts what merging added: the base weights come back up
    to float rounding. A model without adapters passes through unchanged."""
    if not hasattr(model, "merge_adapter"):
        yield model
        return
    model.merge_adapter()
    try:
        yield model
    finally:
        model.unmerge_adapter()


@torch.no_grad()
def merge_lora(peft_model: nn.Module) -> nn.Module:
    """Fold the adapters into the base weights and return the plain model (same keys as a model without LoRA)."""
    if not hasattr(peft_model, "merge_and_unload"):
        raise TypeError(f"expected a PEFT model with LoRA adapters, got {type(peft_model).__name__}")
    return peft_model.merge_and_unload()
