#!/usr/bin/env python
"""Train or fine-tune BiRefNet for dichotomous image segmentation with 🤗 Accelerate (the paper's recipe).

One script from a laptop CPU to 8 GPUs and several nodes; ``accelerate launch`` decides where it runs::

    # one process (CPU or one GPU)
    python examples/train.py --dataset_dir /data/DIS5K --output_dir outputs/birefnet-swin-l

    # the paper's setup: 8 GPUs, 4 images per GPU, bf16, 1024x1024, 600 epochs, IoU-only fine-tuning at the end
    accelerate launch --config_file examples/accelerate_configs/single_node_8gpu_ddp_bf16.yaml examples/train.py \\
        --dataset_dir /data/DIS5K --backbone swin_v1_l --use_pretrained_backbone --image_size 1024 \\
        --per_device_train_batch_size 4 --num_train_epochs 600 --finetune_last_epochs 20 \\
        --checkpointing_steps 2000 --eval_every_epochs 10 --dataloader_num_workers 8 --output_dir outputs/birefnet

    # continue after a crash or pre-emption, exactly where it stopped
    accelerate launch ... examples/train.py <same arguments> --resume_from_checkpoint latest

What it does, following the paper (Sec. 3.5, 3.6, 4.3) and, where they differ, the authors' training code
(github.com/ZhengPeng7/BiRefNet, ``config.py`` / ``train.py``):

* **Loss**: ``model(pixel_values, labels=..., class_labels=...)`` returns the paper's loss (BCE 30, IoU 0.5, SSIM 10,
  CE 5 on every side output, plus the outward reference's gradient loss); see ``birefnet_hf/loss_birefnet.py``.
  The weighted terms (``output.loss_terms``) are logged separately.
* **Optimiser**: AdamW with weight decay 0.01 (the authors' code; the paper says Adam: ``--optimizer adam``).
* **Learning rate**: the authors' rule ``lr = 1e-4 * sqrt(batch / 4)`` where ``batch`` is the number of images one
  process sees per optimiser step (their ``config.batch_size`` is per GPU; 4 in the paper), i.e. here
  ``--per_device_train_batch_size * --gradient_accumulation_steps``. It does *not* grow with the number of
  processes: 8 GPUs x 4 images train at 1e-4, as in the paper. ``--learning_rate`` overrides it.
* **Decay**: multi-step, ``--lr_decay_epochs`` (negative values count from the end, as in the authors' config) times
  ``--lr_decay_rate`` (0.5). Off by default, as in the authors' config (their milestone is epoch 1e5).
* **Region-level fine-tuning** (RLFT, Sec. 3.6): for the last ``--finetune_last_epochs`` epochs the pixel loss is
  the IoU loss only (``model.criterion.region_level_finetuning``); see :func:`rlft_active`.
* **Augmentation**: horizontal flips only, as in the paper (``--augmentations`` adds the authors' others). Each
  image is augmented with a generator seeded by ``(seed, epoch, index)``, so augmentations do not depend on the
  number of processes or data workers, and a resumed run sees exactly the images it would have seen.
* **BatchNorm and one image per device**: the decoder's BatchNorm cannot train on one image (the ASPP
  global-pooling branch is 1x1); the authors then build the decoder without BatchNorm. A fresh model with
  ``--per_device_train_batch_size 1`` gets ``use_batch_norm=False``; a pretrained one keeps its BatchNorm layers
  frozen (running statistics, ``--freeze_batch_norm``).

Checkpoints (``--checkpointing_steps``) are ``accelerator.save_state`` folders under ``output_dir/checkpoints``
(model, optimiser, scheduler, every process's RNG states, and ``training_state.json``); ``--resume_from_checkpoint``
restores them and skips the batches already seen (``accelerator.skip_first_batches``; the sampler is seeded per
epoch), so a resumed run reproduces an uninterrupted one (bit-identical on CPU). Checkpoints need a file system
shared by all nodes.

Outputs under ``--output_dir`` are written to a temporary folder and renamed, so they are complete or absent:
``final_model/`` and ``best_model/`` (``save_pretrained`` folders with the image processor and the modelling code,
loadable with ``AutoModelForImageSegmentation.from_pretrained(folder, trust_remote_code=True)`` even without this
package), ``eval_results.json`` and ``logs/`` (per-process JSON lines, TensorBoard with ``--with_tracking``).

Fine-tuning (``examples/README.md`` walks through it): ``--init_from`` any checkpoint (a ``save_pretrained`` folder,
a Hub repo, an authors' repository or ``.pth``; the image processor and training size follow it unless
``--image_size`` is given), ``--task matting`` (soft alpha targets, the authors' matting loss, matting errors in
validation), ``--freeze_backbone``, ``--lora_rank N`` (PEFT adapters on the backbone and decoder; ``*_adapter/``
folders hold them, ``*_model/`` the merged plain model), ``--dynamic_size MIN MAX`` (random multiple-of-32 size per
batch), ``--eval_steps N`` with ``--metric_for_best_model`` (``loss`` or any metric) and
``--early_stopping_patience``; each validation writes ``eval_grids/step_N.png`` (image | truth | prediction). The
reusable pieces live in :mod:`birefnet_hf.training`.

Validation (``--eval_every_epochs``, ``--eval_steps``) computes the validation loss (the loss on the final map) and
the DIS metrics (``birefnet_hf.metrics``) at ``--image_size`` against the resized masks binarised at 0.5 (and, for
``--task matting``, SAD/MSE/Grad/Conn against the soft mattes), for model selection. Numbers comparable with the paper need the masks at their
original resolution: evaluate the saved model afterwards (``examples/run_demo.py`` shows how).

Multi-process CPU training (tests, debugging): ``accelerate launch`` starts several processes only through its
multi-GPU launcher, so ``examples/accelerate_configs/cpu_2proc_gloo.yaml`` says ``distributed_type: MULTI_GPU``;
with no GPU this script then sets ``Accelerator(cpu=True)`` so the processes join one gloo group (without it every
process would train alone). ``accelerate launch --cpu --num_processes 2`` runs a single process.
"""

from __future__ import annotations

