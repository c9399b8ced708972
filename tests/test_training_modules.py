# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Unit tests of the birefnet_hf.training modules that examples/train.py is built from: argument and input-size
checks, seeded augmentation, the training state of a checkpoint (old checkpoints included) and resumption, loss logs,
atomic model saving, validation with the run's loss, and the demo starting train.py as a user would."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation, BiRefNetImageProcessor
from birefnet_hf.data import DISCollator, generate_synthetic_dis5k, load_dis5k, make_eval_transform
from birefnet_hf.loss_birefnet import BiRefNetLoss
from birefnet_hf.training import (
    AUGMENTATIONS,
    BestMetricTracker,
    RankLog,
    RunningLosses,
    TrainingArgumentError,
    TrainingProgress,
    check_input_sizes,
    evaluate_model,
    make_augmentation_transform,
    resume_training,
    save_checkpoint,
    save_model,
    training_state,
)
from birefnet_hf.training.augmentation import augmentation_seed
from birefnet_hf.training.resume import LAYOUT_KEYS, RUN_IDENTITY_KEYS
from birefnet_hf.training.saving import adapter_folder, model_card

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO_ROOT / "examples" / "train.py"

#: The keys of training_state.json as every earlier version of examples/train.py wrote them.
TRAINING_STATE_KEYS = {
    "completed_steps", "epoch", "steps_per_epoch", "num_processes", "total_batch_size", "best_metric", "best_step",
    "history", "evaluations_without_improvement", "backbone", "image_size", "learning_rate", "init_from", "task",
    "lora_rank", "freeze_backbone", "dynamic_size",
}  # fmt: skip


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    return generate_synthetic_dis5k(tmp_path_factory.mktemp("synthetic"), num_train=4, num_val=2, num_test=1,
                                    size=64, seed=0, progress=False)  # fmt: skip


# ------------------------------------------------------------------------------------------ arguments
def test_input_sizes_below_the_models_minimum_are_refused_naming_the_flag():
    # pvt_v2_b0 with the half-size input ("cat", the default) needs 64 px; the check is the model's own number.
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone="pvt_v2_b0"))
    assert model.minimum_input_size == 64
    args = argparse.Namespace(image_size=[64, 64], dynamic_size=[32, 128])
    with pytest.raises(TrainingArgumentError, match=r"--dynamic_size MIN 32 is below .* pvt_v2_b0 .*64x64.*--dynamic_size 64 128"):
        check_input_sizes(args, model.minimum_input_size, "pvt_v2_b0")
    args = argparse.Namespace(image_size=[32, 96], dynamic_size=None)
    with pytest.raises(TrainingArgumentError, match=r"--image_size 32 96 is below .*use --image_size 64 96"):
        check_input_sizes(args, 64, "pvt_v2_b0")
    check_input_sizes(argparse.Namespace(image_size=[64, 64], dynamic_size=[64, 64]), 64, "pvt_v2_b0")  # fits
    check_input_sizes(argparse.Namespace(image_size=[32, 32], dynamic_size=[32, 64]), 32, "swin_v1_t")  # fits


def test_train_script_refuses_a_dynamic_size_below_the_minimum_with_exit_code_2(synthetic_root, tmp_path):
    """From the command line: one error line naming --dynamic_size, exit code 2, no traceback, nothing trained."""
    output_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), "--dataset_dir", str(synthetic_root), "--backbone", "pvt_v2_b0",
         "--image_size", "64", "--dynamic_size", "32", "64", "--per_device_train_batch_size", "2",
         "--max_train_steps", "1", "--output_dir", str(output_dir)],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "train.py: error: --dynamic_size MIN 32 is below the smallest input of the pvt_v2_b0 model" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (output_dir / "final_model").exists() and not (output_dir / "checkpoints").exists()


# ------------------------------------------------------------------------------------------ augmentation
def test_augmentation_seed_and_transform():
    seeds = {augmentation_seed(7, epoch, index) for epoch in range(3) for index in range(50)}
    assert len(seeds) == 150 and all(0 <= seed < 2**63 for seed in seeds)  # distinct, valid torch seeds
    assert augmentation_seed(7, 1, 2) == augmentation_seed(7, 1, 2) != augmentation_seed(8, 1, 2)
    transform = make_augmentation_transform((64, 96), ["flip", "rotate"])
    assert transform.hflip and transform.rotate and not transform.color_enhance
    assert set(AUGMENTATIONS) == {"flip", "enhance", "rotate", "pepper", "crop"}
    with pytest.raises(ValueError, match="blur"):
        make_augmentation_transform((64, 64), ["flip", "blur"])


