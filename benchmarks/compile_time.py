# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Compile time and steady-state speed of ``torch.compile`` variants (what ``birefnet-hf segment --compile`` uses).

Modes, batch 1, random weights (speed does not depend on them):

* ``eager``: no compilation (on CPU the tuned eager kernels);
* ``whole``: ``compile_for_inference(model, regional=False)``: the whole forward as one graph (inductor,
  ``fullgraph=True``; ``mode="reduce-overhead"`` on CUDA);
* ``regional``: ``compile_for_inference(model, regional=True, cuda_graphs=False)``: the repeated blocks compiled
  (inductor), one graph per kind of block and size, the glue eager (:mod:`birefnet_hf.regional_compile`);
* ``regional-graph`` (CUDA only): ``regional`` plus the whole forward replayed as a CUDA graph, what
  ``segment --compile`` does on CUDA.

Every (backbone, size, mode) runs in a fresh process with an empty inductor cache directory, so each compile is
cold (no FX-graph or kernel cache from an earlier run; ``--inductor-cache DIR`` keeps one instead, to measure a warm
start), and is stopped after ``--timeout`` seconds. Columns:
``compile s`` = the first call's wall time minus the steady time (tracing, inductor, C++/Triton compilation);
``steady ms`` = median of ``--repeats`` calls after it; ``eager ms, same run`` = the median of an uncompiled copy
of the model timed alternately with them (a speed ratio that holds on a shared machine); ``graphs`` = graphs dynamo handed to inductor
(``torch._dynamo.utils.counters["stats"]["unique_graphs"]``); ``recompiles`` = compilations of an already
compiled function (dynamo's "Recompiling function" log records; for regions every block kind after the first is
one, as all ``nn.Module.compile`` regions share the code of ``nn.Module._call_impl``).

    nice python benchmarks/compile_time.py --backbones pvt_v2_b0 swin_v1_t --sizes 512 1024
    python benchmarks/compile_time.py --device cuda --dtype bfloat16 --backbones swin_v1_l --sizes 1024 \\
        --modes eager regional regional-graph whole

For ``benchmarks/gpu.py`` the same variants are :func:`regional_inference_callable`.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ("eager", "whole", "regional", "regional-graph")


def regional_inference_callable(model, x, cuda_graphs: bool):
    """A callable running ``model`` (a copy is compiled, the argument is left alone) regionally compiled on ``x``,
    with or without the CUDA-graph replay: ``benchmarks/gpu.py``'s ``regional-bf16`` / ``regional-graph-bf16``."""
    from birefnet_hf.inference_paths import compile_for_inference

    compiled = compile_for_inference(copy.deepcopy(model), regional=True, cuda_graphs=cuda_graphs)
    return lambda: compiled(pixel_values=x).logits


class _RecompileCounter(logging.Handler):
    """Counts dynamo's "Recompiling function" records (``torch._logging.set_logs(recompiles=True)``)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "Recompiling function" in record.getMessage()


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_case(backbone: str, size: int, mode: str, repeats: int, device_name: str, dtype_name: str) -> dict:
    """One measurement in this process (called in a child process by :func:`main`)."""
    import torch
    from torch._dynamo.utils import counters

    from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation
    from birefnet_hf.inference_paths import compile_for_inference

    recompiles = _RecompileCounter()
    torch._logging.set_logs(recompiles=True)
    logging.getLogger("torch._dynamo").addHandler(recompiles)
    device, dtype = torch.device(device_name), getattr(torch, dtype_name)
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone)).eval().to(device, dtype)
    x = torch.randn(1, 3, size, size, device=device, dtype=dtype)
    eager = copy.deepcopy(model) if mode != "eager" else model  # timed alternately with the compiled model
    if mode == "whole":
        compile_for_inference(model, regional=False)
    elif mode in ("regional", "regional-graph"):
        compile_for_inference(model, regional=True, cuda_graphs=mode == "regional-graph")
    context = torch.no_grad() if mode == "regional-graph" else torch.inference_mode()

    def timed(forward) -> float:
        _synchronize(device)
        start = time.perf_counter()
        forward(pixel_values=x)
        _synchronize(device)
        return time.perf_counter() - start

    with context:
        first = timed(model)
        times, eager_times = [], []
        for _ in range(repeats):
            times.append(timed(model))
            if eager is not model:
                eager_times.append(timed(eager))
    steady = statistics.median(times)
    return {
        "backbone": backbone,
        "size": size,
        "mode": mode,
        "compile_s": None if mode == "eager" else first - steady,
        "first_s": first,
        "steady_ms": 1e3 * steady,
        "eager_ms": 1e3 * statistics.median(eager_times or times),
        "graphs": int(counters["stats"]["unique_graphs"]),
        "recompiles": recompiles.count,
    }


def _child(args) -> dict:
    """Run one case in a fresh interpreter with its own empty inductor cache; a timeout is a row, not a crash."""
    case = [args.backbone_one, str(args.size_one), args.mode_one]
    with tempfile.TemporaryDirectory(prefix="inductor-cache-") as fresh:
        cache = args.inductor_cache or fresh
        env = {
            **os.environ,
            "TORCHINDUCTOR_CACHE_DIR": cache,
            "TRITON_CACHE_DIR": os.path.join(cache, "triton"),
        }
        command = [
            sys.executable,
            __file__,
            "--child",
            *case,
            "--repeats",
            str(args.repeats),
            "--device",
            args.device,
            "--dtype",
            args.dtype,
        ]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            return {
                "backbone": case[0],
                "size": int(case[1]),
                "mode": case[2],
                "error": f"> {args.timeout} s",
            }
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["?"]
        return {"backbone": case[0], "size": int(case[1]), "mode": case[2], "error": tail[0][:100]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _format(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict]) -> None:
    print("| backbone | size | mode | compile s | steady ms | eager ms, same run | graphs | recompiles |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        if "error" in row:
            print(f"| {row['backbone']} | {row['size']} | {row['mode']} | {row['error']} | | | | |")
            continue
        print(
            f"| {row['backbone']} | {row['size']} | {row['mode']} | {_format(row['compile_s'], 1)} | "
            f"{_format(row['steady_ms'], 0)} | {_format(row.get('eager_ms'), 0)} | {row['graphs']} | "
            f"{row['recompiles']} |"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=["pvt_v2_b0", "swin_v1_t"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["eager", "regional", "whole"])
    parser.add_argument("--repeats", type=int, default=5, help="steady calls after the first (median)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per case before it is stopped")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument(
        "--inductor-cache",
        default=None,
        help="keep inductor's caches in this folder across cases and runs (a second run then measures a warm "
        "start, what a later `segment --compile` of the same model pays); default: a fresh empty folder per case",
    )
    parser.add_argument("--child", nargs=3, metavar=("BACKBONE", "SIZE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        backbone, size, mode = args.child
        print(json.dumps(run_case(backbone, int(size), mode, args.repeats, args.device, args.dtype)))
        return
    rows = []
    for backbone in args.backbones:
        for size in args.sizes:
            for mode in args.modes:
                args.backbone_one, args.size_one, args.mode_one = backbone, size, mode
                rows.append(_child(args))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print_table(rows)


if __name__ == "__main__":
    main()
