# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Reusable pieces of BiRefNet fine-tuning (``examples/train.py`` is their ``main()``), one module per job:

* :mod:`~birefnet_hf.training.arguments` - checks of the training arguments (a :class:`TrainingArgumentError` names
  the flag), resume arguments against the checkpoint, input sizes against the model's minimum;
* :mod:`~birefnet_hf.training.splits` - training and validation splits (DIS5K, an ``im/gt`` folder, a 🤗 dataset);
* :mod:`~birefnet_hf.training.augmentation` - augmentation seeded per ``(seed, epoch, image)``;
* :mod:`~birefnet_hf.training.model_setup` - the model to train (fresh or ``--init_from``), BatchNorm rules, the
  image processor saved with it;
* :mod:`~birefnet_hf.training.schedules` - the authors' learning-rate rule, multi-step decay, region-level fine-tuning;
* :mod:`~birefnet_hf.training.checkpointing` - atomic ``accelerator.save_state`` checkpoints, their training state,
  and a full disk reported as such;
* :mod:`~birefnet_hf.training.resume` - what a checkpoint records about its run and how a run continues from it;
* :mod:`~birefnet_hf.training.validation` - validation loss + DIS (and matting) metrics, best-model selection, early
  stopping, result grids;
* :mod:`~birefnet_hf.training.progress` - averaged loss logs and each process's step records;
* :mod:`~birefnet_hf.training.saving` - ``save_pretrained`` folders written atomically (LoRA merged), Hub upload;
* :mod:`~birefnet_hf.training.lora` - ``freeze_backbone`` and LoRA adapters through PEFT (apply, load, merge);
* :mod:`~birefnet_hf.training.dynamic_sizes` - size buckets: the authors' dynamic sizes with a bounded number of
  shapes for ``torch.compile``, drawn the same on every process and after a resume.

The loss is chosen by arguments, never switched on a shared object: ``BiRefNetLoss(config, task="matting")`` for the
authors' matting loss, ``criterion(outputs, labels, region_level_finetuning=True)`` in the region-level
fine-tuning epochs (:mod:`birefnet_hf.loss_birefnet`).
"""

from .arguments import (
    TrainingArgumentError,
    check_input_sizes,
    check_resume_arguments,
    check_training_arguments,
)
from .augmentation import AUGMENTATIONS, SeededAugmentation, make_augmentation_transform
from .checkpointing import (
    TRAINING_STATE_FILE,
    DiskFullError,
    list_checkpoints,
    read_training_state,
    resolve_checkpoint,
    save_checkpoint,
)
from .lora import apply_lora, freeze_backbone, load_lora, lora_target_modules, merge_lora
from .model_setup import build_model, make_image_processor, parse_config_overrides, set_train_mode
from .progress import RankLog, RunningLosses
from .resume import TrainingProgress, resume_training, training_state
from .saving import push_to_hub, save_model
from .schedules import default_learning_rate, lr_decay_milestones, rlft_active
from .splits import load_splits
from .validation import (
    LOWER_IS_BETTER,
    VALIDATION_METRICS,
    BestMetricTracker,
    evaluate_model,
    save_result_grid,
)

__all__ = [
    "AUGMENTATIONS",
    "LOWER_IS_BETTER",
    "TRAINING_STATE_FILE",
    "VALIDATION_METRICS",
    "BestMetricTracker",
    "DiskFullError",
    "RankLog",
    "RunningLosses",
    "SeededAugmentation",
    "TrainingArgumentError",
    "TrainingProgress",
    "apply_lora",
    "build_model",
    "check_input_sizes",
    "check_resume_arguments",
    "check_training_arguments",
    "default_learning_rate",
    "evaluate_model",
    "freeze_backbone",
    "list_checkpoints",
    "load_lora",
    "load_splits",
    "lora_target_modules",
    "lr_decay_milestones",
    "make_augmentation_transform",
    "make_image_processor",
    "merge_lora",
    "parse_config_overrides",
    "push_to_hub",
    "read_training_state",
    "resolve_checkpoint",
    "resume_training",
    "rlft_active",
    "save_checkpoint",
    "save_model",
    "save_result_grid",
    "set_train_mode",
    "training_state",
]