import argparse
import copy
import errno
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
import transformers
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from birefnet_hf import BACKBONE_SPECS, BiRefNetConfig, BiRefNetForImageSegmentation, BiRefNetImageProcessor
from birefnet_hf.cpu_budget import apply_cpu_budget
from birefnet_hf.data import (
    DISCollator,
    load_dis5k,
    load_hub_dataset,
    load_image_mask_folder,
    make_eval_transform,
    make_train_transform,
)
from birefnet_hf.metrics import MATTING_METRIC_NAMES
from birefnet_hf.training.checkpointing import (
    DiskFullError,
    disk_full_message,
    is_disk_full,
    list_checkpoints,
    read_training_state,
    replace_folder_atomically,
    resolve_checkpoint,
    save_checkpoint,
)
from birefnet_hf.training.lora import adapters_merged, apply_lora, freeze_backbone, merge_lora
from birefnet_hf.training.schedules import default_learning_rate, lr_decay_milestones, rlft_active
from birefnet_hf.training.validation import (
    VALIDATION_METRICS,
    BestMetricTracker,
    evaluate_model,
    save_result_grid,
)

logger = get_logger(__name__)

#: The authors' augmentations, in their order (``config.preproc_methods``); the paper uses flips only.
AUGMENTATIONS = ("flip", "enhance", "rotate", "pepper", "crop")


class TrainingArgumentError(ValueError):
    """Arguments that do not fit the data, the model or the checkpoint (exit code 2, like argparse's errors)."""




