# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Checks of the training script's arguments, before any data or model is loaded.

:func:`check_training_arguments` completes the parsed namespace (the training size from ``--init_from``'s image
processor, ``--validation_split none``, the checkpoint to resume) and refuses values that make no sense with a
:class:`TrainingArgumentError` naming the flag; the script turns it into argparse's ``error:`` line and exit code 2.
:func:`check_resume_arguments` refuses to resume a checkpoint with arguments that change the model or the run it
recorded. The argument parser itself stays in ``examples/train.py``, where a reader looks for the options.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ..metrics import MATTING_METRIC_NAMES
from .checkpointing import read_training_state, resolve_checkpoint
from .dynamic_sizes import DEFAULT_SIZE_BUCKETS, size_buckets
from .model_setup import processor_size

__all__ = ["TrainingArgumentError", "check_input_sizes", "check_resume_arguments", "check_training_arguments"]


class TrainingArgumentError(ValueError):
    """Arguments that do not fit the data, the model or the checkpoint (exit code 2, like argparse's errors)."""


def _fail(message: str) -> None:
    raise TrainingArgumentError(message)


def _check_image_size(args: argparse.Namespace) -> None:
    args.image_size_given = args.image_size is not None
    if args.image_size is None:
        args.image_size = processor_size(args.init_from) or [1024]
    if len(args.image_size) == 1:
        args.image_size = args.image_size * 2
    if len(args.image_size) != 2 or any(side <= 0 or side % 32 for side in args.image_size):
        _fail(f"--image_size must be S or H W, positive multiples of 32 (BiRefNet's patch grid), got {args.image_size}")


