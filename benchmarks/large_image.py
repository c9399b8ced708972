# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Peak memory of background removal on an 8000x6000 photo (48 megapixels).

Each scenario runs in a fresh Python process; the peak resident set size (Linux VmHWM, reset with
/proc/self/clear_refs right before the measured step) is compared with the resident size just before it.
One full-size float32 copy of an 8000x6000 matte is 183 MiB (192 MB); the decoded RGB photo is 137 MiB as
an array (183 MiB inside PIL, which stores RGB as 4 bytes per pixel).

Scenarios:

* ``cli-1024px`` / ``cli-8000x6000``: `birefnet-hf segment photo.jpg --format rgba` end to end (decode, model
  at the processor's resolution, matte, RGBA PNG written) on a 1024x1024 and on an 8000x6000 JPEG, with a
  randomly initialised pvt_v2_b0 model; the difference is what the large input costs.
* ``matte-uint8``: `post_process_alpha(..., output_dtype=torch.uint8)`, 1024x1024 logits -> 6000x8000 (what the
  CLI and the pipelines use).
* ``matte-float32``: the same with float32 output.
* ``naive-float``: `F.interpolate(..., align_corners=True).sigmoid()` to full size, then `.numpy() * 255` to
  uint8: the straightforward way, for comparison.

Cut-outs of a 4000x3000 (12 MP) and a 12000x8000 (96 MP) photo (issue 16), same model, each CLI run end to end:

* ``rgba-4000x3000`` / ``rgba-12000x8000``: the default RGBA cut-out, with blur-fusion foreground estimation;
* ``plain-4000x3000`` / ``plain-12000x8000``: `--no-refine-foreground` (the photo's own colours);
* ``blur-4000x3000``: `--background blur` (RGB composite on the blurred photo);
* ``crops-4000x3000``: `--refine-crops` (the two-stage mode: every 1024-pixel crop that holds an edge is
  segmented again at full resolution and blended in; with a random model every crop holds an edge, the worst case);
* ``fg-12000x8000``: `cutout.estimate_foreground` alone on a decoded photo and an 8-bit matte (no model), i.e.
  what foreground estimation itself costs at 96 MP.

    python benchmarks/large_image.py            # all scenarios, model at 1024x1024
    python benchmarks/large_image.py --resolution 512
    python benchmarks/large_image.py --scenarios rgba-4000x3000 rgba-12000x8000 fg-12000x8000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FULL_SIZE = (6000, 8000)  # height, width
MB = 1 << 20


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def _measure(step) -> dict:
    import gc

    gc.collect()
    before = _status_kb("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    return {
        "rss_before_mb": before / 1024,
        "peak_mb": peak / 1024,
        "increase_mb": (peak - before) / 1024,
        "seconds": seconds,
    }


def _write_jpeg(path: Path, height: int, width: int) -> None:
    import PIL.Image

    rng = np.random.default_rng(0)
    coarse = PIL.Image.fromarray((rng.random((30, 40, 3)) * 255).astype(np.uint8))
    coarse.resize((width, height), PIL.Image.BILINEAR).save(path, format="JPEG", quality=90)


#: Photo sizes (height, width) of the cut-out scenarios.
PHOTOS = {"4000x3000": (3000, 4000), "12000x8000": (8000, 12000)}
#: Extra `birefnet-hf segment` options of the cut-out scenarios.
CUTOUT_OPTIONS = {
    "rgba": [],
    "plain": ["--no-refine-foreground"],
    "blur": ["--background", "blur"],
    "crops": ["--refine-crops"],
}


def child(scenario: str, workdir: Path, resolution: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch
    import torch.nn.functional as F

    from birefnet_hf.image_processing_birefnet import BiRefNetImageProcessor

    torch.set_num_threads(2)
    kind, _, photo = scenario.partition("-")
    if kind == "fg":
        import PIL.Image

        from birefnet_hf import cutout

        PIL.Image.MAX_IMAGE_PIXELS = None
        image = PIL.Image.open(workdir / f"{photo}.jpg")
        image.load()
        rng = np.random.default_rng(0)
        coarse = PIL.Image.fromarray((rng.random((12, 16)) * 255).astype(np.uint8), mode="L")
        matte = np.asarray(coarse.resize(image.size, PIL.Image.BILINEAR))
        keep = []
        return _measure(lambda: keep.append(cutout.estimate_foreground(image, matte)))
    if kind in CUTOUT_OPTIONS:
        from birefnet_hf import segment

        arguments = [
            str(workdir / f"{photo}.jpg"),
            "--model",
            str(workdir / "model"),
            "--output-dir",
            str(workdir / scenario),
            "--resolution",
            str(resolution),
            "--no-progress",
            "--device",
            "cpu",
            *CUTOUT_OPTIONS[kind],
        ]
        return _measure(lambda: segment.main(arguments))
    if scenario.startswith("cli-"):
        from birefnet_hf import segment

        image = workdir / ("large.jpg" if scenario == "cli-8000x6000" else "small.jpg")
        arguments = [
            str(image),
            "--model",
            str(workdir / "model"),
            "--output-dir",
            str(workdir / scenario),
            "--format",
            "rgba",
            "--resolution",
            str(resolution),
            "--no-progress",
            "--device",
            "cpu",
        ]
        # Measured: model loading, decoding, inference, matte, cut-out and PNG writing. Both image sizes pay the
        # same model costs, so their difference is what the large photo costs.
        return _measure(lambda: segment.main(arguments))

    torch.manual_seed(0)
    logits = torch.randn(1, 1, resolution, resolution) * 4
    processor = BiRefNetImageProcessor()
    keep = []

    def step():
        if scenario == "matte-uint8":
            keep.append(processor.post_process_alpha(logits, [FULL_SIZE], output_dtype=torch.uint8))
        elif scenario == "matte-float32":
            keep.append(processor.post_process_alpha(logits, [FULL_SIZE]))
        elif scenario == "naive-float":
            probabilities = F.interpolate(
                logits, size=FULL_SIZE, mode="bilinear", align_corners=True
            ).sigmoid()
            keep.append((probabilities[0, 0].numpy() * 255).astype(np.uint8))
        else:
            raise ValueError(scenario)

    return _measure(step)


SCENARIOS = (
    "cli-1024px",
    "cli-8000x6000",
    "matte-uint8",
    "matte-float32",
    "naive-float",
    "rgba-4000x3000",
    "plain-4000x3000",
    "blur-4000x3000",
    "crops-4000x3000",
    "rgba-12000x8000",
    "plain-12000x8000",
    "fg-12000x8000",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resolution", type=int, default=1024, help="model input size (default 1024)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="fresh processes per scenario (median reported)"
    )
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.workdir, args.resolution)))
        return 0

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        sys.path.insert(0, str(ROOT))
        import torch

        from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation, BiRefNetImageProcessor

        torch.manual_seed(0)
        BiRefNetForImageSegmentation(BiRefNetConfig(backbone="pvt_v2_b0")).save_pretrained(workdir / "model")
        BiRefNetImageProcessor().save_pretrained(workdir / "model")
        _write_jpeg(workdir / "large.jpg", *FULL_SIZE)
        _write_jpeg(workdir / "small.jpg", 1024, 1024)
        for name, (height, width) in PHOTOS.items():
            if any(scenario.endswith(name) for scenario in args.scenarios):
                _write_jpeg(workdir / f"{name}.jpg", height, width)

        rows = []
        environment = dict(os.environ, HF_HUB_OFFLINE="1")
        for scenario in args.scenarios:
            runs = []
            for _ in range(args.repeats):
                command = [
                    sys.executable,
                    __file__,
                    "--child",
                    scenario,
                    "--workdir",
                    str(workdir),
                    "--resolution",
                    str(args.resolution),
                ]
                completed = subprocess.run(
                    command, capture_output=True, text=True, env=environment, check=True
                )
                runs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
            median = {key: float(np.median([run[key] for run in runs])) for key in runs[0]}
            rows.append((scenario, median))
            print(f"{scenario}: {json.dumps(median)}", flush=True)  # as soon as measured (long runs)

    print(
        f"Model input {args.resolution}x{args.resolution} (pvt_v2_b0, random weights, CPU fp32, 2 threads); "
        f"full size {FULL_SIZE[1]}x{FULL_SIZE[0]}; one float32 full-size copy = {FULL_SIZE[0] * FULL_SIZE[1] * 4 / MB:.0f} MiB"
    )
    print(
        f"| {'scenario':<16} | {'RSS before MiB':>14} | {'peak MiB':>8} | {'peak increase MiB':>17} | "
        f"{'= float32 copies of its photo':>29} | {'seconds':>7} |"
    )
    print(f"|{'-' * 18}|{'-' * 16}|{'-' * 10}|{'-' * 19}|{'-' * 31}|{'-' * 9}|")
    for scenario, row in rows:
        height, width = next((size for name, size in PHOTOS.items() if scenario.endswith(name)), FULL_SIZE)
        copy_mb = height * width * 4 / MB
        print(
            f"| {scenario:<16} | {row['rss_before_mb']:>14.0f} | {row['peak_mb']:>8.0f} | {row['increase_mb']:>17.0f} | "
            f"{row['increase_mb'] / copy_mb:>29.2f} | {row['seconds']:>7.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
