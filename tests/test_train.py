# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Tests of examples/train.py: schedule helpers, data seeding, two real gloo processes under ``accelerate launch``,
and a killed run resumed from its checkpoint reproducing an uninterrupted one bit for bit."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from birefnet_hf import BiRefNetForImageSegmentation
from birefnet_hf.data import generate_synthetic_dis5k, load_dis5k, make_train_transform
from birefnet_hf.training import checkpointing

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO_ROOT / "examples" / "train.py"
CPU_CONFIG = REPO_ROOT / "examples" / "accelerate_configs" / "cpu_2proc_gloo.yaml"
NUM_TRAIN = 8


def _load_train_module():
    spec = importlib.util.spec_from_file_location("birefnet_train_example", TRAIN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train = _load_train_module()


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    """8 training and 2 validation images of 64x64 pixels in the DIS5K layout."""
    return generate_synthetic_dis5k(
        tmp_path_factory.mktemp("synthetic"),
        num_train=NUM_TRAIN,
        num_val=2,
        num_test=1,
        size=64,
        seed=0,
        progress=False,
    )


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _train_args(dataset: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--dataset_dir", str(dataset), "--backbone", "pvt_v2_b0", "--image_size", "64",
        "--per_device_train_batch_size", "2", "--output_dir", str(output_dir), "--logging_steps", "1", *extra,
    ]  # fmt: skip


def _rank_records(output_dir: Path, rank: int) -> tuple[list[dict], dict]:
    lines = (output_dir / "logs" / f"train_rank{rank}.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [r for r in records if "step" in r], next(r for r in records if "parameter_checksum" in r)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------ helpers
def test_rlft_active_switches_on_for_the_last_epochs():
    # The paper: 600 epochs, IoU-only fine-tuning in the last 20 (0-based epochs 580..599).
    assert [e for e in range(600) if train.rlft_active(e, 600, 20)] == list(range(580, 600))
    # The authors' rule with 1-based epochs and a negative count: epoch > epochs + finetune_last_epochs.
    for epochs, last in ((10, 3), (5, 1), (4, 4)):
        assert [train.rlft_active(e, epochs, last) for e in range(epochs)] == [
            (e + 1) > epochs - last for e in range(epochs)
        ]
    assert not any(train.rlft_active(e, 10, 0) for e in range(10))
    assert all(
        train.rlft_active(e, 3, 5) for e in range(3)
    )  # more fine-tuning epochs than epochs: all of them
    with pytest.raises(ValueError):
        train.rlft_active(0, 10, -20)


def test_learning_rate_follows_the_authors_square_root_rule():
    assert train.default_learning_rate(4) == pytest.approx(1e-4)  # the paper: 4 images per GPU
    assert train.default_learning_rate(16) == pytest.approx(2e-4)
    assert train.default_learning_rate(1) == pytest.approx(5e-5)
    assert train.default_learning_rate(2, gradient_accumulation_steps=8) == pytest.approx(2e-4)


def test_lr_decay_milestones():
    # Negative epochs count from the end (authors' config); milestones are in optimiser steps.
    assert train.lr_decay_milestones([-20], num_epochs=600, steps_per_epoch=10) == [5800]
    assert train.lr_decay_milestones([100, -100], num_epochs=600, steps_per_epoch=3) == [300, 1500]
    assert (
        train.lr_decay_milestones([100000], num_epochs=600, steps_per_epoch=3) == []
    )  # the authors' "never"
    assert train.lr_decay_milestones([], num_epochs=600, steps_per_epoch=3) == []


def test_parse_args_rejects_bad_values(synthetic_root, tmp_path, capsys):
    base = ["--dataset_dir", str(synthetic_root), "--output_dir", str(tmp_path)]
    args = train.parse_args(base + ["--image_size", "512"])
    assert args.image_size == [512, 512] and args.validation_split == "validation"
    assert (
        train.parse_args(base + ["--image_size", "512", "768", "--validation_split", "none"]).validation_split
        is None
    )
    for bad, message in (
        (["--image_size", "500"], "multiples of 32"),
        (["--finetune_last_epochs", "-20"], "finetune_last_epochs"),
        (["--checkpointing_steps", "often"], "checkpointing_steps"),
        (["--per_device_train_batch_size", "0"], "per_device_train_batch_size"),
        (["--init_from", "x", "--use_pretrained_backbone"], "init_from"),
        # --learning_rate 0 is refused, not replaced by the default (`args.learning_rate or default`)
        (["--learning_rate", "0"], "--learning_rate must be a positive number, got 0.0"),
        (["--learning_rate", "nan"], "--learning_rate must be a positive number"),
        (["--weight_decay", "-1"], "--weight_decay"),
        (["--adam_beta2", "1"], "--adam_beta2"),
        (["--max_grad_norm", "0"], "--max_grad_norm"),
        (["--checkpoints_total_limit", "0"], "--checkpoints_total_limit"),
        (["--dataloader_num_workers", "-1"], "--dataloader_num_workers"),
        (["--resume_from_checkpoint", str(tmp_path / "nowhere")], "no training_state.json"),
        # region-level fine-tuning is the IoU loss alone; the matting loss has none: nothing would train
        (["--task", "matting", "--finetune_last_epochs", "2"], "does not apply to --task matting"),
    ):
        with pytest.raises(SystemExit):
            train.parse_args(base + bad)
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.parse_args(["--dataset_dir", str(tmp_path / "missing"), "--output_dir", str(tmp_path)])
    assert "is not a directory" in capsys.readouterr().err


def _fake_checkpoint(output_dir: Path, **fields) -> Path:
    """A checkpoint folder whose training state records ``fields`` (what parse_args reads before anything loads)."""
    checkpoint = output_dir / "checkpoints" / "step_3"
    checkpoint.mkdir(parents=True)
    state = {"completed_steps": 3, "backbone": "pvt_v2_b0", "image_size": [64, 64], "learning_rate": 7e-5,
             "init_from": None, **fields}  # fmt: skip
    (checkpoint / "training_state.json").write_text(json.dumps(state))
    return checkpoint


def test_resume_refuses_other_backbone_size_or_learning_rate_naming_the_flag(synthetic_root, tmp_path, capsys):
    checkpoint = _fake_checkpoint(tmp_path)
    base = ["--dataset_dir", str(synthetic_root), "--output_dir", str(tmp_path), "--backbone", "pvt_v2_b0",
            "--image_size", "64", "--resume_from_checkpoint", "latest"]  # fmt: skip
    args = train.parse_args(base)  # the same arguments resume
    assert args.resume_checkpoint == checkpoint and args.learning_rate is None
    assert train.parse_args(base + ["--learning_rate", "7e-5"]).resume_checkpoint == checkpoint
    for extra, message in (
        (["--backbone", "swin_v1_t"], "--backbone swin_v1_t differs from the checkpoint's pvt_v2_b0"),
        (["--image_size", "128"], "--image_size 128 128 differs from the checkpoint's 64 64"),
        (["--image_size", "64", "96"], "resume with --image_size 64 64"),
        (["--learning_rate", "0.5"], "--learning_rate 0.5 differs from the checkpoint's 7e-05"),
        (["--init_from", str(tmp_path)], "--init_from"),
    ):
        with pytest.raises(SystemExit) as info:
            train.parse_args(base + extra)
        assert info.value.code == 2
        assert message in capsys.readouterr().err, extra
    (checkpoint / "training_state.json").write_text("{not json")
    with pytest.raises(SystemExit):
        train.parse_args(base)
    assert "cannot read" in capsys.readouterr().err


def test_resume_mismatch_exits_2_before_loading_data(tmp_path):
    """From the command line: exit code 2, one line naming the flag, no traceback; the data folder is never read."""
    _fake_checkpoint(tmp_path / "run")
    empty = tmp_path / "no_data_here"
    empty.mkdir()  # would fail to load as DIS5K if the script got that far
    result = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *_train_args(empty, tmp_path / "run", "--image_size", "128",
                                                        "--resume_from_checkpoint", "latest")],
        env=_env(threads=1), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "--image_size 128 128 differs from the checkpoint's 64 64" in result.stderr
    assert "Traceback" not in result.stderr and "DIS-TR" not in result.stderr


def _checkpoint_accelerator():
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    return accelerator, *accelerator.prepare(model, optimizer)


@pytest.mark.parametrize("failure", ["oserror", "torch_writer"])
def test_disk_full_during_checkpoint_says_so_and_removes_the_partial_folder(tmp_path, monkeypatch, failure):
    import errno

    accelerator, model, optimizer = _checkpoint_accelerator()
    checkpoints = tmp_path / "checkpoints"
    train.save_checkpoint(accelerator, checkpoints, {"completed_steps": 1}, None)  # a good one first

    def full_disk(output_dir, **kwargs):
        (Path(output_dir) / "model.safetensors").write_bytes(b"\0" * 4096)  # half-written
        if failure == "oserror":
            raise OSError(errno.ENOSPC, "No space left on device")
        # torch's serializer reports a full disk as a RuntimeError from C++
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4096 vs 8192")

    monkeypatch.setattr(accelerator, "save_state", full_disk)
    if failure == "torch_writer":  # only put down to a full disk when the disk is (nearly) full
        monkeypatch.setattr(checkpointing.shutil, "disk_usage", lambda path: shutil_usage(total=10**9, used=10**9, free=0))
    with pytest.raises(train.DiskFullError) as info:
        train.save_checkpoint(accelerator, checkpoints, {"completed_steps": 2}, None)
    assert f"no space left on {checkpoints}" in str(info.value) and "step_2" in str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_1"]  # no .step_2.partial left
    assert train.list_checkpoints(checkpoints) == [checkpoints / "step_1"]


def test_other_checkpoint_failures_are_not_called_disk_full(tmp_path, monkeypatch):
    accelerator, model, optimizer = _checkpoint_accelerator()

    def broken(output_dir, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4096 vs 8192")

    monkeypatch.setattr(accelerator, "save_state", broken)
    with pytest.raises(RuntimeError, match="inline_container") as info:  # plenty of space: the original error
        train.save_checkpoint(accelerator, tmp_path / "checkpoints", {"completed_steps": 2}, None)
    assert not isinstance(info.value, train.DiskFullError)
    assert not list((tmp_path / "checkpoints").iterdir())


def test_disk_full_while_saving_the_model_removes_the_staging_folder(tmp_path, monkeypatch, tiny_model_dir):
    import errno

    from birefnet_hf import BiRefNetImageProcessor

    accelerator, _, _ = _checkpoint_accelerator()
    model = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir)

    def full_disk(self, save_directory, **kwargs):
        (Path(save_directory) / "model.safetensors").write_bytes(b"\0" * 4096)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BiRefNetForImageSegmentation, "save_pretrained", full_disk)
    with pytest.raises(train.DiskFullError, match=f"no space left on {tmp_path}"):
        train.save_model(accelerator, model, BiRefNetImageProcessor(), tmp_path / "final_model")
    assert not list(tmp_path.iterdir())


