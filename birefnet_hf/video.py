# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Background removal on videos: [`remove_video_background`] and the `birefnet-hf video` command.

```
birefnet-hf video clip.mp4 -o clip.webm --model path/to/birefnet                 # VP9 with alpha (yuva420p)
birefnet-hf video clip.mp4 -o clip.mov  --model path/to/birefnet                 # ProRes 4444 with alpha
birefnet-hf video clip.mp4 -o matte.mp4 --model path/to/birefnet --format matte  # the matte as a grey video
birefnet-hf video clip.mp4 -o frames/   --model path/to/birefnet                 # RGBA PNG sequence (+ audio.mka)
birefnet-hf video clip.mp4 -o green.mp4 --model path/to/birefnet --background "#00b140"   # or an image / a video
```

Frames are decoded with PyAV (FFmpeg), segmented in batches of `--batch-size` on the model's device (CUDA when
available), optionally smoothed in time ([`TemporalMatteSmoother`]) and encoded; the first audio stream is copied
(or re-encoded when the output container cannot hold its codec, e.g. AAC into WebM becomes Opus). The output is
written to a temporary file next to the destination and renamed at the end, so a failed or interrupted run leaves
the previous file (or nothing), never a truncated video.

Needs the `video` extra: `pip install "birefnet-hf[video]"` (PyAV).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import PIL.ImageColor
import torch
from tqdm.auto import tqdm
from transformers.utils import logging

from .atomic_io import atomic_file, atomic_folder
from .cutout import estimate_foreground
from .segment import _DTYPES, _default_device, _parse_resolution, _positive_int, load_model_and_processor

logger = logging.get_logger(__name__)

__all__ = [
    "VIDEO_FORMATS",
    "TemporalMatteSmoother",
    "VideoResult",
    "remove_video_background",
    "build_parser",
    "main",
]

#: `--format` values: `alpha` (a video with an alpha channel), `matte` (the matte as a grey video), `composite`
#: (the foreground over a colour, an image or another video) and `png` (a folder of RGBA PNG frames).
VIDEO_FORMATS = ("alpha", "matte", "composite", "png")


@dataclass(frozen=True)
class _Encoding:
    """How one (format, container) pair is encoded."""

    codec: str
    pix_fmt: str
    options: tuple[tuple[str, str], ...] = ()
    even_size: bool = False  # 4:2:0 chroma: width and height must be even


_VP9_OPTIONS = (("crf", "32"), ("b", "0"), ("row-mt", "1"), ("deadline", "good"), ("cpu-used", "4"))
_X264_OPTIONS = (("crf", "20"), ("preset", "medium"))
_ENCODINGS: dict[tuple[str, str], _Encoding] = {
    ("alpha", ".webm"): _Encoding("libvpx-vp9", "yuva420p", _VP9_OPTIONS),
    ("alpha", ".mov"): _Encoding("prores_ks", "yuva444p10le", (("profile", "4444"), ("alpha_bits", "16"))),
    ("matte", ".webm"): _Encoding("libvpx-vp9", "yuv420p", _VP9_OPTIONS),
    ("matte", ".mp4"): _Encoding("libx264", "yuv420p", _X264_OPTIONS, even_size=True),
    ("matte", ".mov"): _Encoding("libx264", "yuv420p", _X264_OPTIONS, even_size=True),
    ("matte", ".mkv"): _Encoding("ffv1", "gray"),  # lossless
    ("composite", ".webm"): _Encoding("libvpx-vp9", "yuv420p", _VP9_OPTIONS),
    ("composite", ".mp4"): _Encoding("libx264", "yuv420p", _X264_OPTIONS, even_size=True),
    ("composite", ".mov"): _Encoding("libx264", "yuv420p", _X264_OPTIONS, even_size=True),
    ("composite", ".mkv"): _Encoding("libx264", "yuv420p", _X264_OPTIONS, even_size=True),
}
#: Audio encoder per container when the input's audio codec cannot be copied into it.
_AUDIO_ENCODERS = {".webm": "libopus", ".mov": "aac", ".mp4": "aac", ".mkv": "libopus", ".mka": "libopus"}
_CONTAINER_FORMATS = {".webm": "webm", ".mov": "mov", ".mp4": "mp4", ".mkv": "matroska", ".mka": "matroska"}
#: The audio of a PNG sequence goes to this file in the output folder.
PNG_SEQUENCE_AUDIO = "audio.mka"


