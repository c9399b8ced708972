# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Fine-tuning (issue 18): matting loss and metrics against hand-computed values, LoRA (only adapters train, exact
merge, PEFT save/load), frozen backbone, validation helpers, and examples/train.py runs: init_from a family folder,
matting + LoRA + dynamic sizes + step validation + early stopping, dynamic sizes under two gloo processes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.torch import load_file

from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation, BiRefNetImageProcessor
from birefnet_hf.data import generate_synthetic_dis5k, make_train_transform
from birefnet_hf.loss_birefnet import BiRefNetLoss
from birefnet_hf.metrics import MattingMetrics
from birefnet_hf.metrics.matting import (
    connectivity_error,
    gaussian_gradient_kernels,
    gradient_error,
    mse_error,
    sad_error,
)
from birefnet_hf.training import (
    BestMetricTracker,
    apply_lora,
    freeze_backbone,
    load_lora,
    lora_target_modules,
    merge_lora,
    save_result_grid,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO_ROOT / "examples" / "train.py"
CPU_CONFIG = REPO_ROOT / "examples" / "accelerate_configs" / "cpu_2proc_gloo.yaml"


def _env(threads: int = 2) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    return generate_synthetic_dis5k(tmp_path_factory.mktemp("synthetic"), num_train=8, num_val=2, num_test=1,
                                    size=64, seed=0, progress=False)  # fmt: skip


def _outputs(logits: torch.Tensor) -> SimpleNamespace:
    return SimpleNamespace(logits=logits, stage_logits=None, gradient_logits=None, class_logits=None)


# ------------------------------------------------------------------------------------------ matting loss
def test_matting_loss_is_bce_10_mae_100_ssim_10_on_soft_targets():
    config = BiRefNetConfig(backbone="pvt_v2_b0")
    logits = torch.zeros(1, 1, 16, 16)  # sigmoid = 0.5 everywhere
    # target 0.5 = the prediction: BCE = ln 2, MAE = 0, SSIM = 1 (loss 0)
    loss, terms = BiRefNetLoss(config, task="matting")(_outputs(logits), torch.full((1, 1, 16, 16), 0.5))
    assert terms["bce"].item() == pytest.approx(10 * math.log(2), rel=1e-6)
    assert terms["mae"].item() == pytest.approx(0.0, abs=1e-7)
    assert terms["ssim"].item() == pytest.approx(0.0, abs=1e-6)
    assert terms["iou"].item() == 0.0 and loss.item() == pytest.approx(10 * math.log(2), rel=1e-6)
    # target 0.25 (a soft alpha, kept soft): BCE = -(0.25 ln 0.5 + 0.75 ln 0.5) = ln 2, MAE = 0.25
    _, terms = BiRefNetLoss(config, task="matting")(_outputs(logits), torch.full((1, 1, 16, 16), 0.25))
    assert terms["bce"].item() == pytest.approx(10 * math.log(2), rel=1e-6)
    assert terms["mae"].item() == pytest.approx(100 * 0.25, rel=1e-6)
    assert terms["iou"].item() == 0.0 and terms["ssim"].item() > 0
    # the DIS loss of the first case: BCE 30 ln 2, IoU 0.5 * (1 - 0.25 / 0.75), no MAE
    _, terms = BiRefNetLoss(config)(_outputs(logits), torch.full((1, 1, 16, 16), 0.5))
    assert terms["bce"].item() == pytest.approx(30 * math.log(2), rel=1e-6)
    assert terms["iou"].item() == pytest.approx(0.5 * (1 - 1 / 3), rel=1e-6) and terms["mae"].item() == 0.0
    criterion = BiRefNetLoss(config)
    criterion.task = "matting"  # the switch is also an attribute (model.criterion.task = "matting")
    assert criterion.weights == {"bce": 10.0, "iou": 0.0, "ssim": 10.0, "mae": 100.0}
    with pytest.raises(ValueError, match="loss task"):
        criterion.task = "segmentation"


def test_soft_alpha_masks_stay_soft_through_the_training_transform():
    image = PIL.Image.new("RGB", (32, 32), (10, 200, 30))
    alpha = PIL.Image.fromarray(np.tile(np.linspace(0, 255, 32).astype(np.uint8), (32, 1)))
    _, labels = make_train_transform(image_size=32, hflip=False).transform_pair(image, alpha)
    values = labels.unique()
    assert len(values) > 16 and values.min() == 0 and values.max() == 1  # not binarised


# ------------------------------------------------------------------------------------------ matting metrics
def test_sad_and_mse_by_hand():
    prediction, target = np.full((4, 4), 0.5), np.ones((4, 4))
    assert sad_error(prediction, target) == pytest.approx(16 * 0.5 / 1000)
    assert mse_error(prediction, target) == pytest.approx(0.25)
    # uint8 mattes are read as /255; a trimap keeps its unknown (128) pixels only
    trimap = np.zeros((4, 4), np.uint8)
    trimap[0, :2] = 128
    assert sad_error((prediction * 255).astype(np.uint8), np.full((4, 4), 255, np.uint8), trimap) == pytest.approx(
        2 * (1 - 127 / 255) / 1000
    )
    assert mse_error(prediction, target, trimap) == pytest.approx(0.25)


def test_connectivity_error_by_hand():
    # target [1, 1], prediction [1, 0.5]: the second pixel leaves the common component at threshold 0.6 (l = 0.5);
    # phi(prediction) = 1 everywhere, phi(target) = 1 - (1 - 0.5) = 0.5 there: error 0.5 / 1000.
    assert connectivity_error(np.array([[1.0, 0.5]]), np.array([[1.0, 1.0]])) == pytest.approx(0.5 / 1000)
    # below the 0.15 distance nothing counts: prediction 0.9 leaves at 1.0 (l = 0.9), target distance 0.1
    assert connectivity_error(np.array([[1.0, 0.9]]), np.array([[1.0, 1.0]])) == pytest.approx(0.0)
    assert connectivity_error(np.eye(5), np.eye(5)) == 0.0


def test_gradient_error_by_hand():
    h_x, h_y = gaussian_gradient_kernels(1.4)
    assert h_x.shape == (9, 9)  # half size ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = 4
    assert np.sum(h_x**2) == pytest.approx(1.0) and np.allclose(h_x, -h_x[:, ::-1]) and np.allclose(h_y, h_x.T)
    # constant mattes have no gradient
    assert gradient_error(np.full((12, 12), 0.3), np.full((12, 12), 0.8)) == pytest.approx(0.0, abs=1e-20)
    # a vertical step edge against a flat target: sum of the squared gradient magnitude, computed here by a literal
    # convolution with replicated borders
    prediction = np.zeros((12, 12))
    prediction[:, 6:] = 1.0
    padded = np.pad(prediction, 4, mode="edge")
    magnitude_sq = np.zeros_like(prediction)
    for row in range(12):
        for col in range(12):
            window = padded[row : row + 9, col : col + 9][::-1, ::-1]  # convolution flips the kernel
            magnitude_sq[row, col] = np.sum(window * h_x) ** 2 + np.sum(window * h_y) ** 2
    expected = magnitude_sq.sum() / 1000
    assert expected > 0
    assert gradient_error(prediction, np.zeros((12, 12))) == pytest.approx(expected, rel=1e-9)


def test_matting_metrics_average_over_images_and_refuse_bad_input():
    metrics = MattingMetrics()
    metrics.update(np.full((4, 4), 0.5), np.ones((4, 4)))
    metrics.update(np.ones((4, 4)), np.ones((4, 4)))
    scores = metrics.compute()
    assert scores["sad"] == pytest.approx(0.004) and scores["mse"] == pytest.approx(0.125)
    with pytest.raises(ValueError, match="prediction.*outside"):
        metrics.update(np.full((4, 4), 2.0), np.ones((4, 4)))
    with pytest.raises(ValueError, match="shape"):
        metrics.update(np.ones((4, 4)), np.ones((5, 4)))


# ------------------------------------------------------------------------------------------ freeze / LoRA
def _batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 64, 64, generator=generator), (torch.rand(2, 1, 64, 64, generator=generator) > 0.5).float()


