"""Reusable pieces of BiRefNet fine-tuning (``examples/train.py`` is their ``main()``).

* :mod:`~birefnet_hf.training.checkpointing` - atomic ``accelerator.save_state`` checkpoints, their training state,
  and a full disk reported as such;
* :mod:`~birefnet_hf.training.schedules` - the authors' learning-rate rule, multi-step decay, region-level fine-tuning;
* :mod:`~birefnet_hf.training.validation` - validation loss + DIS (and matting) metrics, best-model selection, early
  stopping, result grids;
* :mod:`~birefnet_hf.training.lora` - ``freeze_backbone`` and LoRA adapters through PEFT (apply, load, merge).

The matting loss is a switch of the loss itself: ``BiRefNetLoss(config, task="matting")`` or
``model.criterion.task = "matting"`` (:mod:`birefnet_hf.loss_birefnet`).
"""

from .checkpointing import (
    TRAINING_STATE_FILE,
    DiskFullError,
    list_checkpoints,
    read_training_state,
    resolve_checkpoint,
    save_checkpoint,
)
from .lora import apply_lora, freeze_backbone, load_lora, lora_target_modules, merge_lora
from .schedules import default_learning_rate, lr_decay_milestones, rlft_active
from .validation import LOWER_IS_BETTER, VALIDATION_METRICS, BestMetricTracker, evaluate_model, save_result_grid

__all__ = [
    "LOWER_IS_BETTER",
    "TRAINING_STATE_FILE",
    "VALIDATION_METRICS",
    "BestMetricTracker",
    "DiskFullError",
    "apply_lora",
    "default_learning_rate",
    "evaluate_model",
    "freeze_backbone",
    "list_checkpoints",
    "load_lora",
    "lora_target_modules",
    "lr_decay_milestones",
    "merge_lora",
    "read_training_state",
    "resolve_checkpoint",
    "rlft_active",
    "save_checkpoint",
    "save_result_grid",
]
