# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""`birefnet-hf segment`: folders, globs, formats, failures, atomic writes; with a tiny random model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from birefnet_hf import BiRefNetImageProcessor, cli, segment


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory):
    """The shared tiny random pvt_v2_b0 model (conftest), plus a 64x64 image processor, like a released folder."""
    folder = tmp_path_factory.mktemp("tiny_birefnet_cli_with_processor")
    shutil.copytree(tiny_model_dir, folder, dirs_exist_ok=True)
    BiRefNetImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


def _photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = PIL.Image.fromarray((rng.random((5, 7, 3)) * 255).astype(np.uint8))
    return np.array(coarse.resize((width, height), PIL.Image.BICUBIC))


@pytest.fixture()
def photos(tmp_path):
    """photos/ with nested folders, several formats and modes, a corrupt JPEG, a text file and a hidden file."""
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    PIL.Image.fromarray(_photo(70, 40)).save(root / "a.jpg", exif=exif)  # displayed as 70 wide, 40 high
    PIL.Image.fromarray(np.dstack([_photo(33, 51, 1), np.full((33, 51), 200, np.uint8)]), "RGBA").save(
        root / "b.png"
    )
    PIL.Image.fromarray(_photo(40, 30, 2)[..., 0]).save(root / "sub" / "c.png")
    PIL.Image.fromarray(_photo(20, 90, 3)[..., 1].astype(np.uint16) * 257).save(
        root / "sub" / "deeper" / "d.tif"
    )
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated, not really a JPEG")
    (root / "notes.txt").write_text("not an image")
    PIL.Image.fromarray(_photo(10, 10)).save(root / ".hidden.png")
    return root


EXPECTED_SIZES = {"a.png": (70, 40), "b.png": (51, 33), "sub/c.png": (30, 40), "sub/deeper/d.png": (90, 20)}


