"""Background removal on real photos: the Python API [`remove_background`] and the `birefnet-hf segment` command.

```python
from birefnet_hf import remove_background

result = remove_background("photo.jpg", model="path/to/birefnet")
result.cutout.save("photo.png")  # RGBA; result.matte is the soft alpha ("L")
```

```
birefnet-hf segment photos/ "more/**/*.jpg" --model path/to/birefnet --output-dir cutouts --format rgba
```

Every image is segmented at the model resolution (1024x1024 by default) and its matte is resized bilinearly to
the original size in row chunks, as 8-bit data, so an 8000x6000 photo needs a 48 MB matte on top of the decoded
photo (see `benchmarks/large_image.py`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import glob
import os
import re
import secrets
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import PIL.PngImagePlugin
import torch
from tqdm.auto import tqdm
from transformers import AutoImageProcessor, PreTrainedModel
from transformers.utils import logging

from .cli import interrupted_exit_code, sigterm_as_interrupt
from .image_processing_birefnet import BiRefNetImageProcessor, BiRefNetImageProcessorPil, to_rgb_image
from .inference_paths import compile_for_inference
from .modeling_birefnet import BiRefNetForImageSegmentation
from . import cutout as cutout_ops
from .bulk import ProcessShard
from .cutout_options import CutoutSettings as _CutoutSettings
from .cutout_options import MatteOptions, add_cutout_arguments, apply_matte_options, cutout_settings_from_args
from .cutout_options import model_input_side as _model_side
from .pipelines import make_cutout

logger = logging.get_logger(__name__)

__all__ = [
    "BackgroundRemovalResult",
    "remove_background",
    "load_model_and_processor",
    "main",
    "OUTPUT_FORMATS",
]

#: What `birefnet-hf segment --format` can write (always PNG).
OUTPUT_FORMATS = ("mask", "alpha", "rgba", "overlay", "fg")
#: File extensions picked up when a folder is given (explicitly named files are always tried).
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".webp",
        ".gif",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".tga",
        ".jp2",
        ".j2k",
        ".avif",
        ".heic",
        ".heif",
    }
)
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
_GLOB_MAGIC = re.compile(r"[*?\[]")


@dataclass
class BackgroundRemovalResult:
    """What [`remove_background`] returns for one image.

    Attributes:
        image (`PIL.Image.Image`): the input as the model saw it: upright (EXIF applied), 8-bit RGB.
        matte (`PIL.Image.Image`): the soft foreground matte, mode "L", same size: `round(255 * p)` with `p` the
            foreground probability resized bilinearly to the image size.
    """

    image: PIL.Image.Image
    matte: PIL.Image.Image
    #: Estimate the foreground colours of soft edges (blur fusion, `cutout.estimate_foreground`) for `cutout`,
    #: `composite` and `foreground`; False keeps the photo's own (background-tinted) colours.
    refine_foreground: bool = True
    #: Where foreground estimation and compositing run (e.g. "cuda"; default: the CPU).
    device: str | torch.device | None = None

    @functools.cached_property
    def foreground(self) -> PIL.Image.Image:
        """The foreground colours ("RGB", computed once on access): blur-fusion estimates where the matte is soft
        (background colour removed from the edges), or `image` itself when `refine_foreground` is False."""
        if not self.refine_foreground:
            return self.image
        foreground = cutout_ops.estimate_foreground(self.image, self.matte, device=self.device)
        return PIL.Image.fromarray(foreground, mode="RGB")

    @property
    def cutout(self) -> PIL.Image.Image:
        """The RGBA cut-out: `foreground` with `matte` as alpha (computed on access)."""
        if not self.refine_foreground:
            return make_cutout(self.image, self.matte)
        # Estimate straight into the RGBA buffer unless `foreground` was computed already (one full-size copy less).
        known = "foreground" in self.__dict__
        rgba = cutout_ops.cutout_rgba(
            self.foreground if known else self.image, self.matte, refine_foreground=not known, device=self.device
        )
        return PIL.Image.fromarray(rgba, mode="RGBA")

    def composite(self, background: Any) -> PIL.Image.Image:
        """The foreground on a new background ("RGB"): an (r, g, b) colour, a colour string ("white", "#RRGGBB"),
        "blur" (the photo itself, blurred), or an image / image file (scaled to cover the photo, centred)."""
        if isinstance(background, str):
            background = cutout_ops.parse_background(background)
        if isinstance(background, str) and background == "blur":
            background = cutout_ops.blurred_background(self.image)
        elif isinstance(background, (str, os.PathLike)):
            background = to_rgb_image(background)
        composite = cutout_ops.composite(self.foreground, self.matte, background, device=self.device)
        return PIL.Image.fromarray(composite, mode="RGB")

    def mask(self, threshold: float = 0.5) -> PIL.Image.Image:
        """Binary mask ("L", 0 or 255): 255 where the foreground probability exceeds `threshold`."""
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {threshold}.")
        return self.matte.point([255 if value > 255 * threshold else 0 for value in range(256)])

    def overlay(self, color: tuple[int, int, int] = (0, 255, 0), opacity: float = 0.5) -> PIL.Image.Image:
        """RGB preview: the image tinted with `color` in proportion to the matte (`opacity` at full foreground)."""
        tinted = PIL.Image.blend(self.image, PIL.Image.new("RGB", self.image.size, color), opacity)
        return PIL.Image.composite(tinted, self.image, self.matte)

    def render(self, output_format: str, threshold: float = 0.5, background: Any = None) -> PIL.Image.Image:
        """The image written by `birefnet-hf segment --format output_format [--background background]`."""
        if background is not None and output_format != "rgba":
            raise ValueError(f"A background applies to the 'rgba' format, not {output_format!r}.")
        if output_format == "mask":
            return self.mask(threshold)
        if output_format == "alpha":
            return self.matte
        if output_format == "rgba":
            return self.cutout if background is None else self.composite(background)
        if output_format == "fg":
            return self.foreground
        if output_format == "overlay":
            return self.overlay()
        raise ValueError(f"Unknown output format {output_format!r}; choose one of {OUTPUT_FORMATS}.")


# ---------------------------------------------------------------------------------------------------------------
# Model loading and inference
# ---------------------------------------------------------------------------------------------------------------


def _resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; choose one of {sorted(_DTYPES)}.")
    return _DTYPES[dtype]


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _size_from_resolution(resolution: int | Sequence[int] | dict | None) -> dict | None:
    if resolution is None or isinstance(resolution, dict):
        return resolution
    if isinstance(resolution, int):
        return {"height": resolution, "width": resolution}
    if len(resolution) == 2:
        return {"height": int(resolution[0]), "width": int(resolution[1])}
    raise ValueError(f"resolution must be an int, (height, width) or a size dict, got {resolution!r}.")


def load_model_and_processor(
    model: str | os.PathLike | PreTrainedModel,
    processor: Any | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> tuple[PreTrainedModel, Any]:
    """Load (or take) a BiRefNet model in eval mode on `device` / `dtype`, and its image processor.

    `model` is a folder or Hub id written by `save_pretrained`, or a loaded model. The processor comes from the
    model folder's `preprocessor_config.json` when there is one, else the paper's default (1024x1024). It is the
    PIL backend: the authors' preprocessing value for value, and it resizes the decoded photo without copying it
    into an array first (the torchvision backend makes two transient 8-bit copies: 288 MB at 8000x6000).
    """
    torch_dtype = _resolve_dtype(dtype)
    device = torch.device(device) if device is not None else None
    source = None
    if isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        model = BiRefNetForImageSegmentation.from_pretrained(source, dtype=torch_dtype or torch.float32)
    elif not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a path, a Hub id or a loaded model, got {type(model).__name__}.")
    if device is not None or torch_dtype is not None:
        model = model.to(device=device, dtype=torch_dtype)
    model.eval()
    if processor is None:
        if source is not None:
            try:
                processor = AutoImageProcessor.from_pretrained(source, backend="pil")
            except (OSError, ValueError) as error:
                from .families import family_for, image_processor_for

                processor = image_processor_for(source, backend="pil")  # a released family: its native size
                if processor is not None:
                    logger.info(f"{source!r} is {family_for(source).name}: input size {dict(processor.size)}.")
                else:
                    logger.warning(
                        f"No image processor found with {source!r} ({error}); using the 1024x1024 default."
                    )
        if processor is None:
            processor = BiRefNetImageProcessorPil()
    return model, processor


def _model_device_and_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    if not isinstance(model, torch.nn.Module):  # the onnxruntime backend (onnx_runtime.py) takes float32 CPU tensors
        return torch.device("cpu"), torch.float32
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


@torch.inference_mode()
def _predict_mattes(
    model: torch.nn.Module, processor: Any, images: Sequence[PIL.Image.Image], size: dict | None
) -> list[PIL.Image.Image]:
    """Soft mattes ("L", input size) for RGB images; images resized to the same model size share a forward."""
    device, dtype = _model_device_and_dtype(model)
    size_kwargs = {"size": size} if size is not None else {}
    if device.type == "cuda" and isinstance(processor, BiRefNetImageProcessor):
        # the torchvision backend resizes and normalises on the GPU: only the uint8 photo crosses the bus
        size_kwargs["device"] = device
    pixel_values = [
        processor(images=image, return_tensors="pt", **size_kwargs)["pixel_values"] for image in images
    ]
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, values in enumerate(pixel_values):
        groups.setdefault(tuple(values.shape), []).append(index)
    mattes: list[PIL.Image.Image | None] = [None] * len(images)
    for indices in groups.values():
        batch = torch.cat([pixel_values[i] for i in indices])
        if batch.device != device and device.type == "cuda":
            batch = batch.pin_memory()  # page-locked: an asynchronous copy that overlaps the host's work
        batch = batch.to(device=device, dtype=dtype, non_blocking=True)
        logits = model(pixel_values=batch).logits
        sizes = [(images[i].height, images[i].width) for i in indices]
        for index, matte in zip(
            indices, processor.post_process_alpha(logits, sizes, output_dtype=torch.uint8), strict=True
        ):
            mattes[index] = PIL.Image.fromarray(matte.numpy(), mode="L")
    return mattes


def _batched(items: Sequence[Any], batch_size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def _finish_matte(
    model: torch.nn.Module,
    processor: Any,
    size: dict | None,
    image: PIL.Image.Image,
    matte: PIL.Image.Image,
    options: MatteOptions,
    progress: bool = False,
) -> PIL.Image.Image:
    """Apply `options` ([`MatteOptions`]) to one model matte (`cutout_options.apply_matte_options`)."""

    def predict(crops: list[PIL.Image.Image], crop_size: dict) -> list[np.ndarray]:
        return [np.asarray(m) for m in _predict_mattes(model, processor, crops, crop_size)]

    return apply_matte_options(image, matte, options, predict, _model_side(processor, size), progress=progress)


def remove_background(
    images: Any,
    model: str | os.PathLike | PreTrainedModel,
    *,
    processor: Any | None = None,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    resolution: int | Sequence[int] | dict | None = None,
    progress: bool = False,
    refine_foreground: bool = True,
    max_side: int | None = None,
    threshold: float | None = None,
    dilate: int = 0,
    erode: int = 0,
    feather: int = 0,
    alpha_matting: bool = False,
    refine_crops: bool = False,
    crop_size: int | None = None,
) -> BackgroundRemovalResult | list[BackgroundRemovalResult]:
    """Segment the foreground of photos with BiRefNet and return mattes and cut-outs.

    Args:
        images: one image or a list: file paths, PIL images (any mode; EXIF orientation applied), NumPy arrays
            or torch tensors (see `to_rgb_array`).
        model: a model folder / Hub id (loaded with its `preprocessor_config.json`) or a loaded model (which is
            put in eval mode, and moved only when `device` / `dtype` are given).
        processor: the image processor; by default the model folder's, else the 1024x1024 default.
        batch_size (`int`, defaults to 1): images per forward pass.
        device, dtype: where and in which precision to run ("cpu", "cuda", ...; "float32", "float16",
            "bfloat16"). A model given by path goes to `device` (default: CUDA if available, else CPU).
        resolution: model input size for this call: an int (square), (height, width) (multiples of 32) or a
            size dict such as `{"longest_edge": 1280}`; default: the processor's.
        progress (`bool`): show a progress bar.
        refine_foreground (`bool`, defaults to True): the cut-out's colours are blur-fusion estimates of the
            foreground (no background fringe in soft edges); False keeps the photo's colours.
        max_side (`int`, *optional*): downscale each photo (Lanczos) so its longest side is at most this, before
            anything else; the results have that size.
        threshold, dilate, erode, feather, alpha_matting, refine_crops, crop_size: matte post-processing, see
            [`MatteOptions`] (threshold in [0, 1); dilate / erode / feather in pixels).

    Returns:
        A [`BackgroundRemovalResult`] (`.matte`, `.cutout`, `.foreground`, `.composite(background)`, `.mask()`,
        `.overlay()`) for a single image, or a list of them for a list.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if isinstance(model, (str, os.PathLike)) and device is None:
        device = _default_device()
    options = MatteOptions(threshold, dilate, erode, feather, alpha_matting, refine_crops, crop_size, batch_size)
    if max_side is not None and (int(max_side) != max_side or max_side < 1):
        raise ValueError(f"max_side must be a positive integer, got {max_side}.")
    model, processor = load_model_and_processor(model, processor, device=device, dtype=dtype)
    model_device = _model_device_and_dtype(model)[0]
    size = _size_from_resolution(resolution)

    single = not isinstance(images, (list, tuple)) and not (
        isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4
    )
    items = [images] if single else list(images)
    results: list[BackgroundRemovalResult] = []
    with tqdm(total=len(items), unit="img", disable=not progress, desc="remove background") as bar:
        for batch in _batched(items, batch_size):
            rgb_images = [cutout_ops.fit_max_side(to_rgb_image(item), max_side) for item in batch]
            for image, matte in zip(
                rgb_images, _predict_mattes(model, processor, rgb_images, size), strict=True
            ):
                matte = _finish_matte(model, processor, size, image, matte, options)
                results.append(
                    BackgroundRemovalResult(image, matte, refine_foreground=refine_foreground, device=model_device)
                )
            bar.update(len(batch))
    return results[0] if single else results


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Job:
    source: Path
    relative: Path  # output path relative to the output folder, before the ".png" naming
    anchor: Path = Path(".")  # the folder `relative` starts from: the input folder, glob base or file's folder
    explicit: bool = False  # named on the command line (not found in a folder or by a pattern)


