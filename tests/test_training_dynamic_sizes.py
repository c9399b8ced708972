# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Size buckets (issue 18 item 4): dynamic-size training compatible with ``torch.compile`` with a bounded number of
compiles. The bucket rule and the seeded draw, the resize against the collator's, the recompile limit of
``compile_for_training``, the arguments, ``examples/train.py --torch_compile --dynamic_size`` compiling one graph per
bucket with no graph break, a resumed run drawing the buckets of an uninterrupted one, and (slow) two gloo processes
drawing the same bucket at every step."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from birefnet_hf.data import DISCollator, generate_synthetic_dis5k
from birefnet_hf.inference_paths import compile_for_training
from birefnet_hf.training.dynamic_sizes import BUCKET_STREAM, bucket_size, resize_batch, size_buckets

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO_ROOT / "examples" / "train.py"
CPU_CONFIG = REPO_ROOT / "examples" / "accelerate_configs" / "cpu_2proc_gloo.yaml"


@pytest.fixture(scope="module")
def train():
    from test_finetune import _train_module  # examples/train.py as a module

    return _train_module()


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    return generate_synthetic_dis5k(tmp_path_factory.mktemp("synthetic"), num_train=8, num_val=2, num_test=1,
                                    size=64, seed=0, progress=False)  # fmt: skip


