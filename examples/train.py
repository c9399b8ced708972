#!/usr/bin/env python
# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
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
  the IoU loss only (``criterion(..., region_level_finetuning=True)``, decided per epoch by :func:`rlft_active`).
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
batch; with ``--torch_compile`` one of ``--dynamic_size_buckets`` fixed sizes, 4 by default, each compiled once: see
:mod:`birefnet_hf.training.dynamic_sizes`), ``--eval_steps N`` with ``--metric_for_best_model`` (``loss`` or any metric) and
``--early_stopping_patience``; each validation writes ``eval_grids/step_N.png`` (image | truth | prediction).

This file is the script a reader follows: the options, then ``main()`` (Accelerator, data, model, optimiser,
resume, the loop, saving). Everything else is in :mod:`birefnet_hf.training`: argument checks (``arguments``),
splits (``splits``), seeded augmentation (``augmentation``), the model and its processor (``model_setup``),
schedules, checkpoints and resumption (``checkpointing``, ``resume``), validation and best-model tracking
(``validation``), logs (``progress``), saving and upload (``saving``), LoRA (``lora``).

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
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from birefnet_hf.cpu_budget import configure_thread_waiting

# before torch loads its OpenMP runtime, which reads the wait policy once: idle threads sleep (shared CPUs, issue 19)
configure_thread_waiting()

import datasets
import torch
import transformers
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from birefnet_hf import BACKBONE_SPECS
from birefnet_hf.atomic_io import write_text
from birefnet_hf.cpu_budget import apply_cpu_budget
from birefnet_hf.data import DISCollator, make_eval_transform
from birefnet_hf.inference_paths import compile_for_training, optimizer_kernel_options
from birefnet_hf.loss_birefnet import BiRefNetLoss
from birefnet_hf.training.arguments import (
    TrainingArgumentError,
    check_input_sizes,
    check_resume_arguments,
    check_training_arguments,
)
from birefnet_hf.training.augmentation import AUGMENTATIONS, SeededAugmentation, make_augmentation_transform
from birefnet_hf.training.checkpointing import DiskFullError, list_checkpoints, save_checkpoint
from birefnet_hf.training.dynamic_sizes import bucket_size, resize_batch, size_buckets
from birefnet_hf.training.lora import adapters_merged, apply_lora, freeze_backbone
from birefnet_hf.training.model_setup import (
    build_model,
    checkpoint_image_processor,
    make_image_processor,
    parse_config_overrides,
    processor_size,
    set_train_mode,
)
from birefnet_hf.training.progress import RankLog, RunningLosses
from birefnet_hf.training.resume import TrainingProgress, resume_training, training_state
from birefnet_hf.training.saving import push_to_hub, save_model
from birefnet_hf.training.schedules import default_learning_rate, lr_decay_milestones, rlft_active
from birefnet_hf.training.splits import load_splits
from birefnet_hf.training.validation import (
    VALIDATION_METRICS,
    BestMetricTracker,
    evaluate_model,
    save_result_grid,
)

logger = get_logger(__name__)

