# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Size buckets: the authors' dynamic sizes with a bounded number of input shapes, for ``torch.compile``.

The authors' ``dynamic_size`` draws a height and a width independently for every batch among the multiples of 32
of a range (256-2304: 65 x 65 shapes). ``torch.compile`` with static shapes builds one graph per input shape, so
that would mean thousands of compiles; a symbolic-shape graph of the whole model does not finish compiling. With
``--dynamic_size_buckets N`` (the default, N = 4, under ``--torch_compile``) every batch instead takes one of
``N`` fixed shapes:

* **the rule** (:func:`size_buckets`): bucket ``k`` of ``N`` has the height ``k / (N - 1)`` of the way through the
  height range and the width as far through the width range, each rounded to the nearest multiple of 32 (for the
  command line's single ``MIN MAX``, square sizes; ``256 2304`` with N = 4: 256, 928, 1632, 2304). Both ends are
  buckets; one bucket is the middle of the range;
* **the draw** (:func:`bucket_size`): uniform among the buckets, with a generator seeded by
  ``(seed, epoch, batch index in the epoch)`` alone: every process (DDP rank) draws the same bucket for its batch of
  the same step, whichever data workers load it, and a resumed run draws what an uninterrupted one would have,
  with no random state to save;
* **the resize** (:func:`resize_batch`): the batch, collated at ``--image_size``, is resized to the bucket exactly
  as :class:`~birefnet_hf.data.DISCollator` resizes a dynamic-size batch (bilinear, antialiased when shrinking,
  labels kept in [0, 1]).

Each shape is then compiled once (:func:`~birefnet_hf.inference_paths.compile_for_training` raises the model's
recompile limit by ``N``). What is lost against the authors' draw: aspect ratios other than the range's (square
for one ``MIN MAX``) and the sizes between buckets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.collate import DISCollator, _normalise_dynamic_size

__all__ = ["DEFAULT_SIZE_BUCKETS", "BUCKET_STREAM", "bucket_size", "resize_batch", "size_buckets"]

#: Buckets of ``--torch_compile --dynamic_size`` when ``--dynamic_size_buckets`` is not given.
DEFAULT_SIZE_BUCKETS = 4
#: Fourth word of the bucket draw's seed, so that it never coincides with an augmentation seed
#: (:func:`~birefnet_hf.training.augmentation.augmentation_seed` hashes ``(seed, epoch, index)``).
BUCKET_STREAM = 0xB1CE7


def size_buckets(
    dynamic_size: Sequence[int] | Sequence[Sequence[int]], count: int, multiple: int = 32
) -> list[tuple[int, int]]:
    """The ``count`` ``(height, width)`` shapes of ``dynamic_size`` (``(min, max)`` or ``((min_height,
    max_height), (min_width, max_width))``), smallest first; see the module docstring for the rule.

    Raises:
        ValueError: ``count`` below 1, or more buckets than multiples of ``multiple`` in the wider range.
    """
    if count < 1:
        raise ValueError(f"the number of size buckets must be at least 1, got {count}")
    ranges = _normalise_dynamic_size(dynamic_size, multiple)
    steps = [(high - low) // multiple for low, high in ranges]  # a range holds steps + 1 multiples
    if count > max(steps) + 1:
        spans = " and ".join(f"{name} {low}-{high}" for name, (low, high) in zip(("height", "width"), ranges, strict=True))
        raise ValueError(
            f"{count} size buckets need {count} different multiples of {multiple} in a range, and {spans} hold "
            f"{max(steps) + 1} at most"
        )
    sides = []
    for (low, _), side_steps in zip(ranges, steps, strict=True):
        if count == 1:
            sides.append([low + multiple * (side_steps // 2)])
        else:  # round(k * steps / (count - 1)) in integers (half up): distinct where count <= steps + 1
            sides.append([low + multiple * ((2 * k * side_steps + count - 1) // (2 * (count - 1))) for k in range(count)])
    return list(zip(sides[0], sides[1], strict=True))


def bucket_size(buckets: Sequence[tuple[int, int]], seed: int, epoch: int, batch_index: int) -> tuple[int, int]:
    """The bucket of batch ``batch_index`` (counted from 0 in ``epoch``): uniform, seeded by ``(seed, epoch,
    batch_index)`` only, so identical on every process and after a resume."""
    if not buckets:
        raise ValueError("bucket_size needs at least one bucket")
    generator = np.random.default_rng([int(seed), int(epoch), int(batch_index), BUCKET_STREAM])
    height, width = buckets[int(generator.integers(len(buckets)))]
    return int(height), int(width)


def resize_batch(batch: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """Resize ``batch``'s ``pixel_values`` and ``labels`` (N, C, H, W) in place to ``size`` the way
    :class:`~birefnet_hf.data.DISCollator` resizes a dynamic-size batch; other entries are left as they are."""
    batch["pixel_values"] = DISCollator._resize(list(batch["pixel_values"]), size)
    batch["labels"] = DISCollator._resize(list(batch["labels"]), size).clamp_(0.0, 1.0)
    return batch
