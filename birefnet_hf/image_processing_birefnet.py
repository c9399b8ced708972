# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""BiRefNet image processor, torchvision backend: photos in, normalised model tensors out; logits in, masks and
mattes out.

The default of `AutoImageProcessor`. What both backends share (settings, the size rule, the post-processing) is in
:mod:`birefnet_hf.image_processing_base_birefnet`; the PIL backend, which reproduces the authors' transform chain
exactly, is [`~birefnet_hf.image_processing_pil_birefnet.BiRefNetImageProcessorPil`]; image input is
:mod:`birefnet_hf.image_io`. The names this module held before the split are re-exported, so
``from birefnet_hf.image_processing_birefnet import BiRefNetImageProcessorPil, load_image, ...`` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torchvision.transforms.v2 import functional as tvF
from transformers.image_processing_backends import TorchvisionBackend
from transformers.image_processing_base import BatchFeature
from transformers.image_utils import (
    ChannelDimension,
    PILImageResampling,
    SizeDict,
    pil_torch_interpolation_mapping,
)
from transformers.utils import TensorType

from .chunked_resize import resize_logits_to_probabilities
from .image_io import apply_exif_orientation, load_image, to_rgb_array, to_rgb_image
from .image_processing_base_birefnet import (
    BiRefNetImageProcessorKwargs,
    BiRefNetImageProcessorMixin,
    get_model_input_size,
)
from .image_processing_pil_birefnet import BiRefNetImageProcessorPil

__all__ = [
    "BiRefNetImageProcessor",
    # re-exported from the modules split out of this one
    "BiRefNetImageProcessorKwargs",
    "BiRefNetImageProcessorPil",
    "apply_exif_orientation",
    "get_model_input_size",
    "load_image",
    "resize_logits_to_probabilities",
    "to_rgb_array",
    "to_rgb_image",
]


class BiRefNetImageProcessor(BiRefNetImageProcessorMixin, TorchvisionBackend):
    r"""
    BiRefNet image processor, torchvision backend (the default of `AutoImageProcessor`).

    Every input (PIL image in any mode, NumPy array, torch tensor, file path, or a list of them) is first made an
    upright 8-bit RGB image (EXIF orientation applied, transparency composited onto white, 16-bit data reduced
    to its high byte; see [`~birefnet_hf.image_io.to_rgb_array`]), then resized with antialiased bilinear interpolation on uint8
    data, scaled by 1/255 and normalised with the ImageNet mean and standard deviation.

    Against the authors' preprocessing (PIL bilinear resize, `ToTensor`, `Normalize`), which
    [`BiRefNetImageProcessorPil`] reproduces exactly, this backend's antialiased downscaling rounds slightly
    differently: resizing a 4000x3000 photo-like image to 1024x1024, 0.2% of the uint8 values differ by one
    level and none by more, so the normalised outputs differ by at most 1 / (255 * 0.224) = 0.0175 and by
    4e-5 on average; upscaling agrees to float rounding (< 1e-5). Measured in tests/test_image_processing.py
    and benchmarks/preprocess.py; far below what changes a prediction. Its resize is several times faster
    than PIL's, but it first copies the whole photo into a tensor; see benchmarks/preprocess.py for the net.

    Args:
        size (`dict[str, int]`, *optional*, defaults to `{"height": 1024, "width": 1024}`):
            `{"height": H, "width": W}` (multiples of 32) for a fixed size, as in the paper, or
            `{"longest_edge": L}` to keep the aspect ratio (both sides rounded to multiples of `size_divisor`).
            Images resized to different sizes cannot be returned as one tensor.
        resample (`PILImageResampling`, *optional*, defaults to `BILINEAR`): resampling filter.
        size_divisor (`int`, *optional*, defaults to 32): see `size`.
        do_rescale, rescale_factor, do_normalize, image_mean, image_std: as usual (1/255, ImageNet statistics).
    """

    def process_image(
        self,
        image: Any,
        input_data_format: str | ChannelDimension | None = None,
        device: str | torch.device | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """One input -> (3, H, W) uint8 tensor. It is a view of channels-last memory, which makes the uint8
        antialiased resize several times faster than on planar data."""
        tensor = torch.from_numpy(to_rgb_array(image, input_data_format)).permute(2, 0, 1)
        return tensor.to(device) if device is not None else tensor

    def resize(
        self,
        image: torch.Tensor,
        size: SizeDict,
        resample: PILImageResampling | tvF.InterpolationMode | int | None = None,
        antialias: bool = True,
        size_divisor: int = 32,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Resize to the size [`get_model_input_size`] gives for this image's height and width."""
        height, width = get_model_input_size(image.shape[-2], image.shape[-1], size, size_divisor)
        if resample is None:
            interpolation = tvF.InterpolationMode.BILINEAR
        elif isinstance(resample, (PILImageResampling, int)):
            interpolation = pil_torch_interpolation_mapping[resample]
        else:
            interpolation = resample
        return tvF.resize(image, [height, width], interpolation=interpolation, antialias=antialias)

    def _preprocess(
        self,
        images: list[torch.Tensor],
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
        # Batch images of equal shape; stack channels-last so the resize keeps its fast path.
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(tuple(image.shape), []).append(index)
        processed: list[torch.Tensor | None] = [None] * len(images)
        for indices in groups.values():
            if len(indices) == 1:
                batch = images[indices[0]][None]
            else:
                batch = torch.stack([images[i].permute(1, 2, 0) for i in indices]).permute(0, 3, 1, 2)
            if do_resize:
                batch = self.resize(batch, size=size, resample=resample, size_divisor=size_divisor)
            # Planar uint8 first (small): the float normalisation is faster on contiguous data.
            batch = self.rescale_and_normalize(
                batch.contiguous(), do_rescale, rescale_factor, do_normalize, image_mean, image_std
            ).contiguous()
            for position, index in enumerate(indices):
                processed[index] = batch[position]
        return self._to_batch_feature(processed, return_tensors)
