# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Pipelines for BiRefNet.

* `pipeline("image-segmentation", model=...)` is transformers' own `ImageSegmentationPipeline`: BiRefNet's image
  processor only defines `post_process_semantic_segmentation`, so the pipeline takes its semantic path and returns
  one `{"label", "mask", "score": None}` entry per label present ("background" and/or "foreground"), each mask an
  "L" image (0 / 255) at the input's size.
* `pipeline("background-removal", model=...)` ([`BackgroundRemovalPipeline`], registered by
  [`register_pipelines`] when `birefnet_hf` is imported) returns the soft matte and the RGBA cut-out. Given a model
  without an image processor, it runs at the size [`~birefnet_hf.families.native_image_processor`] picks (the
  repository's `preprocessor_config.json`, else the released family's native size, else 1024x1024).
* [`birefnet_pipeline`] builds either pipeline from a Hub id or folder in the authors' layout too (converted on
  load, the family's native size): transformers' `pipeline(task, model=ID)` reads the authors' `config.json` with
  `AutoConfig`, which refuses it (remote code, no `model_type`) before this package can convert anything.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import PIL.Image
import torch
from transformers import AutoModelForImageSegmentation, Pipeline, PreTrainedModel
from transformers.pipelines import PIPELINE_REGISTRY

from . import cutout as cutout_ops
from .cpu_budget import apply_cpu_budget
from .cutout_options import MatteOptions, apply_matte_options
from .families import native_image_processor
from .image_processing_birefnet import to_rgb_image
from .prediction import forward_logits, logits_to_mattes, preprocess_images

__all__ = ["BackgroundRemovalPipeline", "birefnet_pipeline", "register_pipelines", "BACKGROUND_REMOVAL_TASK"]

#: Task name of [`BackgroundRemovalPipeline`].
BACKGROUND_REMOVAL_TASK = "background-removal"


def make_cutout(image: PIL.Image.Image, matte: PIL.Image.Image) -> PIL.Image.Image:
    """The RGBA cut-out: the RGB image with `matte` ("L", same size) as its alpha channel."""
    if image.size != matte.size:
        raise ValueError(f"Image size {image.size} and matte size {matte.size} differ.")
    cutout = image.convert("RGBA")
    cutout.putalpha(matte)
    return cutout


