# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""BiRefNet's training objective (paper Sec. 3.5, Eq. 1-5, and the training strategies of Sec. 3.6).

``L = 30 * BCE + 0.5 * IoU + 10 * SSIM (+ 5 * CE)`` on the final prediction *and* on every side output of the
multi-stage supervision (each upsampled bilinearly, ``align_corners=True``, to the mask size), plus the outward
reference's gradient loss. Where the authors' training code differs from the paper's formulas, this follows their
code, since the loss weights were tuned on it:

* BCE is the mean over pixels (and images) of the binary cross-entropy of ``sigmoid(logits)``; computed here from
  the logits (numerically stable; the authors' ``nn.BCELoss`` clamps log at -100, which only matters for saturated
  logits).
* IoU is ``1 - sum(p * g) / (sum(p) + sum(g) - sum(p * g))`` per image, **summed** over the batch.
* SSIM uses an 11x11 Gaussian window (sigma 1.5), zero padding, C1 = 0.01^2, C2 = 0.03^2, mean over the map, and the
  loss is ``(1 - SSIM) / 2``.
* MAE (off by default) is the mean absolute error of ``sigmoid(logits)``.
* The gradient loss is the BCE between ``sigmoid(upsampled gradient prediction)`` and ``sigmoid(gradient label)``,
  summed over the supervised stages, weight 1 (``config.loss_gradient_weight``).
* The auxiliary classification loss is cross-entropy, weight 5.
* Everything is computed in float32, with autocast switched off, also when the model runs in mixed precision.

Tasks (``task`` argument, or the :attr:`BiRefNetLoss.task` attribute, e.g. ``model.criterion.task = "matting"``):

* ``"dis"`` (default): the weights of the config, as above (dichotomous segmentation, salient/camouflaged objects);
* ``"matting"``: the authors' matting loss (their ``config.py`` for ``task == "Matting"``): BCE 10 + MAE 100 +
  SSIM 10, no IoU, on the same outputs, with the soft alpha mattes as targets (nothing binarises them); the
  gradient and classification terms keep the config's weights.

Region-level fine-tuning (RLFT, Sec. 3.6) is an argument of the call, ``criterion(outputs, labels,
region_level_finetuning=True)`` for the last epochs (nothing on the loss object changes between phases); the pixel
losses are then the IoU loss alone (BCE, SSIM and MAE switched off), the auxiliary terms stay. This is the paper's "fine-tuned with the IoU loss for the last 20 epochs"; the authors' current ``train.py``
instead sets BCE to 0, keeps SSIM and halves the IoU weight at every fine-tuning epoch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_birefnet import BiRefNetConfig


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 2-D Gaussian window (size x size) as a (1, 1, size, size) conv kernel."""
    coords = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).float().view(1, 1, size, size)


def ssim(prediction: torch.Tensor, target: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Mean structural similarity of two (N, 1, H, W) maps in [0, 1] (Gaussian window, zero padding)."""
    pad = window.shape[-1] // 2
    window = window.to(prediction.dtype)

    def blur(x):
        return F.conv2d(x, window, padding=pad)

    mu_p, mu_t = blur(prediction), blur(target)
    mu_pp, mu_tt, mu_pt = mu_p * mu_p, mu_t * mu_t, mu_p * mu_t
    sigma_pp = blur(prediction * prediction) - mu_pp
    sigma_tt = blur(target * target) - mu_tt
    sigma_pt = blur(prediction * target) - mu_pt
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_pt + c1) * (2 * sigma_pt + c2)) / ((mu_pp + mu_tt + c1) * (sigma_pp + sigma_tt + c2))
    return ssim_map.mean()


