# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Validation during training: validation loss, DIS metrics (and matting errors), best-checkpoint selection,
early stopping and a result grid per evaluation."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import PIL.Image
import torch
from tqdm.auto import tqdm

from ..atomic_io import atomic_file
from ..metrics import LOWER_IS_BETTER as _LOWER_IS_BETTER_METRICS
from ..metrics import MATTING_METRIC_NAMES, METRIC_NAMES, DISMetrics, MattingMetrics
from ..prediction import quantize_probabilities

if TYPE_CHECKING:
    from accelerate import Accelerator

    from ..loss_birefnet import BiRefNetLoss

__all__ = ["LOWER_IS_BETTER", "VALIDATION_METRICS", "BestMetricTracker", "evaluate_model", "is_better", "save_result_grid"]

#: Scores where lower is better (validation loss, MAE, HCE and the matting errors); the others are higher-is-better.
LOWER_IS_BETTER = frozenset({"loss", *_LOWER_IS_BETTER_METRICS})  # directions: metrics/table.py
#: Every score :func:`evaluate_model` can report, i.e. the choices of a "metric for the best model".
VALIDATION_METRICS = ("loss", *METRIC_NAMES, *MATTING_METRIC_NAMES)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def is_better(value: float, best: float | None, metric: str) -> bool:
    """Whether ``value`` of ``metric`` beats ``best`` (``None`` or NaN: anything finite does)."""
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value < best if metric in LOWER_IS_BETTER else value > best


class BestMetricTracker:
    """Best value of one validation metric and early stopping.

    Args:
        metric: key of the validation scores (see :data:`VALIDATION_METRICS`), its direction from
            :data:`LOWER_IS_BETTER`.
        patience: stop after this many evaluations without improvement (``None``: never).
        min_delta: an improvement must exceed this.
    """

    def __init__(self, metric: str, patience: int | None = None, min_delta: float = 0.0):
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        self.metric, self.patience, self.min_delta = metric, patience, float(min_delta)
        self.best: float | None = None
        self.best_step: int | None = None
        self.evaluations_without_improvement = 0

    def update(self, scores: dict[str, float], step: int) -> bool:
        """Record the scores of an evaluation at ``step``; returns whether they are the new best."""
        if self.metric not in scores:
            raise KeyError(f"metric {self.metric!r} is not among the validation scores {sorted(scores)}")
        value = float(scores[self.metric])
        margin = -self.min_delta if self.metric in LOWER_IS_BETTER else self.min_delta
        if self.best is None or is_better(value, self.best + margin, self.metric):
            self.best, self.best_step = value, step
            self.evaluations_without_improvement = 0
            return True
        self.evaluations_without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.evaluations_without_improvement >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step,
                "evaluations_without_improvement": self.evaluations_without_improvement}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = state.get("best"), state.get("best_step")
        self.evaluations_without_improvement = int(state.get("evaluations_without_improvement", 0))


def _denormalise(pixel_values: torch.Tensor) -> np.ndarray:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    image = (pixel_values.float().cpu() * std + mean).clamp(0, 1)
    return (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@torch.no_grad()
def evaluate_model(
    accelerator: Accelerator,
    model: torch.nn.Module,
    dataloader,
    task: str = "dis",
    grid_images: int = 0,
    criterion: BiRefNetLoss | None = None,
    region_level_finetuning: bool = False,
) -> tuple[dict[str, float], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Validation loss, DIS metrics and (``task="matting"``) matting errors of ``model`` on ``dataloader``.

    Every process predicts its shard; the main process scores. The loss is ``criterion``'s (the training loss, e.g.
    ``BiRefNetLoss(config, task="matting")``; ``None``: the model's own) on the final map (in eval mode the side
    outputs are not computed), in the training phase's form: ``region_level_finetuning=True`` (with a
    ``criterion``) gives the IoU-only loss of the region-level fine-tuning epochs, as the training script has always
    reported it in those epochs. DIS metrics compare the predicted map with the ground truth binarised at
    0.5; matting errors compare it with the soft ground truth. Returns the scores (on every process) and, on the main
    process, up to ``grid_images`` ``(image, truth, prediction)`` uint8 triples for :func:`save_result_grid`.
    """
    model.eval()
    is_main = accelerator.is_main_process
    dis = DISMetrics() if is_main else None
    matting = MattingMetrics() if is_main and task == "matting" else None
    loss_sum = torch.zeros((), device=accelerator.device)
    count = torch.zeros((), device=accelerator.device)
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    batches = tqdm(dataloader, desc="Validation", disable=not accelerator.is_local_main_process, leave=False)
    for batch_index, batch in enumerate(batches):
        if criterion is None:
            outputs = model(pixel_values=batch["pixel_values"], labels=batch["labels"])
            loss = outputs.loss
        else:
            outputs = model(pixel_values=batch["pixel_values"])
            labels = batch["labels"].to(outputs.logits.dtype)
            loss, _ = criterion(outputs, labels, region_level_finetuning=region_level_finetuning)
        loss_sum += loss.detach().float() * batch["labels"].shape[0]
        count += batch["labels"].shape[0]
        probabilities = torch.sigmoid(outputs.logits.float())[:, 0]
        soft_truth = batch["labels"][:, 0].float()
        probabilities, soft_truth = accelerator.gather_for_metrics((probabilities, soft_truth))
        # (collective: every process gathers the images of the first batch alone, for the grid)
        pixel_values = accelerator.gather_for_metrics(batch["pixel_values"]) if grid_images and batch_index == 0 else None
        if not is_main:
            continue
        predictions = quantize_probabilities(probabilities).cpu().numpy()  # the package's one rule
        references = ((soft_truth > 0.5).to(torch.uint8) * 255).cpu().numpy()
        dis.update_batch(predictions, references)
        if matting is not None:
            matting.update_batch(probabilities.clamp(0, 1).cpu().double().numpy(), soft_truth.clamp(0, 1).cpu().double().numpy())
        for index in range(min(grid_images, len(predictions)) if pixel_values is not None else 0):
            truth = (soft_truth[index].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            samples.append((_denormalise(pixel_values[index]), truth, predictions[index]))
    loss_sum, count = accelerator.reduce(loss_sum, "sum"), accelerator.reduce(count, "sum")
    scores = [None]
    if is_main:
        scores[0] = {"loss": (loss_sum / count.clamp(min=1)).item(), **dis.compute()}
        if matting is not None:
            scores[0].update(matting.compute())
    from accelerate.utils import broadcast_object_list

    broadcast_object_list(scores, from_process=0)
    return scores[0], samples


def save_result_grid(samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: str | os.PathLike) -> Path:
    """Write one row per sample, ``image | ground truth | prediction``, as a PNG (atomically)."""
    if not samples:
        raise ValueError("no samples to draw")
    path = Path(path)
    height = max(image.shape[0] for image, _, _ in samples)
    width = max(image.shape[1] for image, _, _ in samples)
    grid = PIL.Image.new("RGB", (3 * width, len(samples) * height), (255, 255, 255))
    for row, (image, truth, prediction) in enumerate(samples):
        for column, picture in enumerate((image, truth, prediction)):
            tile = PIL.Image.fromarray(picture).convert("RGB")
            grid.paste(tile, (column * width, row * height))
    with atomic_file(path) as temporary:
        grid.save(temporary, format="PNG")
    return path