def _glob_base(pattern: str) -> Path:
    parts = Path(pattern).parts
    base_parts: list[str] = []
    for part in parts:
        if _GLOB_MAGIC.search(part):
            break
        base_parts.append(part)
    return Path(*base_parts) if base_parts else Path(".")


def _scan_folder(folder: Path, skip: Path) -> tuple[list[Path], int]:
    """Image files under `folder` (recursive, sorted, hidden entries and the output folder skipped)."""
    found, ignored = [], 0
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (root_path / d).resolve() != skip)
        for name in sorted(files):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(root_path / name)
            else:
                ignored += 1
    return found, ignored


def collect_inputs(specs: Sequence[str], output_dir: Path) -> tuple[list[_Job], list[tuple[str, str]], int]:
    """Expand files, folders (recursive) and glob patterns into jobs; returns (jobs, failures, ignored count)."""
    jobs: list[_Job] = []
    failures: list[tuple[str, str]] = []
    ignored = 0
    skip = output_dir.resolve()
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            files, skipped = _scan_folder(path, skip)
            ignored += skipped
            jobs += [_Job(file, file.relative_to(path), path) for file in files]
        elif path.is_file():
            jobs.append(_Job(path, Path(path.name), path.parent, explicit=True))
        elif _GLOB_MAGIC.search(spec):
            base = _glob_base(spec)
            matches = sorted(Path(match) for match in glob.glob(spec, recursive=True))
            if not matches:
                failures.append((spec, "no file matches this pattern"))
            for match in matches:
                if match.is_dir():
                    files, skipped = _scan_folder(match, skip)
                    ignored += skipped
                    jobs += [_Job(file, match.relative_to(base) / file.relative_to(match), base) for file in files]
                elif match.is_file() and skip not in match.resolve().parents:
                    jobs.append(_Job(match, match.relative_to(base), base))
        else:
            failures.append((spec, "no such file or directory"))

    unique: dict[Path, _Job] = {}
    for job in jobs:
        unique.setdefault(job.source.resolve(), job)
    jobs = list(unique.values())
    _relative_to_common_folder(jobs)
    return jobs, failures, ignored


