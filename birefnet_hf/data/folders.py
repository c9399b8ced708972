# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Image / mask folders (the ``im/`` + ``gt/`` layout of DIS5K, HRSOD, COD, ...) as 🤗 Datasets.

Every loader in :mod:`birefnet_hf.data` returns the same features, so that sets can be concatenated
(``datasets.concatenate_datasets``), as the authors do when they train on several sets at once:

* ``image``: ``datasets.Image(mode="RGB")``
* ``mask``: ``datasets.Image(mode="L")`` (0 = background, 255 = foreground; soft values allowed)
* ``label``: ``datasets.ClassLabel`` over the 219 DIS5K training classes (``class_names.txt``), used by
  the auxiliary classification head; ``-1`` when an image has no DIS5K class (see
  :func:`load_image_mask_folder`)
* ``file_name``: the image file name (``str``), e.g. to name saved predictions

Datasets are built from file paths, so building one only lists the folders and reads image headers
(to check sizes); pixels are decoded lazily, when an example is accessed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import datasets
import PIL.Image
from transformers.utils import logging

from ..image_io import IMAGE_EXTENSIONS  # images accepted in ``im/``: the package's one set (re-exported)

logger = logging.get_logger(__name__)

#: Extensions (lower-case) accepted for masks in ``gt/``.
MASK_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")
#: Value of the ``label`` column for images without a (known) DIS5K class.
NO_CLASS_LABEL = -1

_EXIF_ORIENTATION_TAG = 0x0112
# EXIF orientations 5..8 swap width and height (datasets applies ``ImageOps.exif_transpose`` on decode).
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_MAX_LISTED_PROBLEMS = 30


class DatasetLayoutError(ValueError):
    """A dataset folder does not have the expected layout (missing/extra files, size mismatches, bad names)."""


