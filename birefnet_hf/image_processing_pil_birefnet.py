# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""BiRefNet image processor, PIL backend (`AutoImageProcessor.from_pretrained(..., backend="pil")`): the authors'
preprocessing, value for value.

What both backends share (settings, the size rule, the post-processing) is in
:mod:`birefnet_hf.image_processing_base_birefnet`; image input is :mod:`birefnet_hf.image_io`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import PIL.Image
from torchvision.transforms.v2 import functional as tvF
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_base import BatchFeature
from transformers.image_utils import (
    ChannelDimension,
    PILImageResampling,
    SizeDict,
    torch_pil_interpolation_mapping,
)
from transformers.utils import TensorType

from .image_io import to_rgb_image
from .image_processing_base_birefnet import BiRefNetImageProcessorMixin, get_model_input_size

__all__ = ["BiRefNetImageProcessorPil"]


class BiRefNetImageProcessorPil(BiRefNetImageProcessorMixin, PilBackend):
    r"""
    BiRefNet image processor, PIL backend: the authors' preprocessing, value for value.

    Same input handling as [`~birefnet_hf.image_processing_birefnet.BiRefNetImageProcessor`] (see [`~birefnet_hf.image_io.to_rgb_array`]); the resize is PIL's bilinear
    filter (what `torchvision.transforms.Resize` does on PIL images), followed by `x / 255` and
    `(x - mean) / std` in float32, exactly like `ToTensor()` and `Normalize(mean, std)`. Outputs equal the
    authors' `Compose([Resize((1024, 1024)), ToTensor(), Normalize(...)])` to within 1e-6 (tested).

    Args: see [`~birefnet_hf.image_processing_birefnet.BiRefNetImageProcessor`].
    """

    def process_image(
        self, image: Any, input_data_format: str | ChannelDimension | None = None, **kwargs: Any
    ) -> PIL.Image.Image:
        """One input -> upright "RGB" PIL image. This backend keeps PIL images until after the resize (like the
        authors' chain), so a full-size photo is never copied into an array."""
        return to_rgb_image(image, input_data_format)

    def resize(
        self,
        image: PIL.Image.Image,
        size: SizeDict,
        resample: PILImageResampling | tvF.InterpolationMode | int | None = None,
        size_divisor: int = 32,
        **kwargs: Any,
    ) -> PIL.Image.Image:
        """Resize an RGB PIL image with PIL to the size [`get_model_input_size`] gives."""
        height, width = get_model_input_size(image.height, image.width, size, size_divisor)
        if resample is None:
            resample = PILImageResampling.BILINEAR
        elif not isinstance(resample, (PILImageResampling, int)):
            resample = torch_pil_interpolation_mapping[resample]
        return image.resize((width, height), resample=PILImageResampling(resample))

    def _preprocess(
        self,
        images: list[PIL.Image.Image],
        do_resize: bool,
        size: SizeDict,
        resample: PILImageResampling | tvF.InterpolationMode | int | None,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean: float | Iterable[float],
        image_std: float | Iterable[float],
        size_divisor: int = 32,
        return_tensors: str | TensorType | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        mean = np.asarray(image_mean, dtype=np.float32).reshape(-1, 1, 1)
        std = np.asarray(image_std, dtype=np.float32).reshape(-1, 1, 1)
        processed = []
        for image in images:
            if do_resize:
                image = self.resize(image, size=size, resample=resample, size_divisor=size_divisor)
            image = np.moveaxis(np.asarray(image), -1, 0).astype(np.float32)
            if do_rescale:
                # ToTensor divides by 255 in float32; do the same when the factor is the usual 1/255.
                if math.isclose(rescale_factor, 1 / 255, rel_tol=1e-12):
                    image = image / np.float32(255.0)
                else:
                    image = image * np.float32(rescale_factor)
            if do_normalize:
                image = (image - mean) / std
            processed.append(np.ascontiguousarray(image, dtype=np.float32))
        return self._to_batch_feature(processed, return_tensors)
