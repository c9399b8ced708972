# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Batch collation for BiRefNet training and evaluation, optionally with the authors' dynamic sizes.

:class:`DISCollator` turns examples produced by :mod:`birefnet_hf.data.transforms` into the model's
inputs: ``pixel_values`` (N, 3, H, W) float, ``labels`` (N, 1, H, W) in [0, 1] and ``class_labels``
(N,) long.

Class labels follow the 🤗 convention: examples without a DIS5K class (label -1) get ``-100``, the
``ignore_index`` of ``torch.nn.CrossEntropyLoss``; the key is left out when no example of the batch has a
class (or the examples have no labels at all), so the auxiliary classification loss is then skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as nnf

from .transforms import ImageSize

#: ``class_labels`` value of examples without a class (ignored by ``CrossEntropyLoss``).
IGNORE_INDEX = -100


def _normalise_dynamic_size(
    dynamic_size: Sequence[int] | Sequence[Sequence[int]] | None, multiple: int
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    if dynamic_size is None:
        return None
    ranges = list(dynamic_size)
    if len(ranges) != 2:
        raise ValueError(
            f"dynamic_size must be (min, max) or ((min_height, max_height), (min_width, max_width)), got {dynamic_size!r}"
        )
    if all(isinstance(bound, int) for bound in ranges):
        ranges = [ranges, ranges]
    normalised = []
    for side, bounds in zip(("height", "width"), ranges, strict=True):
        low, high = (int(bound) for bound in bounds)
        low_multiple, high_multiple = -(-low // multiple) * multiple, high // multiple * multiple
        if low <= 0 or low > high or low_multiple > high_multiple:
            raise ValueError(
                f"dynamic_size {side} range {(low, high)} must be positive, ordered and contain a multiple of {multiple}"
            )
        normalised.append((low_multiple, high_multiple))
    return normalised[0], normalised[1]


class DISCollator:
    """Collate transformed examples into a batch; with ``dynamic_size``, resize each batch to a random size.

    Args:
        dynamic_size: ``None`` (every example must already have the same size, e.g. from
            ``make_train_transform(image_size=(1024, 1024))``), ``(min, max)`` for both sides, or
            ``((min_height, max_height), (min_width, max_width))``. Each batch then gets a height and a width
            drawn independently and uniformly among the multiples of ``size_multiple`` in those ranges (the
            authors use ``(256, 2304)``), the same for all its examples; images and masks are resized to it
            bilinearly (antialiased when shrinking) and masks stay in [0, 1].
        size_multiple: sizes are multiples of this (the model needs 32).
        return_metadata: also return ``file_names`` (list) and ``original_sizes`` ((N, 2) long, height and
            width of the source images, to resize predictions back), when examples carry them. Leave it off
            when the batch goes straight into ``model(**batch)``.

    The random size comes from ``torch``'s global generator (seeded per DataLoader worker), so the whole
    batch, collated inside one worker, shares it.
    """

    def __init__(
        self,
        dynamic_size: Sequence[int] | Sequence[Sequence[int]] | None = None,
        *,
        size_multiple: int = 32,
        return_metadata: bool = False,
    ) -> None:
        if size_multiple <= 0:
            raise ValueError(f"size_multiple must be positive, got {size_multiple}")
        self.size_multiple = size_multiple
        self.dynamic_size = _normalise_dynamic_size(dynamic_size, size_multiple)
        self.return_metadata = return_metadata

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(dynamic_size={self.dynamic_size}, return_metadata={self.return_metadata})"
        )

    def sample_size(self) -> ImageSize:
        """A random ``(height, width)`` from ``dynamic_size``."""
        if self.dynamic_size is None:
            raise ValueError("sample_size needs dynamic_size")
        sides = []
        for low, high in self.dynamic_size:
            steps = (high - low) // self.size_multiple + 1
            sides.append(low + self.size_multiple * int(torch.randint(0, steps, ())))
        return sides[0], sides[1]

    @staticmethod
    def _resize(tensors: list[torch.Tensor], size: ImageSize) -> torch.Tensor:
        def resize(batch: torch.Tensor) -> torch.Tensor:
            if tuple(batch.shape[-2:]) == tuple(size):
                return batch
            return nnf.interpolate(batch, size=size, mode="bilinear", align_corners=False, antialias=True)

        if all(t.shape == tensors[0].shape for t in tensors):
            return resize(torch.stack(tensors))
        return torch.cat([resize(t.unsqueeze(0)) for t in tensors])

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        if not examples:
            raise ValueError("Cannot collate an empty list of examples")
        for key in ("pixel_values", "labels"):
            if key not in examples[0]:
                raise KeyError(
                    f"Examples lack {key!r} (keys: {sorted(examples[0])}); apply "
                    "dataset.with_transform(make_train_transform(...)) or make_eval_transform(...) first"
                )
        pixel_values = [example["pixel_values"] for example in examples]
        labels = [example["labels"] for example in examples]
        if self.dynamic_size is not None:
            size = self.sample_size()
            batch = {
                "pixel_values": self._resize(pixel_values, size),
                "labels": self._resize(labels, size).clamp_(0.0, 1.0),
            }
        else:
            sizes = {tuple(t.shape[-2:]) for t in pixel_values + labels}
            if len(sizes) > 1:
                names = [example.get("file_name", index) for index, example in enumerate(examples)]
                raise ValueError(
                    f"Examples {names} have different sizes {sorted(sizes)}: give the transform a fixed "
                    "image_size or use DISCollator(dynamic_size=...)"
                )
            batch = {"pixel_values": torch.stack(pixel_values), "labels": torch.stack(labels)}
        if "class_labels" in examples[0]:
            class_labels = torch.tensor(
                [int(example["class_labels"]) for example in examples], dtype=torch.long
            )
            class_labels[class_labels < 0] = IGNORE_INDEX
            if bool((class_labels != IGNORE_INDEX).any()):
                batch["class_labels"] = class_labels
        if self.return_metadata:
            if "file_name" in examples[0]:
                batch["file_names"] = [example["file_name"] for example in examples]
            if "original_size" in examples[0]:
                batch["original_sizes"] = torch.tensor(
                    [list(example["original_size"]) for example in examples], dtype=torch.long
                )
        return batch
