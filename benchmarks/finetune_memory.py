#!/usr/bin/env python
# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Memory and step time of the fine-tuning options of ``examples/train.py``, one training step at a time.

Options: ``full`` (every weight trains), ``freeze_backbone``, ``lora`` (rank 8 on backbone and decoder, base
BatchNorm frozen), each also with gradient checkpointing (``+gc``) and, on CUDA, bf16 autocast (``+bf16``). One
step = forward with labels (the full loss), backward, AdamW step over the trainable parameters, zero_grad. Each
option runs in its own child process so that its peak is its own: on CPU the growth of the peak resident set size
(``ru_maxrss``) over the RSS right before the first step (model and optimiser built), on CUDA
``torch.cuda.max_memory_allocated`` minus the memory allocated before the first step. The table also gives the
trainable parameters and the AdamW state they need (2 x 4 bytes per trainable parameter). Times are medians over
``--repeats`` steps after one warm-up step.

    python benchmarks/finetune_memory.py                                   # CPU, pvt_v2_b0, 256 px, batch 2
    python benchmarks/finetune_memory.py --device cuda --backbone swin_v1_l --size 1024 --options full lora+gc+bf16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
OPTIONS = ("full", "full+gc", "freeze_backbone", "freeze_backbone+gc", "lora", "lora+gc")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="pvt_v2_b0")
    parser.add_argument("--size", type=int, default=256, help="square input size (multiple of 32)")
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--options", nargs="+", default=list(OPTIONS),
                        help=f"any of {OPTIONS}, optionally with '+bf16' (CUDA)")  # fmt: skip
    parser.add_argument("--lora_rank", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed steps after the warm-up; 0: the warm-up step alone (its peak memory, its time)")  # fmt: skip
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_option(args: argparse.Namespace, option: str) -> dict:
    """One option, in this process (the child)."""
    import torch

    from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation
    from birefnet_hf.training import apply_lora, freeze_backbone

    torch.manual_seed(0)
    parts = set(option.split("+"))
    device = torch.device(args.device)
    # one image per step: no BatchNorm in the decoder, as examples/train.py builds it (the ASPP pooling is 1x1)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=args.backbone, use_batch_norm=args.batch_size > 1))
    if "gc" in parts:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if "freeze_backbone" in parts:
        freeze_backbone(model)
    if "lora" in parts:
        model = apply_lora(model, rank=args.lora_rank)
    model.to(device).train()
    if "lora" in parts:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    pixel_values = torch.randn(args.batch_size, 3, args.size, args.size, device=device)
    labels = (torch.rand(args.batch_size, 1, args.size, args.size, device=device) > 0.5).float()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled="bf16" in parts)

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    times = []
    for _ in range(1 + args.repeats):
        started = time.perf_counter()
        with autocast:
            loss = model(pixel_values=pixel_values, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    if device.type == "cuda":
        peak_growth = torch.cuda.max_memory_allocated() - base
    else:
        peak_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    count = sum(p.numel() for p in trainable)
    return {"option": option, "trainable": count, "adam_state_mb": 8 * count / 2**20,
            "peak_growth_mb": peak_growth / 2**20, "step_s": statistics.median(times[1:] or times),
            "loss": float(loss.detach())}  # fmt: skip


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if args.child is not None:
        print(json.dumps(run_option(args, args.child)))
        return []
    rows = []
    for option in args.options:
        command = [sys.executable, __file__, "--child", option, "--backbone", args.backbone, "--size", str(args.size),
                   "--batch_size", str(args.batch_size), "--device", args.device, "--lora_rank", str(args.lora_rank),
                   "--repeats", str(args.repeats)]  # fmt: skip
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            print(f"{option}: failed\n{result.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    timing = f"median of {args.repeats} steps after 1 warm-up" if args.repeats else "the first step alone (warm-up)"
    print(f"\n{args.backbone}, {args.size}x{args.size}, batch {args.batch_size}, {args.device}, {timing}\n")
    print("| option | trainable params | AdamW state MB | peak memory growth MB | step s |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['option']} | {row['trainable']:,} | {row['adam_state_mb']:.1f} | {row['peak_growth_mb']:.0f} | "
              f"{row['step_s']:.2f} |")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