# ------------------------------------------------------------------------------------------------ arguments
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train BiRefNet (dichotomous image segmentation) with Accelerate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    source = data.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--dataset_dir", type=Path,
        help="a DIS5K folder (DIS-TR, DIS-VD, DIS-TE1..4) or its parent, or your own set: a folder with im/ and gt/",
    )  # fmt: skip
    source.add_argument(
        "--dataset_name",
        help="a 🤗 dataset with image/mask columns: Hub id or local folder (load_hub_dataset)",
    )
    data.add_argument("--dataset_config_name", help="configuration (subset) of --dataset_name, if it has several")
    data.add_argument(
        "--validation_dir", type=Path, default=None,
        help="with an im/gt --dataset_dir: the validation set (another im/gt folder)",
    )  # fmt: skip
    data.add_argument(
        "--validation_fraction", type=float, default=0.1,
        help="with an im/gt --dataset_dir and no --validation_dir: hold out this fraction (seeded) for validation",
    )  # fmt: skip
    data.add_argument("--image_column", default="image", help="image column of --dataset_name")
    data.add_argument("--mask_column", default="mask", help="mask column of --dataset_name")
    data.add_argument("--train_split", default="train", help="training split (DIS5K: train = DIS-TR)")
    data.add_argument(
        "--validation_split",
        default="validation",
        help="validation split (DIS5K: validation = DIS-VD); 'none' to skip",
    )
    data.add_argument(
        "--max_train_samples", type=int, default=None, help="use only the first N training images"
    )
    data.add_argument(
        "--max_eval_samples", type=int, default=None, help="use only the first N validation images"
    )
    data.add_argument(
        "--image_size", type=int, nargs="+", default=None,
        help="training size: S or H W, multiples of 32 (default: the --init_from image processor's size, else 1024); "
        "also the saved image processor's size",
    )  # fmt: skip
    data.add_argument(
        "--dynamic_size", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
        help="the authors' dynamic_size: every batch at a random size, multiples of 32 in [MIN, MAX] (e.g. 256 2304); "
        "images are first resized to --image_size",
    )  # fmt: skip
    data.add_argument(
        "--task", choices=("dis", "matting"), default="dis",
        help="dis: the paper's loss; matting: soft alpha targets, the authors' matting loss (BCE 10 + MAE 100 + SSIM 10) "
        "and SAD/MSE/Grad/Conn in validation",
    )  # fmt: skip
    data.add_argument(
        "--augmentations", nargs="*", choices=AUGMENTATIONS, default=["flip"],
        help="training augmentations (paper: flip; the authors' code: flip enhance rotate pepper)",
    )  # fmt: skip
    data.add_argument(
        "--dataloader_num_workers", type=int, default=0, help="data-loading processes per process"
    )

    model = parser.add_argument_group("model")
    model.add_argument(
        "--backbone", default="swin_v1_l", choices=sorted(BACKBONE_SPECS), help="encoder of a fresh model"
    )
    model.add_argument(
        "--use_pretrained_backbone",
        action="store_true",
        help="start the backbone from timm's ImageNet weights",
    )
    model.add_argument(
        "--init_from", default=None,
        help="fine-tune from a save_pretrained folder or Hub repo, or an authors' checkpoint (.pth / .safetensors)",
    )  # fmt: skip
    model.add_argument(
        "--auxiliary_classification",
        action="store_true",
        help="add the DIS5K class head and its CE loss (weight 5)",
    )
    model.add_argument(
        "--config_overrides",
        default=None,
        help="BiRefNetConfig fields of a fresh model, e.g. 'decoder_attention=aspp'",
    )
    model.add_argument(
        "--freeze_batch_norm", action="store_true", help="keep BatchNorm layers on their running statistics"
    )
    model.add_argument(
        "--gradient_checkpointing", action="store_true", help="trade compute for activation memory"
    )
    model.add_argument(
        "--freeze_backbone", action="store_true", help="train the decoder only (the authors freeze DINOv3 backbones)"
    )
    model.add_argument(
        "--lora_rank", type=int, default=0, help="train LoRA adapters of this rank (peft) instead of the weights; 0: off"
    )
    model.add_argument("--lora_alpha", type=float, default=None, help="LoRA scaling numerator (default: 2 * rank)")
    model.add_argument("--lora_dropout", type=float, default=0.0)
    model.add_argument(
        "--lora_parts", nargs="+", choices=("backbone", "decoder"), default=["backbone", "decoder"],
        help="where LoRA adapters go",
    )  # fmt: skip

    optim = parser.add_argument_group("optimisation")
    optim.add_argument(
        "--per_device_train_batch_size", type=int, default=4, help="images per process and step"
    )
    optim.add_argument("--per_device_eval_batch_size", type=int, default=4)
    optim.add_argument("--gradient_accumulation_steps", type=int, default=1)
    optim.add_argument(
        "--learning_rate", type=float, default=None,
        help="default: 1e-4 * sqrt(per_device_train_batch_size * gradient_accumulation_steps / 4) (authors' rule)",
    )  # fmt: skip
    optim.add_argument("--optimizer", choices=("adamw", "adam"), default="adamw", help="authors' code: adamw")
    optim.add_argument("--weight_decay", type=float, default=1e-2, help="AdamW weight decay (authors: 0.01)")
    optim.add_argument("--adam_beta1", type=float, default=0.9)
    optim.add_argument("--adam_beta2", type=float, default=0.999)
    optim.add_argument("--adam_epsilon", type=float, default=1e-8)
    optim.add_argument(
        "--max_grad_norm", type=float, default=None, help="clip gradients (the authors do not)"
    )
    optim.add_argument(
        "--lr_decay_epochs", type=int, nargs="*", default=[],
        help="epochs after which the lr is multiplied by --lr_decay_rate; negative: counted from the end",
    )  # fmt: skip
    optim.add_argument("--lr_decay_rate", type=float, default=0.5)
    optim.add_argument("--num_train_epochs", type=int, default=600, help="paper: 600 for DIS5K")
    optim.add_argument(
        "--max_train_steps",
        type=int,
        default=None,
        help="total optimiser steps; overrides --num_train_epochs",
    )
    optim.add_argument(
        "--finetune_last_epochs", type=int, default=0,
        help="region-level fine-tuning: IoU loss only for the last N epochs (paper: 20)",
    )  # fmt: skip
    optim.add_argument("--seed", type=int, default=7, help="seed of everything (authors: 7)")
    optim.add_argument(
        "--mixed_precision",
        choices=("no", "fp16", "bf16"),
        default=None,
        help="default: the accelerate config's",
    )

    run = parser.add_argument_group("outputs")
    run.add_argument("--output_dir", type=Path, required=True)
    run.add_argument(
        "--checkpointing_steps",
        default=None,
        help="save the training state every N optimiser steps, or 'epoch'",
    )
    run.add_argument(
        "--checkpoints_total_limit", type=int, default=None, help="keep only the newest N checkpoints"
    )
    run.add_argument(
        "--resume_from_checkpoint",
        default=None,
        help="'latest' (newest in output_dir/checkpoints) or a checkpoint path",
    )
    run.add_argument(
        "--eval_every_epochs",
        type=int,
        default=1,
        help="validate every K epochs (and at the end); 0: end only",
    )
    run.add_argument(
        "--eval_steps", type=int, default=None,
        help="also validate every N optimiser steps (validation loss, DIS metrics, result grid)",
    )  # fmt: skip
    run.add_argument(
        "--metric_for_best_model",
        choices=VALIDATION_METRICS,
        default="max_fm",
        help="validation score that selects best_model/ (loss, a DIS metric or, for --task matting, sad/mse/grad/conn)",
    )
    run.add_argument(
        "--early_stopping_patience", type=int, default=None,
        help="stop after N validations without improvement of --metric_for_best_model",
    )  # fmt: skip
    run.add_argument(
        "--early_stopping_threshold", type=float, default=0.0,
        help="an improvement must exceed this (in the metric's units) to count",
    )  # fmt: skip
    run.add_argument(
        "--grid_images", type=int, default=4, help="images in the result grid written at every validation; 0: none"
    )
    run.add_argument(
        "--logging_steps", type=int, default=10, help="log averaged losses every N optimiser steps"
    )
    run.add_argument("--with_tracking", action="store_true", help="log to the trackers of --report_to")
    run.add_argument(
        "--report_to", default="tensorboard", help="tracker(s) for --with_tracking: tensorboard, all, ..."
    )
    run.add_argument(
        "--push_to_hub", action="store_true", help="upload best_model/ (else final_model/) at the end"
    )
    run.add_argument("--hub_model_id", default=None, help="repository id; default: the output folder's name")
    run.add_argument("--hub_token", default=None, help="token for --push_to_hub (default: the logged-in one)")
    run.add_argument("--hub_private_repo", action="store_true")
    run.add_argument("--cpu", action="store_true", help="train on CPU even if an accelerator is available")

    args = parser.parse_args(argv)
    args.image_size_given = args.image_size is not None
    if args.image_size is None:
        args.image_size = processor_size(args.init_from) or [1024]
    if len(args.image_size) == 1:
        args.image_size = args.image_size * 2
    if len(args.image_size) != 2 or any(side <= 0 or side % 32 for side in args.image_size):
        parser.error(
            f"--image_size must be S or H W, positive multiples of 32 (BiRefNet's patch grid), got {args.image_size}"
        )
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                 "num_train_epochs", "logging_steps"):  # fmt: skip
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.max_train_steps is not None and args.max_train_steps < 1:
        parser.error(f"--max_train_steps must be at least 1, got {args.max_train_steps}")
    if args.finetune_last_epochs < 0:
        parser.error(
            f"--finetune_last_epochs counts epochs from the end and must be >= 0, got {args.finetune_last_epochs} "
            "(the authors' config writes -N for the same thing)"
        )
    if args.eval_every_epochs < 0:
        parser.error(f"--eval_every_epochs must be >= 0, got {args.eval_every_epochs}")
    if args.checkpointing_steps is not None and args.checkpointing_steps != "epoch":
        if not args.checkpointing_steps.isdigit() or int(args.checkpointing_steps) < 1:
            parser.error(
                f"--checkpointing_steps must be a positive integer or 'epoch', got {args.checkpointing_steps!r}"
            )
    if args.dataset_dir is not None and not args.dataset_dir.is_dir():
        parser.error(f"--dataset_dir {args.dataset_dir} is not a directory")
    if args.validation_dir is not None and not (args.validation_dir / "im").is_dir():
        parser.error(f"--validation_dir {args.validation_dir} is not an im/gt folder (no im/ sub-folder)")
    if not 0 <= args.validation_fraction < 1:
        parser.error(f"--validation_fraction must lie in [0, 1), got {args.validation_fraction}")
    if args.init_from is not None and (args.use_pretrained_backbone or args.config_overrides):
        parser.error(
            "--use_pretrained_backbone and --config_overrides describe a fresh model; drop them with --init_from"
        )
    if args.validation_split.lower() == "none":
        args.validation_split = None
    # Numbers that make no sense fail here, before any data or model is loaded.
    positive = {"learning_rate": args.learning_rate, "adam_epsilon": args.adam_epsilon,
                "max_grad_norm": args.max_grad_norm, "lr_decay_rate": args.lr_decay_rate}  # fmt: skip
    for name, value in positive.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            parser.error(f"--{name} must be a positive number, got {value}")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        parser.error(f"--weight_decay must be >= 0, got {args.weight_decay}")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(args, name) < 1:
            parser.error(f"--{name} must lie in [0, 1), got {getattr(args, name)}")
    for name in ("max_train_samples", "max_eval_samples", "checkpoints_total_limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("eval_steps", "early_stopping_patience"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.lora_rank < 0 or not 0 <= args.lora_dropout < 1 or args.grid_images < 0:
        parser.error("--lora_rank and --grid_images must be >= 0 and --lora_dropout in [0, 1)")
    if args.lora_rank and args.freeze_backbone:
        parser.error("--freeze_backbone with --lora_rank: LoRA already freezes the weights; use --lora_parts decoder")
    if args.dynamic_size is not None:
        low, high = args.dynamic_size
        if low < 32 or low > high or low % 32 or high % 32:
            parser.error(f"--dynamic_size MIN MAX must be multiples of 32 with 32 <= MIN <= MAX, got {low} {high}")
    if args.metric_for_best_model in MATTING_METRIC_NAMES and args.task != "matting":
        parser.error(f"--metric_for_best_model {args.metric_for_best_model} is a matting error: add --task matting")
    if not (math.isfinite(args.early_stopping_threshold) and args.early_stopping_threshold >= 0):
        parser.error(f"--early_stopping_threshold must be >= 0, got {args.early_stopping_threshold}")
    if args.dataloader_num_workers < 0:
        parser.error(f"--dataloader_num_workers must be >= 0, got {args.dataloader_num_workers}")
    if args.resume_from_checkpoint:
        try:
            args.resume_checkpoint = resolve_checkpoint(args.resume_from_checkpoint, args.output_dir / "checkpoints")
            if args.resume_checkpoint is not None:
                check_resume_arguments(args, read_training_state(args.resume_checkpoint), args.resume_checkpoint)
        except (FileNotFoundError, ValueError) as error:
            parser.error(str(error))
    else:
        args.resume_checkpoint = None
    return args


def parse_config_overrides(text: str | None) -> dict[str, Any]:
    """``"decoder_attention=aspp,inward_reference=false"`` -> ``{"decoder_attention": "aspp", "inward_reference": False}``,
    typed after :class:`BiRefNetConfig`'s defaults."""
    if not text:
        return {}
    defaults = BiRefNetConfig()
    overrides = {}
    for item in text.split(","):
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or not hasattr(defaults, key):
            raise ValueError(f"--config_overrides: {item!r} is not 'field=value' with a BiRefNetConfig field")
        default = getattr(defaults, key)
        if isinstance(default, bool):
            if value.lower() not in ("true", "false"):
                raise ValueError(f"--config_overrides: {key} takes true or false, got {value!r}")
            overrides[key] = value.lower() == "true"
        elif isinstance(default, int):
            overrides[key] = int(value)
        elif isinstance(default, float):
            overrides[key] = float(value)
        elif isinstance(default, (list, tuple)):
            overrides[key] = [int(v) for v in value.split()]
        else:
            overrides[key] = value
    return overrides


# ------------------------------------------------------------------------------------------------ schedule
# ------------------------------------------------------------------------------------------------ data
class SeededAugmentation(torch.utils.data.Dataset):
    """Apply a random training transform to example ``index`` with torch's CPU generator seeded by
    ``(seed, epoch, index)`` (the global state is restored afterwards), so that augmentations do not depend on which
    process or worker loads the example, nor on the batches skipped when resuming. ``set_epoch`` is called by
    Accelerate's data loader at the start of every epoch."""

    def __init__(self, dataset: datasets.Dataset, transform, seed: int):
        self.dataset = dataset
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        example = self.dataset[int(index)]
        seed = int(
            np.random.SeedSequence([self.seed, self.epoch, int(index)]).generate_state(1, np.uint64)[0] >> 1
        )
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)  # CPU only: an accelerator's generators stay untouched
            batch = self.transform({key: [value] for key, value in example.items()})
        return {key: values[0] for key, values in batch.items()}