def shutil_usage(total: int, used: int, free: int):
    import shutil

    return shutil._ntuple_diskusage(total, used, free)


def test_config_overrides_are_typed():
    overrides = train.parse_config_overrides(
        "decoder_attention=aspp,inward_reference=false,squeeze_block_count=2"
    )
    assert overrides == {"decoder_attention": "aspp", "inward_reference": False, "squeeze_block_count": 2}
    with pytest.raises(ValueError, match="not_a_field"):
        train.parse_config_overrides("not_a_field=1")


def test_batch_of_one_switches_batch_norm_off_or_freezes_it(tmp_path, tiny_model_dir):
    args = train.parse_args(["--dataset_dir", str(tmp_path), "--output_dir", str(tmp_path), "--backbone", "pvt_v2_b0",
                             "--per_device_train_batch_size", "1"])  # fmt: skip
    model, freeze, notes = train.build_model(args)
    assert model.config.use_batch_norm is False and not freeze and "use_batch_norm=False" in notes[0]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.reconstruction.modules())
    # One image trains without BatchNorm (with it, the 1x1 global-pooling branch would fail).
    output = model.train()(torch.randn(1, 3, 64, 64), labels=torch.ones(1, 1, 64, 64))
    assert torch.isfinite(output.loss)

    args.init_from = str(tiny_model_dir)  # a pretrained model with BatchNorm keeps it, frozen
    model, freeze, notes = train.build_model(args)
    assert model.config.use_batch_norm is True and freeze and "frozen" in notes[0]
    train.set_train_mode(model, freeze)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and model.reconstruction.training
    before = norms[0].running_mean.clone()
    model(torch.randn(1, 3, 64, 64), labels=torch.ones(1, 1, 64, 64))
    assert torch.equal(norms[0].running_mean, before)


