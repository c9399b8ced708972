# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Training logs: the loss and its weighted terms averaged over the logging interval and all processes, and each
process's own record of every optimiser step (``logs/train_rank{N}.jsonl``: files, loss, size, phase), from which
the tests check data sharding, resumption and the region-level fine-tuning schedule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from accelerate import Accelerator

__all__ = ["RankLog", "RunningLosses"]


class RunningLosses:
    """Sums of the loss and its terms since the last log, kept on the device (no synchronisation per step).

    Args:
        device: where the sums live.
        accumulation_steps: micro-batches per optimiser step; each micro-batch adds its values divided by it, so a
            logged value is a mean per optimiser step.
    """

    def __init__(self, device: torch.device, accumulation_steps: int = 1):
        self.device = device
        self.accumulation_steps = accumulation_steps
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0

    def add(self, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        """Add one micro-batch's loss and terms."""
        for name, value in {"loss": loss, **terms}.items():
            total = self.sums.get(name, torch.zeros((), device=self.device))
            self.sums[name] = total + value.detach() / self.accumulation_steps

    def step(self) -> None:
        """Count one optimiser step."""
        self.steps += 1

    def pop_means(self, accelerator: Accelerator) -> dict[str, float]:
        """Means per optimiser step over the interval and all processes (collective), keyed ``train/<name>``; the
        sums start again from zero."""
        means = {f"train/{name}": accelerator.reduce(value, "mean").item() / max(self.steps, 1)
                 for name, value in self.sums.items()}  # fmt: skip
        self.sums.clear()
        self.steps = 0
        return means


class RankLog:
    """One JSON object per line in ``path``, written by one process; appended to when ``append`` (a resumed run)."""

    def __init__(self, path: Path, append: bool = False):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(path)
        self._handle = open(self.path, "a" if append else "w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record) + "\n")

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RankLog:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