class BackgroundRemovalPipeline(Pipeline):
    """Remove the background of images with a BiRefNet model.

    Example:

    ```python
    >>> import birefnet_hf  # registers the task
    >>> from transformers import pipeline

    >>> remover = pipeline("background-removal", model="path/to/birefnet")
    >>> result = remover("photo.jpg")
    >>> result["cutout"].save("photo.png")  # RGBA, alpha = result["matte"]
    ```

    Inputs are file paths, PIL images (any mode; EXIF orientation applied), NumPy arrays or torch tensors, one or
    a list. Each result is a dict:

    - **matte** (`PIL.Image`, mode "L"): the soft foreground matte, `uint8(255 * p)` (truncating, as the authors save
      predictions) with p = sigmoid(logits) bilinearly resized to the input's size (the paper's evaluation
      protocol); the steps are those of [`~birefnet_hf.prediction.predict_mattes`].
    - **cutout** (`PIL.Image`, mode "RGBA"): the foreground colours with the matte as alpha channel. By default the
      colours of soft edges are blur-fusion estimates (`cutout.estimate_foreground`), free of the old background's
      tint; `refine_foreground=False` keeps the input's RGB.
    - **composite** (`PIL.Image`, mode "RGB"; only with `background=...`): the cut-out on a new background.

    Call arguments (also accepted when the pipeline is built): `refine_foreground` (default True), `max_side`
    (downscale inputs so their longest side is at most N), matte post-processing `threshold`, `dilate`, `erode`,
    `feather` (pixels) and `alpha_matting` (pymatting), applied in the order of `cutout_options.MatteOptions`, and
    `background` ("white", "#RRGGBB", "blur", an (r, g, b) tuple, an image file or a PIL image).

    Batching (`batch_size=N`) needs images resized to one size (the processor's default fixed size).

    Without an `image_processor`, the processor is [`~birefnet_hf.families.native_image_processor`]'s for the model:
    so `pipeline("background-removal", model=BiRefNetForImageSegmentation.from_pretrained("ZhengPeng7/BiRefNet_HR"))`
    runs at 2048x2048.
    """

    _load_processor = False
    # None: transformers tries AutoImageProcessor on a model id and leaves the processor to __init__ otherwise (a model
    # object, a repository without preprocessor_config.json), where native_image_processor picks it
    _load_image_processor = None
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.image_processor is None:
            self.image_processor = native_image_processor(self.model)
        if self.device.type == "cpu":
            apply_cpu_budget()  # torch threads for the CPUs this process may use (affinity mask, cgroup quota)

    def _sanitize_parameters(
        self,
        refine_foreground: bool | None = None,
        max_side: int | None = None,
        threshold: float | None = None,
        dilate: int | None = None,
        erode: int | None = None,
        feather: int | None = None,
        alpha_matting: bool | None = None,
        background: Any = None,
        **kwargs: Any,
    ) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments: {sorted(kwargs)}")
        preprocess_params = {}
        if max_side is not None:
            if int(max_side) != max_side or max_side < 1:
                raise ValueError(f"max_side must be a positive integer, got {max_side}.")
            preprocess_params["max_side"] = int(max_side)
        MatteOptions(threshold, dilate or 0, erode or 0, feather or 0)  # checks the values (ValueError)
        if isinstance(background, str):
            background = cutout_ops.parse_background(background)
        if isinstance(background, os.PathLike):
            background = to_rgb_image(background)
        if alpha_matting:
            cutout_ops.import_pymatting()
        postprocess_params = {
            name: value
            for name, value in (
                ("refine_foreground", refine_foreground),
                ("threshold", threshold),
                ("dilate", dilate),
                ("erode", erode),
                ("feather", feather),
                ("alpha_matting", alpha_matting),
                ("background", background),
            )
            if value is not None
        }
        return preprocess_params, {}, postprocess_params

    def __call__(
        self, inputs: Any, **kwargs: Any
    ) -> dict[str, PIL.Image.Image] | list[dict[str, PIL.Image.Image]]:
        """Remove the background of one image or a list of images; see the class docstring for the outputs."""
        if isinstance(inputs, (np.ndarray, torch.Tensor)) and inputs.ndim == 4:
            inputs = list(inputs)
        if isinstance(inputs, (list, tuple)) and not inputs:
            # still refuse unknown arguments (the batching ones are the base class's)
            self._sanitize_parameters(
                **{k: v for k, v in kwargs.items() if k not in ("batch_size", "num_workers")}
            )
            return []  # transformers' batching would index the first item
        return super().__call__(inputs, **kwargs)

    def preprocess(self, image: Any, max_side: int | None = None) -> dict[str, Any]:
        image = cutout_ops.fit_max_side(to_rgb_image(image), max_side)
        # the device and dtype are set in one place, `prediction.forward_logits`
        model_inputs = {"pixel_values": preprocess_images(self.image_processor, [image])[0]}
        model_inputs["target_size"] = [(image.height, image.width)]
        model_inputs["image"] = [image]
        return model_inputs

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        target_size = model_inputs.pop("target_size")
        image = model_inputs.pop("image")
        logits = forward_logits(self.model, model_inputs["pixel_values"])
        return {"logits": logits, "target_size": target_size, "image": image}

    def postprocess(
        self,
        model_outputs: dict[str, Any],
        refine_foreground: bool = True,
        threshold: float | None = None,
        dilate: int = 0,
        erode: int = 0,
        feather: int = 0,
        alpha_matting: bool = False,
        background: Any = None,
    ) -> dict[str, PIL.Image.Image]:
        logits, sizes = model_outputs["logits"], model_outputs["target_size"]
        matte = logits_to_mattes(self.image_processor, logits, sizes)[0]
        image = model_outputs["image"][0]
        options = MatteOptions(threshold, dilate, erode, feather, alpha_matting)
        matte = np.asarray(apply_matte_options(image, PIL.Image.fromarray(matte, mode="L"), options))
        rgba = cutout_ops.cutout_rgba(image, matte, refine_foreground=refine_foreground)
        result = {
            "matte": PIL.Image.fromarray(matte, mode="L"),
            "cutout": PIL.Image.fromarray(rgba, mode="RGBA"),
        }
        if background is not None:
            if isinstance(background, str) and background == "blur":
                background = cutout_ops.blurred_background(image)
            result["composite"] = PIL.Image.fromarray(
                cutout_ops.composite(rgba[..., :3], matte, background), mode="RGB"
            )
        return result