def test_augmentation_is_seeded_per_example_and_epoch(synthetic_root):
    split = load_dis5k(synthetic_root, splits=["train"])["train"]
    transform = make_train_transform(image_size=64, hflip=True, color_enhance=True)
    dataset = train.SeededAugmentation(split, transform, seed=3)
    state = torch.get_rng_state()
    first = [dataset[i]["pixel_values"] for i in range(4)]
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left alone
    torch.manual_seed(123)  # ... and does not matter
    again = [dataset[i]["pixel_values"] for i in reversed(range(4))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    dataset.set_epoch(1)
    other_epoch = [dataset[i]["pixel_values"] for i in range(4)]
    assert not all(torch.equal(a, b) for a, b in zip(first, other_epoch, strict=True))
    assert dataset[0]["labels"].shape == (1, 64, 64) and "class_labels" in dataset[0]


# ------------------------------------------------------------------------------------------ training runs
def test_two_gloo_processes_train_one_model(synthetic_root, tmp_path):
    """``accelerate launch`` with the 2-process CPU config: two ranks train on disjoint halves of every epoch and
    end with the same weights; the saved model loads with from_pretrained."""
    output_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_CONFIG),
        "--main_process_port", str(_free_port()), str(TRAIN_SCRIPT),
        *_train_args(synthetic_root, output_dir, "--max_train_steps", "3", "--eval_every_epochs", "1"),
    ]  # fmt: skip
    result = subprocess.run(command, env=_env(threads=1), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    log = result.stdout + result.stderr
    assert "Distributed environment: DistributedType.MULTI_CPU  Backend: gloo" in log
    assert "[RANK 1]" in log and "Num processes: 2" in log

    steps_per_epoch = NUM_TRAIN // (2 * 2)
    records = {rank: _rank_records(output_dir, rank) for rank in (0, 1)}
    for rank, (steps, _) in records.items():
        assert [r["step"] for r in steps] == [1, 2, 3] and all(r["rank"] == rank for r in steps)
        assert all(math.isfinite(r["loss"]) for r in steps)
    for epoch in (0, 1):
        files = {
            rank: [f for r in records[rank][0] if r["epoch"] == epoch for f in r["files"]] for rank in (0, 1)
        }
        assert files[0] and files[1] and not set(files[0]) & set(files[1])  # each rank its own shard
        if epoch == 0:
            assert len(set(files[0]) | set(files[1])) == steps_per_epoch * 4 == NUM_TRAIN  # the whole epoch
    checksums = [records[rank][1]["parameter_checksum"] for rank in (0, 1)]
    assert checksums[0] == checksums[1]  # gradients were all-reduced: one model

    model = BiRefNetForImageSegmentation.from_pretrained(output_dir / "final_model").eval()
    assert model.config.backbone == "pvt_v2_b0"
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).logits.shape == (1, 1, 64, 64)
    assert abs(sum(p.double().sum().item() for p in model.parameters()) - checksums[0]) < 1e-6 * abs(
        checksums[0]
    )
    summary = json.loads((output_dir / "eval_results.json").read_text())
    assert summary["num_processes"] == 2 and summary["completed_steps"] == 3
    assert set(summary["history"][-1]["metrics"]) == {"loss", "sm", "wfm", "mae", "max_fm", "mean_fm", "adp_fm",
                                                      "max_em", "mean_em", "adp_em", "hce"}  # fmt: skip
    assert (output_dir / "best_model" / "model.safetensors").is_file()
    config = json.loads((output_dir / "final_model" / "config.json").read_text())
    processor = json.loads((output_dir / "final_model" / "preprocessor_config.json").read_text())
    assert "AutoModelForImageSegmentation" in config["auto_map"]  # usable with trust_remote_code
    assert "AutoImageProcessor" in processor["auto_map"] and processor["size"] == {"height": 64, "width": 64}
    assert not list(output_dir.glob(".*"))  # no temporary folders left


