# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The `birefnet-hf segment` command: cut-outs, mattes or masks of every photo in files, folders and glob patterns.

```
birefnet-hf segment photos/ "more/**/*.jpg" --model path/to/birefnet --output-dir cutouts --format rgba
```

This module is the command (argument parsing, batching with a decoding thread, the summary and exit codes); the
Python API it runs is `background_removal.py` ([`remove_background`], [`BackgroundRemovalResult`], the PNG
writer) and the file discovery and output naming are `segment_inputs.py`. Every public name of those two modules is
importable from here too (`from birefnet_hf.segment import remove_background` keeps working).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import PIL.Image
import torch
from tqdm.auto import tqdm
from transformers.utils import logging

from . import cutout as cutout_ops
from .background_removal import (
    _DTYPES,
    OUTPUT_FORMATS,
    OUTPUT_MARKER,
    BackgroundRemovalResult,
    _batched,
    _default_device,  # noqa: F401  (re-exported: video.py)
    _finish_matte,
    _model_device_and_dtype,
    _predict_mattes,
    is_segment_output,
    load_model_and_processor,
    remove_background,
    write_image_atomically,
)
from .bulk import ProcessShard
from .cli import interrupted_exit_code, sigterm_as_interrupt
from .command_args import parse_resolution as _parse_resolution
from .command_args import positive_int as _positive_int
from .cuda_graphs import capture_cuda_graphs
from .cutout_options import CutoutSettings as _CutoutSettings
from .cutout_options import MatteOptions, add_cutout_arguments, cutout_settings_from_args
from .image_processing_birefnet import to_rgb_image
from .inference_paths import compile_for_inference
from .segment_inputs import (
    EXISTING_POLICIES,
    IMAGE_EXTENSIONS,
    _assign_output_paths,
    _check_existing_outputs,
    _drop_earlier_outputs,
    _Job,
    _output_dir_problem,
    collect_inputs,
)

logger = logging.get_logger(__name__)

__all__ = [
    "BackgroundRemovalResult",
    "remove_background",
    "load_model_and_processor",
    "main",
    "build_parser",
    "collect_inputs",
    "is_segment_output",
    "write_image_atomically",
    "MatteOptions",
    "OUTPUT_FORMATS",
    "OUTPUT_MARKER",
    "IMAGE_EXTENSIONS",
    "EXISTING_POLICIES",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="birefnet-hf segment",
        description=(
            "Segment the foreground of images with BiRefNet and write one PNG per input: a binary mask, the soft "
            "alpha matte, the RGBA cut-out, or an overlay preview. Folders are searched recursively and their "
            "structure is mirrored in --output-dir (with several inputs, below their common folder: dir1/x.jpg and "
            "dir2/x.jpg give OUT/dir1/x.png and OUT/dir2/x.png); outputs are named <stem>.png. Earlier outputs of "
            "this command found among the inputs are left out. Unreadable files are reported and skipped (exit "
            "code 1)."
        ),
    )
    parser.add_argument(
        "inputs", nargs="+", help="image files, folders (recursive) and glob patterns ('**' works)"
    )
    parser.add_argument("--model", "-m", required=True, help="model folder (save_pretrained) or Hub id")
    parser.add_argument("--output-dir", "-o", required=True, type=Path, help="where to write the PNG files")
    parser.add_argument(
        "--format",
        "-f",
        choices=OUTPUT_FORMATS,
        default="rgba",
        help="mask: binary 0/255; alpha: soft matte; rgba: cut-out (default); overlay: tinted preview; "
        "fg: the estimated foreground colours (RGB, for use with the alpha matte)",
    )
    parser.add_argument(
        "--batch-size", "-b", type=_positive_int, default=1, help="images per forward pass (default 1)"
    )
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1, mps, ... (default: cuda if available)"
    )
    parser.add_argument(
        "--dtype", choices=sorted(_DTYPES), default="float32", help="model precision (default float32)"
    )
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model's repeated blocks (regional: one graph per kind of block and input size, "
        "inductor) and, on CUDA, replay the whole forward as a CUDA graph; the first batch of each size compiles",
    )
    speed.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="replay the forward as a CUDA graph per input size (CUDA only; nothing is compiled, the first batch of "
        "each size is captured in about a second): the low-latency path for many images of one size",
    )
    parser.add_argument(
        "--backend",
        choices=("pytorch", "onnxruntime"),
        default="pytorch",
        help="onnxruntime: --model is an ONNX file from `birefnet-hf export onnx` (its dtype is the file's)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--resolution",
        type=_parse_resolution,
        default=None,
        help="model input size N or HEIGHTxWIDTH, multiples of 32 (default: the model's, 1024)",
    )
    size.add_argument(
        "--longest-edge",
        type=_positive_int,
        default=None,
        help="keep the aspect ratio: longest side about N, both sides multiples of 32",
    )
    add_cutout_arguments(parser)  # --threshold, --background, --dilate, ... (cutout_options.py)
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep output files that already exist and do not segment their inputs again (resumes a run)",
    )
    existing.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files even when birefnet-hf segment did not write them (default: replace "
        "only its own earlier outputs; any other file in the way is reported as failed and left alone)",
    )
    parser.add_argument(
        "--png-compress-level",
        type=int,
        choices=range(10),
        default=1,
        metavar="0-9",
        help="zlib level of the PNG files (default 1: fast; 9: smallest)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _load_batch(
    jobs: Sequence[_Job], settings: _CutoutSettings
) -> tuple[list[tuple[_Job, PIL.Image.Image]], list[tuple[str, str]]]:
    """Decode one batch: (job, RGB image) pairs and (file, reason) failures. Safe to run in a worker thread."""
    loaded, failures = [], []
    for job in jobs:
        try:
            loaded.append((job, cutout_ops.fit_max_side(to_rgb_image(job.source), settings.max_side)))
        except (OSError, ValueError, TypeError) as error:
            failures.append((str(job.source), str(error)))
    return loaded, failures


