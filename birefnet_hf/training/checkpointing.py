# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Checkpoints of a training run: ``accelerator.save_state`` folders written atomically, their training state
(``training_state.json``), and the clear failure of a full disk (the partial folder removed, "no space left on ...")."""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers.utils import logging

from ..atomic_io import replace_folder

if TYPE_CHECKING:
    from accelerate import Accelerator

logger = logging.get_logger(__name__)

CHECKPOINT_PREFIX = "step_"
TRAINING_STATE_FILE = "training_state.json"

__all__ = [
    "CHECKPOINT_PREFIX",
    "TRAINING_STATE_FILE",
    "DiskFullError",
    "disk_full_message",
    "is_disk_full",
    "list_checkpoints",
    "read_training_state",
    "removed_on_failure",
    "replace_folder_atomically",
    "resolve_checkpoint",
    "save_checkpoint",
]


class DiskFullError(OSError):
    """A checkpoint or model could not be written because its file system is full (the partial folder is removed)."""


#: The old name of :func:`birefnet_hf.atomic_io.replace_folder` (the one atomic folder swap of the package).
replace_folder_atomically = replace_folder


#: Free bytes below which a failed write from torch's serializer (a RuntimeError, not an OSError) is put down to a full disk.
DISK_FULL_MARGIN = 16 * 2**20


def is_disk_full(error: BaseException, path: Path) -> bool:
    """Whether ``error`` (raised while writing under ``path``) means the file system is full: an ``OSError`` with
    ``ENOSPC`` anywhere in its chain, or torch's serializer failing (``PytorchStreamWriter failed writing file`` /
    ``enforce fail at inline_container.cc``) while less than :data:`DISK_FULL_MARGIN` bytes are free."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, RuntimeError) and any(
        marker in str(error) for marker in ("inline_container", "file write failed", "No space left")
    ):
        try:
            return shutil.disk_usage(path if path.exists() else path.parent).free < DISK_FULL_MARGIN
        except OSError:
            return False
    return False


def disk_full_message(destination: Path, what: str) -> str:
    """The one-line explanation of a full disk while writing ``destination`` (a ``what``: checkpoint, model)."""
    return (
        f"no space left on {destination.parent} while writing the {what} {destination.name}; the partial folder "
        "was removed. Free some space (or lower --checkpoints_total_limit) and resume with "
        "--resume_from_checkpoint latest"
    )


@contextlib.contextmanager
def removed_on_failure(staging: Path, destination: Path, what: str):
    """Remove the partial folder ``staging`` if the block fails; a full disk becomes a :class:`DiskFullError` that
    says so (torch's own message is ``enforce fail at inline_container.cc``)."""
    try:
        yield
    except BaseException as error:
        disk_full = is_disk_full(error, staging)
        shutil.rmtree(staging, ignore_errors=True)
        if disk_full:
            raise DiskFullError(errno.ENOSPC, disk_full_message(destination, what)) from error
        raise


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Complete checkpoints (``step_N`` folders with a training state), oldest first."""
    if not checkpoints_dir.is_dir():
        return []
    found = [
        path
        for path in checkpoints_dir.iterdir()
        if path.is_dir() and path.name.startswith(CHECKPOINT_PREFIX) and path.name[len(CHECKPOINT_PREFIX) :].isdigit()
        and (path / TRAINING_STATE_FILE).is_file()
    ]  # fmt: skip
    return sorted(found, key=lambda path: int(path.name[len(CHECKPOINT_PREFIX) :]))


def save_checkpoint(
    accelerator: Accelerator, checkpoints_dir: Path, state: dict, total_limit: int | None
) -> Path:
    """``accelerator.save_state`` into ``checkpoints_dir/step_N``, atomically (collective).

    Every process writes its part (its RNG states) into one staging folder, ``.step_N.partial``, whose name all
    processes know (so not :func:`birefnet_hf.atomic_io.atomic_folder`'s per-process name); the main process adds
    ``state`` as ``training_state.json`` and swaps the folder in with :func:`birefnet_hf.atomic_io.replace_folder`,
    then keeps only the newest ``total_limit`` checkpoints. A failure removes the staging folder; a full disk
    raises :class:`DiskFullError`."""
    destination = checkpoints_dir / f"{CHECKPOINT_PREFIX}{state['completed_steps']}"
    staging = checkpoints_dir / f".{destination.name}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    with removed_on_failure(staging, destination, "checkpoint"):
        accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with removed_on_failure(staging, destination, "checkpoint"):
            with open(staging / TRAINING_STATE_FILE, "w", encoding="utf-8") as handle:
                json.dump(state, handle, indent=2)
            replace_folder(staging, destination)
        if total_limit is not None:
            for old in list_checkpoints(checkpoints_dir)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    logger.info(f"Saved checkpoint {destination}")
    return destination


def read_training_state(checkpoint: Path) -> dict[str, Any]:
    """The ``training_state.json`` of a checkpoint folder (a clear error if it is unreadable)."""
    path = checkpoint / TRAINING_STATE_FILE
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"--resume_from_checkpoint: cannot read {path} ({error})") from None
    if not isinstance(state, dict) or "completed_steps" not in state:
        raise ValueError(f"--resume_from_checkpoint: {path} is not a training state of this script")
    return state


def resolve_checkpoint(resume_from: str, checkpoints_dir: Path) -> Path | None:
    """The checkpoint ``--resume_from_checkpoint`` names: ``latest`` is the newest complete one in
    ``checkpoints_dir`` (``None`` if there is none), anything else a folder holding a training state."""
    if resume_from == "latest":
        found = list_checkpoints(checkpoints_dir)
        return found[-1] if found else None
    path = Path(resume_from)
    if not (path / TRAINING_STATE_FILE).is_file():
        raise FileNotFoundError(
            f"--resume_from_checkpoint {path} is not a checkpoint of this script (no {TRAINING_STATE_FILE})"
        )
    return path