def _assert_same_checkpoint(first: Path, second: Path) -> None:
    model_a, model_b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert model_a.keys() == model_b.keys()
    different = [key for key in model_a if not torch.equal(model_a[key], model_b[key])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
    optim_a = torch.load(first / "optimizer.bin", weights_only=True)
    optim_b = torch.load(second / "optimizer.bin", weights_only=True)
    assert optim_a["param_groups"] == optim_b["param_groups"]
    assert optim_a["state"].keys() == optim_b["state"].keys()
    for index, state in optim_a["state"].items():
        for name, value in state.items():
            assert torch.equal(value, optim_b["state"][index][name]), (index, name)
    scheduler_a = torch.load(first / "scheduler.bin", weights_only=True)
    scheduler_b = torch.load(second / "scheduler.bin", weights_only=True)
    assert (
        scheduler_a["last_epoch"] == scheduler_b["last_epoch"]
        and scheduler_a["_last_lr"] == scheduler_b["_last_lr"]
    )


def test_killed_run_resumes_bit_identically(synthetic_root, tmp_path):
    """Kill a run after its step-3 checkpoint, resume it with ``latest``: after step 6 the model, the optimizer and
    the scheduler equal an uninterrupted run's, bit for bit. The run crosses an epoch boundary (4 steps per epoch),
    decays the learning rate after epoch 1 and switches on region-level fine-tuning for the last epoch; Dropout and
    DropPath draw random numbers at every step, so the restored RNG states matter too."""
    extra = ["--max_train_steps", "6", "--checkpointing_steps", "3", "--finetune_last_epochs", "1",
             "--lr_decay_epochs", "1", "--validation_split", "none"]  # fmt: skip
    env = _env(threads=1)
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    result = subprocess.run([sys.executable, str(TRAIN_SCRIPT), *_train_args(synthetic_root, uninterrupted, *extra)],
                            env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]

    process = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), *_train_args(synthetic_root, interrupted, *extra)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    checkpoint = interrupted / "checkpoints" / "step_3"
    deadline = time.monotonic() + 900
    while not (checkpoint / "training_state.json").exists():
        assert process.poll() is None, "the run ended before writing its step-3 checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (interrupted / "final_model").exists()  # really stopped mid-way
    state = json.loads((checkpoint / "training_state.json").read_text())
    assert state["completed_steps"] == 3
    # what a resumed run's arguments are checked against
    assert state["backbone"] == "pvt_v2_b0" and state["image_size"] == [64, 64]
    assert state["learning_rate"] == pytest.approx(train.default_learning_rate(2))

    result = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *_train_args(synthetic_root, interrupted, *extra),
         "--resume_from_checkpoint", "latest"],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    assert f"Resumed from {checkpoint} at step 3" in result.stderr

    _assert_same_checkpoint(uninterrupted / "checkpoints" / "step_6", interrupted / "checkpoints" / "step_6")
    final_a = load_file(uninterrupted / "final_model" / "model.safetensors")
    final_b = load_file(interrupted / "final_model" / "model.safetensors")
    assert all(torch.equal(final_a[key], final_b[key]) for key in final_a)
    # The resumed process logged steps 4-6 (same batches, same losses); RLFT was on in the last epoch only.
    steps_a, _ = _rank_records(uninterrupted, 0)
    # (the killed process may have logged a step beyond its checkpoint; the resumed one's records come last)
    steps_b = sorted({r["step"]: r for r in _rank_records(interrupted, 0)[0] if r["step"] > 3}.values(),
                     key=lambda r: r["step"])  # fmt: skip
    assert [(r["step"], r["files"], r["loss"]) for r in steps_a[3:]] == [
        (r["step"], r["files"], r["loss"]) for r in steps_b
    ]
    assert [r["region_level_finetuning"] for r in steps_a] == [False] * 4 + [True] * 2