def _prefetched(batches: Sequence[Sequence[_Job]], settings: _CutoutSettings, prefetch: bool):
    """Yield (jobs, loaded, load_failures) per batch. With ``prefetch`` the next batch is decoded in a worker
    thread while the current one is on the accelerator (image decoding releases the GIL); on a CPU model it is
    not, since a decoding thread would compete with the model's own threads for the cores."""
    if not prefetch:
        for jobs in batches:
            yield (jobs, *_load_batch(jobs, settings))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="birefnet-decode") as pool:
        pending = pool.submit(_load_batch, batches[0], settings) if batches else None
        for index, jobs in enumerate(batches):
            loaded, failures = pending.result()
            if index + 1 < len(batches):
                pending = pool.submit(_load_batch, batches[index + 1], settings)
            yield jobs, loaded, failures


def _process_batch(
    jobs: Sequence[_Job],
    outputs: dict[Path, Path],
    model: torch.nn.Module,
    processor: Any,
    size: dict | None,
    output_format: str,
    threshold: float,
    compress_level: int,
    failures: list[tuple[str, str]],
    settings: _CutoutSettings | None = None,
    loaded: list[tuple[_Job, PIL.Image.Image]] | None = None,
) -> int:
    """Load (unless `loaded` comes from `_load_batch` already), segment and write one batch; failing files are
    appended to `failures`. Returns files written."""
    settings = settings or _CutoutSettings(MatteOptions())
    if loaded is None:
        loaded, load_failures = _load_batch(jobs, settings)
        failures.extend(load_failures)
    if not loaded:
        return 0
    try:
        mattes = _predict_mattes(model, processor, [image for _, image in loaded], size)
    except (RuntimeError, ValueError) as error:
        if len(loaded) == 1:
            failures.append((str(loaded[0][0].source), f"segmentation failed: {error}"))
            return 0
        # Retry one by one so a single bad image does not take the whole batch down.
        return sum(
            _process_batch(
                [job],
                outputs,
                model,
                processor,
                size,
                output_format,
                threshold,
                compress_level,
                failures,
                settings,
            )
            for job, _ in loaded
        )
    written = 0
    for (job, image), matte in zip(loaded, mattes, strict=True):
        try:
            matte = _finish_matte(model, processor, size, image, matte, settings.options)
            result = BackgroundRemovalResult(
                image,
                matte,
                refine_foreground=settings.refine_foreground,
                device=_model_device_and_dtype(model)[0],
            )
            rendered = result.render(
                output_format, 0.5 if threshold is None else threshold, settings.background
            )
        except (RuntimeError, ValueError, MemoryError) as error:
            failures.append((str(job.source), f"post-processing failed: {error}"))
            continue
        try:
            write_image_atomically(rendered, outputs[job.source], compress_level)
            written += 1
        except OSError as error:
            failures.append((str(job.source), f"cannot write {outputs[job.source]}: {error}"))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """`birefnet-hf segment`: returns 0 when every input was written, 1 when any failed, 2 on usage and model-load
    errors, 130 / 143 when stopped by Ctrl-C / SIGTERM (both leave no partial file: outputs are written atomically)."""
    try:
        with sigterm_as_interrupt():
            return _main(argv)
    except KeyboardInterrupt as error:
        print(
            "birefnet-hf segment: interrupted; the files written so far are complete, no partial file is left.",
            file=sys.stderr,
        )
        return interrupted_exit_code(error)


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threshold is not None and not 0.0 <= args.threshold < 1.0:
        print(f"birefnet-hf segment: --threshold must be in [0, 1), got {args.threshold}", file=sys.stderr)
        return 2
    try:
        settings = cutout_settings_from_args(args)
    except (OSError, ValueError, ImportError) as error:
        print(f"birefnet-hf segment: {error}", file=sys.stderr)
        return 2
    output_dir: Path = args.output_dir
    problem = _output_dir_problem(output_dir)
    if problem:  # before any work
        print(f"birefnet-hf segment: {problem}", file=sys.stderr)
        return 2
    jobs, failures, ignored = collect_inputs(args.inputs, output_dir)
    jobs, earlier_outputs = _drop_earlier_outputs(jobs)
    for job in earlier_outputs:
        if job.explicit:
            logger.warning(f"{job.source} is an output of birefnet-hf segment; leaving it out.")
    outputs = _assign_output_paths(jobs, output_dir)
    policy = "skip" if args.skip_existing else "overwrite" if args.overwrite else "replace-own"
    runnable, kept_existing = _check_existing_outputs(jobs, outputs, policy, failures)
    shard = ProcessShard.from_environment()  # under `accelerate launch`: this process's share (see bulk.py)
    runnable = shard.select(runnable)

    written = 0
    if runnable:
        try:
            if args.backend == "onnxruntime":
                from .onnx_runtime import load_onnx_model_and_processor

                model, processor = load_onnx_model_and_processor(args.model, device=args.device or "cpu")
            else:
                model, processor = load_model_and_processor(
                    args.model, device=args.device or shard.default_device(), dtype=args.dtype
                )
        except Exception as error:  # whatever fails while loading is a load error (exit 2), never a traceback
            print(f"birefnet-hf segment: cannot load model {args.model!r}: {error}", file=sys.stderr)
            return 2
        size = args.resolution or ({"longest_edge": args.longest_edge} if args.longest_edge else None)
        device = _model_device_and_dtype(model)[0]
        if args.compile:
            if args.backend != "pytorch":
                print("birefnet-hf segment: --compile needs --backend pytorch", file=sys.stderr)
                return 2
            compile_for_inference(model)
            logger.info("Compiled the model's blocks (first batch of each input size compiles; CUDA graphs on CUDA).")
        if args.cuda_graphs:
            if args.backend != "pytorch" or device.type != "cuda":
                print(
                    f"birefnet-hf segment: --cuda-graphs needs --backend pytorch on a CUDA device (got --backend "
                    f"{args.backend} on {device})",
                    file=sys.stderr,
                )
                return 2
            capture_cuda_graphs(model)
        batches = list(_batched(runnable, args.batch_size))
        with tqdm(total=len(runnable), unit="img", desc="segment", disable=args.no_progress) as bar:
            for batch, loaded, load_failures in _prefetched(batches, settings, prefetch=device.type != "cpu"):
                failures.extend(load_failures)
                written += _process_batch(
                    batch,
                    outputs,
                    model,
                    processor,
                    size,
                    args.format,
                    args.threshold,
                    args.png_compress_level,
                    failures,
                    settings,
                    loaded,
                )
                bar.update(len(batch))

    if shard.active:  # every process prints its share; the main process the totals, all exit alike
        written, failures = shard.combine(written, failures)
        if not shard.is_main_process:
            return 1 if failures else 0
    summary = f"birefnet-hf segment: wrote {written} file(s) to {output_dir}"
    if kept_existing:
        summary += f"; kept {len(kept_existing)} existing output(s) (--skip-existing)"
    if earlier_outputs:
        summary += (
            f"; left out {len(earlier_outputs)} earlier output(s) of birefnet-hf segment found in the inputs"
        )
    if ignored:
        summary += f"; ignored {ignored} file(s) without an image extension in the folders"
    print(summary + (f"; {len(failures)} failed:" if failures else "."))
    for name, reason in failures:
        print(f"  FAILED {name}: {reason}", file=sys.stderr)
    if not jobs and not failures:
        print("birefnet-hf segment: no images found in the inputs.", file=sys.stderr)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