def _relative_to_common_folder(jobs: Sequence[_Job]) -> None:
    """With inputs from several places (`segment dir1 dir2`), prefix each job's relative path with its folder's
    path below the folders' common ancestor, so `dir1/x.jpg` and `dir2/x.jpg` become `dir1/x.png` and
    `dir2/x.png` under the output folder instead of one `x.png`."""
    anchors = {os.path.abspath(job.anchor) for job in jobs}
    if len(anchors) < 2:
        return
    try:
        common = os.path.commonpath(sorted(anchors))
    except ValueError:  # different drives (Windows): keep each anchor's full path below its drive
        common = None
    for job in jobs:
        anchor = os.path.abspath(job.anchor)
        prefix = Path(os.path.relpath(anchor, common)) if common else Path(*Path(anchor).parts[1:])
        job.relative = prefix / job.relative


def _assign_output_paths(jobs: Sequence[_Job], output_dir: Path) -> dict[Path, Path]:
    """One distinct output path per job: `<stem>.png`, mirroring the input folders; inputs that would share a
    name (`x.jpg` and `x.png`; compared case-insensitively, as macOS and Windows file systems do) get
    `<name>.png`, and a name still taken after that gets a number (`<name>.2.png`). The names depend only on the
    set of inputs, so re-running the same command writes the same files."""
    by_name: dict[str, list[_Job]] = {}
    for job in jobs:
        by_name.setdefault(_path_key(job.relative.with_suffix(".png")), []).append(job)
    preferred: dict[Path, Path] = {}
    for group in by_name.values():
        for job in group:
            name = job.relative.with_suffix(".png")
            preferred[job.source] = name if len(group) == 1 else job.relative.parent / f"{job.relative.name}.png"
        if len(group) > 1:
            logger.warning(
                f"{len(group)} inputs would be written to {output_dir / group[0].relative.with_suffix('.png')}; "
                f"naming them after their full file names instead: {', '.join(str(job.source) for job in group)}"
            )
    taken: set[str] = set()
    outputs: dict[Path, Path] = {}
    for job in sorted(jobs, key=lambda job: (str(preferred[job.source]), str(job.source))):
        relative, number = preferred[job.source], 1
        while _path_key(relative) in taken:
            number += 1
            relative = preferred[job.source].with_name(f"{preferred[job.source].stem}.{number}.png")
        taken.add(_path_key(relative))
        outputs[job.source] = output_dir / relative
    return outputs


