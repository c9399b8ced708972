# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""`birefnet-hf segment`: nothing lost, nothing silent (issue 13): unique output names for inputs that share a file
name, re-runs into the input folder, existing files (--skip-existing / --overwrite), an output folder that is a
file, broken model folders, and SIGTERM during a write."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import PIL.Image
import pytest
import torch

from birefnet_hf import BiRefNetImageProcessor, segment
from birefnet_hf.cli import Terminated, current_umask, sigterm_as_interrupt


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """64-pixel images gain nothing from a second thread (and lose a lot on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory):
    """The shared tiny random pvt_v2_b0 model (conftest) with a 64x64 image processor."""
    folder = tmp_path_factory.mktemp("tiny_birefnet_outputs")
    shutil.copytree(tiny_model_dir, folder, dirs_exist_ok=True)
    BiRefNetImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


def _save_photo(path, height, width, seed=0):
    rng = np.random.default_rng(seed)
    coarse = PIL.Image.fromarray((rng.random((4, 5, 3)) * 255).astype(np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    coarse.resize((width, height), PIL.Image.BICUBIC).save(path)
    return path


def _run(capsys, *argv):
    code = segment.main([str(arg) for arg in argv] + ["--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _files(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def _size(path):
    with PIL.Image.open(path) as image:
        return image.size


# ------------------------------------------------------------------------------------- item 1: unique names


def test_same_file_name_in_two_folders_keeps_both(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _save_photo(tmp_path / "dir1" / "x.jpg", 40, 50)
    _save_photo(tmp_path / "dir2" / "x.jpg", 30, 20, seed=1)
    _save_photo(tmp_path / "dir1" / "sub" / "y.png", 24, 24, seed=2)
    code, stdout, _ = _run(capsys, "dir1", "dir2", "-m", model_dir, "-o", "out", "-f", "alpha")
    assert code == 0
    out = tmp_path / "out"
    # the relative folder structure below the inputs' common folder, like rembg and most batch tools
    assert _files(out) == ["dir1/sub/y.png", "dir1/x.png", "dir2/x.png"]
    assert _size(out / "dir1" / "x.png") == (50, 40) and _size(out / "dir2" / "x.png") == (20, 30)
    assert f"wrote {len(_files(out))} file(s)" in stdout  # the summary counts what is on disk


def test_explicit_files_from_two_folders_and_stable_names(model_dir, tmp_path, capsys):
    first = _save_photo(tmp_path / "shoot" / "day1" / "img.jpg", 32, 32)
    second = _save_photo(tmp_path / "shoot" / "day2" / "img.jpg", 20, 28, seed=1)
    out = tmp_path / "out"
    code, stdout, _ = _run(capsys, first, second, "-m", model_dir, "-o", out, "-f", "mask")
    assert code == 0 and "wrote 2 file(s)" in stdout
    assert _files(out) == ["day1/img.png", "day2/img.png"]
    assert _size(out / "day2" / "img.png") == (28, 20)
    # the names depend only on the inputs: the same command (in any order) names the files the same way
    for specs in ([str(first), str(second)], [str(second), str(first)]):
        jobs, failures, _ = segment.collect_inputs(specs, out)
        outputs = segment._assign_output_paths(jobs, out)
        assert not failures
        assert {source.name + str(source.parent.name): target for source, target in outputs.items()} == {
            "img.jpgday1": out / "day1" / "img.png",
            "img.jpgday2": out / "day2" / "img.png",
        }


def test_names_stay_unique_after_renaming_and_across_letter_case(model_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    for seed, name in enumerate(["x.jpg", "x.png", "x.jpg.png", "A.jpg", "a.png"]):
        _save_photo(folder / name, 16 + seed, 16, seed=seed)
    out = tmp_path / "out"
    code, stdout, _ = _run(capsys, folder, "-m", model_dir, "-o", out, "-f", "mask")
    assert code == 0
    written = _files(out)
    assert len(written) == 5 and "wrote 5 file(s)" in stdout
    assert len({name.casefold() for name in written}) == 5  # distinct on case-insensitive file systems too
    heights = sorted(_size(out / name)[1] for name in written)
    assert heights == [16, 17, 18, 19, 20]  # one output per input


# ------------------------------------------------------------------------- item 2: re-runs and existing files


def test_rerunning_into_the_input_folder_leaves_earlier_outputs_out(model_dir, tmp_path, capsys):
    folder = tmp_path / "photos"
    _save_photo(folder / "a.jpg", 30, 40)
    for run in range(3):  # the second run used to segment a.png into a.png.png, the third one failed
        code, stdout, stderr = _run(capsys, folder, "-m", model_dir, "-o", folder)
        assert code == 0, stderr
        assert "wrote 1 file(s)" in stdout
        assert _files(folder) == ["a.jpg", "a.png"]
        if run:
            assert "left out 1 earlier output(s)" in stdout
    assert segment.is_segment_output(folder / "a.png") and not segment.is_segment_output(folder / "a.jpg")


def test_existing_files_that_are_not_ours(model_dir, tmp_path, capsys):
    source = _save_photo(tmp_path / "in" / "x.jpg", 24, 24)
    out = tmp_path / "out"
    users_file = _save_photo(out / "x.png", 10, 10, seed=5)
    original = users_file.read_bytes()
    assert not segment.is_segment_output(users_file)

    code, _, stderr = _run(capsys, source, "-m", model_dir, "-o", out)  # default: never replace others' files
    assert code == 1 and "--overwrite" in stderr and "x.png" in stderr
    assert users_file.read_bytes() == original

    code, stdout, _ = _run(capsys, source, "-m", model_dir, "-o", out, "--skip-existing")
    assert code == 0 and "wrote 0 file(s)" in stdout and "kept 1 existing" in stdout
    assert users_file.read_bytes() == original

    code, stdout, _ = _run(capsys, source, "-m", model_dir, "-o", out, "--overwrite")
    assert code == 0 and "wrote 1 file(s)" in stdout
    assert segment.is_segment_output(users_file) and _size(users_file) == (24, 24)

    before = users_file.stat().st_mtime_ns
    code, stdout, _ = _run(capsys, source, "-m", model_dir, "-o", out, "--skip-existing")  # resume: nothing to do
    assert code == 0 and "kept 1 existing" in stdout and users_file.stat().st_mtime_ns == before

    with pytest.raises(SystemExit) as excinfo:
        segment.main([str(source), "-m", str(model_dir), "-o", str(out), "--skip-existing", "--overwrite"])
    assert excinfo.value.code == 2


# --------------------------------------------------------------------- item 10: output folder checked first


@pytest.mark.parametrize("where", ["is-a-file", "below-a-file"])
def test_output_dir_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, where):
    source = _save_photo(tmp_path / "x.jpg", 16, 16)
    a_file = tmp_path / "results"
    a_file.write_text("user data")
    output = a_file if where == "is-a-file" else a_file / "sub"
    # no model either: the output folder must be checked before the model is loaded or any image is segmented
    code, stdout, stderr = _run(capsys, source, "-m", tmp_path / "no_model_here", "-o", output)
    assert code == 2
    assert "not a folder" in stderr and "cannot load model" not in stderr and "wrote" not in stdout
    assert a_file.read_text() == "user data"


# ------------------------------------------------------------------------------ item 3: broken model folders


def _broken_copy(model_dir, tmp_path):
    folder = tmp_path / "broken_model"
    shutil.copytree(model_dir, folder)
    return folder


def test_truncated_weights_are_a_load_error_naming_the_file(model_dir, tmp_path, capsys):
    folder = _broken_copy(model_dir, tmp_path)
    weights = folder / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 3)
    source = _save_photo(tmp_path / "x.jpg", 16, 16)
    code, _, stderr = _run(capsys, source, "-m", folder, "-o", tmp_path / "out")
    assert code == 2
    assert str(weights) in stderr and "truncated or corrupt" in stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "content, expected",
    [('{"model_type": "birefnet", ', "not a valid JSON file"), (None, "`squeeze_block_count` must be an integer")],
    ids=["not-json", "wrong-type"],
)
def test_broken_config_is_a_load_error_naming_file_and_field(model_dir, tmp_path, capsys, content, expected):
    folder = _broken_copy(model_dir, tmp_path)
    config_file = folder / "config.json"
    if content is None:
        config = json.loads(config_file.read_text())
        config["squeeze_block_count"] = "two"
        content = json.dumps(config)
    config_file.write_text(content)
    source = _save_photo(tmp_path / "x.jpg", 16, 16)
    code, _, stderr = _run(capsys, source, "-m", folder, "-o", tmp_path / "out")
    assert code == 2
    assert str(config_file) in stderr and expected in stderr


# ----------------------------------------------------------------------------------- item 10: SIGTERM, umask


def test_sigterm_raises_like_ctrl_c_inside_the_block_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as excinfo:
        with sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises during the sleep
    assert isinstance(excinfo.value, Terminated)
    assert signal.getsignal(signal.SIGTERM) == before


_SIGTERM_DURING_WRITE = """
import os, signal, sys, time
import PIL.Image
from birefnet_hf import cli

