# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The trained model as a ``save_pretrained`` folder (written atomically; LoRA adapters saved the PEFT way and merged
into a plain model) and its upload to the Hub with a short model card."""

from __future__ import annotations

import copy
import errno
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic_io import atomic_folder, write_text
from .checkpointing import DiskFullError, disk_full_message, is_disk_full
from .lora import merge_lora

if TYPE_CHECKING:
    from accelerate import Accelerator

    from ..image_processing_birefnet import BiRefNetImageProcessor

__all__ = ["adapter_folder", "model_card", "push_to_hub", "save_model"]


def adapter_folder(destination: Path) -> Path:
    """Where the LoRA adapters of the model saved to ``destination`` go: ``*_model`` -> ``*_adapter``."""
    return destination.with_name(destination.name.replace("_model", "") + "_adapter")


def save_model(
    accelerator: Accelerator,
    model,
    image_processor: BiRefNetImageProcessor,
    destination: Path,
    extra: dict[str, Any] | None = None,
) -> None:
    """``save_pretrained`` of the model, image processor and modelling code into ``destination``, atomically
    (:func:`birefnet_hf.atomic_io.atomic_folder`), with ``extra`` as ``eval_results.json``. Collective: every process
    must call it (FSDP gathers the weights).

    A LoRA model is saved twice: its adapters the PEFT way into :func:`adapter_folder` (load them with
    :func:`birefnet_hf.training.load_lora` onto the base model), and merged into the weights as a plain model in
    ``destination``, which loads like any other checkpoint. A full disk raises :class:`DiskFullError` and leaves the
    previous folder as it was."""
    unwrapped = accelerator.unwrap_model(model)
    is_lora = hasattr(unwrapped, "merge_and_unload")
    state_dict = None if is_lora else accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        plain = merge_lora(copy.deepcopy(unwrapped)) if is_lora else unwrapped
        folders = [(plain, destination)] + ([(unwrapped, adapter_folder(destination))] if is_lora else [])
        for to_save, folder in folders:
            try:
                with atomic_folder(folder) as staging:
                    if to_save is unwrapped and is_lora:
                        to_save.save_pretrained(staging)  # adapter_config.json + adapter_model.safetensors
                    else:
                        # The folder also works without this package, through trust_remote_code (the code is copied).
                        to_save.config.register_for_auto_class()
                        to_save.register_for_auto_class("AutoModelForImageSegmentation")
                        image_processor.register_for_auto_class("AutoImageProcessor")
                        to_save.save_pretrained(staging, state_dict=state_dict, save_function=accelerator.save)
                        image_processor.save_pretrained(staging)
                    if extra:
                        (staging / "eval_results.json").write_text(json.dumps(extra, indent=2), encoding="utf-8")
            except BaseException as error:
                if is_disk_full(error, folder.parent):
                    raise DiskFullError(errno.ENOSPC, disk_full_message(folder, "model")) from error
                raise
    accelerator.wait_for_everyone()


def model_card(repo_id: str, results: dict[str, float] | None) -> str:
    """A short model card for a model trained with the training script, with its validation ``results``."""
    lines = [
        "---", "library_name: transformers", "pipeline_tag: image-segmentation", "tags:",
        "- birefnet", "- dichotomous-image-segmentation", "---", "",
        f"# {repo_id}", "",
        "BiRefNet (Zheng et al., *Bilateral Reference for High-Resolution Dichotomous Image Segmentation*, "
        "CAAI AIR 2024) trained with `examples/train.py` of birefnet_hf.", "",
    ]  # fmt: skip
    if results:
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in results.items()]
    return "\n".join(lines) + "\n"


def push_to_hub(
    folder: Path,
    repo_id: str,
    results: dict[str, float] | None,
    *,
    private: bool = False,
    token: str | None = None,
) -> str:
    """Create the Hub repository ``repo_id`` and upload ``folder`` to it, with :func:`model_card` as its README if it
    has none; returns the repository id the Hub answered."""
    from huggingface_hub import create_repo, upload_folder

    card = folder / "README.md"
    if not card.exists():
        write_text(card, model_card(repo_id, results))
    repo_id = create_repo(repo_id, exist_ok=True, private=private, token=token).repo_id
    upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload BiRefNet", token=token)
    return repo_id