def _path_key(path: Path) -> str:
    return str(path).casefold()


#: The PNG text chunk that marks a file as written by `birefnet-hf segment` (so re-runs can recognise it).
OUTPUT_MARKER = ("Software", "birefnet-hf segment")


def is_segment_output(path: str | os.PathLike) -> bool:
    """Whether `path` is a PNG written by `birefnet-hf segment` (it carries [`OUTPUT_MARKER`]); reads the header
    only."""
    path = Path(path)
    if path.suffix.lower() != ".png" or not path.is_file():
        return False
    try:
        with PIL.Image.open(path) as image:
            return image.info.get(OUTPUT_MARKER[0]) == OUTPUT_MARKER[1]
    except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError):
        return False


def _drop_earlier_outputs(jobs: Sequence[_Job]) -> tuple[list[_Job], list[_Job]]:
    """Split off inputs that are this tool's own outputs (re-running into the input folder must not segment the
    previous run's cut-outs); returns (kept, dropped)."""
    kept, dropped = [], []
    for job in jobs:
        (dropped if is_segment_output(job.source) else kept).append(job)
    return kept, dropped


#: What to do with an output file that already exists: `--skip-existing`, `--overwrite`, or the default.
EXISTING_POLICIES = ("skip", "overwrite", "replace-own")