def save_then_get_terminated(self, fp, format=None, **options):
    fp.write(b"\\x89PNG half of a file")
    fp.flush()
    os.kill(os.getpid(), signal.SIGTERM)  # what `kill` or a job scheduler sends
    time.sleep(30)

PIL.Image.Image.save = save_then_get_terminated
sys.exit(cli.main(["segment", sys.argv[1], "-m", sys.argv[2], "-o", sys.argv[3], "--no-progress"]))
"""


def test_sigterm_during_a_write_leaves_no_temporary_file(model_dir, tmp_path):
    source = _save_photo(tmp_path / "in" / "x.jpg", 16, 16)
    out = tmp_path / "out"
    environment = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SIGTERM_DURING_WRITE), str(source), str(model_dir), str(out)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert completed.returncode == 128 + signal.SIGTERM, completed.stderr[-2000:]
    assert "interrupted" in completed.stderr
    leftovers = [path.name for path in out.rglob("*")] if out.exists() else []
    assert leftovers == []  # neither x.png nor a hidden .x.png.*.tmp


def test_output_folders_follow_the_umask(model_dir, tmp_path, capsys):
    _save_photo(tmp_path / "in" / "sub" / "x.jpg", 16, 16)
    out = tmp_path / "out"
    previous = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        code, _, _ = _run(capsys, tmp_path / "in", "-m", model_dir, "-o", out)
    finally:
        os.umask(previous)
    assert code == 0
    assert oct((out / "sub").stat().st_mode & 0o777) == oct(0o750)
    assert oct((out / "sub" / "x.png").stat().st_mode & 0o777) == oct(0o640)
