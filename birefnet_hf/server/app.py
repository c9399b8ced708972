# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The FastAPI application behind `birefnet-hf serve`.

Endpoints:

* `POST /v1/remove-background`: the image as the raw request body (`Content-Type: image/png`, `image/jpeg`, ...)
  or as the multipart field `file`; options as query parameters, those of `birefnet-hf segment` with the same
  names, defaults, checks and meaning (`cutout_options`): `format` (`rgba` cut-out, `alpha` soft matte, `mask`
  binary, `overlay` preview, `fg` foreground colours), `output` (`png` or `webp`), `threshold` (binarise; default
  soft, 0.5 for `mask`), `background` (`blur` or a colour: the cut-out composited on it, RGB; an image comes as
  the multipart field `background`, never as a path on the server), `refine_foreground` (default true),
  `dilate` / `erode` / `feather` (pixels), `alpha_matting`, `max_side` (output size), `refine_crops` and
  `crop_size` (two-stage mode for large photos; at most `ServerSettings.max_refine_crops` crops, each through the
  micro-batcher). Answers the image.
* `GET /healthz`: model, device, input size and the micro-batcher's counters.
* `GET /`: a small web page: pick or drop an image, preview the cut-out on a checkerboard, download it.

The model is loaded once, in [`create_app`], and used by one thread through a [`MicroBatcher`], so concurrent
requests share forward passes (on a GPU) and never run the model at the same time. Errors are 4xx with a JSON
`detail` that says what was wrong: 413 for bodies or images over the limits, 415 for anything that is not a
supported image, 400 for a corrupt image or options that do not go together, 422 for an option outside its allowed
values (or `refine_crops` needing more crops than allowed), 501 for `alpha_matting` without pymatting, 503 when too
many requests are waiting.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import io
import os
import re
import time
import warnings
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio.from_thread
import numpy as np
import PIL.Image
import torch
from transformers.utils import logging

try:
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import HTMLResponse, Response
    from starlette.datastructures import UploadFile
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError('The server needs FastAPI and uvicorn: pip install "birefnet-hf[server]".') from error

from .. import cutout as cutout_ops
from ..cutout_options import CutoutSettings, apply_matte_options, cutout_settings, model_input_side
from ..image_processing_birefnet import to_rgb_image
from ..segment import OUTPUT_FORMATS, BackgroundRemovalResult, load_model_and_processor
from .batching import MicroBatcher, QueueFullError

logger = logging.get_logger(__name__)

__all__ = ["ServerSettings", "create_app", "ACCEPTED_IMAGE_FORMATS"]

#: Image formats accepted (PIL format names) and the Content-Types that may announce them.
ACCEPTED_IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
_ACCEPTED_CONTENT_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/jpg",
        "image/pjpeg",
        "image/webp",
        "image/bmp",
        "image/x-ms-bmp",
        "image/tiff",
        "image/gif",
        "application/octet-stream",
        "",
    }
)
_MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers on top of the file itself
_MEDIA_TYPES = {"png": "image/png", "webp": "image/webp"}


@dataclass
class ServerSettings:
    """Limits and batching of the server.

    Attributes:
        max_upload_bytes (`int`): largest accepted image file (default 25 MiB); larger bodies get 413.
        max_pixels (`int`): largest accepted image in pixels (default 50 megapixels); larger images get 413 before
            they are decoded.
        max_batch_size (`int | None`): most images per forward pass; default 8 on CUDA, 1 on CPU.
        max_wait_ms (`float`): how long a request waits for others to share its forward pass (default 10 ms).
        max_queue (`int`): requests allowed to wait for the model; more get 503 (default 64).
        resolution (`dict | None`): model input size for every request (default: the processor's).
        max_refine_crops (`int`): most crops `refine_crops=true` may segment again for one image (default 64);
            a request that could need more (a small `crop_size` on a large image) gets 422.
    """

    max_upload_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_batch_size: int | None = None
    max_wait_ms: float = 10.0
    max_queue: int = 64
    resolution: dict | None = None
    max_refine_crops: int = 64


def _http_error(status: int, detail: str) -> HTTPException:
    return HTTPException(status_code=status, detail=detail)


