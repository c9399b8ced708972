# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""birefnet_hf.cutout: foreground estimation, matte post-processing, alpha matting, compositing, crops; and the
cut-out options of remove_background and `birefnet-hf segment`."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest
import torch

from birefnet_hf import BiRefNetImageProcessorPil, cutout, remove_background, segment


def _naive_box_mean(x: np.ndarray, kernel_size: int) -> np.ndarray:
    before, after = kernel_size // 2, kernel_size - 1 - kernel_size // 2
    height, width = x.shape[-2:]
    result = np.zeros_like(x, dtype=np.float64)
    for i in range(height):
        for j in range(width):
            window = x[..., max(0, i - before) : i + after + 1, max(0, j - before) : j + after + 1]
            result[..., i, j] = window.mean(axis=(-2, -1))
    return result


@pytest.mark.parametrize("kernel_size", [1, 2, 5, 6, 9, 40])
def test_box_mean_is_the_in_image_window_mean(kernel_size):
    x = np.random.default_rng(kernel_size).random((2, 13, 17)).astype(np.float32)
    expected = _naive_box_mean(x, kernel_size)
    assert np.abs(cutout.box_mean(x, kernel_size) - expected).max() < 1e-5
    # the cumulative-sum path (what runs on CUDA and other devices) gives the same
    cumulative = cutout._box_mean_rows(torch.from_numpy(x), 0, 13, kernel_size, 0, 13, backend="cumsum")
    assert np.abs(cumulative.numpy() - expected).max() < 1e-5
    # a band of rows, given the rows its windows need
    before, after = kernel_size // 2, kernel_size - 1 - kernel_size // 2
    first, last = max(0, 4 - before), min(13, 9 + after)
    for backend in ("opencv", "cumsum"):
        band = cutout._box_mean_rows(torch.from_numpy(x[:, first:last]), first, 13, kernel_size, 4, 9, backend=backend)
        assert np.abs(band.numpy() - expected[:, 4:9]).max() < 1e-5