def _records(output_dir: Path, rank: int = 0) -> list[dict]:
    lines = (output_dir / "logs" / f"train_rank{rank}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


# ------------------------------------------------------------------------------------------ rule and draw
def test_size_buckets_spread_over_the_range_in_multiples_of_32():
    # the authors' range: both ends, and k / 3 of the way in 32-px steps rounded to the nearest (21.33 -> 21, 42.67 -> 43)
    assert size_buckets((256, 2304), 4) == [(256, 256), (928, 928), (1632, 1632), (2304, 2304)]
    assert size_buckets((256, 2304), 2) == [(256, 256), (2304, 2304)]
    assert size_buckets((256, 2304), 1) == [(1280, 1280)]  # the middle
    assert size_buckets((64, 96), 2) == [(64, 64), (96, 96)]
    assert size_buckets((256, 2304), 65) == [(side, side) for side in range(256, 2305, 32)]  # every multiple once
    assert size_buckets((250, 330), 3) == [(256, 256), (288, 288), (320, 320)]  # bounds rounded inwards
    assert size_buckets(((64, 64), (96, 160)), 2) == [(64, 96), (64, 160)]  # separate height and width ranges
    with pytest.raises(ValueError, match="3 size buckets need 3 different multiples of 32 .* 64-96 .* hold 2"):
        size_buckets((64, 96), 3)
    with pytest.raises(ValueError, match="at least 1"):
        size_buckets((64, 96), 0)


def test_bucket_draw_is_seeded_by_seed_epoch_and_batch_only():
    buckets = size_buckets((256, 2304), 4)
    draws = [bucket_size(buckets, 7, epoch, index) for epoch in range(4) for index in range(100)]
    assert set(draws) == set(buckets)  # every bucket is used
    assert all(count > 60 for count in Counter(draws).values())  # uniform-ish: 100 expected of 400
    again = [bucket_size(buckets, 7, epoch, index) for epoch in range(4) for index in range(100)]
    assert draws == again  # no hidden state: a resumed run, another process, another worker draw the same
    torch.manual_seed(123)  # the global generators play no part
    assert [bucket_size(buckets, 7, 0, index) for index in range(100)] == draws[:100]
    assert [bucket_size(buckets, 7, 1, index) for index in range(100)] != draws[:100]  # new order every epoch
    assert [bucket_size(buckets, 8, 0, index) for index in range(100)] != draws[:100]  # and seed
    assert BUCKET_STREAM not in range(8)  # a stream apart from the augmentation seeds
    with pytest.raises(ValueError, match="at least one bucket"):
        bucket_size([], 7, 0, 0)


def test_resize_batch_is_the_collators_dynamic_size_resize():
    generator = torch.Generator().manual_seed(0)
    examples = [{"pixel_values": torch.randn(3, 64, 64, generator=generator),
                 "labels": torch.rand(1, 64, 64, generator=generator)} for _ in range(2)]  # fmt: skip
    for size in ((96, 96), (32, 64)):  # up and down (antialiased)
        expected = DISCollator(dynamic_size=((size[0], size[0]), (size[1], size[1])))(examples)
        batch = resize_batch(DISCollator()(examples), size)
        assert batch["pixel_values"].shape == (2, 3, *size) and batch["labels"].shape == (2, 1, *size)
        assert torch.equal(batch["pixel_values"], expected["pixel_values"])
        assert torch.equal(batch["labels"], expected["labels"])
        assert 0.0 <= float(batch["labels"].min()) and float(batch["labels"].max()) <= 1.0


# ------------------------------------------------------------------------------------------ recompile limit
class _CountingEagerBackend:
    """Counts the graphs dynamo hands over and runs them eagerly."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, graph_module, example_inputs):
        self.graphs += 1
        return graph_module.forward


def test_compile_for_training_allows_a_graph_per_bucket_beyond_the_default_limit():
    import torch._dynamo

    default_limit = torch._dynamo.config.recompile_limit
    shapes = default_limit + 4  # more shapes than dynamo allows one function by default
    for input_shapes, fits in ((shapes, True), (1, False)):
        torch._dynamo.reset()
        model = torch.nn.Conv2d(1, 1, 3)
        backend = _CountingEagerBackend()
        compile_for_training(model, backend=backend, input_shapes=input_shapes)
        try:
            for side in range(8, 8 + shapes):
                model(torch.randn(1, 1, side, side))
            outcome = True
        except Exception as error:  # FailOnRecompileLimitHit (fullgraph=True: never a silent eager fallback)
            assert "recompile" in f"{type(error).__name__} {error}".lower(), error
            outcome = False
        finally:
            torch._dynamo.reset()
        assert outcome is fits, input_shapes
        assert backend.graphs == (shapes if fits else 1 + default_limit)
    assert torch._dynamo.config.recompile_limit == default_limit  # the process-wide limit is left alone
    with pytest.raises(ValueError, match="input_shapes"):
        compile_for_training(torch.nn.Conv2d(1, 1, 3), input_shapes=0)


# ------------------------------------------------------------------------------------------ arguments
def test_bucket_arguments(train, synthetic_root, tmp_path, capsys):
    base = ["--dataset_dir", str(synthetic_root), "--output_dir", str(tmp_path), "--backbone", "pvt_v2_b0",
            "--image_size", "96"]  # fmt: skip
    args = train.parse_args(base + ["--torch_compile", "--dynamic_size", "256", "2304"])
    assert args.dynamic_size_buckets == 4  # the default under --torch_compile
    assert train.parse_args(base + ["--torch_compile", "--dynamic_size", "64", "96"]).dynamic_size_buckets == 2
    assert train.parse_args(base + ["--dynamic_size", "64", "96"]).dynamic_size_buckets is None  # the authors' draw
    assert train.parse_args(base + ["--dynamic_size", "64", "160", "--dynamic_size_buckets", "3"]).dynamic_size_buckets == 3
    assert train.parse_args(base + ["--torch_compile"]).dynamic_size_buckets is None  # fixed size
    for bad, message in (
        (["--dynamic_size_buckets", "2"], "--dynamic_size_buckets 2 needs --dynamic_size"),
        (["--dynamic_size", "64", "96", "--dynamic_size_buckets", "0"], "--dynamic_size_buckets 0 with --dynamic_size"),
        (["--dynamic_size", "64", "96", "--dynamic_size_buckets", "3"], "3 size buckets need 3 different multiples"),
    ):
        with pytest.raises(SystemExit):
            train.parse_args(base + bad)
        assert message in capsys.readouterr().err, bad


def test_resume_refuses_other_size_buckets(train, synthetic_root, tmp_path, capsys):
    checkpoint = tmp_path / "checkpoints" / "step_2"
    checkpoint.mkdir(parents=True)
    state = {"completed_steps": 2, "backbone": "pvt_v2_b0", "image_size": [96, 96], "init_from": None, "task": "dis",
             "lora_rank": 0, "freeze_backbone": False, "dynamic_size": [64, 160], "dynamic_size_buckets": 3}  # fmt: skip
    (checkpoint / "training_state.json").write_text(json.dumps(state))
    base = ["--dataset_dir", str(synthetic_root), "--output_dir", str(tmp_path), "--backbone", "pvt_v2_b0",
            "--image_size", "96", "--dynamic_size", "64", "160", "--resume_from_checkpoint", "latest"]  # fmt: skip
    assert train.parse_args(base + ["--dynamic_size_buckets", "3"]).resume_checkpoint == checkpoint
    for extra, expected in (([], "--dynamic_size_buckets None differs from the checkpoint's 3"),
                            (["--torch_compile"], "--dynamic_size_buckets 4 differs from the checkpoint's 3")):  # fmt: skip
        with pytest.raises(SystemExit):
            train.parse_args(base + extra)
        assert expected in capsys.readouterr().err, extra
    del state["dynamic_size_buckets"]  # a run with the authors' draw
    (checkpoint / "training_state.json").write_text(json.dumps(state))
    assert train.parse_args(base).resume_checkpoint == checkpoint
    with pytest.raises(SystemExit):
        train.parse_args(base + ["--torch_compile"])
    assert "resume without --torch_compile or size buckets" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ train.py runs
#: The smallest pvt_v2_b0 BiRefNet to trace: one backbone pass (no half-size input), no deformable decoder attention
#: (a third of the default model's tracing time); its smallest input is 32 px.
SMALL_MODEL = "multi_scale_input=none,decoder_attention=none"


def _bucket_run(synthetic_root: Path, output_dir: Path, *extra: str) -> list[str]:
    """32-64 px in 2 buckets (32 and 64 px), batches collated at 32 px."""
    return [
        "--dataset_dir", str(synthetic_root), "--backbone", "pvt_v2_b0", "--config_overrides", SMALL_MODEL,
        "--image_size", "32", "--dynamic_size", "32", "64", "--per_device_train_batch_size", "2",
        "--output_dir", str(output_dir), "--logging_steps", "1", "--validation_split", "none",
        "--mixed_precision", "no", *extra,
    ]  # fmt: skip


def test_torch_compile_with_dynamic_sizes_compiles_once_per_bucket(train, synthetic_root, tmp_path):
    """3 steps of dynamic-size training under --torch_compile (2 buckets, dynamo with the eager backend): one graph
    per bucket drawn, none per step, no graph break; the sizes are the seeded draw's."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    output_dir = tmp_path / "compiled"
    try:
        train.main(_bucket_run(synthetic_root, output_dir, "--max_train_steps", "3", "--torch_compile",
                               "--torch_compile_backend", "eager"))  # fmt: skip
        graph_breaks = sum(counters["graph_break"].values())
        graphs = counters["stats"]["unique_graphs"]
    finally:
        torch._dynamo.reset()
    steps = [record for record in _records(output_dir) if "step" in record]
    buckets = size_buckets((32, 64), 2)
    sizes = [tuple(record["size"]) for record in steps]
    assert sizes == [bucket_size(buckets, 7, 0, index) for index in range(3)]  # epoch 0, batches 0-2, seed 7
    assert set(sizes) == set(buckets)  # both buckets drawn (the draw for seed 7 is fixed)
    assert all(math.isfinite(record["loss"]) for record in steps)
    assert graph_breaks == 0 and graphs == len(set(sizes)) <= 2  # at most one graph per bucket
    saved = load_file(output_dir / "final_model" / "model.safetensors")
    assert saved and not any(key.startswith("_orig_mod") for key in saved)  # compiled in place: the usual keys


def test_resumed_bucket_run_draws_what_an_uninterrupted_one_draws(train, synthetic_root, tmp_path):
    """Buckets without --torch_compile (allowed: the documented rule): a run resumed from its step-2 checkpoint
    (the middle of epoch 0: batches 2-3 and then epoch 1) trains steps 3-5 on the sizes and weights of an
    uninterrupted run."""
    full = tmp_path / "full"
    train.main(_bucket_run(synthetic_root, full, "--max_train_steps", "5", "--dynamic_size_buckets", "2",
                           "--checkpointing_steps", "2", "--freeze_backbone"))  # fmt: skip
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(full / "checkpoints" / "step_2", resumed / "checkpoints" / "step_2")
    train.main(_bucket_run(synthetic_root, resumed, "--max_train_steps", "5", "--dynamic_size_buckets", "2",
                           "--checkpointing_steps", "2", "--freeze_backbone", "--resume_from_checkpoint", "latest"))  # fmt: skip
    full_steps = {r["step"]: r for r in _records(full) if "step" in r}
    resumed_steps = [r for r in _records(resumed) if "step" in r]
    assert [r["step"] for r in resumed_steps] == [3, 4, 5]  # 4 batches per epoch: step 5 is epoch 1's first
    for record in resumed_steps:
        assert record["size"] == full_steps[record["step"]]["size"] and record["loss"] == full_steps[record["step"]]["loss"]
    assert {tuple(r["size"]) for r in full_steps.values()} == set(size_buckets((32, 64), 2))
    state = json.loads((full / "checkpoints" / "step_2" / "training_state.json").read_text())
    assert state["dynamic_size_buckets"] == 2 and state["dynamic_size"] == [32, 64]
    weights = load_file(full / "final_model" / "model.safetensors")
    again = load_file(resumed / "final_model" / "model.safetensors")
    assert all(torch.equal(weights[key], again[key]) for key in weights)


@pytest.mark.slow
def test_two_gloo_processes_draw_the_same_bucket_at_every_step(synthetic_root, tmp_path):
    """--torch_compile --dynamic_size under DDP (two CPU processes, eager backend): both ranks train every step at
    the same bucket, compile at most one graph per bucket, and end with the same weights."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    output_dir = tmp_path / "ddp"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["TORCH_LOGS"] = "recompiles"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_CONFIG),
        "--main_process_port", str(port), str(TRAIN_SCRIPT),
        *_bucket_run(synthetic_root, output_dir, "--max_train_steps", "4", "--freeze_backbone", "--torch_compile",
                     "--torch_compile_backend", "eager"),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    sizes, checksums = [], []
    for rank in (0, 1):
        records = _records(output_dir, rank)
        sizes.append([tuple(r["size"]) for r in records if "step" in r])
        checksums.append(next(r["parameter_checksum"] for r in records if "parameter_checksum" in r))
    # 8 images, 2 per rank and step: batches 0-1 of epochs 0 and 1
    buckets = size_buckets((32, 64), 2)
    assert sizes[0] == sizes[1] == [bucket_size(buckets, 7, epoch, index) for epoch in (0, 1) for index in (0, 1)]
    assert checksums[0] == checksums[1]
    # each rank compiles once per bucket: one recompilation (for the second bucket) per rank, none per step
    recompiles = result.stderr.count("Recompiling function")
    assert len(set(sizes[0])) == 2 and recompiles == 2, result.stderr[-3000:]