def _one_step(model, lr: float = 1e-2, freeze_batch_norm: bool = False):
    pixel_values, labels = _batch()
    model.train()
    if freeze_batch_norm:  # what examples/train.py does with LoRA: the base model's statistics stay
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    loss = model(pixel_values=pixel_values, labels=labels).loss
    loss.backward()
    optimizer.step()
    return loss.detach()


def test_gradient_checkpointing_step_equals_the_plain_step():
    """`--gradient_checkpointing` as examples/train.py switches it on (non-reentrant, BatchNorm training on batch
    statistics): the checkpointed step's loss, gradients and updated weights are the plain step's (the memory it
    saves is measured by benchmarks/finetune_memory.py). One backbone pass (no half-size input) keeps it quick."""
    config = BiRefNetConfig(backbone="pvt_v2_b0", multi_scale_input="none")
    torch.manual_seed(0)
    plain = BiRefNetForImageSegmentation(config)
    checkpointed = BiRefNetForImageSegmentation(config)
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert checkpointed.localization.backbone.gradient_checkpointing and not plain.localization.backbone.gradient_checkpointing
    losses = []
    for model in (plain, checkpointed):
        torch.manual_seed(5)  # the same dropout / drop-path draws (checkpointing replays the RNG state)
        losses.append(_one_step(model, lr=1e-3))
    assert torch.allclose(losses[0], losses[1], rtol=1e-6), losses
    for (name, reference), (_, other) in zip(plain.named_parameters(), checkpointed.named_parameters(), strict=True):
        assert torch.allclose(reference.grad, other.grad, rtol=1e-4, atol=1e-6), name
        assert torch.allclose(reference, other, rtol=1e-5, atol=1e-6), name  # after the AdamW step


