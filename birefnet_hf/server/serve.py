# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""`birefnet-hf serve`: run the background-removal server (see [`birefnet_hf.server.app`])."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..segment import _DTYPES, _parse_resolution, _positive_int

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="birefnet-hf serve",
        description=(
            "Serve BiRefNet over HTTP: POST /v1/remove-background (raw image body or multipart field 'file'; query "
            "options format=rgba|alpha|mask|overlay|fg, output=png|webp and the cut-out options of birefnet-hf "
            "segment: threshold, background, refine_foreground, dilate, erode, feather, alpha_matting, max_side, "
            "refine_crops, crop_size), GET /healthz, and a web page at /. The model is loaded once; concurrent "
            "requests share forward passes (micro-batching)."
        ),
    )
    parser.add_argument("--model", "-m", required=True, help="model folder (save_pretrained) or Hub id")
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--dtype", choices=sorted(_DTYPES), default="float32", help="model precision")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--resolution", type=_parse_resolution, default=None, help="model input size N or HxW")
    size.add_argument(
        "--longest-edge", type=_positive_int, default=None, help="keep the aspect ratio: longest side N"
    )
    parser.add_argument(
        "--max-batch-size",
        type=_positive_int,
        default=None,
        help="images per forward pass (default 8 on CUDA, 1 on CPU)",
    )
    parser.add_argument(
        "--max-wait-ms", type=float, default=10.0, help="how long a request waits to share a batch"
    )
    parser.add_argument(
        "--max-queue", type=_positive_int, default=64, help="waiting requests before 503 (default 64)"
    )
    parser.add_argument(
        "--max-upload-mb", type=float, default=25.0, help="largest upload in MiB (default 25)"
    )
    parser.add_argument(
        "--max-megapixels", type=float, default=50.0, help="largest image in megapixels (default 50)"
    )
    parser.add_argument(
        "--max-refine-crops",
        type=_positive_int,
        default=64,
        help="most crops refine_crops=true may segment for one image (default 64; more: 422)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, load the model once and serve until interrupted."""
    args = build_parser().parse_args(argv)
    if not 0 < args.port < 65536:
        print(f"birefnet-hf serve: --port must be 1-65535, got {args.port}", file=sys.stderr)
        return 2
    if args.max_upload_mb <= 0 or args.max_megapixels <= 0 or args.max_wait_ms < 0:
        print(
            "birefnet-hf serve: --max-upload-mb and --max-megapixels must be > 0, --max-wait-ms >= 0",
            file=sys.stderr,
        )
        return 2
    try:
        import uvicorn

        from .app import ServerSettings, create_app
    except ImportError as error:
        print(f"birefnet-hf serve: {error}", file=sys.stderr)
        return 2
    settings = ServerSettings(
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=int(args.max_megapixels * 1e6),
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        resolution=args.resolution or ({"longest_edge": args.longest_edge} if args.longest_edge else None),
        max_refine_crops=args.max_refine_crops,
    )
    try:
        app = create_app(args.model, device=args.device, dtype=args.dtype, settings=settings)
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        print(f"birefnet-hf serve: cannot load model {args.model!r}: {error}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, workers=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