def birefnet_pipeline(
    task: str = BACKGROUND_REMOVAL_TASK,
    model: str | os.PathLike | PreTrainedModel | None = None,
    image_processor: Any = None,
    model_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Pipeline:
    """A transformers pipeline for a BiRefNet from any source, at the model's native input size.

    ``model``: a Hub id or folder, in this package's layout or the authors' (their Hub repositories, RMBG-2.0, a
    local copy: converted on load by [`~birefnet_hf.BiRefNetForImageSegmentation.from_pretrained`]), or a loaded
    model. ``task``: ``"background-removal"`` (default) or ``"image-segmentation"``. Without ``image_processor``, the
    processor is [`~birefnet_hf.families.native_image_processor`]'s: 2048x2048 for ``ZhengPeng7/BiRefNet_HR``,
    1440x2560 for ``BiRefNet_lite-2K``, 512 for ``BiRefNet_512x512``, the dynamic rule for ``BiRefNet_dynamic``.
    ``model_kwargs`` go to ``from_pretrained`` (``revision``, ``dtype``, ``device_map``, ...), the other keyword
    arguments to transformers' ``pipeline`` (``device``, ``batch_size``, the task's call arguments).

    This is the entry point for the authors' repositories: ``pipeline(task, model="ZhengPeng7/BiRefNet_HR")`` cannot
    work there without ``trust_remote_code`` (transformers' ``AutoConfig`` refuses their ``config.json``: remote code,
    no ``model_type``), and ``pipeline(task, model=model)`` with a model object and no ``image_processor`` fails in
    transformers for ``"image-segmentation"`` ("Impossible to guess which image processor to use").
    """
    from transformers import pipeline

    from .modeling_birefnet import BiRefNetForImageSegmentation

    if model is None:
        raise ValueError("birefnet_pipeline needs a model: a Hub id, a folder or a loaded BiRefNet.")
    model_kwargs = dict(model_kwargs or {})
    if isinstance(model, (str, os.PathLike)):
        model = BiRefNetForImageSegmentation.from_pretrained(os.fspath(model), **model_kwargs)
    elif not isinstance(model, PreTrainedModel):
        raise TypeError(f"model must be a Hub id, a folder or a loaded BiRefNet, got {type(model).__name__}.")
    if image_processor is None:
        hub_keys = ("revision", "token", "cache_dir", "local_files_only")
        hub_kwargs = {key: model_kwargs[key] for key in hub_keys if key in model_kwargs}
        image_processor = native_image_processor(model, **hub_kwargs)
    return pipeline(task, model=model, image_processor=image_processor, **kwargs)


def register_pipelines() -> None:
    """Register the `background-removal` task with transformers' pipeline registry (idempotent)."""
    if BACKGROUND_REMOVAL_TASK in PIPELINE_REGISTRY.get_supported_tasks():
        return
    PIPELINE_REGISTRY.register_pipeline(
        BACKGROUND_REMOVAL_TASK,
        pipeline_class=BackgroundRemovalPipeline,
        pt_model=AutoModelForImageSegmentation,
        type="image",
    )
