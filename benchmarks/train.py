#!/usr/bin/env python
# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Training-step throughput and peak memory of BiRefNet, with and without gradient checkpointing.

One training step = forward with labels (the full loss: every side output, the outward reference's gradient loss),
backward, AdamW step, zero_grad. Each configuration runs in its own child process, so that its peak memory is its
own: on CPU the peak resident set size of the process (``ru_maxrss``) and its growth over the RSS right before the
first step (model and optimiser built); on CUDA ``torch.cuda.max_memory_allocated``. Times are medians over
``--repeats`` steps after ``--warmup`` steps; samples/s = batch / median step time.

    python benchmarks/train.py --sizes 512 1024                       # CPU, pvt_v2_b0, batch 2
    python benchmarks/train.py --device cuda --backbone swin_v1_l --batch_size 4 --mixed_precision bf16 \\
        --sizes 512 1024 --repeats 10                                 # the paper's model on one GPU
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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="pvt_v2_b0")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="square input sizes (x32)")
    parser.add_argument("--batch_size", type=int, default=2, help="images per step (>= 2: BatchNorm)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--mixed_precision", choices=("no", "bf16", "fp16"), default="no", help="autocast dtype"
    )
    parser.add_argument("--gradient_checkpointing", choices=("both", "on", "off"), default="both")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--checkpointing", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if any(size % 32 for size in args.sizes):
        parser.error(f"--sizes must be multiples of 32, got {args.sizes}")
    if args.batch_size < 2:
        parser.error("--batch_size must be at least 2 (the decoder's BatchNorm cannot train on one image)")
    return args


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_child(args: argparse.Namespace) -> dict:
    """Measure one configuration in this process; prints a JSON row."""
    import torch

    from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    )
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=args.backbone)).to(device).train()
    if args.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(0)
    pixel_values = torch.randn(args.batch_size, 3, args.size, args.size, generator=generator).to(device)
    labels = (
        (torch.rand(args.batch_size, 1, args.size, args.size, generator=generator) > 0.7).float().to(device)
    )
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.mixed_precision)

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = model(pixel_values, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    baseline = _rss_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for index in range(args.warmup + args.repeats):
        synchronize()
        start = time.perf_counter()
        step()
        synchronize()
        if index >= args.warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    row = {
        "backbone": args.backbone, "size": args.size, "batch": args.batch_size, "device": device.type,
        "mixed_precision": args.mixed_precision, "gradient_checkpointing": bool(args.checkpointing),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "median_step_s": median, "samples_per_s": args.batch_size / median, "step_times_s": times,
    }  # fmt: skip
    if device.type == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        row["memory_kind"] = "max_memory_allocated"
    else:
        row["peak_memory_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30
        row["peak_over_idle_gib"] = row["peak_memory_gib"] - baseline / 2**30
        row["memory_kind"] = "peak RSS"
    return row


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print("ROW " + json.dumps(run_child(args)), flush=True)
        return 0
    modes = {"both": [0, 1], "on": [1], "off": [0]}[args.gradient_checkpointing]
    rows = []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    for size in args.sizes:
        for checkpointing in modes:
            command = [
                sys.executable, __file__, "--child", "--size", str(size), "--checkpointing", str(checkpointing),
                "--backbone", args.backbone, "--batch_size", str(args.batch_size), "--device", args.device,
                "--mixed_precision", args.mixed_precision, "--warmup", str(args.warmup), "--repeats", str(args.repeats),
            ] + (["--threads", str(args.threads)] if args.threads else [])  # fmt: skip
            print(
                f"size {size}, gradient checkpointing {'on' if checkpointing else 'off'} ...",
                file=sys.stderr,
                flush=True,
            )
            result = subprocess.run(command, env=env, capture_output=True, text=True)
            found = [line[4:] for line in result.stdout.splitlines() if line.startswith("ROW ")]
            if result.returncode != 0 or not found:
                tail = result.stderr.strip().splitlines()[-3:]
                print(f"  failed (exit {result.returncode}): {' | '.join(tail)}", file=sys.stderr)
                rows.append(
                    {"size": size, "gradient_checkpointing": bool(checkpointing), "error": " | ".join(tail)}
                )
                continue
            rows.append(json.loads(found[0]))

    header = "| backbone | device | size | batch | precision | grad. ckpt | median step (s) | samples/s | peak mem (GiB) |"
    print(header)
    print("|---|---|---:|---:|---|---|---:|---:|---:|")
    for row in rows:
        if "error" in row:
            print(
                f"| {args.backbone} | | {row['size']} | {args.batch_size} | | {'on' if row['gradient_checkpointing'] else 'off'} | failed | | |"
            )
            continue
        memory = f"{row['peak_memory_gib']:.2f}"
        if "peak_over_idle_gib" in row:
            memory += f" (+{row['peak_over_idle_gib']:.2f})"
        print(
            f"| {row['backbone']} | {row['device']}{'' if row['threads'] is None else ' x' + str(row['threads'])} "
            f"| {row['size']} | {row['batch']} | {row['mixed_precision']} | {'on' if row['gradient_checkpointing'] else 'off'} "
            f"| {row['median_step_s']:.2f} | {row['samples_per_s']:.3f} | {memory} |"
        )
    if any("peak_over_idle_gib" in row for row in rows):
        print("\nCPU memory: peak resident set size of the process (in brackets: growth over the RSS with the model "
              "and optimiser built, i.e. activations, gradients and optimiser state).")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
