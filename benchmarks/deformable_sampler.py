# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The deformable convolutions of swin_v1_l at 1024 px alone: portable ``grid_sample`` sampler vs the fused Triton
sampler (issue 12), whole operator (sampling + product) and the Triton column buffer alone; ms per call, medians of
CUDA-event timings, and the weighted sum over one forward's 20 deformable convolutions.

    python benchmarks/deformable_sampler.py                          # on a GPU: bf16, batch 1 and 8
    python benchmarks/deformable_sampler.py --dtype float32 --batch-sizes 8
    python benchmarks/deformable_sampler.py --blocks 32x64 64x64 16x128 32x128   # + tile sweep of the Triton columns
    python benchmarks/deformable_sampler.py --smoke                  # the script itself on a CPU (Triton interpreter)

The layers (C = 64 input and O = 256 output channels everywhere, read off the model on the meta device): at 32x32
four 1x1, two 3x3 and two 7x7 deformable convolutions, at 64x64, 128x128 and 256x256 two 1x1, one 3x3 and one 7x7.
Inputs are channels-last like the decoder's; offsets of a few pixels, modulation in [0, 2]. Each row also prints
the largest difference between the two samplers' outputs relative to the largest output (a sanity check).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys

#: (map side, kernel, calls per forward) of swin_v1_l's deformable convolutions at 1024x1024
LAYERS = ((32, 1, 4), (32, 3, 2), (32, 7, 2), (64, 1, 2), (64, 3, 1), (64, 7, 1), (128, 1, 2), (128, 3, 1),
          (128, 7, 1), (256, 1, 2), (256, 3, 1), (256, 7, 1))
#: --smoke: tiny layers, run on the CPU through Triton's interpreter
SMOKE_LAYERS = ((8, 1, 1), (8, 3, 1), (6, 7, 1))


def _inputs(batch, channels, side, kernel, out_channels, dtype, device, generator):
    import torch

    taps = kernel * kernel
    x = torch.randn(batch, channels, side, side, generator=generator).to(device, dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    offset = (torch.randn(batch, 2 * taps, side, side, generator=generator) * 2).to(device, dtype)
    mask = (torch.rand(batch, taps, side, side, generator=generator) * 2).to(device, dtype)
    weight = (torch.randn(out_channels, channels, kernel, kernel, generator=generator) * 0.02).to(device, dtype)
    return x, offset, mask, weight


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--blocks", nargs="*", default=[], metavar="CxP",
                        help="also time the Triton columns with these tiles (channels x positions per program)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny layers on the CPU through Triton's interpreter (checks the script, times nothing)")
    args = parser.parse_args(argv)
    if args.smoke:
        os.environ["TRITON_INTERPRET"] = "1"  # before the kernel module is imported (it decorates at import)

    import torch

    from birefnet_hf.deformable_conv import modulated_deform_conv2d
    from birefnet_hf.triton_deformable import BLOCK_CHANNELS, BLOCK_POSITIONS, modulated_deformable_columns

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gpu import _Timer

    if args.smoke:
        device, layers, channels, out_channels = torch.device("cpu"), SMOKE_LAYERS, 4, 8
        args.repeats, args.warmup, args.batch_sizes = 1, 0, [1, 2]
    elif torch.cuda.is_available():
        device, layers, channels, out_channels = torch.device("cuda"), LAYERS, 64, 256
    else:
        raise SystemExit("deformable_sampler.py needs a CUDA GPU (or --smoke for the CPU interpreter)")
    dtype = getattr(torch, args.dtype)
    tiles = []
    for text in args.blocks:
        try:
            block_c, block_p = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--blocks: {text!r} is not CxP (e.g. 32x64)") from None
        tiles.append((block_c, block_p))
    timer = _Timer(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (Triton interpreter: not timings)"
    print(f"device: {name}; torch {torch.__version__}; {args.dtype}; C={channels}, O={out_channels}; "
          f"median of {args.repeats} after {args.warmup} warm-up calls; default tile {BLOCK_CHANNELS}x{BLOCK_POSITIONS}")
    tile_columns = "".join(f" columns {c}x{p} |" for c, p in tiles)
    print(f"\n| batch | map | kernel | calls | portable ms | triton ms | triton columns ms |{tile_columns} speed-up "
          "| max rel diff |")
    print("|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(tiles) + "---:|---:|")
    generator = torch.Generator().manual_seed(0)
    for batch in args.batch_sizes:
        totals = {"portable": 0.0, "triton": 0.0}
        for side, kernel, calls in layers:
            x, offset, mask, weight = _inputs(batch, channels, side, kernel, out_channels, dtype, device, generator)
            padding = (kernel // 2, kernel // 2)
            positions = (0, side * side)
            with torch.inference_mode():
                results, times = {}, {}
                for sampler in ("grid_sample", "triton"):
                    run = functools.partial(modulated_deform_conv2d, x, offset, mask, weight, None, padding,
                                            sampler=sampler)
                    results[sampler] = run()
                    times[sampler] = statistics.median(timer.measure(run, args.repeats, args.warmup))
                tile_times = []
                for block_c, block_p in [(BLOCK_CHANNELS, BLOCK_POSITIONS), *tiles]:
                    columns = functools.partial(modulated_deformable_columns, x, offset, mask, (kernel, kernel),
                                                padding, positions, dtype, block_channels=block_c,
                                                block_positions=block_p)
                    tile_times.append(statistics.median(timer.measure(columns, args.repeats, args.warmup)))
            reference = results["grid_sample"].float()
            difference = ((results["triton"].float() - reference).abs().max() / reference.abs().max()).item()
            totals["portable"] += calls * times["grid_sample"]
            totals["triton"] += calls * times["triton"]
            tile_cells = "".join(f" {t:.3f} |" for t in tile_times[1:])
            print(f"| {batch} | {side} | {kernel}x{kernel} | {calls} | {times['grid_sample']:.3f} | "
                  f"{times['triton']:.3f} | {tile_times[0]:.3f} |{tile_cells} "
                  f"{times['grid_sample'] / times['triton']:.2f}x | {difference:.1e} |")
        print(f"| {batch} | per forward | | {sum(c for _, _, c in layers)} | {totals['portable']:.2f} | "
              f"{totals['triton']:.2f} | |" + " |" * len(tiles) + f" {totals['portable'] / totals['triton']:.2f}x | |")


if __name__ == "__main__":
    main()
