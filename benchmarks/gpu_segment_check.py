# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""``birefnet-hf segment`` end to end on a device: float32, bfloat16, bfloat16 with ``--cuda-graphs`` (CUDA) and with
``--compile`` (``--compile``), batch 2, on a saved random swin_v1_t model and a few synthetic photos. Prints one ``segment-check:`` line per
run (wall time, files written) and the largest 8-bit difference of each alpha matte from the float32 run.

    python benchmarks/gpu_segment_check.py --device cuda
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation, BiRefNetImageProcessor


def _photos(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for index in range(count):
        image = Image.fromarray(rng.integers(0, 80, (480, 640, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(image)
        x, y = rng.integers(100, 400), rng.integers(100, 300)
        draw.ellipse((x - 90, y - 70, x + 90, y + 70), fill=tuple(int(v) for v in rng.integers(150, 255, 3)))
        image.save(folder / f"photo_{index}.jpg")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--compile", action="store_true", help="also a --compile run (inductor: minutes)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone="swin_v1_t"))
        model.save_pretrained(root / "model")
        BiRefNetImageProcessor().save_pretrained(root / "model")
        _photos(root / "photos", args.images)
        runs = {"float32": [], "bfloat16": ["--dtype", "bfloat16"]}
        if args.device.startswith("cuda"):
            runs["bfloat16-cuda-graphs"] = ["--dtype", "bfloat16", "--cuda-graphs"]
        if args.compile:
            runs["bfloat16-compile"] = ["--dtype", "bfloat16", "--compile"]
        mattes = {}
        failed = False
        for name, extra in runs.items():
            out = root / name
            command = [sys.executable, "-m", "birefnet_hf.cli", "segment", str(root / "photos"), "-m", str(root / "model"),
                       "-o", str(out), "--format", "alpha", "--batch-size", "2", "--device", args.device,
                       "--resolution", str(args.resolution), "--no-progress", *extra]
            begin = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True)
            wall = time.perf_counter() - begin
            files = sorted(out.glob("*.png")) if out.exists() else []
            print(f"segment-check: {name}: exit {result.returncode}, {len(files)}/{args.images} files, {wall:.1f} s wall")
            if result.returncode != 0:
                failed = True
                print(result.stderr[-2000:])
                continue
            mattes[name] = {f.name: np.asarray(Image.open(f), dtype=np.int16) for f in files}
        reference = mattes.get("float32")
        for name, found in mattes.items():
            if name == "float32" or reference is None:
                continue
            worst = max(int(np.abs(found[k] - reference[k]).max()) for k in reference)
            mean = float(np.mean([np.abs(found[k] - reference[k]).mean() for k in reference]))
            print(f"segment-check: {name} vs float32: max |diff| {worst} levels, mean {mean:.3f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