def _run(capsys, *argv):
    code = segment.main([str(arg) for arg in argv] + ["--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _files(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_folder_with_a_corrupt_file(model_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = _run(capsys, photos, "--model", model_dir, "--output-dir", out, "--format", "rgba")
    assert code == 1
    assert "broken.jpg" in stderr and "FAILED" in stderr
    assert "wrote 4 file(s)" in stdout and "1 failed" in stdout
    assert _files(out) == sorted(EXPECTED_SIZES)  # mirrored tree, no temporary files, nothing for broken.jpg
    for name, size in EXPECTED_SIZES.items():
        with PIL.Image.open(out / name) as image:
            assert image.mode == "RGBA" and image.size == size


def test_formats_and_rgba_alpha_equals_the_matte(model_dir, photos, tmp_path, capsys):
    outputs = {}
    for output_format in ("mask", "alpha", "rgba", "overlay"):
        out = tmp_path / output_format
        code, _, _ = _run(
            capsys,
            photos / "b.png",
            photos / "a.jpg",
            "-m",
            model_dir,
            "-o",
            out,
            "-f",
            output_format,
            "-b",
            "2",
            "--no-refine-foreground",
        )
        assert code == 0
        assert _files(out) == ["a.png", "b.png"]
        outputs[output_format] = PIL.Image.open(out / "b.png")
    mask, alpha, rgba, overlay = (outputs[name] for name in ("mask", "alpha", "rgba", "overlay"))
    assert (mask.mode, alpha.mode, rgba.mode, overlay.mode) == ("L", "L", "RGBA", "RGB")
    assert mask.size == alpha.size == rgba.size == overlay.size == (51, 33)
    alpha_values = np.asarray(alpha)
    assert np.array_equal(np.asarray(rgba)[..., 3], alpha_values)
    assert np.array_equal(np.asarray(mask), np.where(alpha_values > 127, 255, 0))
    # With --no-refine-foreground the cut-out keeps the colours the model saw: RGBA input composited onto white.
    source = np.asarray(PIL.Image.open(photos / "b.png")).astype(float)
    composited = np.rint(source[..., :3] * 200 / 255 + 255 * (1 - 200 / 255))
    assert np.abs(np.asarray(rgba)[..., :3] - composited).max() <= 1


def test_glob_mirrors_structure_below_the_pattern_base(model_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, _ = _run(
        capsys, f"{photos}/**/*.png", "-m", model_dir, "-o", out, "-f", "alpha", "--resolution", "64"
    )
    assert code == 0
    assert _files(out) == ["b.png", "sub/c.png"]  # hidden files are not matched by '*'


def test_explicit_bad_inputs_are_named_and_others_still_written(model_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, stderr = _run(
        capsys,
        photos / "notes.txt",
        photos / "missing.png",
        f"{photos}/*.nothing",
        photos / "b.png",
        "-m",
        model_dir,
        "-o",
        out,
        "-f",
        "mask",
    )
    assert code == 1
    for name in ("notes.txt", "missing.png", "*.nothing"):
        assert name in stderr
    assert _files(out) == ["b.png"]


def test_never_overwrites_an_input(model_dir, photos, capsys):
    original = (photos / "b.png").read_bytes()
    code, _, stderr = _run(capsys, photos / "b.png", "-m", model_dir, "-o", photos, "-f", "alpha")
    assert code == 1
    assert "overwrite an input" in stderr
    assert (photos / "b.png").read_bytes() == original


def test_inputs_with_the_same_stem_get_distinct_outputs(model_dir, tmp_path, capsys):
    folder = tmp_path / "same"
    folder.mkdir()
    PIL.Image.fromarray(_photo(20, 20)).save(folder / "x.jpg")
    PIL.Image.fromarray(_photo(20, 20, 1)).save(folder / "x.png")
    PIL.Image.fromarray(_photo(20, 20, 2)).save(folder / "y.png")
    out = tmp_path / "out"
    code, _, _ = _run(capsys, folder, "-m", model_dir, "-o", out, "-f", "mask")
    assert code == 0
    assert _files(out) == ["x.jpg.png", "x.png.png", "y.png"]


def test_dispatcher_usage_errors_and_bad_model(model_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        cli.main(["segment", str(photos / "b.png"), "-m", str(model_dir), "-o", str(out), "--no-progress"])
        == 0
    )
    assert _files(out) == ["b.png"]
    with pytest.raises(SystemExit) as excinfo:
        segment.main([str(photos), "-m", str(model_dir), "-o", str(out), "--resolution", "100"])
    assert excinfo.value.code == 2
    assert "multiples of 32" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        segment.main(
            [str(photos), "-m", str(model_dir), "-o", str(out), "--resolution", "64", "--longest-edge", "128"]
        )
    capsys.readouterr()
    code, _, stderr = _run(capsys, photos / "b.png", "-m", tmp_path / "no_model_here", "-o", out)
    assert code == 2 and "cannot load model" in stderr


class _FailingImage:
    """Writes part of a file, then fails, like a full disk would."""

    def save(self, handle, format=None, **options):
        handle.write(b"\x89PNG partial")
        raise OSError("No space left on device")


def test_atomic_write_leaves_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "result.png"
    segment.write_image_atomically(PIL.Image.new("L", (4, 4), 7), target)
    before = target.read_bytes()
    with pytest.raises(OSError, match="No space"):
        segment.write_image_atomically(_FailingImage(), target)
    assert target.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == ["result.png"]


def test_compile_flag_gives_the_same_outputs(model_dir, photos, tmp_path, capsys, monkeypatch):
    """`--compile` compiles the model once (here with the cheap aot_eager backend instead of inductor) and writes
    the same mattes as the eager run."""
    from birefnet_hf.inference_paths import compile_for_inference

    compiled = []

    def cheap_compile(model):
        compiled.append(model)
        return compile_for_inference(model, backend="aot_eager")

    monkeypatch.setattr(segment, "compile_for_inference", cheap_compile)
    inputs = [photos / "b.png", photos / "sub" / "c.png"]
    assert _run(capsys, *inputs, "-m", model_dir, "-o", tmp_path / "eager", "-f", "alpha")[0] == 0
    assert _run(capsys, *inputs, "-m", model_dir, "-o", tmp_path / "compiled", "-f", "alpha", "--compile")[0] == 0
    assert len(compiled) == 1
    for name in ("b.png", "sub/c.png"):
        eager = np.array(PIL.Image.open(tmp_path / "eager" / name), dtype=int)
        fast = np.array(PIL.Image.open(tmp_path / "compiled" / name), dtype=int)
        assert np.abs(eager - fast).max() <= 1


def test_cuda_graphs_flag_needs_a_cuda_device_and_excludes_compile(model_dir, photos, tmp_path, capsys):
    """`--cuda-graphs` on a CPU is refused (exit 2, naming the device) before any output is written; with
    `--compile` it is a usage error. The replay itself is tested in tests/test_cuda.py."""
    code, _, err = _run(capsys, photos / "b.png", "-m", model_dir, "-o", tmp_path / "out", "--cuda-graphs",
                        "--device", "cpu")
    assert code == 2 and "--cuda-graphs needs --backend pytorch on a CUDA device" in err and "on cpu" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    with pytest.raises(SystemExit) as exit_info:
        segment.main([str(photos / "b.png"), "-m", str(model_dir), "-o", str(tmp_path / "x"), "--compile",
                      "--cuda-graphs"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_prefetching_decodes_the_same_batches(photos):
    """The accelerator path decodes the next batch in a worker thread; batches, images and failures are the same."""
    from birefnet_hf.segment import MatteOptions, _CutoutSettings, _Job, _prefetched

    files = [photos / "a.jpg", photos / "broken.jpg", photos / "b.png", photos / "sub" / "c.png"]
    jobs = [_Job(path, Path(path.name)) for path in files]
    batches = [jobs[:2], jobs[2:3], jobs[3:]]
    settings = _CutoutSettings(MatteOptions())
    plain = list(_prefetched(batches, settings, prefetch=False))
    threaded = list(_prefetched(batches, settings, prefetch=True))
    assert len(plain) == len(threaded) == 3
    for (jobs_a, loaded_a, failed_a), (jobs_b, loaded_b, failed_b) in zip(plain, threaded):
        assert jobs_a == jobs_b and failed_a == failed_b
        assert [np.array(image).tolist() for _, image in loaded_a] == [np.array(image).tolist() for _, image in loaded_b]
    assert [len(failed) for _, _, failed in plain] == [1, 0, 0]  # the corrupt JPEG, named once