def load_splits(args: argparse.Namespace) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """The training and validation splits (features: image, mask, label, file_name)."""
    wanted = [args.train_split] + ([args.validation_split] if args.validation_split else [])
    if args.dataset_dir is not None and (args.dataset_dir / "im").is_dir():
        # your own set in the im/gt layout: a validation folder, or a seeded held-out fraction
        train = load_image_mask_folder(args.dataset_dir)
        validation = None
        if args.validation_dir is not None:
            validation = load_image_mask_folder(args.validation_dir)
        elif args.validation_split and args.validation_fraction > 0:
            held_out = max(1, round(len(train) * args.validation_fraction))
            if held_out >= len(train):
                raise TrainingArgumentError(
                    f"--dataset_dir {args.dataset_dir} has {len(train)} image(s): too few to hold out "
                    f"--validation_fraction {args.validation_fraction}; give --validation_dir or --validation_split none"
                )
            parts = train.train_test_split(test_size=held_out, seed=args.seed, shuffle=True)
            train, validation = parts["train"], parts["test"]
    elif args.dataset_dir is not None:
        loaded = load_dis5k(args.dataset_dir, splits=wanted)
        train, validation = loaded[list(loaded)[0]], loaded[list(loaded)[1]] if len(loaded) > 1 else None
    else:
        loaded = load_hub_dataset(
            args.dataset_name,
            config_name=args.dataset_config_name,
            image_column=args.image_column,
            mask_column=args.mask_column,
        )
        missing = [split for split in wanted if split not in loaded]
        if missing:
            raise ValueError(
                f"--dataset_name {args.dataset_name} has no split(s) {missing}; it has {list(loaded)}"
            )
        train = loaded[args.train_split]
        validation = loaded[args.validation_split] if args.validation_split else None
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    if validation is not None and args.max_eval_samples is not None:
        validation = validation.select(range(min(args.max_eval_samples, len(validation))))
    return train, validation


