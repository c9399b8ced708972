# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""BiRefNetImageProcessor: inputs of every kind, the authors' preprocessing, sizes and post-processing."""

from __future__ import annotations

import io
import json

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F
from torchvision import transforms
from transformers import AutoImageProcessor

import birefnet_hf  # noqa: F401  (registers the Auto classes)
from birefnet_hf import BiRefNetConfig, BiRefNetImageProcessor, BiRefNetImageProcessorPil
from birefnet_hf.image_processing_birefnet import (
    get_model_input_size,
    load_image,
    resize_logits_to_probabilities,
    to_rgb_array,
)

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
BACKENDS = [BiRefNetImageProcessor, BiRefNetImageProcessorPil]


def authors_transform(size=(1024, 1024)):
    """The authors' inference preprocessing (BiRefNet README / inference.py)."""
    return transforms.Compose(
        [transforms.Resize(size), transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    )


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour regions plus sensor-like noise: resizes of it behave like resizes of photos."""
    rng = np.random.default_rng(seed)
    coarse = PIL.Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8))
    smooth = np.asarray(coarse.resize((width, height), PIL.Image.BICUBIC), dtype=np.float32)
    return np.clip(smooth + rng.normal(0.0, 6.0, smooth.shape), 0, 255).astype(np.uint8)


def small(backend=BiRefNetImageProcessor, **kwargs):
    return backend(size={"height": 64, "width": 64}, **kwargs)


# ------------------------------------------------------------------------------------------------ configuration


def test_defaults_follow_the_paper():
    processor = BiRefNetImageProcessor()
    assert dict(processor.size) == {"height": 1024, "width": 1024}
    assert processor.resample == PIL.Image.Resampling.BILINEAR
    assert processor.rescale_factor == pytest.approx(1 / 255)
    assert list(processor.image_mean) == MEAN and list(processor.image_std) == STD
    assert processor.size_divisor == 32


def test_save_and_auto_load_both_backends(tmp_path):
    BiRefNetImageProcessor(size={"longest_edge": 1280}).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["image_processor_type"] == "BiRefNetImageProcessor"
    assert saved["size"] == {"longest_edge": 1280}

    default = AutoImageProcessor.from_pretrained(tmp_path)
    pil = AutoImageProcessor.from_pretrained(tmp_path, backend="pil")
    assert type(default) is BiRefNetImageProcessor and type(pil) is BiRefNetImageProcessorPil
    assert dict(default.size) == dict(pil.size) == {"longest_edge": 1280}

    # A model folder: config.json (model_type "birefnet") + preprocessor_config.json.
    BiRefNetConfig(backbone="pvt_v2_b0").save_pretrained(tmp_path)
    assert type(AutoImageProcessor.from_pretrained(tmp_path)) is BiRefNetImageProcessor


def test_pil_backend_saves_under_the_base_name(tmp_path):
    BiRefNetImageProcessorPil().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["image_processor_type"] == "BiRefNetImageProcessor"


@pytest.mark.parametrize(
    "size", [100, {"height": 1024, "width": 1000}, {"shortest_edge": 512}, {"longest_edge": 16}]
)
def test_invalid_sizes_are_rejected(size):
    with pytest.raises(ValueError, match="size"):
        BiRefNetImageProcessor(size=size)
    with pytest.raises(ValueError, match="size"):
        BiRefNetImageProcessor()(np.zeros((8, 8, 3), np.uint8), size=size)


# ------------------------------------------------------------------------------------ authors' preprocessing


@pytest.mark.parametrize("shape", [(480, 640), (1500, 1100), (333, 517)])
def test_pil_backend_equals_authors_preprocessing(shape):
    image = PIL.Image.fromarray(photo_like(*shape))
    expected = authors_transform()(image)
    ours = BiRefNetImageProcessorPil()(image, return_tensors="pt")["pixel_values"]
    assert ours.shape == (1, 3, 1024, 1024) and ours.dtype == torch.float32
    assert (ours[0] - expected).abs().max().item() <= 1e-6


def test_pil_backend_equals_authors_preprocessing_at_other_fixed_size():
    image = PIL.Image.fromarray(photo_like(300, 700))
    expected = authors_transform((512, 768))(image)
    ours = BiRefNetImageProcessorPil(size={"height": 512, "width": 768})(image, return_tensors="pt")[
        "pixel_values"
    ]
    assert (ours[0] - expected).abs().max().item() <= 1e-6


def test_torchvision_backend_difference_to_authors_is_one_uint8_level_at_most():
    """The bound stated in BiRefNetImageProcessor's docstring, measured on a 4000x3000 photo-like image."""
    image = PIL.Image.fromarray(photo_like(3000, 4000))
    expected = authors_transform()(image)
    ours = BiRefNetImageProcessor()(image, return_tensors="pt")["pixel_values"][0]
    difference = (ours - expected).abs()
    assert difference.max().item() <= 1 / (255 * min(STD)) + 1e-6
    assert difference.mean().item() <= 2e-4
    # Upsampling (no antialiasing involved) agrees to float rounding.
    small_image = PIL.Image.fromarray(photo_like(480, 640))
    upsampled = BiRefNetImageProcessor()(small_image, return_tensors="pt")["pixel_values"][0]
    assert (upsampled - authors_transform()(small_image)).abs().max().item() <= 1e-5


# ------------------------------------------------------------------------------------------------ input kinds


def _rgb(seed=1, shape=(37, 53)):
    return photo_like(*shape, seed=seed)


def _alpha(shape=(37, 53)):
    alpha = np.zeros(shape, np.uint8)
    alpha[:, shape[1] // 2 :] = 255
    alpha[: shape[0] // 3] = 128
    return alpha


def _composite(rgb, alpha):
    a = alpha[..., None].astype(np.float64) / 255
    return np.rint(rgb * a + 255 * (1 - a))


def _png_roundtrip(image: PIL.Image.Image) -> PIL.Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return PIL.Image.open(buffer)


def _mode_cases():
    rgb, alpha = _rgb(), _alpha()
    gray = rgb[..., 0]
    sixteen = (gray.astype(np.uint16) << 8) | np.uint16(0xAB)
    palette_image = PIL.Image.fromarray(rgb).quantize(16)
    transparent_palette = palette_image.copy()
    transparent_palette.info["transparency"] = 0
    palette_rgb = np.asarray(palette_image.convert("RGB"))
    transparent_index = np.asarray(transparent_palette) == 0
    cmyk = PIL.Image.fromarray(rgb).convert("CMYK")
    return {
        "RGB": (PIL.Image.fromarray(rgb), rgb),
        "RGBA": (PIL.Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA"), _composite(rgb, alpha)),
        "L": (PIL.Image.fromarray(gray), np.repeat(gray[..., None], 3, 2)),
        "LA": (
            PIL.Image.fromarray(np.dstack([gray, alpha]), mode="LA"),
            _composite(np.repeat(gray[..., None], 3, 2), alpha),
        ),
        "1": (PIL.Image.fromarray(gray > 128), np.repeat(np.where(gray > 128, 255, 0)[..., None], 3, 2)),
        "P": (palette_image, palette_rgb),
        "P+transparency": (transparent_palette, np.where(transparent_index[..., None], 255, palette_rgb)),
        "CMYK": (cmyk, np.asarray(cmyk.convert("RGB"))),
        "I;16 (16-bit PNG)": (_png_roundtrip(PIL.Image.fromarray(sixteen)), np.repeat(gray[..., None], 3, 2)),
        "I": (PIL.Image.fromarray(sixteen.astype(np.int32)), np.repeat(gray[..., None], 3, 2)),
        "F": (PIL.Image.fromarray(gray.astype(np.float32) / 255), np.repeat(gray[..., None], 3, 2)),
    }


MODE_CASES = _mode_cases()


@pytest.mark.parametrize("name", list(MODE_CASES))
def test_every_pil_mode_becomes_the_expected_rgb(name):
    image, expected = MODE_CASES[name]
    if name.startswith("I;16"):
        assert image.mode.startswith("I;16")
    rgb = to_rgb_array(image)
    assert rgb.dtype == np.uint8 and rgb.shape == (37, 53, 3) and rgb.flags.writeable
    assert np.abs(rgb.astype(int) - expected.astype(int)).max() <= 1, name

    # Both backends process the mode exactly as they process the equivalent RGB image.
    for backend in BACKENDS:
        processor = small(backend)
        ours = processor(image, return_tensors="pt")["pixel_values"]
        reference = processor(rgb, return_tensors="pt")["pixel_values"]
        assert ours.shape == (1, 3, 64, 64)
        assert torch.equal(ours, reference)


def test_arrays_and_tensors_of_every_layout_and_dtype():
    rgb = _rgb()
    gray = rgb[..., 1]
    reference = small()(rgb, return_tensors="pt")["pixel_values"]
    gray_reference = small()(np.repeat(gray[..., None], 3, 2), return_tensors="pt")["pixel_values"]
    same_as_rgb = [
        np.ascontiguousarray(rgb.transpose(2, 0, 1)),  # CHW numpy
        torch.from_numpy(rgb).permute(2, 0, 1),  # CHW tensor
        torch.from_numpy(rgb),  # HWC tensor (53 is not a channel count)
        rgb.astype(np.float32) / 255,  # floats in [0, 1]
        torch.from_numpy(rgb).permute(2, 0, 1).double() / 255,
        (rgb.astype(np.uint16) << 8) | np.uint16(7),  # uint16
        np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),  # opaque RGBA
    ]
    for index, image in enumerate(same_as_rgb):
        assert torch.equal(small()(image, return_tensors="pt")["pixel_values"], reference), index
    for image in (gray, gray[..., None], torch.from_numpy(gray), torch.from_numpy(gray)[None]):
        assert torch.equal(small()(image, return_tensors="pt")["pixel_values"], gray_reference)
    mask = gray > 100
    assert np.array_equal(to_rgb_array(mask)[..., 0], np.where(mask, 255, 0))


def test_batched_arrays_are_split_into_images():
    batch = np.stack([_rgb(seed) for seed in range(3)])
    expected = small()([image for image in batch], return_tensors="pt")["pixel_values"]
    assert torch.equal(small()(batch, return_tensors="pt")["pixel_values"], expected)
    as_tensor = torch.from_numpy(batch).permute(0, 3, 1, 2)
    assert torch.equal(small()(as_tensor, return_tensors="pt")["pixel_values"], expected)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (np.full((4, 4, 3), 2.0, np.float32), ValueError, r"\[0, 1\]"),
        (np.zeros((5, 6, 2), np.uint8), ValueError, "channel"),
        (np.zeros((4, 4, 3), np.int64), ValueError, "dtype"),
        (np.zeros((1, 1, 4, 4, 3), np.uint8), ValueError, "dimensions"),
        ({"not": "an image"}, TypeError, "unsupported image type"),
        ([], ValueError, "empty"),
    ],
)
def test_bad_inputs_raise_clear_errors(bad, error, message):
    with pytest.raises(error, match=message):
        small()(bad)


def test_paths_load_with_pil_and_bad_files_are_named(tmp_path):
    image = PIL.Image.fromarray(_rgb())
    path = tmp_path / "photo.png"
    image.save(path)
    for backend in BACKENDS:
        assert torch.equal(
            small(backend)(str(path), return_tensors="pt")["pixel_values"],
            small(backend)(image, return_tensors="pt")["pixel_values"],
        )
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff this is not a JPEG")
    with pytest.raises(ValueError, match="broken.jpg"):
        load_image(broken)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")


def _exif_rotated_jpeg(path):
    """A JPEG whose pixels are stored sideways with EXIF orientation 6 (display = rotate 90 degrees clockwise)."""
    upright = np.zeros((48, 80, 3), np.uint8)
    upright[:, :40] = (220, 30, 30)  # red left half
    upright[:24, 40:] = (30, 30, 220)  # blue top-right quarter
    stored = np.rot90(upright, k=1)  # what a camera held sideways writes
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    PIL.Image.fromarray(np.ascontiguousarray(stored)).save(path, format="JPEG", quality=95, exif=exif)
    return upright


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "sideways.jpg"
    upright = _exif_rotated_jpeg(path)
    raw = PIL.Image.open(path)
    assert raw.size == (48, 80)  # stored sideways
    loaded = load_image(path)
    assert loaded.size == (80, 48)
    assert np.abs(np.asarray(loaded).astype(int) - upright).mean() < 4
    rgb = to_rgb_array(PIL.Image.open(path))
    assert np.array_equal(rgb, np.asarray(loaded))
    for backend in BACKENDS:
        processor = backend(size={"longest_edge": 128})
        from_file = processor(str(path), return_tensors="pt")["pixel_values"]
        assert from_file.shape == (1, 3, 64, 128)  # landscape, as displayed
        assert torch.equal(from_file, processor(PIL.Image.open(path), return_tensors="pt")["pixel_values"])


# --------------------------------------------------------------------------------------------- sizes & batches


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(1, 1), (333, 517), (4000, 50)])
def test_odd_sizes(backend, shape):
    image = PIL.Image.fromarray(photo_like(*shape) if min(shape) > 1 else np.full((1, 1, 3), 77, np.uint8))
    assert small(backend)(image, return_tensors="pt")["pixel_values"].shape == (1, 3, 64, 64)


