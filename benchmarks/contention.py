#!/usr/bin/env python
# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""How BiRefNet's CPU speed holds up when other processes compete for the cores (issue 19).

Workloads: inference (1xSxS, default 1024) of each ``--backbones`` and one training step (``--train_backbone`` at
``--train_size``, batch ``--batch_size``: forward with the full loss, backward, AdamW step). Each runs with 0, 1, 2
(``--competitors``) competing busy processes: single-threaded Python busy loops, started and stopped by this script
around each measurement, each with a hard time limit (``--busy_limit`` seconds of wall time and the same CPU-time
rlimit) and killed in a ``finally`` block.

Implementations, each (workload, implementation) in its own child process (so allocator state and thread pools are
its own), measuring every competitor count in turn after one warm-up:

* ``ours``: the package's default CPU path (the CPU-only kernels of :mod:`birefnet_hf.inference_paths`: oneDNN
  products, the fused Swin inference block, the gather-based deformable sampler), run as the package's entry
  points run it: idle OpenMP threads sleep (``cpu_budget.configure_thread_waiting`` before torch is imported) and
  the training step's AdamW takes ``inference_paths.optimizer_kernel_options`` (fused on CPU).
* ``reference``: the same model and weights in plain PyTorch: the predicates ``use_cpu_kernels`` /
  ``use_cpu_inference_kernels`` are replaced by ``False`` in the modules that import them
  (``birefnet_hf.window_attention``, ``birefnet_hf.deformable_conv``), in this benchmark only, so the portable
  path runs (what a GPU, autocast or ``torch.compile`` would run), with PyTorch's defaults (spinning idle threads,
  the per-parameter AdamW).

Times are medians of ``--repeats`` forward passes / steps (after one warm-up with the competitors already running).
The table gives each median, the slowdown against 0 competitors (on 2 cores, losing one core costs 2x at best) and
ours' speed-up over the reference at each competitor count. The machine's load average is printed at start and end.

    python benchmarks/contention.py                                   # 1024 px inference, 256 px training
    python benchmarks/contention.py --size 512 --repeats 3            # quicker
    python benchmarks/contention.py --backbones pvt_v2_b0 --no_train --competitors 0 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

#: A single-threaded busy loop with a hard limit: it stops by itself after ``limit`` s of wall time, and the kernel
#: kills it after ``limit`` s of CPU time (RLIMIT_CPU) should the loop somehow survive.
BUSY_LOOP = """
import resource, time
limit = {limit}
resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 1))
end = time.monotonic() + limit
count = 0
while time.monotonic() < end:
    count += 1
"""

#: The modules whose CPU-kernel predicates the ``reference`` implementation switches off.
PATCHED_MODULES = ("birefnet_hf.window_attention", "birefnet_hf.deformable_conv")
PREDICATES = ("use_cpu_kernels", "use_cpu_inference_kernels")


@contextlib.contextmanager
def busy_processes(count: int, limit: int) -> Iterator[list[subprocess.Popen]]:
    """``count`` competing single-threaded busy processes for the duration of the block (killed on exit, whatever
    happens; each also stops by itself after ``limit`` seconds)."""
    processes: list[subprocess.Popen] = []
    try:
        for _ in range(count):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-S", "-c", BUSY_LOOP.format(limit=int(limit))],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(0.2 if count else 0.0)  # let them get going
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)


def use_reference_path() -> list[str]:
    """Switch the CPU-only kernels off (benchmark only): the predicates return False where the model looks them
    up. Returns the names patched; raises if none was found (the package's layout changed)."""
    import importlib

    patched = []
    for module_name in PATCHED_MODULES:
        module = importlib.import_module(module_name)
        for name in PREDICATES:
            if hasattr(module, name):
                setattr(module, name, lambda *args, **kwargs: False)
                patched.append(f"{module_name}.{name}")
    if not patched:
        raise RuntimeError(
            f"none of {PREDICATES} found in {PATCHED_MODULES}: update benchmarks/contention.py"
        )
    return patched


def _build_model(backbone: str):
    import torch

    import birefnet_hf.modeling_birefnet as modeling
    from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation

    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone))
    with torch.no_grad():  # non-zero deformable offsets, so the sampling path really samples
        for module in model.modules():
            if isinstance(module, modeling.ZeroInitConv2d):
                module.weight.normal_(0, 0.01)
                module.bias.normal_(0, 0.5)
    return model