# ------------------------------------------------------------------------------------------ training state / resume
def _run_identity(**changes) -> dict:
    run = {"backbone": "pvt_v2_b0", "image_size": [64, 64], "learning_rate": 7e-5, "init_from": None, "task": "dis",
           "lora_rank": 0, "freeze_backbone": False, "dynamic_size": None}  # fmt: skip
    return {**run, **changes}


def test_training_state_keeps_the_keys_of_earlier_checkpoints():
    tracker = BestMetricTracker("loss", patience=3)
    tracker.update({"loss": 2.0}, 4)
    tracker.update({"loss": 3.0}, 8)
    progress = TrainingProgress(completed_steps=8, history=[{"epoch": 1, "step": 8, "metrics": {"loss": 3.0}}])
    layout = {"steps_per_epoch": 4, "num_processes": 1, "total_batch_size": 2}
    state = training_state(progress, 1, tracker, layout, _run_identity())
    assert set(state) == TRAINING_STATE_KEYS == {"completed_steps", "epoch", "best_metric", "best_step", "history",
                                                 "evaluations_without_improvement", *LAYOUT_KEYS, *RUN_IDENTITY_KEYS}
    assert (state["best_metric"], state["best_step"], state["evaluations_without_improvement"]) == (2.0, 4, 1)
    assert json.loads(json.dumps(state)) == state  # what training_state.json holds
    with pytest.raises(KeyError, match="task"):
        training_state(progress, 1, tracker, layout, {k: v for k, v in _run_identity().items() if k != "task"})


def _accelerator_with_linear():
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, optimizer = accelerator.prepare(model, optimizer)
    return accelerator, model, optimizer


def test_resume_restores_progress_tracker_and_weights_also_from_an_old_checkpoint(tmp_path):
    accelerator, model, optimizer = _accelerator_with_linear()
    layout = {"steps_per_epoch": 4, "num_processes": 1, "total_batch_size": 2}
    # A checkpoint of the first version of the script: no run identity, no early-stopping count.
    old_state = {"completed_steps": 6, "epoch": 1, **layout, "best_metric": 0.5, "best_step": 4,
                 "history": [{"epoch": 0, "step": 4, "metrics": {"max_fm": 0.5}}]}  # fmt: skip
    checkpoint = save_checkpoint(accelerator, tmp_path / "checkpoints", old_state, None)
    saved = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)

    tracker = BestMetricTracker("max_fm", patience=2)
    progress = resume_training(accelerator, checkpoint, tracker=tracker, layout=layout, backbone="pvt_v2_b0",
                               learning_rate=1e-4, model_description="--backbone pvt_v2_b0")  # fmt: skip
    assert torch.equal(model.weight, saved)  # accelerator.load_state ran
    assert (progress.completed_steps, progress.learning_rate) == (6, 1e-4)  # no recorded lr: this run's
    assert progress.history == old_state["history"]
    assert (tracker.best, tracker.best_step, tracker.evaluations_without_improvement) == (0.5, 4, 0)

    with pytest.raises(ValueError, match="different data layout"):
        resume_training(accelerator, checkpoint, tracker=tracker, layout={**layout, "num_processes": 2},
                        backbone="pvt_v2_b0", learning_rate=1e-4, model_description="x")  # fmt: skip
    new_state = {**old_state, **_run_identity(), "evaluations_without_improvement": 1}
    checkpoint = save_checkpoint(accelerator, tmp_path / "checkpoints", {**new_state, "completed_steps": 7}, None)
    with pytest.raises(TrainingArgumentError, match="holds a pvt_v2_b0 model but --init_from x is a swin_v1_t"):
        resume_training(accelerator, checkpoint, tracker=tracker, layout=layout, backbone="swin_v1_t",
                        learning_rate=1e-4, model_description="--init_from x")  # fmt: skip
    progress = resume_training(accelerator, checkpoint, tracker=tracker, layout=layout, backbone="pvt_v2_b0",
                               learning_rate=1e-4, model_description="x")  # fmt: skip
    assert progress.learning_rate == 7e-5 and tracker.evaluations_without_improvement == 1


# ------------------------------------------------------------------------------------------ logs
def test_running_losses_average_per_optimiser_step_and_rank_log_appends(tmp_path):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    running = RunningLosses(torch.device("cpu"), accumulation_steps=2)
    for loss in (1.0, 3.0, 5.0, 7.0):  # two optimiser steps of two micro-batches
        running.add(torch.tensor(loss), {"bce": torch.tensor(loss / 2)})
        if loss in (3.0, 7.0):
            running.step()
    assert running.pop_means(accelerator) == {"train/loss": 4.0, "train/bce": 2.0}
    assert running.pop_means(accelerator) == {} and running.steps == 0  # starts again

    path = tmp_path / "logs" / "train_rank0.jsonl"
    with RankLog(path) as log:
        log.write({"step": 1})
    with RankLog(path, append=True) as log:
        log.write({"step": 2})
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]
    with RankLog(path) as log:  # a fresh run starts the file again
        log.write({"step": 1})
    assert len(path.read_text().splitlines()) == 1


