# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""What a checkpoint records about its run (``training_state.json``) and how a run continues from it.

:func:`training_state` is the dictionary saved next to ``accelerator.save_state``'s files: the progress (steps,
epoch, validation history, best metric, early-stopping count), the data layout (steps per epoch, processes, total
batch) and what identifies the run (backbone, training size, learning rate, ``--init_from``, task, LoRA rank,
frozen backbone, dynamic sizes and, when set, their buckets; :func:`~birefnet_hf.training.arguments.check_resume_arguments`
compares those with a resumed run's arguments). :func:`resume_training` checks the layout, loads the states and returns the progress.
Checkpoints written before some of these fields were recorded still load: missing fields are not checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .arguments import TrainingArgumentError
from .checkpointing import read_training_state
from .validation import BestMetricTracker

if TYPE_CHECKING:
    from accelerate import Accelerator

__all__ = ["OPTIONAL_RUN_KEYS", "RUN_IDENTITY_KEYS", "TrainingProgress", "resume_training", "training_state"]

#: Fields of the training state that identify the run (checked against a resumed run's arguments).
RUN_IDENTITY_KEYS = (
    "backbone", "image_size", "learning_rate", "init_from", "task", "lora_rank", "freeze_backbone", "dynamic_size",
)  # fmt: skip
#: Fields of the run's identity recorded only when set (``--dynamic_size_buckets``; absent: the authors' draw).
OPTIONAL_RUN_KEYS = ("dynamic_size_buckets",)
#: Fields that describe how the data is cut into steps; a resumed run must have the same.
LAYOUT_KEYS = ("steps_per_epoch", "num_processes", "total_batch_size")


@dataclass
class TrainingProgress:
    """Where a run stands: optimiser steps done, validation history (one ``{"epoch", "step", "metrics"}`` per
    validation) and the learning rate it started with."""

    completed_steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    learning_rate: float | None = None


def training_state(
    progress: TrainingProgress,
    epoch: int,
    tracker: BestMetricTracker,
    layout: dict[str, int],
    run: dict[str, Any],
) -> dict[str, Any]:
    """The ``training_state.json`` of a checkpoint taken in ``epoch``: progress, best metric and early-stopping
    count of ``tracker``, the data ``layout`` (:data:`LAYOUT_KEYS`) and the ``run``'s identity
    (:data:`RUN_IDENTITY_KEYS`). The keys are those of every earlier version of the training script."""
    missing = [key for key in (*LAYOUT_KEYS, *RUN_IDENTITY_KEYS) if key not in {**layout, **run}]
    if missing:
        raise KeyError(f"training_state: missing {missing}")
    tracked = tracker.state_dict()
    return {
        "completed_steps": progress.completed_steps,
        "epoch": epoch,
        **{key: layout[key] for key in LAYOUT_KEYS},
        "best_metric": tracked["best"],
        "best_step": tracked["best_step"],
        "history": progress.history,
        "evaluations_without_improvement": tracked["evaluations_without_improvement"],
        **{key: run[key] for key in RUN_IDENTITY_KEYS},
        # only when set, so that every other run writes the keys of earlier versions
        **{key: run[key] for key in OPTIONAL_RUN_KEYS if run.get(key) is not None},
    }


def resume_training(
    accelerator: Accelerator,
    checkpoint: Path,
    *,
    tracker: BestMetricTracker,
    layout: dict[str, int],
    backbone: str,
    learning_rate: float,
    model_description: str,
) -> TrainingProgress:
    """Load ``checkpoint`` (``accelerator.load_state``: model, optimiser, scheduler, RNG states) into the prepared
    objects, restore ``tracker`` and return the run's progress.

    Args:
        layout: this run's data layout; a checkpoint of another layout is refused (its skipped batches would differ).
        backbone: this run's model backbone; a checkpoint of another one is refused.
        learning_rate: this run's learning rate, returned when the checkpoint does not record its own.
        model_description: how the model was built (flags and values), for the error when the weights do not fit.

    Raises:
        TrainingArgumentError: another backbone, or weights that do not fit the model.
        ValueError: another data layout.
    """
    state = read_training_state(checkpoint)
    if state.get("backbone", backbone) != backbone:
        raise TrainingArgumentError(
            f"--resume_from_checkpoint {checkpoint}: the checkpoint holds a {state['backbone']} model but "
            f"{model_description} is a {backbone} model"
        )
    changed = {key: (state.get(key), value) for key, value in layout.items() if state.get(key) != value}
    if changed:
        raise ValueError(
            f"Checkpoint {checkpoint} was written by a run with a different data layout {changed} "
            "(saved, now): resume with the same dataset, batch size and number of processes"
        )
    try:
        accelerator.load_state(str(checkpoint))
    except RuntimeError as error:  # a checkpoint written before the backbone was recorded
        if "state_dict" not in str(error):
            raise
        first_lines = "\n".join(str(error).splitlines()[:4])
        raise TrainingArgumentError(
            f"--resume_from_checkpoint {checkpoint} does not fit the model built from {model_description}: "
            f"resume with the arguments of the run that wrote it\n{first_lines}"
        ) from None
    tracker.load_state_dict({"best": state["best_metric"], "best_step": state["best_step"],
                             "evaluations_without_improvement": state.get("evaluations_without_improvement", 0)})  # fmt: skip
    return TrainingProgress(
        completed_steps=state["completed_steps"],
        history=state["history"],
        learning_rate=state.get("learning_rate", learning_rate),
    )