@pytest.mark.parametrize(
    "shape, longest, expected",
    [
        ((333, 517), 256, (160, 256)),
        ((4000, 50), 1024, (1024, 64)),
        ((1, 1), 1024, (1024, 1024)),
        ((100, 2000), 512, (64, 512)),
        ((50, 4000), 32, (32, 32)),
        ((3000, 4000), 1024, (768, 1024)),
        ((1080, 1920), 1280, (736, 1280)),
    ],
)
def test_longest_edge_keeps_aspect_with_multiples_of_32(shape, longest, expected):
    assert get_model_input_size(*shape, {"longest_edge": longest}) == expected
    image = np.zeros((*shape, 3), np.uint8)
    if shape[0] * shape[1] < 1_000_000:
        for backend in BACKENDS:
            out = backend(size={"longest_edge": longest})(image)["pixel_values"][0]
            assert tuple(out.shape) == (3, *expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_of_mixed_sizes_and_types(backend):
    images = [
        PIL.Image.fromarray(photo_like(333, 517)),
        np.full((1, 1, 3), 200, np.uint8),
        torch.from_numpy(photo_like(50, 400, seed=3)).permute(2, 0, 1),
        PIL.Image.fromarray(photo_like(333, 517, seed=4)).convert("RGBA"),
    ]
    processor = small(backend)
    batch = processor(images, return_tensors="pt")["pixel_values"]
    assert batch.shape == (4, 3, 64, 64)
    for index, image in enumerate(images):
        assert torch.equal(batch[index], processor(image, return_tensors="pt")["pixel_values"][0])


def test_longest_edge_batches_of_different_shapes():
    images = [np.zeros((333, 517, 3), np.uint8), np.zeros((517, 333, 3), np.uint8)]
    processor = BiRefNetImageProcessor(size={"longest_edge": 128})
    with pytest.raises(ValueError, match="different sizes"):
        processor(images, return_tensors="pt")
    unstacked = processor(images)["pixel_values"]
    assert [tuple(x.shape) for x in unstacked] == [(3, 96, 128), (3, 128, 96)]


# -------------------------------------------------------------------------------------------- post-processing


def _reference_probabilities(logits, size):
    return F.interpolate(logits[None, None].float().sigmoid(), size=size, mode="bilinear", align_corners=True)[0, 0]


@pytest.mark.parametrize("size", [(333, 517), (64, 64), (1, 1), (7, 3000), (2000, 5), (16, 16)])
def test_alpha_equals_authors_sigmoid_then_interpolate(size):
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 16, 16) * 4
    processor = BiRefNetImageProcessor()
    mattes = processor.post_process_alpha(type("Out", (), {"logits": logits})(), target_sizes=[size, size])
    for index, matte in enumerate(mattes):
        expected = _reference_probabilities(logits[index, 0], size)
        assert matte.shape == size and matte.dtype == torch.float32
        assert (matte - expected).abs().max().item() <= 1e-6
        assert 0.0 <= matte.min().item() and matte.max().item() <= 1.0


