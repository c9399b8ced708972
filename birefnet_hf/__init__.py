# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""birefnet_hf: BiRefNet as a native Hugging Face transformers model.

``import birefnet_hf`` registers the config, model, image processor and pipelines with the transformers Auto
classes, so ``AutoModelForImageSegmentation.from_pretrained(folder)`` and ``pipeline("image-segmentation", ...)`` work
without ``trust_remote_code``.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageSegmentation

from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig
from .image_processing_birefnet import BiRefNetImageProcessor, BiRefNetImageProcessorPil
from .modeling_birefnet import (
    BiRefNetForImageSegmentation,
    BiRefNetImageSegmentationOutput,
    BiRefNetModel,
    BiRefNetModelOutput,
    BiRefNetPreTrainedModel,
)
from .pipelines import BackgroundRemovalPipeline, register_pipelines
from .background_removal import BackgroundRemovalResult, remove_background

AutoConfig.register(BiRefNetConfig.model_type, BiRefNetConfig, exist_ok=True)
AutoModel.register(BiRefNetConfig, BiRefNetModel, exist_ok=True)
AutoModelForImageSegmentation.register(BiRefNetConfig, BiRefNetForImageSegmentation, exist_ok=True)
AutoImageProcessor.register(
    BiRefNetConfig,
    image_processor_classes={"torchvision": BiRefNetImageProcessor, "pil": BiRefNetImageProcessorPil},
    exist_ok=True,
)
register_pipelines()

__version__ = "0.1.0"

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