def _check_counts(args: argparse.Namespace) -> None:
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                 "num_train_epochs", "logging_steps"):  # fmt: skip
        if getattr(args, name) < 1:
            _fail(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.max_train_steps is not None and args.max_train_steps < 1:
        _fail(f"--max_train_steps must be at least 1, got {args.max_train_steps}")
    if args.finetune_last_epochs < 0:
        _fail(
            f"--finetune_last_epochs counts epochs from the end and must be >= 0, got {args.finetune_last_epochs} "
            "(the authors' config writes -N for the same thing)"
        )
    if args.eval_every_epochs < 0:
        _fail(f"--eval_every_epochs must be >= 0, got {args.eval_every_epochs}")
    if args.checkpointing_steps is not None and args.checkpointing_steps != "epoch":
        if not args.checkpointing_steps.isdigit() or int(args.checkpointing_steps) < 1:
            _fail(f"--checkpointing_steps must be a positive integer or 'epoch', got {args.checkpointing_steps!r}")
    for name in ("max_train_samples", "max_eval_samples", "checkpoints_total_limit", "eval_steps",
                 "early_stopping_patience"):  # fmt: skip
        if getattr(args, name) is not None and getattr(args, name) < 1:
            _fail(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.dataloader_num_workers < 0:
        _fail(f"--dataloader_num_workers must be >= 0, got {args.dataloader_num_workers}")


def _check_data(args: argparse.Namespace) -> None:
    if args.dataset_dir is not None and not args.dataset_dir.is_dir():
        _fail(f"--dataset_dir {args.dataset_dir} is not a directory")
    if args.validation_dir is not None and not (args.validation_dir / "im").is_dir():
        _fail(f"--validation_dir {args.validation_dir} is not an im/gt folder (no im/ sub-folder)")
    if not 0 <= args.validation_fraction < 1:
        _fail(f"--validation_fraction must lie in [0, 1), got {args.validation_fraction}")
    if args.validation_split.lower() == "none":
        args.validation_split = None
    if args.dynamic_size is not None:
        low, high = args.dynamic_size
        if low < 32 or low > high or low % 32 or high % 32:
            _fail(f"--dynamic_size MIN MAX must be multiples of 32 with 32 <= MIN <= MAX, got {low} {high}")


def _check_model(args: argparse.Namespace) -> None:
    if args.init_from is not None and (args.use_pretrained_backbone or args.config_overrides):
        _fail("--use_pretrained_backbone and --config_overrides describe a fresh model; drop them with --init_from")
    if args.lora_rank < 0 or not 0 <= args.lora_dropout < 1 or args.grid_images < 0:
        _fail("--lora_rank and --grid_images must be >= 0 and --lora_dropout in [0, 1)")
    if args.lora_rank and args.freeze_backbone:
        _fail("--freeze_backbone with --lora_rank: LoRA already freezes the weights; use --lora_parts decoder")


def _check_size_buckets(args: argparse.Namespace) -> None:
    """Resolve ``--dynamic_size_buckets``: ``None`` keeps the authors' draw; ``--torch_compile`` with
    ``--dynamic_size`` defaults to :data:`~birefnet_hf.training.dynamic_sizes.DEFAULT_SIZE_BUCKETS` buckets (fewer
    when the range holds fewer multiples of 32), one compiled graph each."""
    buckets = getattr(args, "dynamic_size_buckets", None)
    if args.dynamic_size is None:
        if buckets is not None:
            _fail(f"--dynamic_size_buckets {buckets} needs --dynamic_size MIN MAX (the range the buckets divide)")
        return
    low, high = args.dynamic_size
    if buckets is None and getattr(args, "torch_compile", False):
        # one graph per input shape: the authors' independent draws would compile thousands of them
        buckets = min(DEFAULT_SIZE_BUCKETS, (high - low) // 32 + 1)
    if buckets is not None:
        try:
            size_buckets(args.dynamic_size, buckets)
        except ValueError as error:
            _fail(f"--dynamic_size_buckets {buckets} with --dynamic_size {low} {high}: {error}")
    args.dynamic_size_buckets = buckets


def _check_optimisation(args: argparse.Namespace) -> None:
    # Numbers that make no sense fail here, before any data or model is loaded.
    positive = {"learning_rate": args.learning_rate, "adam_epsilon": args.adam_epsilon,
                "max_grad_norm": args.max_grad_norm, "lr_decay_rate": args.lr_decay_rate}  # fmt: skip
    for name, value in positive.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            _fail(f"--{name} must be a positive number, got {value}")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        _fail(f"--weight_decay must be >= 0, got {args.weight_decay}")
    for name in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(args, name) < 1:
            _fail(f"--{name} must lie in [0, 1), got {getattr(args, name)}")
    if args.metric_for_best_model in MATTING_METRIC_NAMES and args.task != "matting":
        _fail(f"--metric_for_best_model {args.metric_for_best_model} is a matting error: add --task matting")
    _check_size_buckets(args)
    if args.task == "matting" and args.finetune_last_epochs > 0:
        # region-level fine-tuning keeps the IoU term alone, and the matting loss has no IoU term: nothing would train
        _fail(
            f"--finetune_last_epochs {args.finetune_last_epochs} (region-level fine-tuning: the IoU loss alone) does not "
            "apply to --task matting, whose loss has no IoU term; leave --finetune_last_epochs at 0"
        )
    if not (math.isfinite(args.early_stopping_threshold) and args.early_stopping_threshold >= 0):
        _fail(f"--early_stopping_threshold must be >= 0, got {args.early_stopping_threshold}")


def check_training_arguments(args: argparse.Namespace) -> None:
    """Complete and check the parsed arguments of ``examples/train.py`` in place.

    Sets ``image_size`` to ``[height, width]`` (``--init_from``'s processor size or 1024 when not given) and
    ``image_size_given``, ``validation_split`` to ``None`` for ``none``, and ``resume_checkpoint`` to the checkpoint
    folder to resume (``None`` for a fresh run or ``latest`` without checkpoints), checked against the arguments.

    Raises:
        TrainingArgumentError: an invalid value or a checkpoint that does not fit; the message names the flag.
    """
    _check_image_size(args)
    _check_counts(args)
    _check_data(args)
    _check_model(args)
    _check_optimisation(args)
    args.resume_checkpoint = None
    if args.resume_from_checkpoint:
        try:
            args.resume_checkpoint = resolve_checkpoint(args.resume_from_checkpoint, args.output_dir / "checkpoints")
            if args.resume_checkpoint is not None:
                check_resume_arguments(args, read_training_state(args.resume_checkpoint), args.resume_checkpoint)
        except (FileNotFoundError, ValueError) as error:
            raise TrainingArgumentError(str(error)) from None


def check_resume_arguments(args: argparse.Namespace, state: dict[str, Any], checkpoint: Path) -> None:
    """Refuse to resume ``checkpoint`` with arguments that change the model or the run it recorded.

    A checkpoint stores the backbone, the training size and the learning rate of its run (``training_state.json``);
    a resumed run must use the same ones, or the weights would not fit (a long state-dict traceback) or the run
    would silently continue with other settings than the ones the command line shows. Checkpoints written before
    these fields were recorded are checked only for what they hold.

    Raises:
        TrainingArgumentError: naming the flag, the checkpoint's value and how to go on.
    """

    def refuse(flag: str, given: Any, saved: Any, hint: str) -> None:
        _fail(f"--resume_from_checkpoint {checkpoint}: {flag} {given} differs from the checkpoint's {saved}; {hint}")

    fresh_hint = "or start a new run (another --output_dir, --init_from a saved model)"
    if "image_size" in state and list(state["image_size"]) != list(args.image_size):
        saved = " ".join(map(str, state["image_size"]))
        refuse("--image_size", " ".join(map(str, args.image_size)), saved,
               f"resume with --image_size {saved} {fresh_hint}")  # fmt: skip
    if "init_from" in state and (state["init_from"] or None) != (args.init_from or None):
        refuse("--init_from", args.init_from, state.get("init_from"), f"resume with the same --init_from {fresh_hint}")
    if args.init_from is None and "backbone" in state and state["backbone"] != args.backbone:
        refuse("--backbone", args.backbone, state["backbone"], f"resume with --backbone {state['backbone']} {fresh_hint}")
    for flag, key in (("--task", "task"), ("--lora_rank", "lora_rank"), ("--freeze_backbone", "freeze_backbone"),
                      ("--dynamic_size", "dynamic_size")):  # fmt: skip
        given = getattr(args, key)
        if key in state and state[key] != given:
            refuse(flag, given, state[key], f"resume with the same {flag} {fresh_hint}")
    # written only by runs with size buckets: a checkpoint without the field drew the authors' sizes (or none)
    saved_buckets, given_buckets = state.get("dynamic_size_buckets"), getattr(args, "dynamic_size_buckets", None)
    if args.dynamic_size is not None and saved_buckets != given_buckets:
        how = f"--dynamic_size_buckets {saved_buckets}" if saved_buckets else "without --torch_compile or size buckets"
        refuse("--dynamic_size_buckets", given_buckets, saved_buckets, f"resume {how} {fresh_hint}")
    saved_lr = state.get("learning_rate")
    if args.learning_rate is not None and saved_lr is not None and not math.isclose(args.learning_rate, saved_lr):
        refuse("--learning_rate", f"{args.learning_rate:g}", f"{saved_lr:g}",
               f"a resumed run continues the checkpoint's learning-rate schedule: drop --learning_rate, {fresh_hint}")  # fmt: skip


def check_input_sizes(args: argparse.Namespace, minimum_input_size: int, backbone: str) -> None:
    """Refuse a training size or ``--dynamic_size`` below the model's smallest input (``model.minimum_input_size``:
    64 px for PVT-v2 and VGG-16 with the half-size input, 32 otherwise), which would fail in the first forward.

    Raises:
        TrainingArgumentError: naming the flag, the model's minimum and a value that works.
    """
    height, width = args.image_size
    if min(height, width) < minimum_input_size:
        _fail(
            f"--image_size {height} {width} is below the smallest input of the {backbone} model "
            f"({minimum_input_size}x{minimum_input_size}); use --image_size {max(height, minimum_input_size)} "
            f"{max(width, minimum_input_size)} or larger"
        )
    if args.dynamic_size is not None and args.dynamic_size[0] < minimum_input_size:
        low, high = args.dynamic_size
        _fail(
            f"--dynamic_size MIN {low} is below the smallest input of the {backbone} model "
            f"({minimum_input_size}x{minimum_input_size}); use --dynamic_size {minimum_input_size} "
            f"{max(high, minimum_input_size)}"
        )