# ------------------------------------------------------------------------------------------------ model
def build_model(args: argparse.Namespace) -> tuple[BiRefNetForImageSegmentation, bool, list[str]]:
    """The model to train, whether its BatchNorm statistics must stay frozen, and warnings for the user."""
    notes = []
    batch_of_one = args.per_device_train_batch_size == 1
    if args.init_from is not None:
        if Path(args.init_from).is_file():
            from birefnet_hf.convert_birefnet_original_to_hf import (
                convert_checkpoint,
                load_original_state_dict,
            )

            model = convert_checkpoint(load_original_state_dict(args.init_from))
        else:
            model = BiRefNetForImageSegmentation.from_pretrained(args.init_from)
        if args.auxiliary_classification and not model.config.auxiliary_classification:
            raise ValueError(f"--init_from {args.init_from} has no auxiliary classification head")
        freeze = args.freeze_batch_norm
        if batch_of_one and model.config.use_batch_norm and not freeze:
            notes.append(
                "One image per device with a pretrained model that has BatchNorm: BatchNorm cannot estimate statistics "
                "from one image (and fails on the 1x1 global-pooling branch), so its layers stay frozen on their "
                "running statistics (--freeze_batch_norm)."
            )
            freeze = True
        return model, freeze, notes

    overrides = parse_config_overrides(args.config_overrides)
    config_kwargs = dict(
        backbone=args.backbone,
        use_pretrained_backbone=args.use_pretrained_backbone,
        auxiliary_classification=args.auxiliary_classification,
    )
    config_kwargs.update(overrides)
    if batch_of_one and config_kwargs.get("use_batch_norm", True):
        notes.append(
            "One image per device: building the decoder without BatchNorm (use_batch_norm=False), as the authors do "
            "for batch size 1 (BatchNorm cannot train on one image). Use a per-device batch of 2 or more to keep it."
        )
        config_kwargs["use_batch_norm"] = False
    return BiRefNetForImageSegmentation(BiRefNetConfig(**config_kwargs)), args.freeze_batch_norm, notes


def set_train_mode(model: torch.nn.Module, freeze_batch_norm: bool) -> None:
    model.train()
    if freeze_batch_norm:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


# ------------------------------------------------------------------------------------------------ saving
def save_model(
    accelerator: Accelerator, model, image_processor, destination: Path, extra: dict | None = None
) -> None:
    """``save_pretrained`` of the model, image processor and modelling code into ``destination``, atomically.
    Collective: every process must call it (FSDP gathers the weights).

    A LoRA model is saved twice: its adapters the PEFT way into ``<name>_adapter/`` (``*_model`` -> ``*_adapter``;
    load them with :func:`birefnet_hf.training.load_lora` onto the base model), and merged into the weights as a
    plain model in ``destination``, which loads like any other checkpoint."""
    unwrapped = accelerator.unwrap_model(model)
    is_lora = hasattr(unwrapped, "merge_and_unload")
    state_dict = None if is_lora else accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        plain = merge_lora(copy.deepcopy(unwrapped)) if is_lora else unwrapped
        folders = [(plain, destination)]
        if is_lora:
            folders.append((unwrapped, destination.with_name(destination.name.replace("_model", "") + "_adapter")))
        for to_save, folder in folders:
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
            try:
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
                    with open(staging / "eval_results.json", "w", encoding="utf-8") as handle:
                        json.dump(extra, handle, indent=2)
                replace_folder_atomically(staging, folder)
            except BaseException as error:
                disk_full = is_disk_full(error, staging)
                shutil.rmtree(staging, ignore_errors=True)
                if disk_full:
                    raise DiskFullError(errno.ENOSPC, disk_full_message(folder, "model")) from error
                raise
    accelerator.wait_for_everyone()


def checkpoint_image_processor(init_from: str | None) -> BiRefNetImageProcessor | None:
    """The image processor that comes with ``--init_from``: its ``preprocessor_config.json``, or for a released
    family without one (the authors' repositories) the family's processor at its native size (2048 for
    ``BiRefNet_HR``, ...); ``None`` for a fresh model, an authors' ``.pth`` or an unknown folder."""
    if init_from is None or Path(init_from).is_file():
        return None
    try:
        return BiRefNetImageProcessor.from_pretrained(init_from)
    except (OSError, ValueError, TypeError):
        from birefnet_hf.families import image_processor_for

        return image_processor_for(init_from)


def processor_size(init_from: str | None) -> list[int] | None:
    """``[height, width]`` of :func:`checkpoint_image_processor` (``longest_edge`` N gives N x N), or ``None``."""
    processor = checkpoint_image_processor(init_from)
    size = {key: value for key, value in dict(processor.size or {}).items() if value} if processor else {}
    if size.get("height") and size.get("width"):
        return [int(size["height"]), int(size["width"])]
    if size.get("longest_edge"):
        return [int(size["longest_edge"])] * 2
    return None


def make_image_processor(args: argparse.Namespace) -> BiRefNetImageProcessor:
    """The processor saved with the model: the checkpoint's (:func:`checkpoint_image_processor`, its size kept
    unless ``--image_size`` was given), else the default processor at the training size."""
    size = {"height": args.image_size[0], "width": args.image_size[1]}
    processor = checkpoint_image_processor(args.init_from)
    if processor is None:
        return BiRefNetImageProcessor(size=size)
    if args.image_size_given:
        processor.size = type(processor.size)(**size) if not isinstance(processor.size, dict) else size
    return processor


def check_resume_arguments(args: argparse.Namespace, state: dict[str, Any], checkpoint: Path) -> None:
    """Refuse to resume ``checkpoint`` with arguments that change the model or the run it recorded.

    A checkpoint stores the backbone, the training size and the learning rate of its run (``training_state.json``);
    a resumed run must use the same ones, or the weights would not fit (a long state-dict traceback) or the run
    would silently continue with other settings than the ones the command line shows. Checkpoints written before
    these fields were recorded are checked only for what they hold."""

    def refuse(flag: str, given: Any, saved: Any, hint: str) -> None:
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint}: {flag} {given} differs from the checkpoint's {saved}; {hint}"
        )

    fresh_hint = "or start a new run (another --output_dir, --init_from a saved model)"
    if "image_size" in state and list(state["image_size"]) != list(args.image_size):
        refuse("--image_size", " ".join(map(str, args.image_size)), " ".join(map(str, state["image_size"])),
               f"resume with --image_size {' '.join(map(str, state['image_size']))} {fresh_hint}")  # fmt: skip
    if "init_from" in state and (state["init_from"] or None) != (args.init_from or None):
        refuse("--init_from", args.init_from, state.get("init_from"),
               f"resume with the same --init_from {fresh_hint}")  # fmt: skip
    if args.init_from is None and "backbone" in state and state["backbone"] != args.backbone:
        refuse("--backbone", args.backbone, state["backbone"], f"resume with --backbone {state['backbone']} {fresh_hint}")
    for flag, key in (("--task", "task"), ("--lora_rank", "lora_rank"), ("--freeze_backbone", "freeze_backbone"),
                      ("--dynamic_size", "dynamic_size")):  # fmt: skip
        given = getattr(args, key)
        if key in state and state[key] != given:
            refuse(flag, given, state[key], f"resume with the same {flag} {fresh_hint}")
    saved_lr = state.get("learning_rate")
    if args.learning_rate is not None and saved_lr is not None and not math.isclose(args.learning_rate, saved_lr):
        refuse("--learning_rate", f"{args.learning_rate:g}", f"{saved_lr:g}",
               "a resumed run continues the checkpoint's learning-rate schedule: drop --learning_rate, "
               f"{fresh_hint}")  # fmt: skip