def test_row_chunks_do_not_change_the_result():
    torch.manual_seed(1)
    logits = torch.randn(24, 40) * 3
    whole = resize_logits_to_probabilities(logits, (301, 517))
    for chunk in (1, 517, 517 * 7 + 3):
        chunked = resize_logits_to_probabilities(logits, (301, 517), chunk_elements=chunk)
        assert (chunked - whole).abs().max().item() <= 2.5e-7  # vectorised vs. scalar sigmoid: 1-2 ulp


def test_uint8_alpha_and_labels_follow_the_float_matte():
    torch.manual_seed(2)
    logits = torch.randn(1, 1, 32, 32) * 5
    processor = BiRefNetImageProcessor()
    matte = processor.post_process_alpha({"logits": logits}, [(100, 150)])[0]
    matte_uint8 = processor.post_process_alpha({"logits": logits}, [(100, 150)], output_dtype=torch.uint8)[0]
    assert matte_uint8.dtype == torch.uint8
    assert (matte_uint8.int() - (matte * 255).round().int()).abs().max().item() <= 1

    labels = processor.post_process_semantic_segmentation(
        {"logits": logits}, target_sizes=torch.tensor([[100, 150]])
    )[0]
    assert labels.dtype == torch.int64 and labels.shape == (100, 150)
    assert set(labels.unique().tolist()) <= {0, 1}
    assert torch.equal(labels, (matte > 0.5).long())
    strict = processor.post_process_semantic_segmentation({"logits": logits}, [(100, 150)], threshold=0.9)[0]
    assert torch.equal(strict, (matte > 0.9).long())
    # Without target sizes: model resolution.
    assert processor.post_process_semantic_segmentation(logits)[0].shape == (32, 32)


