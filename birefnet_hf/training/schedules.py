# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Training schedules of BiRefNet: the authors' learning-rate rule, multi-step decay milestones and the
region-level fine-tuning (RLFT) switch of the last epochs (paper Sec. 3.6)."""

from __future__ import annotations

import math

#: The paper's starting learning rate for DIS and the per-GPU batch it was tuned for.
BASE_LEARNING_RATE = 1e-4
REFERENCE_BATCH_SIZE = 4

__all__ = ["BASE_LEARNING_RATE", "REFERENCE_BATCH_SIZE", "default_learning_rate", "lr_decay_milestones", "rlft_active"]


def rlft_active(epoch: int, num_epochs: int, finetune_last_epochs: int) -> bool:
    """Whether region-level fine-tuning (IoU-only pixel loss) is on in ``epoch`` (0-based) of ``num_epochs``.

    The last ``finetune_last_epochs`` epochs fine-tune; the authors' ``epoch > epochs + finetune_last_epochs`` with
    1-based epochs and a negative count is the same rule. ``0`` switches it off.
    """
    if finetune_last_epochs < 0 or num_epochs < 1:
        raise ValueError(
            f"need finetune_last_epochs >= 0 and num_epochs >= 1, got {finetune_last_epochs}, {num_epochs}"
        )
    return finetune_last_epochs > 0 and epoch >= num_epochs - finetune_last_epochs


def default_learning_rate(per_device_batch_size: int, gradient_accumulation_steps: int = 1) -> float:
    """The authors' rule: ``1e-4 * sqrt(batch / 4)``, ``batch`` = images per process and optimiser step."""
    return BASE_LEARNING_RATE * math.sqrt(
        per_device_batch_size * gradient_accumulation_steps / REFERENCE_BATCH_SIZE
    )


def lr_decay_milestones(decay_epochs: list[int], num_epochs: int, steps_per_epoch: int) -> list[int]:
    """Optimiser steps at which the learning rate decays: after epoch ``e`` (1-based), or after epoch
    ``num_epochs + e`` for a negative ``e`` (the authors' convention). Milestones beyond the run are dropped."""
    milestones = set()
    for epoch in decay_epochs:
        end_epoch = epoch if epoch > 0 else num_epochs + epoch
        if 0 < end_epoch < num_epochs:
            milestones.add(end_epoch * steps_per_epoch)
    return sorted(milestones)