# The pieces this script used to define, importable from it as before.
__all__ = [
    "AUGMENTATIONS", "DiskFullError", "SeededAugmentation", "TrainingArgumentError", "build_model",
    "check_resume_arguments", "checkpoint_image_processor", "default_learning_rate", "list_checkpoints", "load_splits",
    "lr_decay_milestones", "main", "make_image_processor", "parse_args", "parse_config_overrides", "processor_size",
    "push_to_hub", "rlft_active", "save_checkpoint", "save_model", "set_train_mode",
]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, completed and checked (:func:`~birefnet_hf.training.arguments.check_training_arguments`):
    an invalid value, or a checkpoint to resume that does not fit, exits with argparse's ``error:`` line (code 2)."""
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
        "--dynamic_size_buckets", type=int, default=None, metavar="N",
        help="with --dynamic_size: every batch at one of N fixed sizes spread over [MIN, MAX] (both ends included, "
        "multiples of 32), drawn by (seed, epoch, batch), the same on every process; default with --torch_compile: "
        "4 (one compiled graph each), else off (the authors' independent height and width)",
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
        "--torch_compile", action="store_true",
        help="compile the model's forward with torch.compile (one graph per input shape: a fixed --image_size, or "
        "--dynamic_size with --dynamic_size_buckets N sizes)",
    )
    model.add_argument(
        "--torch_compile_backend", default="inductor", help="torch.compile backend of --torch_compile (e.g. aot_eager)"
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
    try:
        check_training_arguments(args)
    except TrainingArgumentError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train as the command line says; returns the run's summary (also written to ``output_dir/eval_results.json``)."""
    args = parse_args(argv)
    output_dir: Path = args.output_dir
    checkpoints_dir = output_dir / "checkpoints"

    # ---- Accelerator. With no GPU, several launched processes must form a gloo group (see the module docstring).
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
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
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
        (output_dir / "logs").mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    # ---- data
    with accelerator.main_process_first():
        train_split, validation_split = load_splits(args)
    image_size = tuple(args.image_size)
    buckets = size_buckets(args.dynamic_size, args.dynamic_size_buckets) if args.dynamic_size_buckets else None
    train_transform = make_augmentation_transform(image_size, args.augmentations)
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
        # with size buckets the batch is collated at --image_size and resized to its bucket in the loop
        collate_fn=DISCollator(dynamic_size=None if buckets else args.dynamic_size, return_metadata=True),
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

    # ---- model and loss
    model, freeze_batch_norm, notes = build_model(args)
    model_config = model.config
    check_input_sizes(args, model.minimum_input_size, model_config.backbone)
    for note in notes:
        logger.warning(note)
    # The auxiliary classifier gets no gradient on batches without DIS5K classes (DDP must be told).
    ddp_kwargs.find_unused_parameters = bool(model_config.auxiliary_classification)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    # The paper's loss, or for --task matting the authors' matting loss on the soft alpha targets.
    criterion = BiRefNetLoss(model_config, task=args.task).to(accelerator.device)
    if args.freeze_backbone:
        logger.info(f"Backbone frozen: {freeze_backbone(model):,} parameters")
    if args.lora_rank:
        model = apply_lora(model, rank=args.lora_rank, alpha=args.lora_alpha, dropout=args.lora_dropout,
                           parts=args.lora_parts)  # fmt: skip
        freeze_batch_norm = True  # the base model's BatchNorm statistics stay as they are
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        logger.info(f"LoRA rank {args.lora_rank} on {args.lora_parts}: {trainable:,} trainable parameters")
    image_processor = make_image_processor(args)

    # ---- optimiser and schedule
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
        **optimizer_kernel_options(accelerator.device),  # fused on CPU: fewer parallel regions (issue 19)
    )
    if args.torch_compile:
        compile_for_training(model, backend=args.torch_compile_backend, input_shapes=len(buckets) if buckets else 1)
    model, optimizer, train_dataloader = accelerator.prepare(model, optimizer, train_dataloader)
    if eval_dataloader is not None:
        eval_dataloader = accelerator.prepare(eval_dataloader)
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    if args.max_train_steps is None:
        max_train_steps, num_epochs = args.num_train_epochs * steps_per_epoch, args.num_train_epochs
    else:
        max_train_steps, num_epochs = args.max_train_steps, math.ceil(args.max_train_steps / steps_per_epoch)
    milestones = lr_decay_milestones(args.lr_decay_epochs, num_epochs, steps_per_epoch)
    lr_scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=args.lr_decay_rate)
    lr_scheduler = accelerator.prepare(lr_scheduler)  # registered for save_state / load_state

    if args.with_tracking:
        tracked = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in vars(args).items()}
        accelerator.init_trackers("birefnet", config=tracked)

    # Different dropout / drop-path draws on every process (data order and augmentations depend on args.seed only).
    set_seed(args.seed, device_specific=True)

    # ---- resume
    total_batch_size = total_batch * args.gradient_accumulation_steps
    layout = {"steps_per_epoch": steps_per_epoch, "num_processes": accelerator.num_processes,
              "total_batch_size": total_batch_size}  # fmt: skip
    tracker = BestMetricTracker(
        args.metric_for_best_model, patience=args.early_stopping_patience, min_delta=args.early_stopping_threshold
    )
    progress = TrainingProgress(learning_rate=learning_rate)
    if args.resume_from_checkpoint:
        checkpoint = args.resume_checkpoint  # resolved and checked against the arguments by parse_args
        if checkpoint is None:
            logger.warning(f"--resume_from_checkpoint latest: no checkpoint in {checkpoints_dir}, starting from scratch")
        else:
            progress = resume_training(
                accelerator, checkpoint, tracker=tracker, layout=layout, backbone=model_config.backbone,
                learning_rate=learning_rate, model_description=f"--backbone {model_config.backbone} / --init_from "
                f"{args.init_from} / --config_overrides {args.config_overrides}",
            )  # fmt: skip
            logger.info(f"Resumed from {checkpoint} at step {progress.completed_steps}")
    learning_rate = progress.learning_rate
    run = {"backbone": model_config.backbone, "image_size": list(image_size), "learning_rate": learning_rate,
           "init_from": args.init_from, "task": args.task, "lora_rank": args.lora_rank,
           "freeze_backbone": args.freeze_backbone, "dynamic_size": args.dynamic_size,
           "dynamic_size_buckets": args.dynamic_size_buckets}  # fmt: skip

    logger.info("***** Running training *****")
    logger.info(f"  Num examples = {len(train_dataset)}; validation: {len(validation_split) if validation_split else 0}")
    logger.info(f"  Image size = {image_size}, augmentations = {args.augmentations}")
    logger.info(f"  Num epochs = {num_epochs}, optimisation steps = {max_train_steps} ({steps_per_epoch} per epoch)")
    logger.info(
        f"  Batch size per device = {args.per_device_train_batch_size}, total (parallel, accumulated) = {total_batch_size}"
    )
    logger.info(
        f"  Learning rate = {learning_rate:g} ({args.optimizer}), decay x{args.lr_decay_rate} at steps {milestones}"
        + (f"; now {lr_scheduler.get_last_lr()[0]:g}" if progress.completed_steps else "")
    )
    logger.info(f"  Region-level fine-tuning in the last {args.finetune_last_epochs} epoch(s)")
    logger.info(
        f"  Task = {args.task}, dynamic sizes = {args.dynamic_size}"
        + (f" in {len(buckets)} buckets {buckets}" if buckets else "")
        + f", freeze backbone = {args.freeze_backbone}, "
        f"LoRA rank = {args.lora_rank}"
    )
    if progress.completed_steps == 0 and list_checkpoints(checkpoints_dir):
        logger.warning(f"{checkpoints_dir} holds checkpoints of an earlier run; this run will replace those it reaches")

    # ---- the loop
    unwrapped_model = accelerator.unwrap_model(model)
    rank_log = RankLog(output_dir / "logs" / f"train_rank{accelerator.process_index}.jsonl",
                       append=progress.completed_steps > 0)  # fmt: skip
    progress_bar = tqdm(total=max_train_steps, initial=progress.completed_steps, desc="Training",
                        disable=not accelerator.is_local_main_process)  # fmt: skip
    starting_epoch = progress.completed_steps // steps_per_epoch
    skip_batches = (progress.completed_steps % steps_per_epoch) * args.gradient_accumulation_steps
    running = RunningLosses(accelerator.device, args.gradient_accumulation_steps)
    last_checkpoint_step = progress.completed_steps if args.resume_from_checkpoint else None
    eval_results = progress.history[-1]["metrics"] if progress.history else None
    checkpoint_every = int(args.checkpointing_steps) if args.checkpointing_steps not in (None, "epoch") else None
    start_time = time.time()

    def checkpoint(epoch: int) -> None:
        nonlocal last_checkpoint_step
        state = training_state(progress, epoch, tracker, layout, run)
        save_checkpoint(accelerator, checkpoints_dir, state, args.checkpoints_total_limit)
        last_checkpoint_step = progress.completed_steps

    def validate(epoch: int) -> dict[str, float]:
        """Validation loss (of the epoch's phase: IoU only under region-level fine-tuning) and metrics, the result
        grid, best_model/; every process calls it."""
        step = progress.completed_steps
        with adapters_merged(unwrapped_model):  # the CPU inference kernels read the (merged) weights directly
            results, samples = evaluate_model(
                accelerator, model, eval_dataloader, task=args.task, grid_images=args.grid_images, criterion=criterion,
                region_level_finetuning=rlft_active(epoch, num_epochs, args.finetune_last_epochs),
            )  # fmt: skip
        progress.history.append({"epoch": epoch, "step": step, "metrics": results})
        logger.info(f"validation at epoch {epoch} step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in results.items()))
        if samples and accelerator.is_main_process:
            grid = save_result_grid(samples, output_dir / "eval_grids" / f"step_{step}.png")
            logger.info(f"result grid (image | truth | prediction): {grid}")
        if args.with_tracking:
            accelerator.log({f"eval/{k}": v for k, v in results.items()}, step=step)
        if tracker.update(results, step):
            save_model(accelerator, model, image_processor, output_dir / "best_model",
                       {"step": step, "epoch": epoch, **results})  # fmt: skip
        set_train_mode(model, freeze_batch_norm)
        return results

    stop_early = False
    for epoch in range(starting_epoch, num_epochs):
        if progress.completed_steps >= max_train_steps or stop_early:
            break
        region_level_finetuning = rlft_active(epoch, num_epochs, args.finetune_last_epochs)
        set_train_mode(model, freeze_batch_norm)
        train_dataloader.set_epoch(epoch)  # data order and augmentations of this epoch
        epoch_loader = train_dataloader
        if epoch == starting_epoch and skip_batches:
            epoch_loader = accelerator.skip_first_batches(train_dataloader, skip_batches)
        first_batch = skip_batches if epoch == starting_epoch else 0
        for batch_index, batch in enumerate(epoch_loader, start=first_batch):
            file_names = batch.pop("file_names", None)
            batch.pop("original_sizes", None)
            if buckets:  # the same bucket on every process, and after a resume
                resize_batch(batch, bucket_size(buckets, args.seed, epoch, batch_index))
            with accelerator.accumulate(model):
                outputs = model(pixel_values=batch["pixel_values"])
                loss, terms = criterion(outputs, batch["labels"].to(outputs.logits.dtype), batch.get("class_labels"),
                                        region_level_finetuning=region_level_finetuning)  # fmt: skip
                if not torch.isfinite(loss):
                    values = {name: round(value.item(), 4) for name, value in terms.items()}
                    raise FloatingPointError(
                        f"non-finite loss {loss.item()} (terms {values}) at step {progress.completed_steps} on {file_names}"
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            running.add(loss, terms)
            if not accelerator.sync_gradients:
                continue

            # ---- one optimiser step done: logs, checkpoint, validation
            lr_scheduler.step()
            progress.completed_steps += 1
            step = progress.completed_steps
            running.step()
            progress_bar.update(1)
            rank_log.write({
                "step": step, "epoch": epoch, "rank": accelerator.process_index, "loss": loss.item(),
                "files": file_names, "size": list(batch["pixel_values"].shape[-2:]),
                "region_level_finetuning": region_level_finetuning,
            })  # fmt: skip
            if step % args.logging_steps == 0 or step == max_train_steps:
                logs = running.pop_means(accelerator)
                logs["train/learning_rate"] = lr_scheduler.get_last_lr()[0]
                logs["train/epoch"] = epoch
                progress_bar.set_postfix(loss=f"{logs['train/loss']:.3f}", epoch=epoch)
                logger.info(f"step {step}: " + ", ".join(f"{k[6:]}={v:.4g}" for k, v in logs.items()))
                if args.with_tracking:
                    accelerator.log(logs, step=step)
                rank_log.flush()
            if eval_dataloader is not None and args.eval_steps and step % args.eval_steps == 0:
                eval_results = validate(epoch)
                stop_early = tracker.should_stop
            if checkpoint_every and step % checkpoint_every == 0:
                checkpoint(epoch)  # after the validation of this step, so a resumed run knows its result
            if step >= max_train_steps or stop_early:
                break

        # ---- end of epoch: validation, best model, epoch checkpoint
        last_epoch = epoch == num_epochs - 1 or progress.completed_steps >= max_train_steps or stop_early
        due = args.eval_every_epochs and (epoch + 1) % args.eval_every_epochs == 0
        last_evaluated_step = progress.history[-1]["step"] if progress.history else None
        if eval_dataloader is not None and (due or last_epoch) and last_evaluated_step != progress.completed_steps:
            eval_results = validate(epoch)
            stop_early = stop_early or tracker.should_stop
        if stop_early:
            logger.info(
                f"Early stopping at step {progress.completed_steps}: {args.metric_for_best_model} has not improved "
                f"for {tracker.evaluations_without_improvement} validation(s) (best {tracker.best} at step "
                f"{tracker.best_step})"
            )
        if args.checkpointing_steps == "epoch" and last_checkpoint_step != progress.completed_steps:
            checkpoint(epoch)

    # ---- end: final checkpoint, final model, summary
    progress_bar.close()
    # Every process records a checksum of its weights: identical on all of them when data-parallel training works.
    with torch.no_grad():
        checksum = sum(p.detach().double().sum().item() for p in unwrapped_model.parameters())
    rank_log.write({"final_step": progress.completed_steps, "rank": accelerator.process_index,
                    "parameter_checksum": checksum})  # fmt: skip
    rank_log.close()
    if args.checkpointing_steps is not None and last_checkpoint_step != progress.completed_steps:
        checkpoint(num_epochs - 1)
    save_model(accelerator, model, image_processor, output_dir / "final_model",
               {"step": progress.completed_steps, **eval_results} if eval_results else None)  # fmt: skip
    summary = {
        "completed_steps": progress.completed_steps,
        "train_runtime_s": time.time() - start_time,
        "num_processes": accelerator.num_processes,
        "best_metric": tracker.best,
        "best_step": tracker.best_step,
        "stopped_early": stop_early,
        "metric_for_best_model": args.metric_for_best_model,
        "history": progress.history,
    }
    if accelerator.is_main_process:
        write_text(output_dir / "eval_results.json", json.dumps(summary, indent=2))
        if args.push_to_hub:
            folder = output_dir / "best_model" if (output_dir / "best_model").is_dir() else output_dir / "final_model"
            repo_id = push_to_hub(folder, args.hub_model_id or output_dir.resolve().name, eval_results,
                                  private=args.hub_private_repo, token=args.hub_token)  # fmt: skip
            logger.info(f"Pushed {folder} to https://huggingface.co/{repo_id}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return summary


if __name__ == "__main__":
    try:
        main()
    except (TrainingArgumentError, DiskFullError) as error:
        print(f"{Path(sys.argv[0]).name}: error: {error}", file=sys.stderr)
        sys.exit(2 if isinstance(error, TrainingArgumentError) else 1)
    sys.exit(0)
