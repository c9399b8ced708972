# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The Hub repository folder of one publication: written with the model code for ``trust_remote_code`` users
(:func:`save_model_folder`), and uploaded in one commit (:func:`upload_folder`, phase 3 of ``birefnet-hf publish``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["save_model_folder", "upload_folder"]


@contextlib.contextmanager
def _registered_for_auto_classes(model, image_processor) -> Iterator[None]:
    """Register the model, config and processor classes for the Auto classes while saving (so that
    ``save_pretrained`` copies the code and writes ``auto_map``), then restore the classes as they were."""
    registrations = (
        (type(model), "AutoModelForImageSegmentation"),
        (type(model.config), "AutoConfig"),
        (type(image_processor), "AutoImageProcessor"),
    )
    missing = object()
    previous = [(cls, cls.__dict__.get("_auto_class", missing)) for cls, _ in registrations]
    try:
        for cls, auto_class in registrations:
            cls.register_for_auto_class(auto_class)
        yield
    finally:
        for cls, value in previous:
            if value is missing:
                with contextlib.suppress(AttributeError):
                    delattr(cls, "_auto_class")
            else:
                cls._auto_class = value


def save_model_folder(model, image_processor, card, folder: Path) -> None:
    """Write the Hub folder: weights + config (with ``auto_map``), processor config, model code, ``README.md``."""
    model.config.architectures = ["BiRefNetForImageSegmentation"]
    with _registered_for_auto_classes(model, image_processor):
        model.save_pretrained(folder)
        image_processor.save_pretrained(folder)
    card.save(folder / "README.md")


def upload_folder(
    folder: Path,
    repo_id: str,
    token: str,
    private: bool,
    create_pr: bool,
    commit_message: str,
    gated: bool = False,
):
    """Create the repository if needed and upload every file of ``folder`` in **one** commit (``create_commit``;
    ``HfApi.upload_folder`` may split large folders into several commits). With ``gated`` (a gated family such as
    RMBG-2.0) the repository is gated (``gated="auto"``) before any file is uploaded. Returns the ``CommitInfo``."""
    from huggingface_hub import CommitOperationAdd, HfApi

    operations = [
        CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    api = HfApi(token=token)
    # private=None (not False) when not asked: a new repository then follows the owner's default visibility
    api.create_repo(repo_id, repo_type="model", private=True if private else None, exist_ok=True)
    if gated:
        api.update_repo_settings(repo_id, gated="auto", repo_type="model")
    return api.create_commit(
        repo_id=repo_id,
        repo_type="model",
        operations=operations,
        commit_message=commit_message,
        create_pr=create_pr,
    )