def test_freeze_backbone_leaves_the_backbone_unchanged(tiny_model_dir):
    model = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir)
    assert freeze_backbone(model) == sum(p.numel() for p in model.localization.backbone.parameters())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    _one_step(model)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and not any(name.startswith("localization.backbone.") for name in changed)
    assert any(name.startswith("reconstruction.") for name in changed)
    assert any(name.startswith("localization.squeeze_module.") for name in changed)  # the squeeze block trains


def test_lora_trains_only_adapters_merges_exactly_and_saves_the_peft_way(tiny_model_dir, tmp_path):
    torch.manual_seed(0)
    model = apply_lora(BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir), rank=4)
    targets = lora_target_modules(model.get_base_model())
    assert any(".backbone." in t for t in targets) and any(t.startswith("reconstruction.") for t in targets)
    assert not any(t.endswith(("offset_conv", "regular_conv", "dec_att.conv1", "reconstruction.head")) for t in targets)
    before = {name: p.detach().clone() for name, p in model.state_dict().items()}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    _one_step(model, freeze_batch_norm=True)
    changed = {name for name, p in model.state_dict().items() if not torch.equal(p, before[name])}
    assert changed and changed <= trainable and any("lora_B" in name for name in changed)

    pixel_values = _batch(1)[0][:1]
    model.eval()
    with torch.no_grad():
        adapted = model(pixel_values=pixel_values).logits
    model.save_pretrained(tmp_path / "adapter")  # the peft way
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in (tmp_path / "adapter").iterdir()}
    reloaded = load_lora(BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir), tmp_path / "adapter").eval()
    merged = merge_lora(model).eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(pixel_values=pixel_values).logits, adapted, atol=1e-5)
        assert torch.allclose(merged(pixel_values=pixel_values).logits, adapted, atol=1e-5)
    assert type(merged) is BiRefNetForImageSegmentation
    plain_keys = set(BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir).state_dict())
    assert set(merged.state_dict()) == plain_keys  # a plain checkpoint: no lora_ keys
    merged.save_pretrained(tmp_path / "merged")
    again = BiRefNetForImageSegmentation.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        assert torch.allclose(again(pixel_values=pixel_values).logits, adapted, atol=1e-5)