def _check_existing_outputs(
    jobs: Sequence[_Job], outputs: dict[Path, Path], policy: str, failures: list[tuple[str, str]]
) -> tuple[list[_Job], list[_Job]]:
    """Apply the existing-output policy; returns (jobs to run, jobs skipped because their output exists).

    An input is never overwritten. Existing outputs are kept (`"skip"`), replaced (`"overwrite"`), or, by
    default (`"replace-own"`), replaced only when this tool wrote them (a re-run refreshes its own files) while
    any other file is reported as a failure and left alone."""
    inputs = {job.source.resolve() for job in jobs}
    runnable, skipped = [], []
    for job in jobs:
        output = outputs[job.source]
        if output.resolve() in inputs:
            failures.append(
                (str(job.source), f"output {output} would overwrite an input; choose another --output-dir")
            )
        elif output.is_dir():
            failures.append((str(job.source), f"output {output} is a folder"))
        elif not (output.exists() or output.is_symlink()):
            runnable.append(job)
        elif policy == "skip":
            skipped.append(job)
        elif policy == "overwrite" or is_segment_output(output):
            runnable.append(job)
        else:
            failures.append(
                (
                    str(job.source),
                    f"{output} exists and was not written by birefnet-hf segment; pass --overwrite to replace it "
                    "or --skip-existing to keep it",
                )
            )
    return runnable, skipped