def iou_loss(probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over images of ``1 - IoU`` (soft IoU of the whole map)."""
    dims = tuple(range(1, probabilities.ndim))
    intersection = (probabilities * target).sum(dim=dims)
    union = probabilities.sum(dim=dims) + target.sum(dim=dims) - intersection
    return (1 - intersection / union).sum()


#: Loss tasks and, for each, the pixel-term weights that replace the config's (``None``: the config's own).
LOSS_TASKS: dict[str, dict[str, float] | None] = {
    "dis": None,
    # The authors' config.py, task "Matting": bce 10, iou 0, mae 100, ssim 10 (and every other term 0).
    "matting": {"bce": 10.0, "iou": 0.0, "ssim": 10.0, "mae": 100.0},
}


class BiRefNetLoss(nn.Module):
    """The weighted sum of BiRefNet's loss terms; returns ``(loss, terms)`` where ``terms`` holds each weighted term
    (``bce``, ``iou``, ``ssim``, ``mae``, ``gradient``, ``classification``) summed over the supervised outputs.

    Args:
        config: the model's configuration (loss weights).
        task: ``"dis"`` (the config's weights) or ``"matting"`` (the authors' matting loss, see the module docstring);
            can be changed later through :attr:`task`.
    """

    def __init__(self, config: BiRefNetConfig, task: str = "dis"):
        super().__init__()
        self.config_weights = {
            "bce": config.loss_bce_weight,
            "iou": config.loss_iou_weight,
            "ssim": config.loss_ssim_weight,
            "mae": config.loss_mae_weight,
        }
        self.task = task
        self.gradient_weight = config.loss_gradient_weight
        self.classification_weight = config.loss_classification_weight
        self.register_buffer("ssim_window", gaussian_window(11, 1.5), persistent=False)

    @property
    def task(self) -> str:
        """``"dis"`` or ``"matting"``: which pixel-term weights are in force."""
        return self._task

    @task.setter
    def task(self, task: str) -> None:
        if task not in LOSS_TASKS:
            raise ValueError(f"loss task must be one of {sorted(LOSS_TASKS)}, got {task!r}")
        self._task = task
        self.weights = dict(LOSS_TASKS[task] or self.config_weights)

    def _init_buffers(self) -> None:
        """Recompute the SSIM window: it is not in checkpoints (non-persistent), so ``from_pretrained``, which builds
        the model on the meta device, leaves it uninitialised; ``BiRefNetPreTrainedModel._init_weights`` calls this."""
        with torch.no_grad():
            self.ssim_window.copy_(gaussian_window(11, 1.5).to(self.ssim_window.device))

    @property
    def region_level_finetuning(self) -> bool:
        """``False``: the default of the ``region_level_finetuning`` argument of :meth:`forward`. Region-level
        fine-tuning is chosen per call, so it cannot be switched on here (assigning raises an error that says so)."""
        return False

    @region_level_finetuning.setter
    def region_level_finetuning(self, value: bool) -> None:
        raise AttributeError(
            "BiRefNetLoss.region_level_finetuning is no longer a switch on the loss: pass it to the call, "
            f"criterion(outputs, labels, region_level_finetuning={bool(value)})"
        )

    def pixel_weights(self, region_level_finetuning: bool = False) -> dict[str, float]:
        """Weights of the pixel terms in force (region-level fine-tuning keeps the IoU loss only)."""
        if region_level_finetuning:
            return {name: (w if name == "iou" else 0.0) for name, w in self.weights.items()}
        return dict(self.weights)

    def pixel_terms(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted pixel terms of one prediction (logits resized to the target if needed)."""
        logits = logits.float()
        if logits.shape[-2:] != target.shape[-2:]:
            logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=True)
        probabilities = torch.sigmoid(logits)
        return {
            "bce": F.binary_cross_entropy_with_logits(logits, target),
            "iou": iou_loss(probabilities, target),
            "ssim": (1 - ssim(probabilities, target, self.ssim_window)) / 2,
            "mae": (probabilities - target).abs().mean(),
        }

    def forward(
        self,
        outputs,
        labels: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        *,
        region_level_finetuning: bool = False,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, terms)`` of ``outputs`` (a [`BiRefNetImageSegmentationOutput`]) against ``labels`` (N, 1, H, W)
        in [0, 1]; ``class_labels`` feed the auxiliary classification term. ``region_level_finetuning=True`` (the
        paper's last epochs) keeps the IoU loss alone among the pixel terms."""
        # Always float32, also inside a mixed-precision forward: under autocast the SSIM convolutions would run in
        # bfloat16/float16, whose rounding exceeds SSIM's constants and makes the term infinite.
        device_type = labels.device.type
        if not torch.amp.is_autocast_available(device_type):  # e.g. the meta device: no autocast to switch off
            return self._compute(outputs, labels, class_labels, region_level_finetuning)
        with torch.autocast(device_type=device_type, enabled=False):
            return self._compute(outputs, labels, class_labels, region_level_finetuning)

    def _compute(
        self, outputs, labels: torch.Tensor, class_labels: torch.Tensor | None, region_level_finetuning: bool
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        target = labels.float().clamp(0, 1)
        predictions = [*(outputs.stage_logits or ()), outputs.logits]
        weights = self.pixel_weights(region_level_finetuning)
        zero = target.new_zeros(())
        terms = {name: zero for name in weights}
        for logits in predictions:
            unweighted = self.pixel_terms(logits, target)
            for name, weight in weights.items():
                if weight:
                    terms[name] = terms[name] + weight * unweighted[name]

        terms["gradient"] = zero
        if outputs.gradient_logits and self.gradient_weight:
            for prediction, label in zip(outputs.gradient_logits, outputs.gradient_labels, strict=True):
                prediction = F.interpolate(
                    prediction.float(), size=label.shape[-2:], mode="bilinear", align_corners=True
                )
                terms["gradient"] = terms["gradient"] + F.binary_cross_entropy(
                    torch.sigmoid(prediction), torch.sigmoid(label.float())
                )
            terms["gradient"] = self.gradient_weight * terms["gradient"]

        terms["classification"] = zero
        if outputs.class_logits is not None and class_labels is not None and self.classification_weight:
            terms["classification"] = self.classification_weight * F.cross_entropy(
                outputs.class_logits.float(), class_labels.to(outputs.class_logits.device).long()
            )

        return sum(terms.values()), terms


__all__ = ["LOSS_TASKS", "BiRefNetLoss", "ssim", "iou_loss", "gaussian_window"]
