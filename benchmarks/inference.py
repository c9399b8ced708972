# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Inference latency and peak memory of BiRefNet, per backbone, 1x3xSxS (default 1024).

Each (backbone, implementation) runs in a fresh subprocess so that peak memory is its own:

* ``ours``: this package as shipped.
* ``tv-deform``: this package with only the deformable convolutions computed by ``torchvision.ops.deform_conv2d``
  (the authors' operator), to show what the operator alone is worth. Its logits are the reference for the
  ``max|dlogit|`` column.
* ``ours+thp`` (with ``--thp``): ours with ``THP_MEM_ALLOC_ENABLE=1``, PyTorch's switch for transparent huge pages
  in its CPU allocator (a deployment setting, not a code change; on this project's machine it was slower).

``authors`` is the authors' own code on this machine kind (2 CPU threads, fp32, 1024, median of 3), from
``../shared/parity/README.md``; the goal is at most half of it.

Every run uses the same random weights (deformable offsets made non-zero so the sampling path really runs) and the
same input. On CUDA, ``ours`` also runs in bfloat16 (torchvision's operator refuses bfloat16).

    python benchmarks/inference.py --backbones pvt_v2_b0 swin_v1_t swin_v1_l --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


#: The authors' implementation on this project's CPU machine kind: 1x3x1024x1024, fp32, 2 threads, median of 3
#: (``../shared/parity/README.md``).
AUTHORS_CPU_SECONDS = {"pvt_v2_b0": 10.8, "swin_v1_t": 15.5, "swin_v1_l": 34.0}


def _run_one(backbone: str, impl: str, size: int, repeats: int, threads: int, device: str, dtype: str) -> dict:
    import resource

    import torch

    import birefnet_hf.modeling_birefnet as modeling
    from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation

    torch.set_num_threads(threads)
    if impl == "tv-deform":
        from torchvision.ops import deform_conv2d

        def torchvision_deform(x, offset, mask, weight, bias=None, padding=(0, 0)):
            return deform_conv2d(x, offset, weight, bias, padding=padding, mask=mask)

        modeling.modulated_deform_conv2d = torchvision_deform  # benchmark-only swap of the operator

    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone)).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, modeling.ZeroInitConv2d):
                module.weight.normal_(0, 0.01)
                module.bias.normal_(0, 0.5)
    model = model.to(device=device, dtype=getattr(torch, dtype))
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device, getattr(torch, dtype))

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    times = []
    with torch.inference_mode():
        logits = model(x).logits  # warm-up
        sync()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(repeats):
            start = time.perf_counter()
            logits = model(x).logits
            sync()
            times.append(time.perf_counter() - start)
    if device == "cuda":
        peak_gb = torch.cuda.max_memory_allocated() / 1e9
    else:
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux
    return {
        "median_s": statistics.median(times),
        "peak_gb": peak_gb,
        "logits": logits.float().cpu().flatten()[:: max(1, logits.numel() // 65536)].tolist(),
    }


def gemm_gflops(threads: int, repeats: int = 7) -> float:
    """This machine's fp32 GEMM rate right now (a 4096x3072 @ 3072x768 product, median of ``repeats``): the VM's
    speed drifts, and this number lets runs taken at different times be compared."""
    import torch

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(4096, 3072, generator=generator), torch.randn(3072, 768, generator=generator)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * 4096 * 3072 * 768 / statistics.median(times) / 1e9


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["pvt_v2_b0", "swin_v1_t", "swin_v1_l"])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--impls", nargs="+", default=["ours", "tv-deform"], choices=["ours", "tv-deform"])
    parser.add_argument("--thp", action="store_true", help="also run ours with THP_MEM_ALLOC_ENABLE=1")
    parser.add_argument("--_child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._child:
        backbone, impl, device, dtype, size = args._child
        print(json.dumps(_run_one(backbone, impl, int(size), args.repeats, args.threads, device, dtype)))
        return 0

    runs = [(impl, "float32") for impl in args.impls]
    if args.thp:
        runs.append(("ours+thp", "float32"))
    if args.device == "cuda":
        runs.append(("ours", "bfloat16"))
    compare_to_authors = args.device == "cpu" and args.size == 1024 and args.threads == 2
    gemm_before = gemm_gflops(args.threads)
    rows = []
    for backbone in args.backbones:
        results = {}
        for impl, dtype in runs:
            command = [sys.executable, __file__, "--repeats", str(args.repeats), "--threads", str(args.threads),
                       "--_child", backbone, impl, args.device, dtype, str(args.size)]
            env = dict(os.environ, THP_MEM_ALLOC_ENABLE="1") if impl.endswith("+thp") else None
            done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            results[impl, dtype] = json.loads(done.stdout.strip().splitlines()[-1])
        reference = results.get(("tv-deform", "float32"))
        authors = AUTHORS_CPU_SECONDS.get(backbone) if compare_to_authors else None
        for (impl, dtype), result in results.items():
            diff = "-"
            if reference is not None and (impl, dtype) != ("tv-deform", "float32"):
                diff = f"{max(abs(a - b) for a, b in zip(result['logits'], reference['logits'])):.2e}"
            speedup = f"{reference['median_s'] / result['median_s']:.2f}x" if reference else "-"
            versus_authors = f"{authors / result['median_s']:.2f}x" if authors else "-"
            rows.append((backbone, impl, dtype, result["median_s"], result["peak_gb"], speedup, versus_authors, diff))

    device = args.device if args.device == "cpu" else "cuda"
    print(f"\nBiRefNet inference, 1x3x{args.size}x{args.size}, {device}, {args.threads} threads, "
          f"median of {args.repeats} (after 1 warm-up); fp32 GEMM rate {gemm_before:.0f} GFLOP/s before, "
          f"{gemm_gflops(args.threads):.0f} after")
    header = ("backbone", "impl", "dtype", "median s", "peak GB", "vs tv-deform", "vs authors", "max|dlogit|")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for backbone, impl, dtype, median, peak, speedup, versus_authors, diff in rows:
        print(f"| {backbone} | {impl} | {dtype} | {median:.2f} | {peak:.2f} | {speedup} | {versus_authors} | {diff} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