def _import_av() -> Any:
    try:
        import av
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            'Video needs PyAV: pip install "birefnet-hf[video]" (or pip install av).'
        ) from error
    return av


# ---------------------------------------------------------------------------------------------------------------
# Temporal smoothing
# ---------------------------------------------------------------------------------------------------------------


class TemporalMatteSmoother:
    """Reduce frame-to-frame flicker of the matte with a motion-gated exponential moving average.

    For each pixel, `smoothed_t = strength * smoothed_{t-1} + (1 - strength) * matte_t`, except where the matte
    changed by more than `motion_threshold` (as a fraction of full opacity) since the previous smoothed frame: there
    the new value is taken as is, so moving edges do not leave ghosts. Flicker (small changes of a static
    foreground's soft edge from frame to frame) is damped; `strength=0` is a no-op.

    Args:
        strength (`float`): weight of the past, in [0, 1).
        motion_threshold (`float`): changes above this fraction of 255 count as motion (default 0.3).
    """

    def __init__(self, strength: float, motion_threshold: float = 0.3):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"temporal smoothing strength must be in [0, 1), got {strength}.")
        if not 0.0 < motion_threshold <= 1.0:
            raise ValueError(f"motion_threshold must be in (0, 1], got {motion_threshold}.")
        self.strength = strength
        self.motion_threshold = motion_threshold
        self._state: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the past (call at a scene cut or between videos)."""
        self._state = None

    def __call__(self, matte: np.ndarray) -> np.ndarray:
        """Smooth one (height, width) uint8 matte; returns a uint8 matte of the same shape."""
        current = matte.astype(np.float32)
        if self.strength == 0.0 or self._state is None or self._state.shape != current.shape:
            self._state = current
            return np.asarray(matte, dtype=np.uint8)
        blended = self.strength * self._state + (1.0 - self.strength) * current
        moving = np.abs(current - self._state) > 255.0 * self.motion_threshold
        self._state = np.where(moving, current, blended)
        return np.clip(np.rint(self._state), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Backgrounds for composites
# ---------------------------------------------------------------------------------------------------------------


def _cover(image: PIL.Image.Image, width: int, height: int) -> np.ndarray:
    """`image` scaled to cover (width, height) and centre-cropped, as an RGB uint8 array."""
    scale = max(width / image.width, height / image.height)
    resized = image.convert("RGB").resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))), PIL.Image.BILINEAR
    )
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return np.asarray(resized.crop((left, top, left + width, top + height)))


class _Background:
    """The background of a composite: a colour, an image or a video (looped, frames scaled to cover)."""

    def __init__(self, spec: str):
        self.spec = spec
        self._color: tuple[int, int, int] | None = None
        self._image: PIL.Image.Image | None = None
        self._video: Any = None
        self._frames: Iterator[Any] | None = None
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        path = Path(spec)
        if path.is_file():
            try:
                with PIL.Image.open(path) as image:
                    image.load()
                    self._image = image.convert("RGB")
                return
            except (OSError, ValueError):
                pass
            av = _import_av()
            try:
                self._video = av.open(os.fspath(path))
            except av.error.FFmpegError as error:
                raise ValueError(f"--background {spec!r}: neither an image nor a video ({error}).") from error
            if not self._video.streams.video:
                self._video.close()
                raise ValueError(f"--background {spec!r}: the file has no video stream.")
            return
        try:
            self._color = PIL.ImageColor.getrgb(spec)[:3]
        except ValueError as error:
            raise ValueError(
                f"--background {spec!r}: not a colour (a name such as 'white' or '#RRGGBB') nor an existing "
                "image or video file."
            ) from error

    def _next_video_frame(self) -> Any:
        for _ in range(2):  # at the end of the video, start again once
            if self._frames is None:
                self._video.seek(0)
                self._frames = self._video.decode(self._video.streams.video[0])
            frame = next(self._frames, None)
            if frame is not None:
                return frame
            self._frames = None
        raise ValueError(f"--background {self.spec!r}: the video has no decodable frame.")

    def frame(self, width: int, height: int) -> np.ndarray:
        """The next background frame as an (height, width, 3) uint8 array."""
        if self._color is not None:
            key = (width, height)
            if key not in self._cache:
                self._cache[key] = np.broadcast_to(np.asarray(self._color, np.uint8), (height, width, 3))
            return self._cache[key]
        if self._image is not None:
            key = (width, height)
            if key not in self._cache:
                self._cache[key] = _cover(self._image, width, height)
            return self._cache[key]
        return _cover(self._next_video_frame().to_image(), width, height)

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None


def composite(rgb: np.ndarray, matte: np.ndarray, background: np.ndarray) -> np.ndarray:
    """`rgb * a + background * (1 - a)` with `a = matte / 255`, all uint8 arrays of one size."""
    alpha = matte.astype(np.float32)[..., None] * (1.0 / 255.0)
    blended = background.astype(np.float32) + alpha * (rgb.astype(np.float32) - background.astype(np.float32))
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Processing
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class VideoResult:
    """What [`remove_video_background`] did.

    Attributes:
        output (`Path`): the written file (or folder for `png`).
        output_format (`str`): one of [`VIDEO_FORMATS`].
        frames (`int`): frames written.
        width, height (`int`): frame size of the input.
        frame_rate (`Fraction | None`): the input's average frame rate.
        audio (`str | None`): "copied", "re-encoded (<codec>)" or None when the output has no audio.
        seconds (`float`): wall time.
    """

    output: Path
    output_format: str
    frames: int
    width: int
    height: int
    frame_rate: Fraction | None
    audio: str | None
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def _resolve_format(output: Path, output_format: str | None, background: str | None) -> str:
    if output_format is None:
        if output.suffix == "" or output.is_dir():
            output_format = "png"
        elif background is not None:
            output_format = "composite"
        else:
            output_format = "alpha"
    if output_format not in VIDEO_FORMATS:
        raise ValueError(f"Unknown video output format {output_format!r}; choose one of {VIDEO_FORMATS}.")
    if output_format == "composite" and background is None:
        raise ValueError("--format composite needs --background (a colour, an image or a video).")
    if output_format != "composite" and background is not None and output_format != "png":
        raise ValueError(f"--background only applies to --format composite (or png), not {output_format!r}.")
    if output_format == "png":
        if output.suffix:
            raise ValueError(f"--format png writes a folder of frames; {output} looks like a file name.")
    elif (output_format, output.suffix.lower()) not in _ENCODINGS:
        suffixes = sorted(suffix for fmt, suffix in _ENCODINGS if fmt == output_format)
        raise ValueError(
            f"--format {output_format} cannot be written to {output.name!r}: use one of {', '.join(suffixes)}"
            + (" (alpha needs VP9 in WebM or ProRes 4444 in MOV)" if output_format == "alpha" else "")
            + "."
        )
    return output_format


def _frame_batches(
    container: Any, video_stream: Any, audio_stream: Any, batch_size: int, on_audio
) -> Iterator:
    """Decode `video_stream` into lists of up to `batch_size` frames; audio packets are handed to `on_audio` as they
    are demuxed (so the muxer interleaves them with the video)."""
    streams = [video_stream] + ([audio_stream] if audio_stream is not None else [])
    pending: list[Any] = []
    for packet in container.demux(streams):
        if packet.stream.type == "audio":
            on_audio(packet)
            continue
        for frame in packet.decode():
            pending.append(frame)
            if len(pending) == batch_size:
                yield pending
                pending = []
    if pending:
        yield pending


class _AudioWriter:
    """Copies (or re-encodes) one audio stream into an output container."""

    def __init__(self, output: Any, input_stream: Any, suffix: str):
        self.input_stream = input_stream
        self.output = output
        codec_name = input_stream.codec_context.name
        if codec_name in output.supported_codecs:
            self.stream = output.add_stream_from_template(input_stream)
            self.mode = "copied"
            self.decoder = None
        else:
            encoder = _AUDIO_ENCODERS[suffix]
            rate = 48000 if encoder == "libopus" else input_stream.codec_context.sample_rate
            self.stream = output.add_stream(encoder, rate=rate)
            layout = input_stream.codec_context.layout
            self.stream.codec_context.layout = layout.name if len(layout.channels) <= 2 else "stereo"
            self.mode = f"re-encoded ({encoder})"
            self.decoder = input_stream.codec_context

    def __call__(self, packet: Any) -> None:
        if self.decoder is None:
            if packet.dts is None:  # the demuxer's empty flush packet
                return
            packet.stream = self.stream
            self.output.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder numbers samples itself
            self.output.mux(self.stream.encode(frame))

    def close(self) -> None:
        if self.decoder is not None:
            self.output.mux(self.stream.encode(None))


class _VideoWriter:
    """Encodes RGBA / RGB / grey frames into one video stream."""

    def __init__(self, av: Any, output: Any, encoding: _Encoding, input_stream: Any, width: int, height: int):
        self.av = av
        self.output = output
        self.encoding = encoding
        rate = input_stream.average_rate or input_stream.guessed_rate or Fraction(25)
        self.stream = output.add_stream(encoding.codec, rate=rate)
        self.pad = (width % 2 if encoding.even_size else 0, height % 2 if encoding.even_size else 0)
        if any(self.pad):
            logger.info(
                f"{encoding.codec} needs even sides: the {width}x{height} frames get one edge pixel more."
            )
        self.stream.width, self.stream.height = width + self.pad[0], height + self.pad[1]
        self.stream.pix_fmt = encoding.pix_fmt
        self.stream.options = dict(encoding.options)
        self.time_base = input_stream.time_base
        self.stream.codec_context.time_base = self.time_base
        self.frame_rate = Fraction(rate)
        self._next_pts = 0

    def write(self, pixels: np.ndarray, source_frame: Any) -> None:
        if any(self.pad):
            pad = ((0, self.pad[1]), (0, self.pad[0])) + (((0, 0),) if pixels.ndim == 3 else ())
            pixels = np.pad(pixels, pad, mode="edge")
        layout = {1: "gray", 3: "rgb24", 4: "rgba"}[1 if pixels.ndim == 2 else pixels.shape[2]]
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=layout)
        pts = source_frame.pts
        if pts is None or pts < self._next_pts:  # no or non-increasing timestamps: number the frames evenly
            pts = self._next_pts
        frame.pts = pts
        frame.time_base = self.time_base
        self._next_pts = pts + 1
        self.output.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.output.mux(self.stream.encode(None))


def _predict_frame_mattes(
    model: torch.nn.Module, processor: Any, images: Sequence[PIL.Image.Image], size: dict | None
) -> list[np.ndarray]:
    """uint8 mattes for a batch of RGB frames (one forward for the batch, as the frames share a size)."""
    from .segment import remove_background

    results = remove_background(
        list(images), model=model, processor=processor, batch_size=len(images), resolution=size
    )
    return [np.asarray(result.matte) for result in results]


def remove_video_background(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    model: Any,
    *,
    processor: Any | None = None,
    output_format: str | None = None,
    background: str | None = None,
    temporal_smoothing: float = 0.0,
    motion_threshold: float = 0.3,
    batch_size: int = 4,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    resolution: int | Sequence[int] | dict | None = None,
    keep_audio: bool = True,
    max_frames: int | None = None,
    refine_foreground: bool = True,
    progress: bool = False,
) -> VideoResult:
    """Remove the background of a video with BiRefNet.

    Args:
        input_path: any video FFmpeg reads.
        output_path: the output file, or a folder for `output_format="png"`. Its suffix picks the container:
            `alpha`: `.webm` (VP9, yuva420p) or `.mov` (ProRes 4444 with 16-bit alpha); `matte`: `.webm`, `.mp4`,
            `.mov` or `.mkv` (FFV1 grey, lossless); `composite`: `.mp4`, `.mov`, `.mkv` (H.264) or `.webm` (VP9).
        model: a model folder / Hub id or a loaded model (see [`remove_background`]).
        output_format: one of [`VIDEO_FORMATS`]; default: `png` for a path without suffix, `composite` when a
            `background` is given, else `alpha`.
        background: for `composite` (and optionally `png`: frames composited, RGB): a colour name or `#RRGGBB`, an
            image file, or a video file (looped; frames scaled to cover and centre-cropped).
        temporal_smoothing: strength of [`TemporalMatteSmoother`] in [0, 1); 0 (default) is off.
        motion_threshold: see [`TemporalMatteSmoother`].
        batch_size: frames per forward pass.
        device, dtype: where and in which precision to run the model (default: CUDA if available, float32).
        resolution: model input size (an int, (height, width) or a size dict); default: the processor's.
        keep_audio: copy (or re-encode) the first audio stream; for `png` it goes to `audio.mka` in the folder.
        max_frames: stop after this many frames (previews).
        refine_foreground: estimate the foreground colours of soft edges (blur fusion, as for image cut-outs) for
            `alpha`, `png` and `composite`, so the old background does not tint the edges (default True).
        progress: show a progress bar (frames and frames/s).

    Returns:
        A [`VideoResult`].
    """
    av = _import_av()
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}.")
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise FileNotFoundError(f"input video {input_path} does not exist or is not a file.")
    output_format = _resolve_format(output_path, output_format, background)
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise ValueError(f"output {output_path} is the input video; choose another output path.")
    smoother = TemporalMatteSmoother(temporal_smoothing, motion_threshold)

    if isinstance(model, (str, os.PathLike)) and device is None:
        device = _default_device()
    model, processor = load_model_and_processor(model, processor, device=device, dtype=dtype)
    if isinstance(resolution, int):
        resolution = {"height": resolution, "width": resolution}
    elif resolution is not None and not isinstance(resolution, dict):
        resolution = {"height": int(resolution[0]), "width": int(resolution[1])}

    try:
        source = av.open(os.fspath(input_path))
    except av.error.FFmpegError as error:
        raise ValueError(f"cannot read video {input_path}: {error}") from error
    backdrop = _Background(background) if background is not None else None
    start = time.perf_counter()
    try:
        if not source.streams.video:
            raise ValueError(f"{input_path} has no video stream.")
        video_stream = source.streams.video[0]
        video_stream.thread_type = "AUTO"
        audio_stream = source.streams.audio[0] if (keep_audio and source.streams.audio) else None
        width, height = video_stream.codec_context.width, video_stream.codec_context.height
        total = video_stream.frames or None
        if max_frames is not None:
            total = min(total, max_frames) if total else max_frames
        if output_format == "png":
            with atomic_folder(output_path, replace=False) as staging:
                frames, audio_mode = _run_png(
                    av, source, video_stream, audio_stream, staging, model, processor, resolution, smoother,
                    backdrop, batch_size, max_frames, total, progress, refine_foreground,
                )  # fmt: skip
        else:
            encoding = _ENCODINGS[(output_format, output_path.suffix.lower())]
            with atomic_file(output_path) as temporary:
                frames, audio_mode = _run_encoded(
                    av, source, video_stream, audio_stream, temporary, output_path.suffix.lower(), encoding,
                    output_format, model, processor, resolution, smoother, backdrop, batch_size, max_frames,
                    total, progress, refine_foreground and output_format != "matte",
                )  # fmt: skip
        if frames == 0:
            raise ValueError(f"{input_path}: no video frame could be decoded.")
    except av.error.FFmpegError as error:
        raise ValueError(f"video processing failed for {input_path}: {error}") from error
    finally:
        source.close()
        if backdrop is not None:
            backdrop.close()
    return VideoResult(
        output=output_path,
        output_format=output_format,
        frames=frames,
        width=width,
        height=height,
        frame_rate=video_stream.average_rate,
        audio=audio_mode,
        seconds=time.perf_counter() - start,
    )


def _segmented_frames(
    source, video_stream, audio_stream, on_audio, model, processor, resolution, smoother, batch_size, max_frames,
    total, progress, refine_foreground=False,
) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:  # fmt: skip
    """(source frame, RGB array, smoothed uint8 matte) for every frame, in order; with `refine_foreground` the RGB
    is the blur-fusion estimate of the foreground colours (`cutout.estimate_foreground`, on the model's device)."""
    count = 0
    with tqdm(total=total, unit="frame", desc="video", disable=not progress, dynamic_ncols=True) as bar:
        for batch in _frame_batches(source, video_stream, audio_stream, batch_size, on_audio):
            if max_frames is not None:
                batch = batch[: max_frames - count]
            images = [frame.to_image() for frame in batch]
            mattes = [
                smoother(matte) for matte in _predict_frame_mattes(model, processor, images, resolution)
            ]
            colours = [np.asarray(image) for image in images]
            if refine_foreground:
                device = next(model.parameters()).device
                colours = list(estimate_foreground(np.stack(colours), np.stack(mattes), device=device))
            yield from zip(batch, colours, mattes, strict=True)
            count += len(batch)
            bar.update(len(batch))
            if max_frames is not None and count >= max_frames:
                return


def _run_encoded(
    av, source, video_stream, audio_stream, temporary, suffix, encoding, output_format, model, processor,
    resolution, smoother, backdrop, batch_size, max_frames, total, progress, refine_foreground,
) -> tuple[int, str | None]:  # fmt: skip
    output = av.open(os.fspath(temporary), mode="w", format=_CONTAINER_FORMATS[suffix])
    try:
        width, height = video_stream.codec_context.width, video_stream.codec_context.height
        writer = _VideoWriter(av, output, encoding, video_stream, width, height)
        audio = _AudioWriter(output, audio_stream, suffix) if audio_stream is not None else None
        frames = 0
        for frame, rgb, matte in _segmented_frames(
            source, video_stream, audio_stream, audio or (lambda packet: None), model, processor, resolution,
            smoother, batch_size, max_frames, total, progress, refine_foreground,
        ):  # fmt: skip
            if output_format == "alpha":
                pixels = np.dstack([rgb, matte])
            elif output_format == "matte":
                pixels = matte if encoding.pix_fmt == "gray" else np.repeat(matte[..., None], 3, axis=2)
            else:
                pixels = composite(rgb, matte, backdrop.frame(rgb.shape[1], rgb.shape[0]))
            writer.write(pixels, frame)
            frames += 1
        writer.close()
        if audio is not None:
            audio.close()
    finally:
        output.close()
    return frames, (audio.mode if audio is not None else None)


def _run_png(
    av, source, video_stream, audio_stream, staging, model, processor, resolution, smoother, backdrop, batch_size,
    max_frames, total, progress, refine_foreground,
) -> tuple[int, str | None]:  # fmt: skip
    audio_output = audio = None
    if audio_stream is not None:
        audio_output = av.open(os.fspath(staging / PNG_SEQUENCE_AUDIO), mode="w", format="matroska")
        audio = _AudioWriter(audio_output, audio_stream, ".mka")
    try:
        frames = 0
        digits = max(6, len(str(total or 0)))
        for _, rgb, matte in _segmented_frames(
            source, video_stream, audio_stream, audio or (lambda packet: None), model, processor, resolution,
            smoother, batch_size, max_frames, total, progress, refine_foreground,
        ):  # fmt: skip
            if backdrop is not None:
                image = PIL.Image.fromarray(composite(rgb, matte, backdrop.frame(rgb.shape[1], rgb.shape[0])))
            else:
                image = PIL.Image.fromarray(np.dstack([rgb, matte]), mode="RGBA")
            image.save(staging / f"frame_{frames:0{digits}d}.png", compress_level=1)
            frames += 1
        if audio is not None:
            audio.close()
    finally:
        if audio_output is not None:
            audio_output.close()
    return frames, (audio.mode if audio is not None else None)


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


def _smoothing(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a strength in [0, 1), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="birefnet-hf video",
        description=(
            "Remove the background of a video with BiRefNet. The output's suffix picks the container: .webm (VP9 "
            "with alpha) or .mov (ProRes 4444) for --format alpha; a folder for --format png (RGBA frames and "
            "audio.mka). The first audio stream is kept. The output is written atomically."
        ),
    )
    parser.add_argument("input", type=Path, help="the input video")
    parser.add_argument("--output", "-o", required=True, type=Path, help="output file (or folder for png)")
    parser.add_argument("--model", "-m", required=True, help="model folder (save_pretrained) or Hub id")
    parser.add_argument(
        "--format",
        "-f",
        choices=VIDEO_FORMATS,
        default=None,
        help="alpha: video with alpha (.webm VP9 / .mov ProRes 4444; default); matte: the matte as a grey video "
        "(.webm/.mp4/.mov/.mkv); composite: over --background (.mp4/.mov/.mkv/.webm); png: RGBA frames in a folder "
        "(default when --output has no suffix)",
    )
    parser.add_argument(
        "--background",
        default=None,
        help="for composite: a colour ('white', '#00b140'), an image or a video file (looped)",
    )
    parser.add_argument(
        "--temporal-smoothing",
        type=_smoothing,
        default=0.0,
        metavar="S",
        help="damp matte flicker: weight of the previous frames in [0, 1) (default 0: off; try 0.5)",
    )
    parser.add_argument(
        "--motion-threshold",
        type=float,
        default=0.3,
        help="with --temporal-smoothing: matte changes above this fraction count as motion and are not smoothed",
    )
    parser.add_argument(
        "--batch-size", "-b", type=_positive_int, default=4, help="frames per forward pass (default 4)"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument(
        "--dtype", choices=sorted(_DTYPES), default="float32", help="model precision (default float32)"
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--resolution", type=_parse_resolution, default=None, help="model input size N or HEIGHTxWIDTH"
    )
    size.add_argument(
        "--longest-edge", type=_positive_int, default=None, help="keep the aspect ratio: longest side about N"
    )
    parser.add_argument("--no-audio", action="store_true", help="drop the audio")
    parser.add_argument(
        "--no-refine-foreground",
        action="store_true",
        help="keep the frames' own colours at soft edges (default: estimate the foreground colours, blur fusion)",
    )
    parser.add_argument("--max-frames", type=_positive_int, default=None, help="stop after N frames")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`birefnet-hf video`: 0 on success, 1 when the video could not be processed, 2 on usage errors."""
    args = build_parser().parse_args(argv)
    try:
        _resolve_format(args.output, args.format, args.background)
    except ValueError as error:
        print(f"birefnet-hf video: {error}", file=sys.stderr)
        return 2
    try:
        model, processor = load_model_and_processor(
            args.model, device=args.device or _default_device(), dtype=args.dtype
        )
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        print(f"birefnet-hf video: cannot load model {args.model!r}: {error}", file=sys.stderr)
        return 2
    size = args.resolution or ({"longest_edge": args.longest_edge} if args.longest_edge else None)
    try:
        result = remove_video_background(
            args.input,
            args.output,
            model,
            processor=processor,
            output_format=args.format,
            background=args.background,
            temporal_smoothing=args.temporal_smoothing,
            motion_threshold=args.motion_threshold,
            batch_size=args.batch_size,
            resolution=size,
            keep_audio=not args.no_audio,
            refine_foreground=not args.no_refine_foreground,
            max_frames=args.max_frames,
            progress=not args.no_progress,
        )
    except (OSError, ValueError) as error:
        print(f"birefnet-hf video: {error}", file=sys.stderr)
        return 1
    audio = f", audio {result.audio}" if result.audio else ", no audio"
    print(
        f"birefnet-hf video: wrote {result.frames} frame(s) ({result.width}x{result.height}, {result.output_format}"
        f"{audio}) to {result.output} in {result.seconds:.1f} s ({result.frames_per_second:.2f} frames/s)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