def run_child(workload: str, backbone: str, impl: str, size: int, batch: int, competitors: list[int],
              repeats: int, threads: int, busy_limit: int) -> dict:  # fmt: skip
    """Measure one (workload, implementation) at every competitor count, in this process."""
    import torch

    torch.set_num_threads(threads)
    patched = use_reference_path() if impl == "reference" else []
    model = _build_model(backbone)
    generator = torch.Generator().manual_seed(1)
    pixel_values = torch.randn(batch, 3, size, size, generator=generator)

    if workload == "inference":
        model.eval()

        def step():
            with torch.inference_mode():
                return model(pixel_values).logits

    else:
        model.train()
        labels = (torch.rand(batch, 1, size, size, generator=generator) > 0.7).float()
        options = {}
        if impl == "ours":  # examples/train.py's choice for the device (fused on CPU)
            from birefnet_hf.inference_paths import optimizer_kernel_options

            options = optimizer_kernel_options(pixel_values.device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2, **options)

        def step():
            loss = model(pixel_values, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    out = step()  # first call: allocations, layout caches
    sample = None
    if workload == "inference":
        sample = out.flatten()[:: max(1, out.numel() // 65536)].tolist()
    rows = {}
    for count in competitors:
        load_before = os.getloadavg()[0]
        with busy_processes(count, busy_limit):
            step()  # warm-up with the competitors running
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
        rows[str(count)] = {
            "median_s": statistics.median(times),
            "times_s": times,
            "load_before": load_before,
        }
    return {"rows": rows, "patched": patched, "threads": torch.get_num_threads(), "logits_sample": sample}


def _format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backbones", nargs="+", default=["pvt_v2_b0", "swin_v1_t"], help="inference backbones"
    )
    parser.add_argument("--size", type=int, default=1024, help="inference input size (multiple of 32)")
    parser.add_argument("--train_backbone", default="pvt_v2_b0")
    parser.add_argument("--train_size", type=int, default=256, help="training input size (multiple of 32)")
    parser.add_argument("--batch_size", type=int, default=2, help="training batch (>= 2: BatchNorm)")
    parser.add_argument("--no_train", action="store_true", help="skip the training step")
    parser.add_argument("--competitors", type=int, nargs="+", default=[0, 1, 2], help="busy-process counts")
    parser.add_argument("--impls", nargs="+", default=["ours", "reference"], choices=["ours", "reference"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the measured process")
    parser.add_argument(
        "--busy_limit", type=int, default=1800, help="hard limit of each busy process (seconds)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    for name in ("size", "train_size"):
        if getattr(args, name) % 32 or getattr(args, name) <= 0:
            parser.error(f"--{name} must be a positive multiple of 32, got {getattr(args, name)}")
    if args.batch_size < 2:
        parser.error("--batch_size must be at least 2 (the decoder's BatchNorm cannot train on one image)")
    if any(count < 0 for count in args.competitors) or args.repeats < 1 or args.busy_limit < 1:
        parser.error("--competitors must be >= 0, --repeats and --busy_limit >= 1")
    if 0 not in args.competitors:
        args.competitors = [0, *args.competitors]  # the ratios need the quiet baseline
    args.competitors = sorted(set(args.competitors))

    if args._child:
        spec = json.loads(args._child)
        if spec["impl"] == "ours":  # as the package's entry points do, before torch is imported
            from birefnet_hf.cpu_budget import configure_thread_waiting

            configure_thread_waiting()
        print("RESULT " + json.dumps(run_child(**spec)), flush=True)
        return 0

    workloads = [("inference", backbone, args.size, 1) for backbone in args.backbones]
    if not args.no_train:
        workloads.append(("training", args.train_backbone, args.train_size, args.batch_size))

    load_start = os.getloadavg()
    started = time.time()
    results = {}
    for workload, backbone, size, batch in workloads:
        for impl in args.impls:
            spec = dict(workload=workload, backbone=backbone, impl=impl, size=size, batch=batch,
                        competitors=args.competitors, repeats=args.repeats, threads=args.threads,
                        busy_limit=args.busy_limit)  # fmt: skip
            print(
                f"[{time.time() - started:7.0f} s] {workload} {backbone} {size} {impl} ...", file=sys.stderr
            )
            done = subprocess.run([sys.executable, __file__, "--_child", json.dumps(spec)], capture_output=True,
                                  text=True, cwd=REPO_ROOT)  # fmt: skip
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                raise SystemExit(f"child for {workload} {backbone} {impl} failed (exit {done.returncode})")
            line = next(line for line in done.stdout.splitlines()[::-1] if line.startswith("RESULT "))
            results[workload, backbone, size, impl] = json.loads(line[len("RESULT ") :])
    load_end = os.getloadavg()

    print(
        f"\nBiRefNet on CPU with competing busy processes: {args.threads} torch threads, median of {args.repeats} "
        f"after 1 warm-up; {os.cpu_count()} CPUs; load average (1/5/15 min) "
        f"{' / '.join(f'{x:.2f}' for x in load_start)} at start, {' / '.join(f'{x:.2f}' for x in load_end)} at end; "
        f"{time.time() - started:.0f} s in all"
    )
    counts = args.competitors
    header = ["workload", "backbone", "size", "impl"]
    header += [f"{count} busy: s" for count in counts]
    header += [f"{count} busy / 0" for count in counts if count]
    header += [f"ours vs ref, {count} busy" for count in counts]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for (workload, backbone, size, impl), result in results.items():
        medians = {count: result["rows"][str(count)]["median_s"] for count in counts}
        reference = results.get((workload, backbone, size, "reference"))
        cells = [
            workload,
            backbone,
            f"{size}" if workload == "inference" else f"{size} x{args.batch_size}",
            impl,
        ]
        cells += [f"{medians[count]:.2f}" for count in counts]
        cells += [_format_ratio(medians[count] / medians[0]) for count in counts if count]
        for count in counts:
            ratio = None
            if impl == "ours" and reference is not None:
                ratio = reference["rows"][str(count)]["median_s"] / medians[count]
            cells.append(_format_ratio(ratio))
        print("| " + " | ".join(cells) + " |")

    for (workload, backbone, size, impl), result in results.items():
        reference = results.get((workload, backbone, size, "reference"))
        if impl == "ours" and reference is not None and result["logits_sample"] is not None:
            diff = max(
                abs(a - b) for a, b in zip(result["logits_sample"], reference["logits_sample"], strict=True)
            )
            print(f"{backbone} {size}: max |logit(ours) - logit(reference)| = {diff:.2e} (sampled)")
    patched = next((r["patched"] for r in results.values() if r["patched"]), None)
    if patched:
        print("reference = predicates returning False: " + ", ".join(patched))
    if args.json:
        rows = [dict(workload=w, backbone=b, size=s, impl=i, **r) for (w, b, s, i), r in results.items()]
        args.json.write_text(
            json.dumps({"load_start": load_start, "load_end": load_end, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
