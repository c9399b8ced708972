# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Bulk jobs on several processes: `accelerate launch -m birefnet_hf.cli segment ...` and `segment-dataset` with two
CPU processes (gloo), each writing its own share; sharding and dataset helpers in one process."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import pytest

from birefnet_hf import BiRefNetImageProcessor, bulk
from birefnet_hf.segment import load_model_and_processor, remove_background

REPO_ROOT = Path(__file__).resolve().parents[1]
CPU_CONFIG = REPO_ROOT / "examples" / "accelerate_configs" / "cpu_2proc_gloo.yaml"


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_birefnet_bulk")
    shutil.copytree(tiny_model_dir, folder, dirs_exist_ok=True)
    BiRefNetImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


def _photo(seed: int, width: int = 40, height: int = 30) -> PIL.Image.Image:
    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray((rng.random((4, 5, 3)) * 255).astype(np.uint8)).resize((width, height))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_CONFIG),
               "--main_process_port", str(_free_port()), "-m", "birefnet_hf.cli", *arguments]  # fmt: skip
    return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)


# --------------------------------------------------------------------------------------------- one process
def test_shards_are_disjoint_round_robin_and_cover_everything():
    items = list(range(11))
    shares = [bulk.ProcessShard(rank=r, world_size=3).select(items) for r in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    single = bulk.ProcessShard.from_environment()  # no launcher in the environment: one shard with everything
    assert not single.active and single.select(items) == items
    assert single.combine(4, [("a", "bad")]) == (4, [("a", "bad")])


def test_segment_dataset_in_one_process(model_dir, tmp_path):
    model, processor = load_model_and_processor(model_dir, device="cpu")
    images = [_photo(seed) for seed in range(3)]
    dataset = datasets.Dataset.from_dict(
        {"image": images, "file_name": ["a/one.jpg", "two.png", "three.jpg"]},
        features=datasets.Features({"image": datasets.Image(), "file_name": datasets.Value("string")}),
    )
    written, failures = bulk.segment_dataset(
        dataset, model, tmp_path / "out", processor=processor, name_column="file_name", output_format="alpha",
        batch_size=2, progress=False,
    )  # fmt: skip
    assert (written, failures) == (3, [])
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "a/one.png", "three.png", "two.png"
    ]  # fmt: skip
    expected = remove_background(images[1], model=model, processor=processor).matte
    np.testing.assert_array_equal(
        np.asarray(PIL.Image.open(tmp_path / "out" / "two.png")), np.asarray(expected)
    )
    with pytest.raises(ValueError, match="no column 'picture'"):
        bulk.segment_dataset(dataset, model, tmp_path / "x", processor=processor, image_column="picture")
    repeated = datasets.Dataset.from_dict({"image": images[:2], "file_name": ["same.jpg", "same.png"]},
                                          features=dataset.features)  # fmt: skip
    with pytest.raises(ValueError, match="repeats names"):
        bulk.segment_dataset(repeated, model, tmp_path / "x", processor=processor, name_column="file_name")


# ----------------------------------------------------------------------------------------- two processes
@pytest.mark.slow
def test_accelerate_launch_segment_two_processes_share_a_folder(model_dir, tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for index in range(5):
        _photo(index).save(photos / ("sub" if index % 2 else "") / f"p{index}.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a JPEG")
    out = tmp_path / "out"
    result = _launch("segment", str(photos), str(tmp_path / "missing" / "*.jpg"), "--model", str(model_dir),
                     "--output-dir", str(out), "--format", "alpha", "--no-progress")  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[
        -4000:
    ]  # one unreadable file and one empty pattern, reported once each
    shares = re.findall(r"\[process (\d)/2\] wrote (\d) file\(s\), (\d) failed", log)
    # 6 inputs, round robin: 3 each, one unreadable; both processes see the empty pattern
    assert sorted(shares) == [("1", "2", "2"), ("2", "3", "1")] or sorted(shares) == [
        ("1", "3", "1"),
        ("2", "2", "2"),
    ]
    assert "birefnet-hf segment: wrote 5 file(s)" in log and "2 failed" in log
    failed_lines = re.findall(r"^  FAILED (.*)$", log, re.M)  # the main process's summary: each failure once
    assert len(failed_lines) == 2 and "broken.jpg" in log and "no file matches" in log
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["p0.png", "p2.png", "p4.png", "sub/p1.png", "sub/p3.png"]  # each exactly once, no .tmp
    model, processor = load_model_and_processor(model_dir, device="cpu")
    expected = remove_background(photos / "sub" / "p3.png", model=model, processor=processor).matte
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(out / "sub" / "p3.png")), np.asarray(expected))


@pytest.mark.slow
def test_accelerate_launch_segment_dataset_two_processes(model_dir, tmp_path):
    names = [f"img_{index}.jpg" for index in range(5)]
    dataset = datasets.Dataset.from_dict(
        {"image": [_photo(index) for index in range(5)], "file_name": names},
        features=datasets.Features({"image": datasets.Image(), "file_name": datasets.Value("string")}),
    )
    datasets.DatasetDict({"test": dataset}).save_to_disk(str(tmp_path / "saved"))
    out = tmp_path / "out"
    result = _launch("segment-dataset", "--dataset", str(tmp_path / "saved"), "--split", "test", "--name-column",
                     "file_name", "--model", str(model_dir), "--output-dir", str(out), "--no-progress")  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert (
        "[process 1/2] wrote 3 file(s), 0 failed" in log and "[process 2/2] wrote 2 file(s), 0 failed" in log
    )
    assert "wrote 5 file(s)" in log and "with 2 processes" in log
    assert sorted(p.name for p in out.iterdir()) == [f"img_{index}.png" for index in range(5)]
    with PIL.Image.open(out / "img_3.png") as cutout:
        assert cutout.mode == "RGBA" and cutout.size == (40, 30)
