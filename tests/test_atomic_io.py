# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""birefnet_hf.atomic_io: the one atomic file write and atomic folder swap."""

import os
import stat

import pytest

from birefnet_hf import atomic_io


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_write_bytes_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    atomic_io.write_bytes(target, b"first")
    atomic_io.write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert _listing(target.parent) == ["out.bin"]


def test_write_text_encodes(tmp_path):
    atomic_io.write_text(tmp_path / "a.txt", "é")
    assert (tmp_path / "a.txt").read_bytes() == "é".encode()


def test_atomic_file_error_keeps_previous_version(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_io.atomic_file(target) as temporary:
        temporary.write_bytes(b"partial")
        assert temporary.suffix == ".png" and temporary.parent == tmp_path
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["out.png"]


def test_atomic_file_uses_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_io.write_bytes(tmp_path / "f", b"x")
        with atomic_io.atomic_folder(tmp_path / "d") as staging:
            (staging / "g").write_bytes(b"y")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_atomic_folder_replaces_whole_folder(tmp_path):
    destination = tmp_path / "model"
    destination.mkdir()
    (destination / "old.txt").write_text("old")
    with atomic_io.atomic_folder(destination) as staging:
        (staging / "new.txt").write_text("new")
        assert (destination / "old.txt").exists()  # untouched until the block ends
    assert _listing(destination) == ["new.txt"]
    assert _listing(tmp_path) == ["model"]


def test_atomic_folder_error_keeps_previous_folder(tmp_path):
    destination = tmp_path / "model"
    destination.mkdir()
    (destination / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_io.atomic_folder(destination) as staging:
        (staging / "new.txt").write_text("new")
        raise RuntimeError("boom")
    assert _listing(destination) == ["old.txt"]
    assert _listing(tmp_path) == ["model"]


def test_atomic_folder_without_replace_refuses_non_empty(tmp_path):
    destination = tmp_path / "out"
    destination.mkdir()
    (destination / "keep").write_text("x")
    with pytest.raises(FileExistsError, match="out"):
        with atomic_io.atomic_folder(destination, replace=False):
            raise AssertionError("the block must not run")
    assert _listing(destination) == ["keep"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_io.atomic_folder(empty, replace=False) as staging:
        (staging / "a").write_text("a")
    assert _listing(empty) == ["a"]


def test_replace_folder_restores_backup_when_swap_fails(tmp_path, monkeypatch):
    destination = tmp_path / "model"
    destination.mkdir()
    (destination / "old.txt").write_text("old")
    staging = tmp_path / "staging"
    staging.mkdir()
    real_replace = os.replace
    calls = []

    def failing_second_replace(source, target):
        calls.append((source, target))
        if len(calls) == 2:
            raise OSError("disk gone")
        return real_replace(source, target)

    monkeypatch.setattr(atomic_io.os, "replace", failing_second_replace)
    with pytest.raises(OSError, match="disk gone"):
        atomic_io.replace_folder(staging, destination)
    assert _listing(destination) == ["old.txt"]
