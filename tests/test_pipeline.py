# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""pipeline("image-segmentation"), pipeline("background-removal") and remove_background with a tiny random model."""

from __future__ import annotations

import io
import shutil

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import pipeline

import birefnet_hf
from birefnet_hf import cutout as cutout_ops
from birefnet_hf import (
    BackgroundRemovalPipeline,
    BiRefNetForImageSegmentation,
    BiRefNetImageProcessor,
    remove_background,
)

RESOLUTION = 64


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory):
    """The shared tiny random pvt_v2_b0 model (conftest), plus a 64x64 image processor, like a released folder."""
    folder = tmp_path_factory.mktemp("tiny_birefnet_with_processor")
    shutil.copytree(tiny_model_dir, folder, dirs_exist_ok=True)
    BiRefNetImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_and_processor(model_dir):
    return BiRefNetForImageSegmentation.from_pretrained(
        model_dir
    ).eval(), BiRefNetImageProcessor.from_pretrained(model_dir)


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = PIL.Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8))
    return np.array(coarse.resize((width, height), PIL.Image.BICUBIC))


@torch.inference_mode()
def reference_probabilities(model_and_processor, image) -> torch.Tensor:
    """Model probabilities at the image's size, computed step by step with the authors' recipe."""
    model, processor = model_and_processor
    rgb = birefnet_hf.image_processing_birefnet.to_rgb_array(image)
    logits = model(**processor(rgb, return_tensors="pt")).logits
    return torch.nn.functional.interpolate(logits.sigmoid(), size=rgb.shape[:2], mode="bilinear", align_corners=True)[
        0, 0
    ]


# ------------------------------------------------------------------------------------ stock image-segmentation


def test_image_segmentation_pipeline_returns_the_foreground_mask_at_input_size(
    model_dir, model_and_processor
):
    segmenter = pipeline("image-segmentation", model=str(model_dir))
    assert type(segmenter.image_processor) is BiRefNetImageProcessor
    image = PIL.Image.fromarray(photo(333, 517))
    segments = segmenter(image)

    labels = [segment["label"] for segment in segments]
    assert set(labels) <= {"background", "foreground"} and len(labels) == len(set(labels)) >= 1
    masks = {}
    for segment in segments:
        assert segment["score"] is None
        assert segment["mask"].mode == "L" and segment["mask"].size == image.size
        masks[segment["label"]] = np.asarray(segment["mask"])
        assert set(np.unique(masks[segment["label"]])) <= {0, 255}
    expected_foreground = np.where(reference_probabilities(model_and_processor, image).numpy() > 0.5, 255, 0)
    foreground = masks.get("foreground", np.zeros(image.size[::-1], np.uint8))
    assert np.mean(foreground != expected_foreground) < 1e-3  # only float-rounding ties at 0.5 may differ
    batch = segmenter([image, PIL.Image.fromarray(photo(20, 90, 1))], batch_size=2)
    assert [{segment["mask"].size for segment in segments} for segments in batch] == [
        {(517, 333)},
        {(90, 20)},
    ]
    if len(masks) == 2:
        assert np.array_equal(
            masks["background"].astype(int) + masks["foreground"], np.full(masks["background"].shape, 255)
        )


def test_image_segmentation_pipeline_reads_exif_rotated_files(model_dir, tmp_path):
    stored = photo(80, 48)  # portrait pixels; EXIF 6 displays them as landscape 80x48
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    PIL.Image.fromarray(stored).save(path, format="JPEG", exif=exif)
    segments = pipeline("image-segmentation", model=str(model_dir))(str(path))
    assert all(segment["mask"].size == (80, 48) for segment in segments)


# ---------------------------------------------------------------------------------------- background-removal


def test_background_removal_pipeline_is_registered_and_returns_cutout_and_matte(
    model_dir, model_and_processor
):
    remover = pipeline("background-removal", model=str(model_dir))
    assert isinstance(remover, BackgroundRemovalPipeline)
    image = PIL.Image.fromarray(photo(333, 517))
    result = remover(image)
    assert set(result) == {"cutout", "matte"}
    cutout, matte = result["cutout"], result["matte"]
    assert cutout.mode == "RGBA" and matte.mode == "L"
    assert cutout.size == matte.size == image.size
    rgba = np.asarray(cutout)
    assert np.array_equal(rgba[..., 3], np.asarray(matte))
    # By default the colours are blur-fusion estimates; refine_foreground=False keeps the photo's.
    refined = cutout_ops.estimate_foreground(np.asarray(image), np.asarray(matte))
    assert np.array_equal(rgba[..., :3], refined)
    plain = remover(image, refine_foreground=False)["cutout"]
    assert np.array_equal(np.asarray(plain)[..., :3], np.asarray(image))
    expected = (reference_probabilities(model_and_processor, image) * 255).round().numpy()
    assert np.abs(np.asarray(matte).astype(int) - expected).max() <= 1


def test_background_removal_pipeline_batches_mixed_sizes(model_dir):
    remover = pipeline("background-removal", model=str(model_dir))
    images = [
        PIL.Image.fromarray(photo(333, 517)),
        PIL.Image.fromarray(photo(50, 400, 1)),
        PIL.Image.fromarray(photo(9, 9, 2)),
    ]
    batched = remover(images, batch_size=2)
    one_by_one = remover(images)
    assert [r["matte"].size for r in batched] == [image.size for image in images]
    for a, b in zip(batched, one_by_one, strict=True):
        assert np.abs(np.asarray(a["matte"]).astype(int) - np.asarray(b["matte"])).max() <= 1