@pytest.mark.slow
def test_bf16_mixed_precision_trains_and_evaluates_on_cpu(synthetic_root, tmp_path):
    """``--mixed_precision bf16`` on CPU: two optimiser steps and the end-of-run validation (under autocast) work,
    and the saved model is float32 and usable."""
    output_dir = tmp_path / "bf16"
    result = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *_train_args(synthetic_root, output_dir, "--max_train_steps", "2",
                                                        "--mixed_precision", "bf16")],
        env=_env(threads=2), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Mixed precision type: bf16" in result.stdout + result.stderr
    summary = json.loads((output_dir / "eval_results.json").read_text())
    metrics = summary["history"][-1]["metrics"]
    assert summary["completed_steps"] == 2 and set(metrics) >= {"max_fm", "mae", "sm"}
    assert all(math.isfinite(value) for value in metrics.values()), metrics
    weights = load_file(output_dir / "final_model" / "model.safetensors")
    assert all(tensor.dtype == torch.float32 for tensor in weights.values() if tensor.is_floating_point())


@pytest.mark.slow
def test_demo_trained_model_beats_the_untrained_one(tmp_path):
    """The README's main job, as a user runs it: synthetic data, training from scratch on CPU, evaluation of the
    untrained and the trained model on held-out images, picture grid; well under 15 minutes on 2 cores."""
    output_dir = tmp_path / "demo"
    env = _env(threads=0)
    env.pop("OMP_NUM_THREADS")  # as a user runs it: torch's default threads
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "run_demo.py"), "--output_dir", str(output_dir)],
                            env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-5000:]
    assert elapsed < 900
    results = json.loads((output_dir / "results.json").read_text())
    table = (output_dir / "results.md").read_text()
    assert set(results["trained_better"]) == {"sm", "wfm", "mae", "max_fm", "mean_fm", "adp_fm", "max_em", "mean_em",
                                              "adp_em", "hce"}  # fmt: skip
    assert all(results["trained_better"].values()), table
    assert results["num_test_images"] == 32 and "| hce ↓ |" in table
    from PIL import Image

    with Image.open(output_dir / "grid.png") as grid:
        assert grid.size == (
            4 * 160,
            20 + 4 * 160,
        )  # image | truth | untrained | trained, one row per DIS-TE level
    assert (
        BiRefNetForImageSegmentation.from_pretrained(output_dir / "training" / "final_model").config.backbone
        == "pvt_v2_b0"
    )