# ------------------------------------------------------------------------------------------ validation helpers
def test_best_metric_tracker_and_early_stopping():
    tracker = BestMetricTracker("loss", patience=2)
    assert tracker.update({"loss": 3.0}, 1) and tracker.update({"loss": 2.0}, 2)
    assert not tracker.update({"loss": 2.5}, 3) and not tracker.should_stop
    assert not tracker.update({"loss": 2.0}, 4) and tracker.should_stop  # equal is no improvement
    assert (tracker.best, tracker.best_step) == (2.0, 2)
    higher = BestMetricTracker("max_fm")
    assert higher.update({"max_fm": 0.5}, 1) and higher.update({"max_fm": 0.6}, 2) and not higher.should_stop
    restored = BestMetricTracker("loss", patience=2)
    restored.load_state_dict(tracker.state_dict())
    assert restored.should_stop and restored.best_step == 2
    with pytest.raises(KeyError, match="sad"):
        BestMetricTracker("sad").update({"loss": 1.0}, 1)
    thresholded = BestMetricTracker("sad", patience=1, min_delta=0.01)
    assert thresholded.update({"sad": 1.0}, 1) and not thresholded.update({"sad": 0.995}, 2)  # too small
    assert thresholded.should_stop and thresholded.best == 1.0


def test_result_grid_rows_are_image_truth_prediction(tmp_path):
    image = np.zeros((8, 10, 3), np.uint8)
    image[..., 0] = 200
    truth, prediction = np.full((8, 10), 255, np.uint8), np.zeros((8, 10), np.uint8)
    path = save_result_grid([(image, truth, prediction)] * 2, tmp_path / "grids" / "step_1.png")
    with PIL.Image.open(path) as grid:
        assert grid.size == (30, 16)
        assert grid.getpixel((0, 0)) == (200, 0, 0) and grid.getpixel((10, 0)) == (255, 255, 255)
        assert grid.getpixel((20, 9)) == (0, 0, 0)
    assert [p.name for p in path.parent.iterdir()] == ["step_1.png"]  # no temporary file left