def _accepted_types_text() -> str:
    return ", ".join(name if name != "WEBP" else "WebP" for name in ACCEPTED_IMAGE_FORMATS)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _http_error(
            413, f"the upload is {int(declared)} bytes; this server accepts at most {limit} bytes."
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _http_error(413, f"the upload is larger than {limit} bytes, the most this server accepts.")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_part_type(upload: UploadFile, field: str) -> None:
    part_type = (upload.content_type or "").split(";")[0].strip().lower()
    if part_type not in _ACCEPTED_CONTENT_TYPES:
        raise _http_error(
            415, f"the {field} field has Content-Type {part_type!r}; send an image ({_accepted_types_text()})."
        )


async def _read_upload(request: Request, settings: ServerSettings) -> tuple[bytes, str | None, bytes | None]:
    """(image bytes, file name, background image bytes or None) from a raw body or the multipart fields `file` (or
    `image`) and the optional `background` (an image to composite the cut-out on)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        body = await _read_body(request, settings.max_upload_bytes + _MULTIPART_OVERHEAD)

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=2, max_fields=16)
        except HTTPException:
            raise
        except Exception as error:  # malformed multipart
            raise _http_error(400, f"cannot parse the multipart body: {error}") from error
        upload = form.get("file") or form.get("image")
        if not isinstance(upload, UploadFile):
            raise _http_error(400, "the multipart body has no file field named 'file' (or 'image').")
        _check_part_type(upload, "file")
        background = form.get("background")
        if background is not None and not isinstance(background, UploadFile):
            raise _http_error(
                400,
                "the multipart field 'background' takes an image file; send a colour or 'blur' as the query "
                "parameter background=...",
            )
        if background is not None:
            _check_part_type(background, "background")
        data = await upload.read()
        background_data = await background.read() if background is not None else None
        await form.close()
        if len(data) + len(background_data or b"") > settings.max_upload_bytes:
            raise _http_error(
                413,
                f"the upload is {len(data) + len(background_data or b'')} bytes; this server accepts at most "
                f"{settings.max_upload_bytes} bytes.",
            )
        return data, upload.filename, background_data
    if content_type not in _ACCEPTED_CONTENT_TYPES:
        raise _http_error(
            415,
            f"unsupported Content-Type {content_type!r}: send an image ({_accepted_types_text()}) as the request "
            "body or as the multipart/form-data field 'file'.",
        )
    return await _read_body(request, settings.max_upload_bytes), None, None


def _decode_image(data: bytes, max_pixels: int, max_side: int | None = None) -> PIL.Image.Image:
    """Decode an uploaded image to upright 8-bit RGB, with the server's type and size limits; downscaled so its
    longest side is at most `max_side` when given."""
    if not data:
        raise _http_error(
            400, "the upload is empty: send an image as the body or as the multipart field 'file'."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            image = PIL.Image.open(io.BytesIO(data))
    except PIL.UnidentifiedImageError as error:
        raise _http_error(
            415, f"the upload is not an image this server reads ({_accepted_types_text()})."
        ) from error
    except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as error:
        raise _http_error(413, f"the image is too large: {error}") from error
    if image.format not in ACCEPTED_IMAGE_FORMATS:
        raise _http_error(415, f"{image.format} images are not accepted; send {_accepted_types_text()}.")
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise _http_error(
            413,
            f"the image is {image.width}x{image.height} ({pixels / 1e6:.1f} megapixels); this server accepts at most "
            f"{max_pixels / 1e6:.1f} megapixels.",
        )
    try:
        image.load()
        image = to_rgb_image(image)
    except (OSError, ValueError, SyntaxError) as error:
        raise _http_error(400, f"cannot decode the {image.format} image: {error}") from error
    return cutout_ops.fit_max_side(image, max_side)


def _decode_background(data: bytes, max_pixels: int) -> PIL.Image.Image:
    """The uploaded `background` image, with the limits and errors of [`_decode_image`] naming the field."""
    try:
        return _decode_image(data, max_pixels)
    except HTTPException as error:
        raise _http_error(error.status_code, f"the background field: {error.detail}") from error


def _checked_cutout_settings(**values: Any) -> CutoutSettings:
    """The cut-out options of a request, checked like `birefnet-hf segment`'s (errors name the query parameter)."""
    try:
        return cutout_settings(command_line=False, **values)
    except ImportError as error:
        raise _http_error(501, f"alpha_matting is not available on this server: {error}") from error
    except ValueError as error:
        raise _http_error(400, str(error)) from error


def _check_crop_budget(image: PIL.Image.Image, crop_size: int, limit: int) -> None:
    """422 when `refine_crops` could segment more than `limit` crops of `image` (the server's bound on its work)."""
    if max(image.size) <= crop_size:
        return
    count = cutout_ops.crop_count(image.height, image.width, crop_size)
    if count > limit:
        raise _http_error(
            422,
            f"refine_crops: a {image.width}x{image.height} image in crop_size={crop_size} crops takes up to {count} "
            f"crops; this server segments at most {limit} per image: raise crop_size or lower max_side.",
        )


def _busy(error: Exception) -> HTTPException:
    return HTTPException(503, f"the server is busy ({error}); retry shortly.", {"Retry-After": "1"})


def _encode_image(image: PIL.Image.Image, output: str) -> bytes:
    buffer = io.BytesIO()
    if output == "png":
        image.save(buffer, format="PNG", compress_level=1)
    else:
        image.save(buffer, format="WEBP", quality=90, method=4, exact=image.mode == "RGBA")
    return buffer.getvalue()


def _page() -> str:
    return importlib.resources.files("birefnet_hf.server").joinpath("static", "index.html").read_text("utf-8")


def create_app(
    model: str | os.PathLike | torch.nn.Module,
    processor: Any | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    settings: ServerSettings | None = None,
) -> FastAPI:
    """Build the background-removal server for one model.

    Args:
        model: a model folder / Hub id (loaded here, once) or a loaded model.
        processor: its image processor (default: the folder's, else the 1024x1024 default).
        device, dtype: where to run the model (default: CUDA if available, float32).
        settings: limits and batching ([`ServerSettings`]).

    Returns:
        A FastAPI app; run it with `uvicorn.run(app, host=..., port=...)` (one worker: the model lives in it).
    """
    settings = settings or ServerSettings()
    model_name = os.fspath(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__
    if isinstance(model, (str, os.PathLike)) and device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, processor = load_model_and_processor(model, processor, device=device, dtype=dtype)
    parameter = next(model.parameters())
    model_device, model_dtype = parameter.device, parameter.dtype
    max_batch_size = settings.max_batch_size or (8 if model_device.type == "cuda" else 1)
    size_kwargs = {"size": settings.resolution} if settings.resolution is not None else {}

    @torch.inference_mode()
    def forward(batch: list[torch.Tensor]) -> list[torch.Tensor]:
        """Logits (1, 1, h, w) on the CPU per (1, 3, h, w) input; inputs of one size share a forward."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, pixel_values in enumerate(batch):
            groups.setdefault(tuple(pixel_values.shape), []).append(index)
        results: list[torch.Tensor | None] = [None] * len(batch)
        for indices in groups.values():
            stacked = torch.cat([batch[i] for i in indices]).to(device=model_device, dtype=model_dtype)
            logits = model(pixel_values=stacked).logits.float().cpu()
            for position, index in enumerate(indices):
                results[index] = logits[position : position + 1]
        return results

    batcher: MicroBatcher[torch.Tensor, torch.Tensor] = MicroBatcher(
        forward, max_batch_size=max_batch_size, max_wait_ms=settings.max_wait_ms, max_queue=settings.max_queue
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="BiRefNet background removal",
        description="Remove image backgrounds with BiRefNet (birefnet_hf).",
        lifespan=lifespan,
    )
    app.state.model = model
    app.state.processor = processor
    app.state.batcher = batcher
    app.state.settings = settings

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_page())

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok" if batcher.running else "stopped",
            "model": model_name,
            "device": str(model_device),
            "dtype": str(model_dtype).removeprefix("torch."),
            "input_size": {key: value for key, value in dict(processor.size).items() if value is not None},
            "max_batch_size": max_batch_size,
            "waiting": batcher.waiting,
            **batcher.stats.as_dict(),
        }

    model_side = model_input_side(processor, settings.resolution)

    def matte_of(logits: torch.Tensor, image: PIL.Image.Image) -> PIL.Image.Image:
        matte = processor.post_process_alpha(
            logits, target_sizes=[(image.height, image.width)], output_dtype=torch.uint8
        )[0]
        return PIL.Image.fromarray(matte.numpy(), mode="L")

    async def submit_all(values: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(await asyncio.gather(*(batcher.submit(pixel_values) for pixel_values in values)))

    def predict_crops(crops: list[PIL.Image.Image], model_size: dict) -> list[np.ndarray]:
        """`refine_crops` from a worker thread: the crops' forward passes go through the micro-batcher too."""
        values = [processor(images=crop, return_tensors="pt", size=model_size)["pixel_values"] for crop in crops]
        logits = anyio.from_thread.run(submit_all, values)
        return [np.asarray(matte_of(crop_logits, crop)) for crop_logits, crop in zip(logits, crops, strict=True)]

    @app.post(
        "/v1/remove-background",
        responses={200: {"content": {"image/png": {}, "image/webp": {}}, "description": "the result image"}},
    )
    async def remove_background_endpoint(
        request: Request,
        output_format: Literal[OUTPUT_FORMATS] = Query(  # type: ignore[valid-type]
            "rgba", alias="format", description="rgba cut-out, alpha matte, binary mask, overlay preview or fg colours"
        ),
        output: Literal["png", "webp"] = Query("png", description="file type of the answer"),
        threshold: float | None = Query(
            None, ge=0.0, lt=1.0, description="binarise the matte at this probability (default soft; 0.5 for mask)"
        ),
        background: str | None = Query(
            None,
            description="'blur' or a colour ('white', '#00b140'): the cut-out composited on it (RGB); an image "
            "comes as the multipart field 'background'",
        ),
        refine_foreground: bool = Query(
            True,
            description="estimate the foreground colours of soft edges (blur fusion) for rgba, fg, background",
        ),
        dilate: int = Query(0, ge=0, description="grow the matte by N pixels"),
        erode: int = Query(0, ge=0, description="shrink the matte by N pixels (after dilate)"),
        feather: int = Query(0, ge=0, description="soften the matte's edge over N pixels (last step)"),
        alpha_matting: bool = Query(
            False, description="closed-form alpha matting in a trimap's unknown band (needs pymatting)"
        ),
        max_side: int | None = Query(None, ge=1, description="downscale the image to at most N pixels first"),
        refine_crops: bool = Query(
            False, description="large photos: segment full-resolution crops around the edge again and blend them"
        ),
        crop_size: int | None = Query(
            None, ge=32, description="refine_crops crop side in photo pixels (default: the model's input side)"
        ),
    ) -> Response:
        start = time.perf_counter()
        values = dict(
            output_format=output_format, threshold=threshold, refine_foreground=refine_foreground, dilate=dilate,
            erode=erode, feather=feather, alpha_matting=alpha_matting, max_side=max_side,
            refine_crops=refine_crops, crop_size=crop_size, crop_batch_size=max_batch_size,
        )  # fmt: skip
        cutout = _checked_cutout_settings(background=background, **values)  # before reading the upload
        data, filename, background_data = await _read_upload(request, settings)
        if background_data is not None:
            if background is not None:
                raise _http_error(
                    400, "background is given twice (query parameter and multipart field); send one of them."
                )
            uploaded = await run_in_threadpool(_decode_background, background_data, settings.max_pixels)
            cutout = _checked_cutout_settings(background=uploaded, **values)
        image = await run_in_threadpool(_decode_image, data, settings.max_pixels, max_side)
        del data, background_data
        if refine_crops:
            _check_crop_budget(image, crop_size or model_side, settings.max_refine_crops)
        pixel_values = await run_in_threadpool(
            lambda: processor(images=image, return_tensors="pt", **size_kwargs)["pixel_values"]
        )
        try:
            logits = await batcher.submit(pixel_values)
        except QueueFullError as error:
            raise _busy(error) from error
        except RuntimeError as error:
            raise _http_error(500, f"segmentation failed: {error}") from error

        def render() -> bytes:
            matte = apply_matte_options(image, matte_of(logits, image), cutout.options, predict_crops, model_side)
            result = BackgroundRemovalResult(
                image=image, matte=matte, refine_foreground=cutout.refine_foreground, device=model_device
            )
            return _encode_image(cutout.render(result, output_format), output)

        try:
            content = await run_in_threadpool(render)
        except QueueFullError as error:  # refine_crops found the queue full
            raise _busy(error) from error
        except (RuntimeError, ValueError, MemoryError) as error:
            raise _http_error(500, f"post-processing failed: {error}") from error
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).stem)[:100] if filename else "image"
        suffix = {"rgba": "cutout", "alpha": "matte"}.get(output_format, output_format)
        headers = {
            "Content-Disposition": f'inline; filename="{stem}-{suffix}.{output}"',
            "X-Processing-Time-Ms": f"{1000 * (time.perf_counter() - start):.1f}",
            "X-Image-Size": f"{image.width}x{image.height}",
        }
        return Response(content=content, media_type=_MEDIA_TYPES[output], headers=headers)

    return app