def test_post_processing_accepts_half_precision_logits():
    logits = (torch.randn(1, 1, 16, 16) * 3).to(torch.bfloat16)
    matte = BiRefNetImageProcessor().post_process_alpha(logits, [(40, 30)])[0]
    assert matte.dtype == torch.float32
    assert (matte - _reference_probabilities(logits[0, 0], (40, 30))).abs().max().item() <= 1e-6


def test_post_processing_rejects_mismatched_target_sizes():
    processor = BiRefNetImageProcessor()
    with pytest.raises(ValueError, match="target sizes"):
        processor.post_process_alpha(torch.zeros(2, 1, 8, 8), [(10, 10)])
    with pytest.raises(ValueError, match="logits of shape"):
        processor.post_process_semantic_segmentation(torch.zeros(1, 2, 8, 8))


# ------------------------------------------------------------------------------------------ issue 13: edge inputs


@pytest.mark.parametrize("backend", BACKENDS)
def test_bfloat16_tensors_are_read_like_float32(backend):
    # values that bfloat16 holds exactly, so float32 and bfloat16 inputs describe the same pixels
    rgb = torch.from_numpy(_rgb()).permute(2, 0, 1).float().div(255).to(torch.bfloat16)
    expected = small(backend)(rgb.float(), return_tensors="pt")["pixel_values"]
    assert torch.equal(small(backend)(rgb, return_tensors="pt")["pixel_values"], expected)
    assert np.array_equal(to_rgb_array(rgb), to_rgb_array(rgb.float()))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "empty",
    [
        np.zeros((0, 10, 3), np.uint8),
        np.zeros((10, 0, 3), np.uint8),
        np.zeros((0, 0), np.float32),
        torch.zeros(3, 0, 5),
        PIL.Image.new("RGB", (0, 7)),
    ],
    ids=["no-rows", "no-columns", "2d-empty", "tensor", "pil"],
)
def test_images_without_pixels_are_refused(backend, empty):
    with pytest.raises(ValueError, match="no pixels"):
        small(backend)(empty, return_tensors="pt")