def _output_dir_problem(output_dir: Path) -> str | None:
    """Why `output_dir` cannot be the output folder (checked before any work), or None."""
    if output_dir.exists() and not output_dir.is_dir():
        return f"--output-dir {output_dir} exists and is not a folder"
    ancestor = output_dir.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"--output-dir {output_dir} cannot be created: {ancestor} is a file, not a folder"
    return None


def write_image_atomically(
    image: PIL.Image.Image, path: Path, compress_level: int = 1, text: dict[str, str] | None = None
) -> None:
    """Save `image` as PNG at `path` via a temporary file in the same folder and `os.replace`, so `path` is
    either absent, its previous version, or the complete new file, never a partial one.

    `compress_level` is zlib's 0-9; 1 writes a 48-megapixel RGBA cut-out >10x faster than Pillow's default 6
    for files ~20% larger. `text`: PNG text chunks, by default [`OUTPUT_MARKER`] (how a re-run recognises
    this tool's outputs among its inputs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = PIL.PngImagePlugin.PngInfo()
    for key, value in (dict([OUTPUT_MARKER]) if text is None else text).items():
        chunks.add_text(key, value)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as handle:
            image.save(handle, format="PNG", compress_level=compress_level, pnginfo=chunks)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _parse_resolution(text: str) -> dict:
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected N or HEIGHTxWIDTH (multiples of 32), got {text!r}")
    height = int(match.group(1))
    width = int(match.group(2) or height)
    if height % 32 or width % 32 or height <= 0 or width <= 0:
        raise argparse.ArgumentTypeError(f"resolution sides must be positive multiples of 32, got {text!r}")
    return {"height": height, "width": width}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


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
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (one graph per input size; CUDA graphs on CUDA: the low-latency path for "
        "many images of one size); the first batch of each size compiles",
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
            logger.info("Compiled the model (first batch of each input size compiles; CUDA graphs on CUDA).")
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
        summary += f"; left out {len(earlier_outputs)} earlier output(s) of birefnet-hf segment found in the inputs"
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