# ------------------------------------------------------------------------------------------ examples/train.py
def _family_stand_in(root: Path, tiny_model_dir: Path, size: int) -> Path:
    """A local folder standing in for a family checkpoint: a saved model with its image processor."""
    folder = root / "BiRefNet-tiny-family"
    model = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir)
    model.save_pretrained(folder)
    BiRefNetImageProcessor(size={"height": size, "width": size}).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_init_from_family_folder_matting_lora_dynamic_sizes_validation(synthetic_root, tiny_model_dir, tmp_path):
    """--init_from a folder (the processor's 96 px becomes the training size), --task matting, LoRA, dynamic sizes,
    validation every step with the matting errors, best model by SAD, early stopping, result grids."""
    folder = _family_stand_in(tmp_path, tiny_model_dir, 96)
    output_dir = tmp_path / "run"
    command = [
        sys.executable, str(TRAIN_SCRIPT), "--dataset_dir", str(synthetic_root), "--init_from", str(folder),
        "--per_device_train_batch_size", "2", "--output_dir", str(output_dir), "--max_train_steps", "3",
        "--logging_steps", "1", "--task", "matting", "--lora_rank", "2", "--dynamic_size", "64", "128",
        "--eval_steps", "1", "--metric_for_best_model", "sad", "--early_stopping_patience", "1",
        "--learning_rate", "1e-9", "--early_stopping_threshold", "1e-3", "--grid_images", "2",
        "--checkpointing_steps", "1", "--with_tracking",
    ]  # fmt: skip
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-5000:]
    log = result.stderr
    assert "Image size = (96, 96)" in log and "Task = matting" in log and "LoRA rank 2" in log
    summary = json.loads((output_dir / "eval_results.json").read_text())
    metrics = summary["history"][0]["metrics"]
    assert {"loss", "max_fm", "sad", "mse", "grad", "conn"} <= set(metrics)
    # a learning rate of 1e-9 cannot improve SAD by 1e-3: patience 1 stops the run after the second validation
    assert summary["stopped_early"] is True and summary["completed_steps"] == 2 and "Early stopping" in log
    assert summary["best_step"] == 1 and summary["metric_for_best_model"] == "sad"
    records = [json.loads(line) for line in (output_dir / "logs" / "train_rank0.jsonl").read_text().splitlines()]
    sizes = [tuple(r["size"]) for r in records if "size" in r]
    assert sizes and all(64 <= side <= 128 and side % 32 == 0 for size in sizes for side in size)
    for name in ("best_model", "final_model"):
        model = BiRefNetForImageSegmentation.from_pretrained(output_dir / name)  # merged: a plain model
        assert not any("lora_" in key for key in model.state_dict())
        assert json.loads((output_dir / name / "preprocessor_config.json").read_text())["size"]["height"] == 96
    assert (output_dir / "final_adapter" / "adapter_config.json").is_file()
    assert list((output_dir / "logs").rglob("events.out.tfevents*"))  # TensorBoard through Accelerate
    with PIL.Image.open(output_dir / "eval_grids" / "step_1.png") as grid:
        assert grid.size == (3 * 96, 2 * 96)
    state = json.loads((output_dir / "checkpoints" / "step_2" / "training_state.json").read_text())
    assert state["task"] == "matting" and state["lora_rank"] == 2 and state["dynamic_size"] == [64, 128]
    # the merged final model equals the base model plus the saved adapters
    base = BiRefNetForImageSegmentation.from_pretrained(folder)
    adapted = load_lora(base, output_dir / "final_adapter").eval()
    merged = BiRefNetForImageSegmentation.from_pretrained(output_dir / "final_model").eval()
    pixel_values = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(adapted(pixel_values=pixel_values).logits, merged(pixel_values=pixel_values).logits,
                              atol=1e-5)  # fmt: skip


