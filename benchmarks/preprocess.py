# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Preprocessing throughput: a 4000x3000 JPEG to BiRefNet's normalised 1x3x1024x1024 tensor.

Compares, in the same process and interleaved repeat by repeat:

* ``torchvision backend``: ``BiRefNetImageProcessor`` (the default of ``AutoImageProcessor``);
* ``PIL backend``: ``BiRefNetImageProcessorPil``;
* ``authors``: the authors' chain ``Compose([Resize((1024, 1024)), ToTensor(), Normalize(mean, std)])`` on a PIL
  image from ``Image.open(path).convert("RGB")``.

Two timings per method: from the already decoded PIL image ("preprocess") and from the JPEG file ("decode +
preprocess"). Prints medians and the largest difference of each output from the authors' tensor.

    python benchmarks/preprocess.py --repeats 15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from birefnet_hf.image_processing_birefnet import BiRefNetImageProcessor, BiRefNetImageProcessorPil  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def write_photo_like_jpeg(path: Path, width: int, height: int, seed: int = 0) -> None:
    """Smooth colour regions, edges and sensor-like noise, saved as a quality-90 JPEG (a stand-in for a photo)."""
    rng = np.random.default_rng(seed)
    coarse = PIL.Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8))
    smooth = np.asarray(coarse.resize((width, height), PIL.Image.BICUBIC), dtype=np.float32)
    smooth[height // 3 : height // 2, width // 4 : width // 2] = (240, 240, 230)  # a hard-edged object
    noisy = np.clip(smooth + rng.normal(0.0, 5.0, smooth.shape), 0, 255).astype(np.uint8)
    PIL.Image.fromarray(noisy).save(path, format="JPEG", quality=90)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--image", type=Path, default=None, help="a JPEG to use instead of the synthetic photo"
    )
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        path = args.image
        if path is None:
            path = Path(folder) / "photo.jpg"
            write_photo_like_jpeg(path, args.width, args.height)
        authors = transforms.Compose(
            [transforms.Resize((1024, 1024)), transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
        )
        torchvision_processor, pil_processor = BiRefNetImageProcessor(), BiRefNetImageProcessorPil()
        methods: dict[str, Callable[[PIL.Image.Image], torch.Tensor]] = {
            "torchvision backend": lambda image: torchvision_processor(image, return_tensors="pt")[
                "pixel_values"
            ],
            "PIL backend": lambda image: pil_processor(image, return_tensors="pt")["pixel_values"],
            "authors (PIL Resize + ToTensor + Normalize)": lambda image: authors(
                image.convert("RGB")
            ).unsqueeze(0),
        }

        decoded = PIL.Image.open(path)
        decoded.load()
        reference = methods["authors (PIL Resize + ToTensor + Normalize)"](decoded)
        outputs = {name: method(decoded) for name, method in methods.items()}  # also warms up
        timings: dict[str, dict[str, list[float]]] = {name: {"pre": [], "full": []} for name in methods}
        for _ in range(args.repeats):
            for name, method in methods.items():
                start = time.perf_counter()
                method(decoded)
                timings[name]["pre"].append(time.perf_counter() - start)
                start = time.perf_counter()
                with PIL.Image.open(path) as image:
                    method(image)
                timings[name]["full"].append(time.perf_counter() - start)

    print(
        f"Input: {decoded.width}x{decoded.height} JPEG -> 1x3x1024x1024 float32; median of {args.repeats} repeats; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    header = (
        f"| {'method':<44} | {'preprocess ms':>13} | {'img/s':>6} | {'decode+preprocess ms':>20} | {'img/s':>6} "
        f"| {'max abs diff vs authors':>23} | {'mean abs diff':>13} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for name in methods:
        pre, full = statistics.median(timings[name]["pre"]), statistics.median(timings[name]["full"])
        difference = (outputs[name] - reference).abs()
        print(
            f"| {name:<44} | {pre * 1e3:>13.1f} | {1 / pre:>6.1f} | {full * 1e3:>20.1f} | {1 / full:>6.1f} "
            f"| {difference.max().item():>23.2e} | {difference.mean().item():>13.1e} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