def test_semantic_segmentation_scores_follow_transformers_api():
    torch.manual_seed(3)
    logits = torch.randn(2, 1, 16, 16) * 4
    processor = BiRefNetImageProcessor()
    sizes = [(40, 30), (16, 16)]
    plain = processor.post_process_semantic_segmentation(logits, target_sizes=sizes)
    scored = processor.post_process_semantic_segmentation(logits, target_sizes=sizes, return_segmentation_scores=True)
    mattes = processor.post_process_alpha(logits, target_sizes=sizes)
    assert len(scored) == 2
    for labels, item, matte, size in zip(plain, scored, mattes, sizes, strict=True):
        assert torch.equal(item.segmentation, labels) and item["segmentation"].dtype == torch.int64
        scores = item.segmentation_scores
        assert scores.shape == (2, *size) and scores.dtype == torch.float32
        assert torch.equal(scores[1], matte)
        assert torch.allclose(scores.sum(0), torch.ones(size))
        assert torch.equal(scores.argmax(0), labels)  # threshold 0.5: the argmax of the two scores
    high = processor.post_process_semantic_segmentation(logits, threshold=0.9, return_segmentation_scores=True)
    assert torch.equal(high[0].segmentation, (high[0].segmentation_scores[1] > 0.9).long())


def test_split_modules_keep_the_old_import_paths():
    """The processor file was split (torchvision backend, PIL backend, shared rules, image I/O, chunked resize);
    every name it held is still importable from it and is the one object of its new home."""
    import birefnet_hf.data
    import birefnet_hf.segment
    from birefnet_hf import (
        chunked_resize,
        image_io,
        image_processing_base_birefnet,
        image_processing_pil_birefnet,
    )
    from birefnet_hf import image_processing_birefnet as old

    homes = {
        "BiRefNetImageProcessorPil": image_processing_pil_birefnet,
        "BiRefNetImageProcessorKwargs": image_processing_base_birefnet,
        "get_model_input_size": image_processing_base_birefnet,
        "resize_logits_to_probabilities": chunked_resize,
        "load_image": image_io,
        "apply_exif_orientation": image_io,
        "to_rgb_array": image_io,
        "to_rgb_image": image_io,
    }
    for name, module in homes.items():
        assert getattr(old, name) is getattr(module, name), name
        assert name in old.__all__
    assert BiRefNetImageProcessor.__module__ == old.__name__
    assert BiRefNetImageProcessorPil.__module__ == image_processing_pil_birefnet.__name__
    # one image-extension set: the dataset folders read the same extensions as the rest of the package
    assert birefnet_hf.data.IMAGE_EXTENSIONS is image_io.IMAGE_EXTENSIONS
    assert birefnet_hf.segment.IMAGE_EXTENSIONS is image_io.IMAGE_EXTENSIONS
    assert {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif"} <= set(image_io.IMAGE_EXTENSIONS)
    assert all(ext == ext.lower() and ext.startswith(".") for ext in image_io.IMAGE_EXTENSIONS)


def test_nested_path_inputs_are_loaded_like_single_files(tmp_path):
    """`load_image_paths` / `flatten_images` (image_io) accept paths at any nesting depth, as both backends do."""
    from birefnet_hf.image_io import flatten_images, load_image_paths

    path = tmp_path / "photo.png"
    PIL.Image.fromarray(photo_like(20, 30)).save(path)
    nested = load_image_paths([[str(path)], (path, np.zeros((4, 4, 3), np.uint8))])
    assert isinstance(nested[0][0], PIL.Image.Image) and nested[0][0].size == (30, 20)
    flat = flatten_images([[str(path)], np.zeros((2, 5, 6, 3), np.uint8)])
    assert len(flat) == 3 and flat[0].size == (30, 20) and flat[1].shape == (5, 6, 3)
    with pytest.raises(TypeError, match=r"images\[1\]: unsupported image type int"):
        flatten_images([path, 3])
    for backend in BACKENDS:
        direct = backend(size={"height": 32, "width": 32})(images=[[str(path)]], return_tensors="pt")
        assert direct["pixel_values"].shape == (1, 3, 32, 32)