@pytest.mark.slow
def test_dynamic_sizes_with_two_gloo_processes(synthetic_root, tmp_path):
    """Random multiple-of-32 sizes per batch under DDP (two CPU processes): 3 steps, one model on both ranks."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    output_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_CONFIG),
        "--main_process_port", str(port), str(TRAIN_SCRIPT), "--dataset_dir", str(synthetic_root),
        "--backbone", "pvt_v2_b0", "--image_size", "96", "--dynamic_size", "64", "96",
        "--per_device_train_batch_size", "2", "--output_dir", str(output_dir), "--max_train_steps", "3",
        "--validation_split", "none", "--freeze_backbone",
    ]  # fmt: skip
    result = subprocess.run(command, env=_env(threads=1), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    checksums, sizes = [], set()
    for rank in (0, 1):
        records = [json.loads(line) for line in (output_dir / "logs" / f"train_rank{rank}.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records if "step" in r] == [1, 2, 3]
        sizes |= {tuple(r["size"]) for r in records if "size" in r}
        checksums.append(next(r["parameter_checksum"] for r in records if "parameter_checksum" in r))
    assert checksums[0] == checksums[1]  # gradients were all-reduced across different-size batches
    assert all(side in (64, 96) for size in sizes for side in size)
    final = load_file(output_dir / "final_model" / "model.safetensors")
    assert any(key.startswith("localization.backbone.") for key in final)


# ------------------------------------------------------------------------------------------ train.py pieces
def _train_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("birefnet_train_example_ft", TRAIN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_im_gt_folder_holds_out_a_seeded_validation_fraction(synthetic_root, tmp_path, capsys):
    train = _train_module()
    own = synthetic_root / "DIS-TR"  # an im/ + gt/ folder
    args = train.parse_args(["--dataset_dir", str(own), "--output_dir", str(tmp_path), "--validation_fraction", "0.25"])
    training, validation = train.load_splits(args)
    assert (len(training), len(validation)) == (6, 2)
    again, _ = train.load_splits(args)
    assert again["file_name"] == training["file_name"]  # seeded
    assert not set(training["file_name"]) & set(validation["file_name"])
    args = train.parse_args(["--dataset_dir", str(own), "--output_dir", str(tmp_path),
                             "--validation_dir", str(synthetic_root / "DIS-VD")])  # fmt: skip
    training, validation = train.load_splits(args)
    assert (len(training), len(validation)) == (8, 2)
    for bad, message in (
        (["--validation_dir", str(tmp_path)], "not an im/gt folder"),
        (["--dynamic_size", "64", "100"], "--dynamic_size"),
        (["--metric_for_best_model", "sad"], "add --task matting"),
        (["--lora_rank", "4", "--freeze_backbone"], "--lora_parts decoder"),
        (["--early_stopping_patience", "0"], "--early_stopping_patience"),
    ):
        with pytest.raises(SystemExit):
            train.parse_args(["--dataset_dir", str(own), "--output_dir", str(tmp_path), *bad])
        assert message in capsys.readouterr().err, bad


def test_training_size_and_processor_follow_the_checkpoint(tiny_model_dir, tmp_path):
    train = _train_module()
    folder = _family_stand_in(tmp_path, tiny_model_dir, 96)
    base = ["--dataset_dir", str(tmp_path), "--output_dir", str(tmp_path / "out"), "--init_from", str(folder)]
    args = train.parse_args(base)
    assert args.image_size == [96, 96] and train.make_image_processor(args).size["height"] == 96
    args = train.parse_args(base + ["--image_size", "128"])  # overridden
    assert args.image_size == [128, 128] and train.make_image_processor(args).size["width"] == 128
    # a released family's folder without preprocessor_config.json (the authors' repositories): its native size
    authors_hr = tmp_path / "ZhengPeng7" / "BiRefNet_HR"
    authors_hr.mkdir(parents=True)
    assert train.processor_size(str(authors_hr)) == [2048, 2048]
    assert train.parse_args(["--dataset_dir", str(tmp_path), "--output_dir", str(tmp_path / "o")]).image_size == [1024, 1024]


def test_resume_refuses_another_task_lora_or_dynamic_size(synthetic_root, tmp_path, capsys):
    train = _train_module()
    checkpoint = tmp_path / "checkpoints" / "step_2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "training_state.json").write_text(json.dumps({
        "completed_steps": 2, "backbone": "pvt_v2_b0", "image_size": [64, 64], "init_from": None, "task": "dis",
        "lora_rank": 0, "freeze_backbone": False, "dynamic_size": None,
    }))  # fmt: skip
    base = ["--dataset_dir", str(synthetic_root), "--output_dir", str(tmp_path), "--backbone", "pvt_v2_b0",
            "--image_size", "64", "--resume_from_checkpoint", "latest"]  # fmt: skip
    assert train.parse_args(base).resume_checkpoint == checkpoint
    for extra, flag in ((["--task", "matting"], "--task matting differs"), (["--lora_rank", "4"], "--lora_rank 4"),
                        (["--freeze_backbone"], "--freeze_backbone True"),
                        (["--dynamic_size", "64", "128"], "--dynamic_size [64, 128]")):  # fmt: skip
        with pytest.raises(SystemExit):
            train.parse_args(base + extra)
        assert flag in capsys.readouterr().err, extra
