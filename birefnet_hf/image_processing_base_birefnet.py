# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""What BiRefNet's two image-processor backends share: their settings, the size rule and the post-processing.

Pre-processing follows the paper (Sec. 4.1: "All images are resized to 1024x1024 for training and testing") and
the authors' inference code, which is, for a PIL image::

    transforms.Compose([transforms.Resize((1024, 1024)), transforms.ToTensor(),
                        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

Post-processing follows the paper's evaluation ("the generated segmentation maps are resized (i.e., bilinear
interpolation) to the original size"): sigmoid at model resolution, then the bilinear resize
([`~birefnet_hf.chunked_resize.resize_logits_to_probabilities`], in row chunks).

The backends themselves, following the transformers 5.x layout, are in
[`~birefnet_hf.image_processing_birefnet.BiRefNetImageProcessor`] (torchvision, the default of
`AutoImageProcessor`) and [`~birefnet_hf.image_processing_pil_birefnet.BiRefNetImageProcessorPil`] (PIL, the
authors' chain exactly). Both turn every input into the same upright 8-bit RGB pixels first
([`~birefnet_hf.image_io.to_rgb_array`]), so they only differ in how the resize is computed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from transformers.image_processing_base import BatchFeature
from transformers.image_processing_outputs import SemanticSegmentationPostProcessorOutput
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling, SizeDict
from transformers.processing_utils import ImagesKwargs, Unpack
from transformers.utils import TensorType

from .chunked_resize import resize_logits_to_probabilities
from .image_io import flatten_images, load_image_paths

__all__ = ["BiRefNetImageProcessorKwargs", "BiRefNetImageProcessorMixin", "get_model_input_size", "validate_size"]


def _round_to_multiple(value: float, multiple: int, minimum: int) -> int:
    return max(minimum, int(math.floor(value / multiple + 0.5)) * multiple)


def get_model_input_size(
    height: int, width: int, size: SizeDict | dict, size_divisor: int = 32
) -> tuple[int, int]:
    """The (height, width) an image of the given size is resized to.

    Args:
        height, width (`int`): size of the original image.
        size (`SizeDict` or `dict`): either `{"height": H, "width": W}` (a fixed size, both multiples of
            `size_divisor`), or `{"longest_edge": L}` (keep the aspect ratio: the longer side becomes about `L`,
            and both sides are rounded to the nearest multiple of `size_divisor`, ties up, and kept at least
            `2 * size_divisor` = 64: the model runs its backbone on the image and on a half-size copy, whose
            stride-4 features must still cover PVT-v2's 8x8 spatial-reduction kernel).
        size_divisor (`int`, defaults to 32): BiRefNet needs input sides that are multiples of 32.
    """
    size = SizeDict(**dict(size)) if not isinstance(size, SizeDict) else size
    if size.height is not None and size.width is not None:
        return int(size.height), int(size.width)
    if size.longest_edge is not None:
        scale = size.longest_edge / max(height, width)
        minimum = min(2 * size_divisor, size.longest_edge)
        return (
            _round_to_multiple(height * scale, size_divisor, minimum),
            _round_to_multiple(width * scale, size_divisor, minimum),
        )
    raise ValueError(
        f"BiRefNet's image processor supports size={{'height': H, 'width': W}} or size={{'longest_edge': L}}, "
        f"got {dict(size)}."
    )


def validate_size(size: SizeDict | None, size_divisor: int | None, do_resize: bool | None) -> None:
    """Refuse settings the model cannot run: a size that is not a multiple of `size_divisor`, a missing size, ..."""
    if size_divisor is None or size_divisor < 1:
        raise ValueError(f"size_divisor must be a positive integer, got {size_divisor!r}.")
    if not do_resize:
        return
    if size is None:
        raise ValueError("`size` must be set when do_resize=True.")
    keys = {key for key, _ in size}
    if keys == {"height", "width"}:
        if size.height % size_divisor or size.width % size_divisor or size.height <= 0 or size.width <= 0:
            raise ValueError(
                f"size={{'height': {size.height}, 'width': {size.width}}}: BiRefNet needs positive sides that are "
                f"multiples of {size_divisor} (e.g. 1024, 768, 512)."
            )
    elif keys == {"longest_edge"}:
        if size.longest_edge < size_divisor:
            raise ValueError(
                f"size['longest_edge'] must be at least {size_divisor}, got {size.longest_edge}."
            )
    else:
        raise ValueError(
            f"BiRefNet's image processor supports size={{'height': H, 'width': W}} or size={{'longest_edge': L}}, "
            f"got {dict(size)}."
        )


def _get_logits(outputs: Any) -> torch.Tensor:
    logits = outputs if isinstance(outputs, torch.Tensor) else getattr(outputs, "logits", None)
    if logits is None and isinstance(outputs, dict):
        logits = outputs.get("logits")
    if not isinstance(logits, torch.Tensor):
        raise TypeError("Expected model outputs with a `logits` tensor (or the logits tensor itself).")
    if logits.ndim == 3:
        logits = logits[:, None]
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(
            f"Expected BiRefNet logits of shape (batch, 1, height, width), got {tuple(logits.shape)}."
        )
    return logits


def _get_target_sizes(logits: torch.Tensor, target_sizes: Any) -> list[tuple[int, int]]:
    if target_sizes is None:
        return [tuple(logits.shape[-2:])] * logits.shape[0]
    if isinstance(target_sizes, torch.Tensor):
        target_sizes = target_sizes.tolist()
    target_sizes = [tuple(int(v) for v in size) for size in target_sizes]
    if len(target_sizes) != logits.shape[0]:
        raise ValueError(
            f"Got {len(target_sizes)} target sizes for a batch of {logits.shape[0]} predictions; pass one "
            "(height, width) per image."
        )
    for size in target_sizes:
        if len(size) != 2:
            raise ValueError(f"Each target size must be (height, width), got {size}.")
    return target_sizes


class BiRefNetImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    size_divisor (`int`, *optional*, defaults to 32):
        With `size={"longest_edge": L}`, both output sides are rounded to multiples of this value; fixed sizes
        must be multiples of it. BiRefNet needs 32.
    """

    size_divisor: int


class BiRefNetImageProcessorMixin:
    """What both backends share: defaults, input handling, size rules and post-processing."""

    valid_kwargs = BiRefNetImageProcessorKwargs
    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BILINEAR
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"height": 1024, "width": 1024}
    default_to_square = True
    size_divisor = 32
    do_resize = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True

    def __init__(self, **kwargs: Unpack[BiRefNetImageProcessorKwargs]):
        super().__init__(**kwargs)
        validate_size(self.size, self.size_divisor, self.do_resize)

    def fetch_images(self, image_url_or_urls: Any) -> Any:
        """Load local image paths with [`~birefnet_hf.image_io.load_image`] (PIL, EXIF-aware), so that both
        backends see the same pixels."""
        return load_image_paths(image_url_or_urls)

    def _prepare_images_structure(self, images: Any, expected_ndims: int = 3) -> list[Any]:
        flat = flatten_images(images)
        if not flat:
            raise ValueError("`images` is empty: pass at least one image.")
        return flat

    def _validate_preprocess_kwargs(self, size=None, size_divisor=None, do_resize=None, **kwargs) -> None:
        super()._validate_preprocess_kwargs(size=size, do_resize=do_resize, **kwargs)
        validate_size(size, size_divisor, do_resize)
        if kwargs.get("do_convert_rgb") is False:
            raise ValueError("BiRefNet needs RGB input: do_convert_rgb=False is not supported.")

    @staticmethod
    def _to_batch_feature(images: list, return_tensors: str | TensorType | None) -> BatchFeature:
        if return_tensors is not None and len({tuple(image.shape) for image in images}) > 1:
            shapes = sorted({tuple(image.shape[-2:]) for image in images})
            raise ValueError(
                f"The images were resized to different sizes {shapes} (size={{'longest_edge': ...}} keeps each "
                "aspect ratio), so they cannot be stacked into one tensor. Process them one at a time, pass "
                "return_tensors=None, or use a fixed size."
            )
        return BatchFeature(data={"pixel_values": images}, tensor_type=return_tensors)

    def post_process_semantic_segmentation(
        self,
        outputs: Any,
        target_sizes: Sequence[tuple[int, int]] | torch.Tensor | None = None,
        threshold: float = 0.5,
        return_segmentation_scores: bool = False,
    ) -> list[torch.Tensor] | list[SemanticSegmentationPostProcessorOutput]:
        """Turn BiRefNet logits into label maps: 1 where sigmoid(logit) > `threshold` (foreground), else 0.

        The probabilities (sigmoid at model resolution) are resized bilinearly (align_corners=True, as the authors'
        inference does) to each target size, then thresholded. This is what `pipeline("image-segmentation")` calls.

        Args:
            outputs: the model output (anything with `.logits` of shape (batch, 1, h, w)) or the logits.
            target_sizes: one (height, width) per image; `None` keeps the model resolution.
            threshold (`float`, defaults to 0.5): foreground probability threshold.
            return_segmentation_scores (`bool`, defaults to `False`): also return per-class scores, as
                transformers' semantic-segmentation processors do (SegFormer, DPT, ...). BiRefNet has a single
                foreground logit, so its scores are the two class probabilities `(1 - p, p)` at the target size
                (`p` as in [`~BiRefNetImageProcessor.post_process_alpha`]); `segmentation` is `p > threshold`, which
                is their argmax for the default threshold 0.5.

        Returns:
            `list[torch.Tensor]`: one int64 (height, width) map per image with values 0 (background) and
            1 (foreground), matching `config.id2label`; with `return_segmentation_scores=True`, one
            `SemanticSegmentationPostProcessorOutput` per image with `segmentation` (that map) and
            `segmentation_scores` (float32, shape (2, height, width): background and foreground probability).
        """
        logits = _get_logits(outputs)
        sizes = _get_target_sizes(logits, target_sizes)
        if not return_segmentation_scores:
            return [
                resize_logits_to_probabilities(logits[i, 0], sizes[i], output="label", threshold=threshold)
                for i in range(logits.shape[0])
            ]
        results = []
        for i in range(logits.shape[0]):
            foreground = resize_logits_to_probabilities(logits[i, 0], sizes[i], output="float")
            segmentation = (foreground > threshold).long()
            scores = torch.stack([1.0 - foreground, foreground])
            results.append(
                SemanticSegmentationPostProcessorOutput(
                    data={"segmentation": segmentation, "segmentation_scores": scores}
                )
            )
        return results

    def post_process_alpha(
        self,
        outputs: Any,
        target_sizes: Sequence[tuple[int, int]] | torch.Tensor | None = None,
        output_dtype: torch.dtype = torch.float32,
    ) -> list[torch.Tensor]:
        """Turn BiRefNet logits into soft alpha mattes at each original size, as the paper evaluates.

        ``F.interpolate(sigmoid(logits), size, mode="bilinear", align_corners=True)``, computed in row chunks.

        Args:
            outputs: the model output (anything with `.logits` of shape (batch, 1, h, w)) or the logits.
            target_sizes: one (height, width) per image (the original sizes); `None` keeps the model resolution.
            output_dtype (`torch.dtype`, defaults to `torch.float32`): `torch.float32` for mattes in [0, 1], or
                `torch.uint8` for `uint8(255 * matte)`, truncating as the authors save predictions
                (`birefnet_hf.prediction.quantize_probabilities`; 4x less memory, what PNG files store).

        Returns:
            `list[torch.Tensor]`: one (height, width) matte per image, on the CPU.
        """
        if output_dtype not in (torch.float32, torch.uint8):
            raise ValueError(f"output_dtype must be torch.float32 or torch.uint8, got {output_dtype}.")
        logits = _get_logits(outputs)
        sizes = _get_target_sizes(logits, target_sizes)
        output = "float" if output_dtype == torch.float32 else "uint8"
        return [
            resize_logits_to_probabilities(logits[i, 0], sizes[i], output=output)
            for i in range(logits.shape[0])
        ]