@pytest.mark.slow
def test_torch_compile_trains_with_one_graph_and_saves_plain_keys(synthetic_root, tmp_path):
    """`--torch_compile` (fixed size): the forward is one graph (no graph break), compiled once for three training
    steps at one size (and once in eval mode for validation); the run trains (finite losses) and saves the usual
    state-dict keys. With `--dynamic_size` the sizes come from size buckets (tests/test_training_dynamic_sizes.py)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    output_dir = tmp_path / "run"
    argv = _train_args(synthetic_root, output_dir, "--max_train_steps", "3", "--torch_compile",
                       "--torch_compile_backend", "aot_eager", "--mixed_precision", "no")
    try:
        train.main(argv)
        graph_breaks = sum(counters["graph_break"].values())
        compiled_graphs = counters["stats"]["unique_graphs"]
    finally:
        torch._dynamo.reset()
    steps, _ = _rank_records(output_dir, 0)
    assert len(steps) == 3 and all(math.isfinite(step["loss"]) for step in steps)
    # one graph in training mode for the three steps (same size), one in eval mode for the closing validation
    assert graph_breaks == 0 and compiled_graphs == 2
    saved = BiRefNetForImageSegmentation.from_pretrained(output_dir / "final_model")
    assert not any(key.startswith("_orig_mod") for key in saved.state_dict())  # compiled in place: the same keys
    # no longer refused: the 64-96 range in its 2 size buckets (64 and 96 px), one graph each
    bucketed = train.parse_args(_train_args(synthetic_root, tmp_path / "buckets", "--torch_compile", "--dynamic_size", "64", "96"))
    assert bucketed.dynamic_size_buckets == 2