def test_background_removal_pipeline_on_an_empty_list(model_dir):
    remover = pipeline("background-removal", model=str(model_dir))
    assert remover([]) == []
    assert remover((), batch_size=4) == []
    assert remover(np.zeros((0, 20, 20, 3), np.uint8)) == []
    with pytest.raises(TypeError, match="unexpected"):
        remover([], not_an_option=1)
    assert remove_background([], model=remover.model, processor=remover.image_processor) == []


# ------------------------------------------------------------------------------------------ remove_background


def _png(image: PIL.Image.Image) -> PIL.Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return PIL.Image.open(buffer)


def _inputs_of_every_mode():
    rgb = photo(45, 70)
    gray = rgb[..., 0]
    alpha = np.tile(np.linspace(0, 255, 70).astype(np.uint8), (45, 1))
    palette = PIL.Image.fromarray(rgb).quantize(8)
    transparent_palette = palette.copy()
    transparent_palette.info["transparency"] = 0
    return {
        "RGB": PIL.Image.fromarray(rgb),
        "RGBA": PIL.Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA"),
        "L": PIL.Image.fromarray(gray),
        "LA": PIL.Image.fromarray(np.dstack([gray, alpha]), mode="LA"),
        "P": palette,
        "P+transparency": transparent_palette,
        "CMYK": PIL.Image.fromarray(rgb).convert("CMYK"),
        "I;16": _png(PIL.Image.fromarray(gray.astype(np.uint16) * 257)),
        "I": PIL.Image.fromarray(gray.astype(np.int32) * 257),
        "numpy HWC": rgb,
        "numpy HW": gray,
        "numpy float": rgb.astype(np.float32) / 255,
        "torch CHW": torch.from_numpy(rgb).permute(2, 0, 1),
    }


def test_remove_background_handles_every_input_mode(model_and_processor):
    model, processor = model_and_processor
    inputs = _inputs_of_every_mode()
    results = dict(
        zip(
            inputs,
            remove_background(list(inputs.values()), model=model, processor=processor, batch_size=4),
            strict=True,
        )
    )
    for name, result in results.items():
        assert result.image.mode == "RGB" and result.image.size == (70, 45), name
        assert result.matte.mode == "L" and result.matte.size == (70, 45), name
        assert np.array_equal(np.asarray(result.cutout)[..., 3], np.asarray(result.matte)), name
    # The same picture in different containers gives the same matte.

    def same(a, b):
        return np.abs(np.asarray(results[a].matte).astype(int) - np.asarray(results[b].matte)).max() <= 1

    assert same("RGB", "numpy HWC") and same("RGB", "torch CHW") and same("RGB", "numpy float")
    assert same("L", "numpy HW") and same("L", "I;16") and same("L", "I")


def test_remove_background_from_paths_single_image_and_exif(model_dir, tmp_path):
    stored = photo(80, 48)
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    PIL.Image.fromarray(stored).save(path, format="JPEG", exif=exif)
    result = remove_background(str(path), model=model_dir)
    assert isinstance(result, birefnet_hf.BackgroundRemovalResult)
    assert result.matte.size == result.cutout.size == (80, 48)


@pytest.mark.parametrize("shape", [(1, 1), (333, 517), (4000, 50)])
def test_remove_background_odd_sizes(model_and_processor, shape):
    model, processor = model_and_processor
    image = PIL.Image.fromarray(photo(*shape))
    result = remove_background(image, model=model, processor=processor)
    assert result.matte.size == result.cutout.size == image.size
    mask = np.asarray(result.mask())
    assert set(np.unique(mask)) <= {0, 255}
    assert np.array_equal(mask, np.where(np.asarray(result.matte) > 127, 255, 0))
    assert result.overlay().mode == "RGB" and result.overlay().size == image.size


def test_remove_background_batches_of_mixed_sizes_match_single_images(model_and_processor):
    model, processor = model_and_processor
    images = [
        PIL.Image.fromarray(photo(h, w, seed))
        for seed, (h, w) in enumerate([(333, 517), (1, 1), (4000, 50), (64, 64)])
    ]
    batched = remove_background(images, model=model, processor=processor, batch_size=4)
    for image, result in zip(images, batched, strict=True):
        single = remove_background(image, model=model, processor=processor)
        assert result.matte.size == image.size
        assert np.abs(np.asarray(result.matte).astype(int) - np.asarray(single.matte)).max() <= 1


def test_remove_background_with_aspect_preserving_resolution(model_and_processor):
    model, processor = model_and_processor
    images = [PIL.Image.fromarray(photo(90, 200)), PIL.Image.fromarray(photo(200, 90, 1))]
    results = remove_background(
        images, model=model, processor=processor, batch_size=2, resolution={"longest_edge": 128}
    )
    assert [r.matte.size for r in results] == [(200, 90), (90, 200)]


def test_remove_background_in_bfloat16(model_dir):
    image = PIL.Image.fromarray(photo(60, 80))
    full = remove_background(image, model=model_dir, device="cpu")
    half = remove_background(image, model=model_dir, device="cpu", dtype="bfloat16")
    assert half.matte.size == (80, 60)
    assert np.abs(np.asarray(half.matte).astype(int) - np.asarray(full.matte)).mean() < 8


def test_remove_background_rejects_bad_arguments(model_and_processor):
    model, processor = model_and_processor
    with pytest.raises(ValueError, match="batch_size"):
        remove_background(np.zeros((8, 8, 3), np.uint8), model=model, processor=processor, batch_size=0)
    with pytest.raises(ValueError, match="dtype"):
        remove_background(np.zeros((8, 8, 3), np.uint8), model=model, processor=processor, dtype="float8")
    with pytest.raises(ValueError, match="multiples of 32"):
        remove_background(np.zeros((8, 8, 3), np.uint8), model=model, processor=processor, resolution=100)