# ------------------------------------------------------------------------------------------ saving
def test_save_model_replaces_the_folder_atomically_with_results(tmp_path, tiny_model_dir):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir)
    destination = tmp_path / "best_model"
    destination.mkdir()
    (destination / "stale.txt").write_text("from an earlier run")
    save_model(accelerator, model, BiRefNetImageProcessor(size={"height": 64, "width": 64}), destination,
               {"step": 3, "max_fm": 0.25})  # fmt: skip
    assert not (destination / "stale.txt").exists()  # the whole folder was replaced
    assert json.loads((destination / "eval_results.json").read_text()) == {"step": 3, "max_fm": 0.25}
    assert json.loads((destination / "preprocessor_config.json").read_text())["size"] == {"height": 64, "width": 64}
    assert [p.name for p in tmp_path.iterdir()] == ["best_model"]  # no staging folder left
    assert adapter_folder(tmp_path / "final_model") == tmp_path / "final_adapter"
    card = model_card("me/birefnet-test", {"max_fm": 0.25})
    assert card.startswith("---\nlibrary_name: transformers\n") and "| max_fm | 0.2500 |" in card


# ------------------------------------------------------------------------------------------ validation
def test_validation_loss_is_the_runs_loss(synthetic_root, tiny_model_dir):
    """evaluate_model with the run's criterion: the DIS loss equals the model's own; the matting loss and the
    region-level fine-tuning loss differ."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir)
    validation = load_dis5k(synthetic_root, splits=["validation"])["validation"]
    loader = accelerator.prepare(torch.utils.data.DataLoader(
        validation.with_transform(make_eval_transform(image_size=64)), batch_size=2, collate_fn=DISCollator()
    ))  # fmt: skip
    own, _ = evaluate_model(accelerator, model, loader)
    dis, _ = evaluate_model(accelerator, model, loader, criterion=BiRefNetLoss(model.config))
    matting, _ = evaluate_model(accelerator, model, loader, task="matting",
                                criterion=BiRefNetLoss(model.config, task="matting"))  # fmt: skip
    # in the region-level fine-tuning epochs the validation loss is that phase's loss (IoU only), as always reported
    rlft, _ = evaluate_model(accelerator, model, loader, criterion=BiRefNetLoss(model.config),
                             region_level_finetuning=True)  # fmt: skip
    assert dis["loss"] == pytest.approx(own["loss"], rel=1e-6)
    assert matting["loss"] != pytest.approx(own["loss"], rel=1e-3)
    assert 0 < rlft["loss"] < dis["loss"] and rlft["max_fm"] == dis["max_fm"]
    assert dis["max_fm"] == own["max_fm"] and "sad" in matting and "sad" not in dis


# ------------------------------------------------------------------------------------------ the demo
def test_demo_starts_train_py_as_a_process_and_reports_its_failure(tmp_path):
    spec = importlib.util.spec_from_file_location("birefnet_run_demo", REPO_ROOT / "examples" / "run_demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    assert demo.TRAIN_SCRIPT == TRAIN_SCRIPT
    with pytest.raises(SystemExit, match="examples/train.py failed with exit code 2") as info:
        demo.run_train_script(["--dataset_dir", str(tmp_path / "missing"), "--output_dir", str(tmp_path)], tmp_path)
    assert "--dataset_dir" in str(info.value)  # the command is in the message


def test_region_level_finetuning_is_an_argument_of_the_loss_call(tiny_config):
    """No state on the criterion: the same object gives the full loss and the IoU-only loss, in either order."""
    criterion = BiRefNetLoss(tiny_config)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 32, 32, generator=generator)
    target = (torch.rand(2, 1, 32, 32, generator=generator) > 0.5).float()
    outputs = SimpleNamespace(logits=logits, stage_logits=None, gradient_logits=None, gradient_labels=None,
                              class_logits=None)  # fmt: skip
    first, _ = criterion(outputs, target)
    rlft, terms = criterion(outputs, target, region_level_finetuning=True)
    second, _ = criterion(outputs, target)
    assert float(first) == float(second) and float(rlft) == pytest.approx(float(terms["iou"]))
    assert float(rlft) < float(first) and float(terms["bce"]) == 0.0