def push_to_hub(folder: Path, args: argparse.Namespace, results: dict | None) -> str:
    """Create the Hub repository and upload ``folder`` (with a short model card) to it."""
    from huggingface_hub import create_repo, upload_folder

    repo_id = args.hub_model_id or args.output_dir.resolve().name
    card = folder / "README.md"
    if not card.exists():
        lines = [
            "---", "library_name: transformers", "pipeline_tag: image-segmentation", "tags:",
            "- birefnet", "- dichotomous-image-segmentation", "---", "",
            f"# {repo_id}", "",
            "BiRefNet (Zheng et al., *Bilateral Reference for High-Resolution Dichotomous Image Segmentation*, "
            "CAAI AIR 2024) trained with `examples/train.py` of birefnet_hf.", "",
        ]  # fmt: skip
        if results:
            lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in results.items()]
        card.write_text("\n".join(lines) + "\n", encoding="utf-8")
    repo_id = create_repo(repo_id, exist_ok=True, private=args.hub_private_repo, token=args.hub_token).repo_id
    upload_folder(
        repo_id=repo_id, folder_path=str(folder), commit_message="Upload BiRefNet", token=args.hub_token
    )
    return repo_id


# ------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    output_dir: Path = args.output_dir
    checkpoints_dir = output_dir / "checkpoints"

    # With no GPU, several launched processes must form a gloo group (see the module docstring).
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    no_accelerator = not (hasattr(torch, "accelerator") and torch.accelerator.is_available())
    ddp_kwargs = DistributedDataParallelKwargs()  # find_unused_parameters is set once the model is known
    accelerator = Accelerator(
        cpu=args.cpu or (launched and no_accelerator),
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        step_scheduler_with_optimizer=False,  # the multi-step schedule is stepped once per optimiser step, below
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        kwargs_handlers=[ddp_kwargs],
        log_with=args.report_to if args.with_tracking else None,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / "logs")
        ),
    )
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    if accelerator.is_local_main_process:
        datasets.utils.logging.set_verbosity_warning()
        transformers.utils.logging.set_verbosity_warning()
    else:
        datasets.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()
    if accelerator.device.type == "cpu":
        apply_cpu_budget()  # torch threads for the CPUs this process may use (affinity mask, cgroup quota)

    set_seed(args.seed)  # the same initial weights on every process
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "logs").mkdir(exist_ok=True)
    accelerator.wait_for_everyone()

    # ---- data
    with accelerator.main_process_first():
        train_split, validation_split = load_splits(args)
    image_size = tuple(args.image_size)
    train_transform = make_train_transform(
        image_size=image_size,
        hflip="flip" in args.augmentations,
        color_enhance="enhance" in args.augmentations,
        rotate="rotate" in args.augmentations,
        pepper="pepper" in args.augmentations,
        crop="crop" in args.augmentations,
    )
    train_dataset = SeededAugmentation(train_split, train_transform, args.seed)
    total_batch = args.per_device_train_batch_size * accelerator.num_processes
    if len(train_dataset) < total_batch:
        raise ValueError(
            f"{len(train_dataset)} training images cannot fill one batch of {args.per_device_train_batch_size} images "
            f"on each of {accelerator.num_processes} process(es)"
        )
    # Own generators: loader start-up must not draw from the global RNG (a resumed run would diverge).
    train_dataloader = DataLoader(
        train_dataset,
        batch_size=args.per_device_train_batch_size,
        shuffle=True,
        drop_last=True,  # a last batch of one image would break BatchNorm
        collate_fn=DISCollator(dynamic_size=args.dynamic_size, return_metadata=True),
        num_workers=args.dataloader_num_workers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    eval_dataloader = None
    if validation_split is not None:
        eval_dataloader = DataLoader(
            validation_split.with_transform(make_eval_transform(image_size=image_size)),
            batch_size=args.per_device_eval_batch_size,
            collate_fn=DISCollator(),
            num_workers=args.dataloader_num_workers,
            generator=torch.Generator().manual_seed(args.seed),
        )

    # ---- model, optimiser, schedule
    model, freeze_batch_norm, notes = build_model(args)
    model_config = model.config
    for note in notes:
        logger.warning(note)
    # The auxiliary classifier gets no gradient on batches without DIS5K classes (DDP must be told).
    ddp_kwargs.find_unused_parameters = bool(model.config.auxiliary_classification)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.criterion.task = args.task  # matting: the authors' matting loss on the soft alpha targets
    if args.freeze_backbone:
        logger.info(f"Backbone frozen: {freeze_backbone(model):,} parameters")
    if args.lora_rank:
        model = apply_lora(model, rank=args.lora_rank, alpha=args.lora_alpha, dropout=args.lora_dropout,
                           parts=args.lora_parts)  # fmt: skip
        freeze_batch_norm = True  # the base model's BatchNorm statistics stay as they are
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        logger.info(f"LoRA rank {args.lora_rank} on {args.lora_parts}: {trainable:,} trainable parameters")
    image_processor = make_image_processor(args)
    learning_rate = (
        args.learning_rate
        if args.learning_rate is not None  # (not `or`: an explicit value is never replaced by the default)
        else default_learning_rate(args.per_device_train_batch_size, args.gradient_accumulation_steps)
    )
    optimizer_class = torch.optim.AdamW if args.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_class(
        [parameter for parameter in model.parameters() if parameter.requires_grad],
        lr=learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        weight_decay=args.weight_decay if args.optimizer == "adamw" else 0.0,
    )
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    if eval_dataloader is not None:
        eval_dataloader = accelerator.prepare(eval_dataloader)

    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    if args.max_train_steps is None:
        max_train_steps = args.num_train_epochs * steps_per_epoch
        num_epochs = args.num_train_epochs
    else:
        max_train_steps = args.max_train_steps
        num_epochs = math.ceil(max_train_steps / steps_per_epoch)
    milestones = lr_decay_milestones(args.lr_decay_epochs, num_epochs, steps_per_epoch)
    lr_scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=milestones, gamma=args.lr_decay_rate
    )
    lr_scheduler = accelerator.prepare(lr_scheduler)  # registered for save_state / load_state

    if args.with_tracking:
        tracked = {
            k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in vars(args).items()
        }
        accelerator.init_trackers("birefnet", config=tracked)

    # Different dropout / drop-path draws on every process (data order and augmentations depend on args.seed only).
    set_seed(args.seed, device_specific=True)

    # ---- resume
    completed_steps, history = 0, []
    tracker = BestMetricTracker(
        args.metric_for_best_model, patience=args.early_stopping_patience, min_delta=args.early_stopping_threshold
    )
    if args.resume_from_checkpoint:
        checkpoint = args.resume_checkpoint  # resolved and checked against the arguments by parse_args
        if checkpoint is None:
            logger.warning(
                f"--resume_from_checkpoint latest: no checkpoint in {checkpoints_dir}, starting from scratch"
            )
        else:
            state = read_training_state(checkpoint)
            if state.get("backbone", model_config.backbone) != model_config.backbone:
                raise TrainingArgumentError(
                    f"--resume_from_checkpoint {checkpoint}: the checkpoint holds a {state['backbone']} model but "
                    f"--init_from {args.init_from} is a {model_config.backbone} model"
                )
            expected = {"steps_per_epoch": steps_per_epoch, "num_processes": accelerator.num_processes,
                        "total_batch_size": total_batch * args.gradient_accumulation_steps}  # fmt: skip
            changed = {k: (state.get(k), v) for k, v in expected.items() if state.get(k) != v}
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
                    f"--resume_from_checkpoint {checkpoint} does not fit the model built from --backbone "
                    f"{model_config.backbone} / --init_from {args.init_from} / --config_overrides "
                    f"{args.config_overrides}: resume with the arguments of the run that wrote it\n{first_lines}"
                ) from None
            completed_steps = state["completed_steps"]
            learning_rate = state.get("learning_rate", learning_rate)
            history = state["history"]
            tracker.load_state_dict({"best": state["best_metric"], "best_step": state["best_step"],
                                     "evaluations_without_improvement": state.get("evaluations_without_improvement", 0)})  # fmt: skip
            logger.info(f"Resumed from {checkpoint} at step {completed_steps}")

    total_batch_size = total_batch * args.gradient_accumulation_steps
    logger.info("***** Running training *****")
    logger.info(
        f"  Num examples = {len(train_dataset)}; validation: {len(validation_split) if validation_split else 0}"
    )
    logger.info(f"  Image size = {image_size}, augmentations = {args.augmentations}")
    logger.info(
        f"  Num epochs = {num_epochs}, optimisation steps = {max_train_steps} ({steps_per_epoch} per epoch)"
    )
    logger.info(
        f"  Batch size per device = {args.per_device_train_batch_size}, total (parallel, accumulated) = {total_batch_size}"
    )
    logger.info(
        f"  Learning rate = {learning_rate:g} ({args.optimizer}), decay x{args.lr_decay_rate} at steps {milestones}"
        + (f"; now {lr_scheduler.get_last_lr()[0]:g}" if completed_steps else "")
    )
    logger.info(f"  Region-level fine-tuning in the last {args.finetune_last_epochs} epoch(s)")
    logger.info(
        f"  Task = {args.task}, dynamic sizes = {args.dynamic_size}, freeze backbone = {args.freeze_backbone}, "
        f"LoRA rank = {args.lora_rank}"
    )

    if completed_steps == 0 and list_checkpoints(checkpoints_dir):
        logger.warning(
            f"{checkpoints_dir} holds checkpoints of an earlier run; this run will replace those it reaches"
        )
    unwrapped_model = accelerator.unwrap_model(model)
    rank_log_path = output_dir / "logs" / f"train_rank{accelerator.process_index}.jsonl"
    rank_log = open(rank_log_path, "a" if completed_steps else "w", encoding="utf-8")
    progress_bar = tqdm(
        total=max_train_steps,
        initial=completed_steps,
        desc="Training",
        disable=not accelerator.is_local_main_process,
    )
    starting_epoch = completed_steps // steps_per_epoch
    skip_batches = (completed_steps % steps_per_epoch) * args.gradient_accumulation_steps
    running = defaultdict(lambda: torch.zeros((), device=accelerator.device))
    running_count = 0
    last_checkpoint_step = completed_steps if args.resume_from_checkpoint else None
    eval_results = history[-1]["metrics"] if history else None
    start_time = time.time()

    def training_state(epoch: int) -> dict:
        return {
            "completed_steps": completed_steps, "epoch": epoch, "steps_per_epoch": steps_per_epoch,
            "num_processes": accelerator.num_processes, "total_batch_size": total_batch_size,
            "best_metric": tracker.best, "best_step": tracker.best_step, "history": history,
            "evaluations_without_improvement": tracker.evaluations_without_improvement,
            # what check_resume_arguments compares with a resumed run's arguments
            "backbone": model_config.backbone, "image_size": list(image_size), "learning_rate": learning_rate,
            "init_from": args.init_from, "task": args.task, "lora_rank": args.lora_rank,
            "freeze_backbone": args.freeze_backbone, "dynamic_size": args.dynamic_size,
        }  # fmt: skip

    def validate(epoch: int) -> dict[str, float]:
        """Validation loss and metrics, the result grid, best_model/; every process calls it."""
        with adapters_merged(unwrapped_model):  # the CPU inference kernels read the (merged) weights directly
            results, samples = evaluate_model(accelerator, model, eval_dataloader, task=args.task,
                                              grid_images=args.grid_images)  # fmt: skip
        history.append({"epoch": epoch, "step": completed_steps, "metrics": results})
        logger.info(f"validation at epoch {epoch} step {completed_steps}: "
                    + ", ".join(f"{k}={v:.4f}" for k, v in results.items()))  # fmt: skip
        if samples and accelerator.is_main_process:
            grid = save_result_grid(samples, output_dir / "eval_grids" / f"step_{completed_steps}.png")
            logger.info(f"result grid (image | truth | prediction): {grid}")
        if args.with_tracking:
            accelerator.log({f"eval/{k}": v for k, v in results.items()}, step=completed_steps)
        if tracker.update(results, completed_steps):
            save_model(accelerator, model, image_processor, output_dir / "best_model",
                       {"step": completed_steps, "epoch": epoch, **results})  # fmt: skip
        set_train_mode(model, freeze_batch_norm)
        return results

    stop_early = False

    for epoch in range(starting_epoch, num_epochs):
        if completed_steps >= max_train_steps or stop_early:
            break
        unwrapped_model.criterion.region_level_finetuning = rlft_active(
            epoch, num_epochs, args.finetune_last_epochs
        )
        set_train_mode(model, freeze_batch_norm)
        train_dataloader.set_epoch(epoch)  # data order and augmentations of this epoch
        epoch_loader = train_dataloader
        if epoch == starting_epoch and skip_batches:
            epoch_loader = accelerator.skip_first_batches(train_dataloader, skip_batches)
        for batch in epoch_loader:
            file_names = batch.pop("file_names", None)
            batch.pop("original_sizes", None)
            with accelerator.accumulate(model):
                outputs = model(**batch)
                loss = outputs.loss
                if not torch.isfinite(loss):
                    terms = {name: round(value.item(), 4) for name, value in outputs.loss_terms.items()}
                    raise FloatingPointError(
                        f"non-finite loss {loss.item()} (terms {terms}) at step {completed_steps} on {file_names}"
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            running["loss"] += loss.detach() / args.gradient_accumulation_steps
            for name, value in outputs.loss_terms.items():
                running[name] += value.detach() / args.gradient_accumulation_steps
            if not accelerator.sync_gradients:
                continue

            lr_scheduler.step()
            completed_steps += 1
            running_count += 1
            progress_bar.update(1)
            rank_log.write(json.dumps({
                "step": completed_steps, "epoch": epoch, "rank": accelerator.process_index,
                "loss": loss.item(), "files": file_names, "size": list(batch["pixel_values"].shape[-2:]),
                "region_level_finetuning": unwrapped_model.criterion.region_level_finetuning,
            }) + "\n")  # fmt: skip
            if completed_steps % args.logging_steps == 0 or completed_steps == max_train_steps:
                logs = {f"train/{name}": accelerator.reduce(value, "mean").item() / running_count
                        for name, value in running.items()}  # fmt: skip
                logs["train/learning_rate"] = lr_scheduler.get_last_lr()[0]
                logs["train/epoch"] = epoch
                progress_bar.set_postfix(loss=f"{logs['train/loss']:.3f}", epoch=epoch)
                logger.info(
                    f"step {completed_steps}: " + ", ".join(f"{k[6:]}={v:.4g}" for k, v in logs.items())
                )
                if args.with_tracking:
                    accelerator.log(logs, step=completed_steps)
                running.clear()
                running_count = 0
                rank_log.flush()
            if (
                args.checkpointing_steps not in (None, "epoch")
                and completed_steps % int(args.checkpointing_steps) == 0
            ):
                save_checkpoint(
                    accelerator, checkpoints_dir, training_state(epoch), args.checkpoints_total_limit
                )
            if eval_dataloader is not None and args.eval_steps and completed_steps % args.eval_steps == 0:
                eval_results = validate(epoch)
                stop_early = tracker.should_stop
            if (
                args.checkpointing_steps not in (None, "epoch")
                and completed_steps % int(args.checkpointing_steps) == 0
            ):
                save_checkpoint(
                    accelerator, checkpoints_dir, training_state(epoch), args.checkpoints_total_limit
                )
                last_checkpoint_step = completed_steps
            if completed_steps >= max_train_steps or stop_early:
                break

        # ---- end of epoch: validation, best model, epoch checkpoint
        last_epoch = epoch == num_epochs - 1 or completed_steps >= max_train_steps or stop_early
        due = args.eval_every_epochs and (epoch + 1) % args.eval_every_epochs == 0
        last_evaluated_step = history[-1]["step"] if history else None
        if eval_dataloader is not None and (due or last_epoch) and last_evaluated_step != completed_steps:
            eval_results = validate(epoch)
            stop_early = stop_early or tracker.should_stop
        if stop_early:
            logger.info(
                f"Early stopping at step {completed_steps}: {args.metric_for_best_model} has not improved for "
                f"{tracker.evaluations_without_improvement} validation(s) (best {tracker.best} at step "
                f"{tracker.best_step})"
            )
        if args.checkpointing_steps == "epoch" and last_checkpoint_step != completed_steps:
            save_checkpoint(accelerator, checkpoints_dir, training_state(epoch), args.checkpoints_total_limit)
            last_checkpoint_step = completed_steps

    progress_bar.close()
    # Every process records a checksum of its weights: identical on all of them when data-parallel training works.
    with torch.no_grad():
        checksum = sum(p.detach().double().sum().item() for p in unwrapped_model.parameters())
    rank_log.write(json.dumps({"final_step": completed_steps, "rank": accelerator.process_index,
                               "parameter_checksum": checksum}) + "\n")  # fmt: skip
    rank_log.close()
    if args.checkpointing_steps is not None and last_checkpoint_step != completed_steps:
        save_checkpoint(
            accelerator, checkpoints_dir, training_state(num_epochs - 1), args.checkpoints_total_limit
        )
    save_model(accelerator, model, image_processor, output_dir / "final_model",
               {"step": completed_steps, **eval_results} if eval_results else None)  # fmt: skip
    summary = {
        "completed_steps": completed_steps,
        "train_runtime_s": time.time() - start_time,
        "num_processes": accelerator.num_processes,
        "best_metric": tracker.best,
        "best_step": tracker.best_step,
        "stopped_early": stop_early,
        "metric_for_best_model": args.metric_for_best_model,
        "history": history,
    }
    if accelerator.is_main_process:
        with open(output_dir / "eval_results.json", "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2)
        if args.push_to_hub:
            folder = (
                output_dir / "best_model"
                if (output_dir / "best_model").is_dir()
                else output_dir / "final_model"
            )
            repo_id = push_to_hub(folder, args, eval_results)
            logger.info(f"Pushed {folder} to https://huggingface.co/{repo_id}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


if __name__ == "__main__":
    try:
        main()
    except TrainingArgumentError as error:
        print(f"{Path(sys.argv[0]).name}: error: {error}", file=sys.stderr)
        sys.exit(2)
    except DiskFullError as error:
        print(f"{Path(sys.argv[0]).name}: error: {error}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
