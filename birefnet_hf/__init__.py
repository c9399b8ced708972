# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""birefnet_hf: BiRefNet as a native Hugging Face transformers model.

``import birefnet_hf`` registers the config, model, image processor and pipelines with the transformers Auto
classes, so ``AutoModelForImageSegmentation.from_pretrained(folder)`` and ``pipeline("image-segmentation", ...)`` work
without ``trust_remote_code``.

The import is cheap: it imports neither torch nor transformers. The public names below are loaded on first access
(PEP 562), and each registration runs when transformers loads the matching Auto class (see
[`~birefnet_hf.auto_registration`]), so their cost is paid by the first use, not by the import.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from .auto_registration import install_auto_registration

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first access).
_LAZY_NAMES: tuple[tuple[str, str], ...] = (
    ("AutoModelForImageSegmentation", "transformers"),
    ("BACKBONE_SPECS", "birefnet_hf.configuration_birefnet"),
    ("BiRefNetConfig", "birefnet_hf.configuration_birefnet"),
    ("BiRefNetImageProcessor", "birefnet_hf.image_processing_birefnet"),
    ("BiRefNetImageProcessorPil", "birefnet_hf.image_processing_birefnet"),
    ("BiRefNetForImageSegmentation", "birefnet_hf.modeling_birefnet"),
    ("BiRefNetImageSegmentationOutput", "birefnet_hf.modeling_birefnet"),
    ("BiRefNetModel", "birefnet_hf.modeling_birefnet"),
    ("BiRefNetModelOutput", "birefnet_hf.modeling_birefnet"),
    ("BiRefNetPreTrainedModel", "birefnet_hf.modeling_birefnet"),
    ("BackgroundRemovalPipeline", "birefnet_hf.pipelines"),
    ("register_pipelines", "birefnet_hf.pipelines"),
    ("BackgroundRemovalResult", "birefnet_hf.background_removal"),
    ("remove_background", "birefnet_hf.background_removal"),
)

__all__ = [
    "AutoModelForImageSegmentation",
    "BACKBONE_SPECS",
    "BackgroundRemovalPipeline",
    "BackgroundRemovalResult",
    "BiRefNetImageProcessor",
    "BiRefNetImageProcessorPil",
    "remove_background",
    "BiRefNetConfig",
    "BiRefNetForImageSegmentation",
    "BiRefNetImageSegmentationOutput",
    "BiRefNetModel",
    "BiRefNetModelOutput",
    "BiRefNetPreTrainedModel",
]

if TYPE_CHECKING:
    from transformers import AutoModelForImageSegmentation

    from .background_removal import BackgroundRemovalResult, remove_background
    from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig
    from .image_processing_birefnet import BiRefNetImageProcessor, BiRefNetImageProcessorPil
    from .modeling_birefnet import (
        BiRefNetForImageSegmentation,
        BiRefNetImageSegmentationOutput,
        BiRefNetModel,
        BiRefNetModelOutput,
        BiRefNetPreTrainedModel,
    )
    from .pipelines import BackgroundRemovalPipeline
    from .pipelines import register_pipelines as register_pipelines  # public, outside __all__ as before


def __getattr__(name: str) -> Any:
    """A public name from its module, or a submodule (``birefnet_hf.segment``), imported on first access."""
    module_name = dict(_LAZY_NAMES).get(name)
    if module_name is not None:
        value = getattr(importlib.import_module(module_name), name)
        globals()[name] = value  # later accesses skip this function
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {name for name, _ in _LAZY_NAMES})


install_auto_registration()
