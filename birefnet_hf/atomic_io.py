# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The one place that writes files and folders atomically.

Every output of this package (cut-outs, checkpoints, converted models, exported ONNX files, dataset folders, Hub
folders, generated configs) is written through these helpers, so a reader of any output path sees either nothing,
the previous version, or the complete new version: never a half-written file or folder, also after Ctrl-C, SIGTERM
or a full disk.

* :func:`atomic_file` yields a temporary path in the destination's folder (same file system, so ``os.replace`` is
  atomic); on success it replaces the destination, on any error (``BaseException``, so ``KeyboardInterrupt`` too)
  it is removed. :func:`write_bytes` and :func:`write_text` are the one-call forms.
* :func:`atomic_folder` does the same for a folder: it yields a staging folder next to the destination and swaps it
  in with :func:`replace_folder`, which keeps the old folder until the new one is in place and puts it back if the
  swap fails.

Staging files and folders are created with the process umask (not ``tempfile.mkdtemp``'s 0700), so the finished
output has the permissions a plain ``open``/``mkdir`` would give.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path


__all__ = ["atomic_file", "atomic_folder", "replace_folder", "staging_name", "write_bytes", "write_text"]


def staging_name(destination: Path, tag: str = "tmp") -> Path:
    """A hidden sibling of ``destination`` that no other process or call can pick: ``.NAME.PID.RANDOM.TAG``. It keeps
    ``destination``'s suffix so that writers choosing a format by extension (PIL, PyAV) pick the right one."""
    destination = Path(destination)
    suffix = destination.suffix if destination.suffix else ""
    return destination.with_name(f".{destination.stem}.{os.getpid()}.{secrets.token_hex(4)}.{tag}{suffix}")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; write the file there. When the block ends without an error the file
    is flushed to disk (``fsync``) and moved onto ``path``; on any error it is deleted and ``path`` is untouched.

    The parent folder is created if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = staging_name(path)
    try:
        yield temporary
        if fsync and temporary.exists():
            with open(temporary, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as temporary, open(temporary, "xb") as handle:
        handle.write(data)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_file`)."""
    write_bytes(path, text.encode(encoding))


def replace_folder(staging: str | os.PathLike, destination: str | os.PathLike) -> None:
    """Move the complete folder ``staging`` onto ``destination``. An existing ``destination`` is first renamed to a
    hidden backup, and put back if the second rename fails, so ``destination`` never holds a partial folder; the
    backup is deleted once the new folder is in place."""
    staging, destination = Path(staging), Path(destination)
    if not destination.exists():
        os.replace(staging, destination)
        return
    backup = staging_name(destination, "old")
    os.replace(destination, backup)
    try:
        os.replace(staging, destination)
    except BaseException:
        os.replace(backup, destination)
        raise
    if backup.is_dir() and not backup.is_symlink():
        shutil.rmtree(backup, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(backup)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder next to ``path``; fill it. When the block ends without an error it becomes
    ``path`` (:func:`replace_folder`); on any error it is deleted and ``path`` is untouched.

    With ``replace=False`` an existing non-empty ``path`` (or a file there) is refused with ``FileExistsError``
    before the block runs; an empty folder there is replaced."""
    path = Path(path)
    if not replace and path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"output folder {path} exists and is not empty; choose a new one or remove it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_name(path, "staging")
    staging.mkdir()
    try:
        yield staging
        replace_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