@lru_cache(maxsize=1)
def dis5k_class_names() -> tuple[str, ...]:
    """The 219 DIS5K (DIS-TR) class names, in the order the authors assign class ids (id = position)."""
    text = resources.files("birefnet_hf.data").joinpath("class_names.txt").read_text(encoding="utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 219 or len(set(names)) != len(names):
        raise RuntimeError(
            f"birefnet_hf/data/class_names.txt should hold 219 distinct names, found {len(names)}"
        )
    return names


@lru_cache(maxsize=1)
def _dis5k_class_ids() -> dict[str, int]:
    return {name: index for index, name in enumerate(dis5k_class_names())}


def parse_dis5k_class_name(file_name: str | os.PathLike) -> str | None:
    """Return the class of a DIS5K-style file name, or ``None`` if the name does not follow that style.

    DIS5K names are ``<group id>#<group>#<class id>#<class>#<source name>.<ext>``; the class is the fourth
    ``#``-separated field: ``1#Accessories#1#Bag#2339506821_83cf9f1d22_o.jpg`` -> ``"Bag"``.
    """
    fields = Path(file_name).name.split("#")
    if len(fields) < 5 or not fields[3]:
        return None
    return fields[3]


def dis5k_class_id(file_name: str | os.PathLike) -> int:
    """The DIS5K class id of a file name, or :data:`NO_CLASS_LABEL` (``-1``) if it has none of the 219 classes."""
    class_name = parse_dis5k_class_name(file_name)
    if class_name is None:
        return NO_CLASS_LABEL
    return _dis5k_class_ids().get(class_name, NO_CLASS_LABEL)


def image_mask_features() -> datasets.Features:
    """The features shared by every dataset of this package (see the module docstring)."""
    return datasets.Features(
        {
            "image": datasets.Image(mode="RGB"),
            "mask": datasets.Image(mode="L"),
            "label": datasets.ClassLabel(names=list(dis5k_class_names())),
            "file_name": datasets.Value("string"),
        }
    )


@dataclass(frozen=True)
class ImageMaskPair:
    """One image file and its mask file (same stem)."""

    image_path: Path
    mask_path: Path

    @property
    def file_name(self) -> str:
        return self.image_path.name


def _raise_problems(what: str, problems: Sequence[str]) -> None:
    listed = list(problems[:_MAX_LISTED_PROBLEMS])
    if len(problems) > len(listed):
        listed.append(f"... and {len(problems) - len(listed)} more")
    raise DatasetLayoutError(f"{what}: {len(problems)} problem(s):\n  " + "\n  ".join(listed))


def _files_by_stem(folder: Path, extensions: tuple[str, ...], problems: list[str]) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    ignored = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        path = Path(entry.path)
        if path.suffix.lower() not in extensions:
            ignored.append(entry.name)
            continue
        if path.stem in by_stem:
            problems.append(f"ambiguous: {by_stem[path.stem]} and {path} have the same stem")
            continue
        by_stem[path.stem] = path
    if ignored:
        logger.warning(
            f"Ignoring {len(ignored)} file(s) in {folder} without a supported extension {extensions}: "
            f"{', '.join(ignored[:10])}{' ...' if len(ignored) > 10 else ''}"
        )
    return by_stem


def oriented_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image as ``datasets.Image`` decodes it (EXIF orientation applied).

    Only the file header is read (PIL opens lazily); EXIF is looked at only where it lives in the header
    (JPEG/WebP/TIFF; a PNG ``eXIf`` chunk placed before the pixel data).
    """
    with PIL.Image.open(path) as image:
        width, height = image.size
        orientation = None
        if image.format in ("JPEG", "MPO", "WEBP", "TIFF") or "exif" in image.info:
            orientation = image.getexif().get(_EXIF_ORIENTATION_TAG)
    if orientation in _TRANSPOSING_ORIENTATIONS:
        return height, width
    return width, height


def _safe_size(path: Path) -> tuple[int, int] | str:
    try:
        return oriented_image_size(path)
    except (OSError, SyntaxError, ValueError) as error:
        return f"unreadable image {path}: {error}"


def pair_image_mask_files(
    folder: str | os.PathLike,
    *,
    image_dir: str = "im",
    mask_dir: str = "gt",
    check_sizes: bool = True,
    num_threads: int = 8,
) -> list[ImageMaskPair]:
    """Pair ``folder/im/<stem>.<ext>`` with ``folder/gt/<stem>.<ext>``, sorted by image file name.

    Raises:
        FileNotFoundError: ``folder``, its ``im/`` or its ``gt/`` sub-folder does not exist.
        DatasetLayoutError: listing every image without a mask, mask without an image, two files with the
            same stem, unreadable file and (with ``check_sizes``) image/mask pair whose sizes differ.
    """
    folder = Path(folder)
    image_folder, mask_folder = folder / image_dir, folder / mask_dir
    for required in (folder, image_folder, mask_folder):
        if not required.is_dir():
            raise FileNotFoundError(
                f"{required} is not a directory; expected an image/mask set laid out as "
                f"{folder}/{image_dir}/*.jpg and {folder}/{mask_dir}/*.png"
            )
    problems: list[str] = []
    images = _files_by_stem(image_folder, IMAGE_EXTENSIONS, problems)
    masks = _files_by_stem(mask_folder, MASK_EXTENSIONS, problems)
    problems += [f"missing mask for image {images[stem]}" for stem in sorted(images.keys() - masks.keys())]
    problems += [f"extra mask without image: {masks[stem]}" for stem in sorted(masks.keys() - images.keys())]
    pairs = [ImageMaskPair(images[stem], masks[stem]) for stem in sorted(images.keys() & masks.keys())]
    pairs.sort(key=lambda pair: pair.image_path.name)
    if not pairs and not problems:
        problems.append(f"no images with a supported extension {IMAGE_EXTENSIONS} in {image_folder}")
    if check_sizes and pairs:
        paths = [path for pair in pairs for path in (pair.image_path, pair.mask_path)]
        with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
            sizes = list(pool.map(_safe_size, paths))
        for index, pair in enumerate(pairs):
            image_size, mask_size = sizes[2 * index], sizes[2 * index + 1]
            for size in (image_size, mask_size):
                if isinstance(size, str):
                    problems.append(size)
            if isinstance(image_size, tuple) and isinstance(mask_size, tuple) and image_size != mask_size:
                problems.append(
                    f"size mismatch: image {pair.image_path} is {image_size[0]}x{image_size[1]} (after EXIF "
                    f"orientation) but mask {pair.mask_path} is {mask_size[0]}x{mask_size[1]}"
                )
    if problems:
        _raise_problems(f"Image/mask set {folder}", problems)
    return pairs


def _valid_split_name(name: str) -> str:
    """Turn a folder name into a valid 🤗 split name (``TE-HRSOD`` -> ``TE_HRSOD``)."""
    cleaned = re.sub(r"\W+", "_", name).strip("_")
    if not cleaned:
        raise ValueError(f"Cannot derive a split name from folder name {name!r}")
    return cleaned


def dataset_from_pairs(
    pairs: Sequence[ImageMaskPair], labels: Sequence[int], split: str | None = None
) -> datasets.Dataset:
    """Build the lazy (file-path backed) dataset of :func:`image_mask_features` from image/mask pairs."""
    if len(labels) != len(pairs):
        raise ValueError(f"Got {len(labels)} labels for {len(pairs)} image/mask pairs")
    return datasets.Dataset.from_dict(
        {
            "image": [str(pair.image_path) for pair in pairs],
            "mask": [str(pair.mask_path) for pair in pairs],
            "label": list(labels),
            "file_name": [pair.file_name for pair in pairs],
        },
        features=image_mask_features(),
        split=datasets.NamedSplit(split) if split is not None else None,
    )


def load_image_mask_folder(
    path_or_paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    image_dir: str = "im",
    mask_dir: str = "gt",
    check_sizes: bool = True,
) -> datasets.Dataset | datasets.DatasetDict:
    """Load any set in the ``im/`` + ``gt/`` layout (DIS5K splits, HRSOD, COD, your own).

    Images may be ``.jpg/.jpeg/.png/.bmp/.webp``, masks ``.png/.jpg/.jpeg/.bmp``; they are paired by file
    stem. Missing masks, masks without image and size mismatches raise :class:`DatasetLayoutError`
    listing the files (nothing is silently dropped).

    The ``label`` column is always present (so that sets can be concatenated): it holds the DIS5K class id
    when a file name is DIS5K-style (``1#Group#1#Class#name.jpg``) with one of the 219 training classes,
    and ``-1`` otherwise (no error: non-DIS sets have no classes). Use :func:`~birefnet_hf.data.load_dis5k`
    for DIS5K itself, where unknown training classes are errors.

    Args:
        path_or_paths: one set folder (returns a ``Dataset``) or several (returns a ``DatasetDict`` keyed
            by folder name, non-word characters replaced by ``_``: ``TE-HRSOD`` -> ``TE_HRSOD``).
        image_dir / mask_dir: names of the image and mask sub-folders.
        check_sizes: read every file header and fail on image/mask size mismatches.
    """
    single = isinstance(path_or_paths, (str, os.PathLike))
    paths = [Path(path_or_paths)] if single else [Path(p) for p in path_or_paths]
    if not paths:
        raise ValueError("load_image_mask_folder needs at least one folder")
    loaded: dict[str, datasets.Dataset] = {}
    for path in paths:
        key = _valid_split_name(path.resolve().name)
        if key in loaded:
            raise ValueError(
                f"Two folders map to the same split name {key!r}: pass folders with distinct names"
            )
        pairs = pair_image_mask_files(path, image_dir=image_dir, mask_dir=mask_dir, check_sizes=check_sizes)
        labels = [dis5k_class_id(pair.file_name) for pair in pairs]
        loaded[key] = dataset_from_pairs(pairs, labels, split=key)
        logger.info(f"Loaded {len(pairs)} image/mask pairs from {path} as {key!r}")
    if single:
        return loaded[next(iter(loaded))]
    return datasets.DatasetDict(loaded)