def _soft_disk_composite(height: int = 200, width: int = 240):
    """Photo = a F + (1 - a) B with a known foreground F (orange, slowly varying), a textured blue-green
    background B and a disk whose edge is a 20-pixel soft ramp."""
    yy, xx = np.mgrid[:height, :width].astype(np.float64)
    alpha = np.clip((70 - np.hypot(yy - height / 2, xx - width / 2)) / 20 + 0.5, 0, 1)
    foreground = np.stack([0.85 + 0 * xx, 0.55 + 0.1 * np.sin(xx / 15), 0.2 + 0 * xx], -1)
    background = np.stack(
        [0.1 + 0.05 * np.sin(yy / 7), 0.3 + 0.15 * (np.sin(xx / 11) * np.cos(yy / 13) + 1), 0.9 + 0 * xx], -1
    )
    photo = alpha[..., None] * foreground + (1 - alpha[..., None]) * background
    to8 = lambda v: np.rint(np.clip(v, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    return to8(photo), to8(alpha), foreground, alpha


def test_blur_fusion_recovers_the_foreground_colour_in_the_soft_band():
    photo, matte, truth, alpha = _soft_disk_composite()
    estimate = cutout.estimate_foreground(photo, matte)
    assert estimate.dtype == np.uint8 and estimate.shape == photo.shape
    band = (alpha > 0.05) & (alpha < 0.95)
    naive_error = np.abs(photo / 255.0 - truth)[band].mean()
    estimate_error = np.abs(estimate / 255.0 - truth)[band].mean()
    assert naive_error > 0.2  # the background bleeds into the naive cut-out's edge
    assert estimate_error < 0.3 * naive_error  # measured: 0.27 -> 0.056
    # where the object is opaque the photo's colours are kept
    inside = alpha == 1
    assert np.abs(estimate[inside].astype(int) - photo[inside]).max() <= 1


def _blur_fusion_reference(photo: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """The two blur-fusion steps written out on whole float64 images."""
    image, a = photo / 255.0, matte[..., None] / 255.0

    def mean(x, k):
        return np.moveaxis(_naive_box_mean(np.moveaxis(x, -1, 0), k), 0, -1)

    def step(fg, bg, k):
        mean_a = mean(a, k)
        fg_hat = mean(fg * a, k) / (mean_a + 1e-5)
        bg_hat = mean(bg * (1 - a), k) / (1 - mean_a + 1e-5)
        return np.clip(fg_hat + a * (image - a * fg_hat - (1 - a) * bg_hat), 0, 1), bg_hat

    fg, bg = step(image, image, 9)
    return np.rint(step(fg, bg, 4)[0] * 255)


def test_estimate_foreground_equals_the_whole_image_formula_in_any_chunking_and_container():
    rng = np.random.default_rng(0)
    photo = (rng.random((23, 31, 3)) * 255).astype(np.uint8)
    matte = (rng.random((23, 31)) * 255).astype(np.uint8)
    expected = _blur_fusion_reference(photo, matte)
    for chunk_pixels in (1, 31 * 5, 10**9):  # one row per band, 5 rows, everything at once
        result = cutout.estimate_foreground(photo, matte, kernel_sizes=(9, 4), chunk_pixels=chunk_pixels)
        assert np.abs(result - expected).max() <= 1, chunk_pixels
    from_pil = cutout.estimate_foreground(
        PIL.Image.fromarray(photo), PIL.Image.fromarray(matte), kernel_sizes=(9, 4), chunk_pixels=100
    )
    assert isinstance(from_pil, np.ndarray) and np.abs(from_pil - expected).max() <= 1
    from_torch = cutout.estimate_foreground(
        torch.from_numpy(photo).float() / 255, torch.from_numpy(matte).float() / 255, kernel_sizes=(9, 4)
    )
    assert from_torch.dtype == torch.float32 and np.abs(from_torch.numpy() * 255 - expected).max() <= 1
    batch = cutout.estimate_foreground(
        np.stack([photo, photo[::-1]]), np.stack([matte, matte[::-1]]), kernel_sizes=(9, 4), chunk_pixels=200
    )
    assert np.array_equal(batch[0], cutout.estimate_foreground(photo, matte, kernel_sizes=(9, 4)))
    assert np.array_equal(batch[1], cutout.estimate_foreground(photo[::-1], matte[::-1], kernel_sizes=(9, 4)))


def test_estimate_foreground_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="image has size"):
        cutout.estimate_foreground(np.zeros((4, 5, 3), np.uint8), np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match="channels last"):
        cutout.estimate_foreground(np.zeros((3, 4, 5), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(TypeError, match="uint8 or float"):
        cutout.estimate_foreground(np.zeros((4, 5, 3), np.int32), np.zeros((4, 5), np.uint8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_estimate_foreground_on_cuda_matches_the_cpu():
    photo, matte, truth, alpha = _soft_disk_composite()
    on_cpu = cutout.estimate_foreground(photo, matte)
    on_gpu = cutout.estimate_foreground(torch.from_numpy(photo).cuda(), torch.from_numpy(matte).cuda())
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.uint8
    assert np.abs(on_gpu.cpu().numpy().astype(int) - on_cpu).max() <= 1
    rgba = cutout.cutout_rgba(torch.from_numpy(photo).cuda(), torch.from_numpy(matte).cuda())
    assert rgba.device.type == "cuda" and np.array_equal(rgba[..., 3].cpu().numpy(), matte)


# ---------------------------------------------------------------------------------------------------- mattes


def _square_matte(size: int = 40, low: int = 15, high: int = 25) -> np.ndarray:
    matte = np.zeros((size, size), np.uint8)
    matte[low:high, low:high] = 255
    return matte


def test_threshold_dilate_erode_feather():
    soft = np.linspace(0, 255, 40 * 40).reshape(40, 40).astype(np.uint8)
    binary = cutout.postprocess_matte(soft, threshold=0.5)
    assert set(np.unique(binary)) == {0, 255}
    assert np.array_equal(binary, np.where(soft > 127.5, 255, 0))

    square = _square_matte()
    grown = cutout.postprocess_matte(square, dilate=3)
    assert np.array_equal(grown, _square_matte(low=12, high=28))
    shrunk = cutout.postprocess_matte(square, erode=2)
    assert np.array_equal(shrunk, _square_matte(low=17, high=23))
    # dilate then erode closes a 4-pixel gap and keeps the outline
    split = square.copy()
    split[:, 19:23] = 0
    closed = cutout.postprocess_matte(split, dilate=3, erode=3)
    assert np.array_equal(closed, square)

    feathered = cutout.postprocess_matte(square, feather=4)
    row = feathered[20].astype(int)
    assert row[10] == 0 and row[20] == 255  # 5 px outside the edge untouched, the centre fully opaque
    assert 0 < row[14] < row[15] < row[16] < 255  # a ramp across the edge
    assert np.array_equal(feathered, feathered.T)  # isotropic on a symmetric shape


def test_postprocess_matte_chunking_and_containers():
    rng = np.random.default_rng(3)
    matte = (rng.random((37, 29)) * 255).astype(np.uint8)
    whole = cutout.postprocess_matte(matte, threshold=0.4, dilate=2, erode=1, feather=3)
    for chunk_pixels in (1, 29 * 4):
        assert np.array_equal(
            cutout.postprocess_matte(matte, threshold=0.4, dilate=2, erode=1, feather=3, chunk_pixels=chunk_pixels),
            whole,
        )
    as_pil = cutout.postprocess_matte(PIL.Image.fromarray(matte), threshold=0.4, dilate=2, erode=1, feather=3)
    assert isinstance(as_pil, PIL.Image.Image) and np.array_equal(np.asarray(as_pil), whole)
    as_float = cutout.postprocess_matte(torch.from_numpy(matte).float() / 255, dilate=2)
    assert as_float.dtype == torch.float32
    assert np.abs(as_float.numpy() * 255 - cutout.postprocess_matte(matte, dilate=2)).max() < 1e-3
    with pytest.raises(ValueError, match="threshold"):
        cutout.postprocess_matte(matte, threshold=1.5)
    with pytest.raises(ValueError, match="dilate"):
        cutout.postprocess_matte(matte, dilate=-1)


def test_alpha_matting_recovers_a_soft_edge_from_a_hard_matte():
    pytest.importorskip("pymatting")
    height, width = 64, 80
    xx = np.mgrid[:height, :width][1].astype(np.float64)
    alpha = np.clip((xx - 30) / 12, 0, 1)
    rng = np.random.default_rng(0)
    foreground = np.array([0.9, 0.2, 0.1]) + rng.normal(0, 0.02, (height, width, 3))
    background = np.array([0.1, 0.3, 0.9]) + rng.normal(0, 0.02, (height, width, 3))
    photo = np.rint(np.clip(alpha[..., None] * foreground + (1 - alpha[..., None]) * background, 0, 1) * 255)
    hard = np.where(alpha > 0.5, 255, 0).astype(np.uint8)
    refined = cutout.refine_alpha_matting(photo.astype(np.uint8), hard, erode=8, tile_size=48, margin=16)
    band = (alpha > 0.02) & (alpha < 0.98)
    hard_error = np.abs(hard / 255 - alpha)[band].mean()
    refined_error = np.abs(refined / 255 - alpha)[band].mean()
    assert refined_error < 0.25 * hard_error  # measured 0.27 -> < 0.01
    trimap = cutout.make_trimap(hard, erode=8)
    assert set(np.unique(trimap)) == {0, 128, 255}
    assert np.array_equal(refined[trimap == 255], np.full((trimap == 255).sum(), 255))


# ------------------------------------------------------------------------------------------- compositing


def test_parse_background(tmp_path):
    assert cutout.parse_background("white") == (255, 255, 255)
    assert cutout.parse_background("#10a0FF") == (16, 160, 255)
    assert cutout.parse_background("#fff") == (255, 255, 255)
    assert cutout.parse_background("BLUR") == "blur"
    path = tmp_path / "bg.png"
    PIL.Image.new("RGB", (4, 4)).save(path)
    assert cutout.parse_background(str(path)) == path
    with pytest.raises(ValueError, match="'nope.png' is not 'blur', a colour"):
        cutout.parse_background("nope.png")


def test_composite_on_a_colour_and_on_images():
    rng = np.random.default_rng(0)
    fg = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
    matte = (rng.random((20, 30)) * 255).astype(np.uint8)
    a = matte[..., None] / 255.0
    result = cutout.composite(fg, matte, (10, 200, 30))
    expected = a * fg + (1 - a) * np.array([10, 200, 30])
    assert result.dtype == np.uint8 and np.abs(result - expected).max() <= 0.5 + 1e-6
    # an image of the same size is used pixel for pixel
    background = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
    assert np.abs(cutout.composite(fg, matte, background) - (a * fg + (1 - a) * background)).max() <= 0.5 + 1e-6
    # a wide background covers the photo and is centred: left half red, right half blue, 10x40 -> 20x20
    wide = np.zeros((10, 40, 3), np.uint8)
    wide[:, :20] = (255, 0, 0)
    wide[:, 20:] = (0, 0, 255)
    shown = cutout.composite(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20), np.uint8), wide, chunk_pixels=30)
    assert np.array_equal(shown[:, :9], np.broadcast_to([255, 0, 0], (20, 9, 3)))
    assert np.array_equal(shown[:, 11:], np.broadcast_to([0, 0, 255], (20, 9, 3)))
    # a larger background is reduced (PIL) to the photo's size
    large = PIL.Image.new("RGB", (300, 200), (0, 128, 0))
    assert np.array_equal(cutout.composite(fg, np.zeros((20, 30), np.uint8), large), np.full((20, 30, 3), [0, 128, 0]))
    # the blurred photo as background: small, and smooth
    blurred = cutout.blurred_background(PIL.Image.fromarray(fg), working_side=16, radius=2)
    assert max(blurred.size) == 16
    with pytest.raises(ValueError, match="colour"):
        cutout.composite(fg, matte, (300, 0, 0))


def test_cutout_rgba_and_fit_max_side():
    photo, matte, _, _ = _soft_disk_composite(60, 80)
    rgba = cutout.cutout_rgba(photo, matte)
    assert rgba.shape == (60, 80, 4)
    assert np.array_equal(rgba[..., 3], matte)
    assert np.array_equal(rgba[..., :3], cutout.estimate_foreground(photo, matte))
    plain = cutout.cutout_rgba(photo, matte, refine_foreground=False)
    assert np.array_equal(plain[..., :3], photo)

    image = PIL.Image.new("RGB", (400, 300))
    assert cutout.fit_max_side(image, 100).size == (100, 75)
    assert cutout.fit_max_side(image, 500) is image
    assert cutout.fit_max_side(image, None) is image
    with pytest.raises(ValueError, match="max_side"):
        cutout.fit_max_side(image, 0)


# ----------------------------------------------------------------------------------- full-resolution crops


@pytest.mark.parametrize("length,crop", [(100, 64), (64, 64), (40, 64), (1000, 96), (130, 64)])
def test_crop_grid_is_a_partition_of_unity(length, crop):
    starts, weights = cutout.crop_grid(length, crop, 0.25)
    assert starts[0] == 0 and starts[-1] == max(0, length - crop)
    assert np.allclose(weights.sum(axis=0), 1.0, atol=1e-6)
    for start, weight in zip(starts, weights):
        outside = np.ones(length, bool)
        outside[start : start + crop] = False
        assert not weight[outside].any()


def test_refine_matte_in_crops_blends_and_skips_crops_without_edges():
    height, width = 150, 230
    truth = np.zeros((height, width), np.uint8)
    truth[40:110, 60:170] = 255
    coarse = cutout.postprocess_matte(truth, feather=6)  # a blurry version of the truth
    calls = []

    def oracle(crops):  # the "photo" holds the answer in its red channel
        calls.append(len(crops))
        return [np.asarray(crop)[..., 0] for crop in crops]

    photo = PIL.Image.fromarray(np.repeat(truth[..., None], 3, axis=2))
    refined = cutout.refine_matte_in_crops(photo, coarse, oracle, 48, batch_size=3)
    starts_y, _ = cutout.crop_grid(height, 48, 0.25)
    starts_x, _ = cutout.crop_grid(width, 48, 0.25)
    assert sum(calls) < len(starts_y) * len(starts_x)  # crops away from the edge were not re-run
    assert max(calls) <= 3
    # edge pixels are covered by re-run crops only, so the result is the oracle's answer there
    edge = (coarse > 8) & (coarse < 247)
    assert np.array_equal(refined[edge], truth[edge])
    assert np.abs(refined.astype(int) - truth).mean() < 0.1 * np.abs(coarse.astype(int) - truth).mean()
    # a predictor that returns the coarse matte itself changes nothing: the weights sum to one
    same_photo = PIL.Image.fromarray(np.repeat(coarse[..., None], 3, axis=2))
    same = cutout.refine_matte_in_crops(same_photo, coarse, oracle, 48)
    assert np.abs(same.astype(int) - coarse).max() <= 1
    with pytest.raises(ValueError, match="matte must be an 8-bit array"):
        cutout.refine_matte_in_crops(photo, coarse[1:], oracle, 48)


class _BrightnessSegmenter(torch.nn.Module):
    """A resolution-limited 'segmenter': foreground where the (un-normalised) input is bright. Seen at a low
    resolution, 2-pixel lines of a large photo average out to a faint grey (p ~ 0.12) and are lost; seen 1:1 they
    are found (p ~ 0.98)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(8.0))

    def forward(self, pixel_values):
        return SimpleNamespace(logits=self.scale * (pixel_values.mean(dim=1, keepdim=True) - 0.5))


def test_refine_crops_recovers_thin_lines_the_coarse_pass_loses():
    photo = np.zeros((384, 512, 3), np.uint8)
    for x in range(20, 500, 37):
        photo[:, x : x + 2] = 255
    truth = photo[..., 0] > 0
    processor = BiRefNetImageProcessorPil(size={"height": 64, "width": 64}, do_normalize=False)
    model = _BrightnessSegmenter()
    coarse = remove_background(photo, model, processor=processor, refine_foreground=False)
    refined = remove_background(
        photo, model, processor=processor, refine_crops=True, crop_size=64, refine_foreground=False
    )

    def iou(matte):
        found = np.asarray(matte) > 127
        return (found & truth).sum() / max(1, (found | truth).sum())

    assert iou(coarse.matte) < 0.3
    assert iou(refined.matte) > 0.9
    assert refined.matte.size == (512, 384)


# ------------------------------------------------------------------------------ remove_background and CLI


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir_64):
    return tiny_model_dir_64  # the shared tiny model with a 64x64 processor (conftest.py)


def _photo_file(tmp_path, height=60, width=90):
    rng = np.random.default_rng(0)
    coarse = PIL.Image.fromarray((rng.random((5, 7, 3)) * 255).astype(np.uint8))
    path = tmp_path / "photo.jpg"
    coarse.resize((width, height), PIL.Image.BICUBIC).save(path, quality=95)
    return path


@pytest.fixture()
def loaded_once(monkeypatch):
    """`birefnet-hf segment` runs load the model once per test (the CLI path is unchanged otherwise), so the
    many small runs below do not pay for loading and warming up the model each time."""
    cache = {}
    real = segment.load_model_and_processor

    def load(model, processor=None, device=None, dtype=None):
        key = (str(model), str(device), str(dtype))
        if key not in cache:
            cache[key] = real(model, processor, device=device, dtype=dtype)
        return cache[key]

    monkeypatch.setattr(segment, "load_model_and_processor", load)


def _run(capsys, *argv):
    code = segment.main([str(arg) for arg in argv] + ["--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_cutout_options(model_dir, tmp_path, capsys, loaded_once):
    photo_path = _photo_file(tmp_path)
    background_path = tmp_path / "beach.png"
    PIL.Image.new("RGB", (30, 20), (0, 0, 255)).save(background_path)

    def run(name, *options):
        out = tmp_path / name
        code, stdout, stderr = _run(capsys, photo_path, "-m", model_dir, "-o", out, *options)
        assert code == 0, stderr
        return PIL.Image.open(out / "photo.png")

    alpha = np.asarray(run("alpha", "-f", "alpha")).astype(float) / 255
    photo = np.asarray(PIL.Image.open(photo_path)).astype(float)
    refined = run("rgba")
    plain = run("plain", "--no-refine-foreground")
    assert refined.mode == plain.mode == "RGBA"
    assert np.array_equal(np.asarray(plain)[..., :3], photo.astype(np.uint8))
    fg = run("fg", "-f", "fg")
    assert fg.mode == "RGB" and np.array_equal(np.asarray(fg), np.asarray(refined)[..., :3])
    assert not np.array_equal(np.asarray(fg), photo.astype(np.uint8))  # the random model's matte is soft

    white = np.asarray(run("white", "--background", "white")).astype(float)
    fg_values = np.asarray(fg).astype(float)
    assert np.abs(white - (alpha[..., None] * fg_values + (1 - alpha[..., None]) * 255)).max() <= 1
    hex_color = np.asarray(run("hex", "--background", "#00ff00", "--no-refine-foreground")).astype(float)
    assert np.abs(hex_color - (alpha[..., None] * photo + (1 - alpha[..., None]) * [0, 255, 0])).max() <= 1
    on_image = np.asarray(run("image", "--background", background_path)).astype(float)
    assert np.abs(on_image - (alpha[..., None] * fg_values + (1 - alpha[..., None]) * [0, 0, 255])).max() <= 1
    assert run("blur", "--background", "blur").mode == "RGB"


def test_cli_matte_options(model_dir, tmp_path, capsys, loaded_once):
    photo_path = _photo_file(tmp_path)

    def run(name, *options):
        out = tmp_path / name
        code, stdout, stderr = _run(capsys, photo_path, "-m", model_dir, "-o", out, *options)
        assert code == 0, stderr
        return PIL.Image.open(out / "photo.png")

    alpha = np.asarray(run("alpha", "-f", "alpha")).astype(float) / 255
    binary = np.asarray(run("binary", "--threshold", "0.5"))[..., 3]
    assert set(np.unique(binary)) <= {0, 255}
    assert np.array_equal(binary, np.where(alpha > 0.5, 255, 0))
    grown = np.asarray(run("grown", "-f", "alpha", "--threshold", "0.5", "--dilate", "2"))
    assert np.array_equal(grown, cutout.postprocess_matte(binary, dilate=2))
    soft = np.asarray(run("soft", "-f", "alpha", "--threshold", "0.5", "--erode", "1", "--feather", "3"))
    assert np.array_equal(soft, cutout.postprocess_matte(binary, erode=1, feather=3))

    small = run("small", "--max-side", "45")
    assert small.size == (45, 30)
    crops = run("crops", "-f", "alpha", "--refine-crops", "--crop-size", "48", "--batch-size", "3")
    assert crops.size == (90, 60)


def test_cli_alpha_matting(model_dir, tmp_path, capsys):
    pytest.importorskip("pymatting")
    photo_path = _photo_file(tmp_path)
    out = tmp_path / "matting"
    code, _, stderr = _run(capsys, photo_path, "-m", model_dir, "-o", out, "-f", "alpha", "--alpha-matting")
    assert code == 0, stderr
    assert PIL.Image.open(out / "photo.png").size == (90, 60)


def test_cli_cutout_usage_errors(model_dir, tmp_path, capsys):
    photo_path = _photo_file(tmp_path)
    out = tmp_path / "out"
    code, _, stderr = _run(capsys, photo_path, "-m", model_dir, "-o", out, "--background", "no-such-colour")
    assert code == 2 and "'no-such-colour' is not 'blur', a colour" in stderr
    code, _, stderr = _run(capsys, photo_path, "-m", model_dir, "-o", out, "-f", "mask", "--background", "white")
    assert code == 2 and "--background applies to --format rgba" in stderr
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    code, _, stderr = _run(capsys, photo_path, "-m", model_dir, "-o", out, "--background", broken)
    assert code == 2 and "broken.png" in stderr
    code, _, stderr = _run(capsys, photo_path, "-m", model_dir, "-o", out, "--crop-size", "64")
    assert code == 2 and "--crop-size needs --refine-crops" in stderr
    with pytest.raises(SystemExit):
        segment.main([str(photo_path), "-m", str(model_dir), "-o", str(out), "--dilate", "-3"])
    assert not out.exists()  # nothing written on usage errors


def test_remove_background_and_pipeline_options(model_dir):
    from transformers import pipeline

    photo, _, _, _ = _soft_disk_composite(60, 80)
    result = remove_background(photo, model_dir, max_side=40, threshold=0.5, dilate=1)
    assert result.matte.size == result.image.size == (40, 30)
    assert set(np.unique(np.asarray(result.matte))) <= {0, 255}
    assert result.foreground.size == (40, 30)
    composite = result.composite("#ff0000")
    assert composite.mode == "RGB" and composite.size == (40, 30)

    remover = pipeline("background-removal", model=str(model_dir))
    output = remover(PIL.Image.fromarray(photo), background="white", feather=2, max_side=40)
    assert set(output) == {"matte", "cutout", "composite"}
    assert output["composite"].size == output["cutout"].size == (40, 30)
    matte = np.asarray(output["matte"]).astype(float)[..., None] / 255
    expected = matte * np.asarray(output["cutout"])[..., :3] + (1 - matte) * 255
    assert np.abs(np.asarray(output["composite"]) - expected).max() <= 1
    with pytest.raises(ValueError, match="threshold"):
        remover(PIL.Image.fromarray(photo), threshold=2.0)
