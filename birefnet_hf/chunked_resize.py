# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Low-resolution logits to full-resolution probabilities, a few rows at a time.

The paper evaluates masks "resized (i.e., bilinear interpolation) to the original size", which the authors'
inference implements as ``F.interpolate(logits.sigmoid(), size, mode="bilinear", align_corners=True)``. Done in
one call, that needs several full-size float tensors; [`resize_logits_to_probabilities`] computes the same values
in row chunks, so the matte of an 8000x6000 photo costs about one extra full-size copy. Both image-processor
backends post-process through it.
"""

from __future__ import annotations

import torch

from .prediction import quantize_probabilities

__all__ = ["resize_logits_to_probabilities"]

#: Output elements computed at once when upsampling logits to a (possibly huge) original size.
_UPSAMPLE_CHUNK_ELEMENTS = 1 << 21


def _align_corners_taps(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Source indices and weights of 1-D linear interpolation with align_corners=True, computed as PyTorch does."""
    scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    source = torch.arange(out_size, device=device, dtype=torch.float32) * torch.tensor(
        scale, dtype=torch.float32
    )
    index0 = source.to(torch.long).clamp_(max=in_size - 1)
    index1 = (index0 + 1).clamp_(max=in_size - 1)
    weight1 = source - index0.to(torch.float32)
    weight0 = 1.0 - weight1
    return index0, index1, weight0, weight1


def resize_logits_to_probabilities(
    logits: torch.Tensor,
    size: tuple[int, int],
    output: str = "float",
    threshold: float = 0.5,
    chunk_elements: int = _UPSAMPLE_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Apply the sigmoid to one logit map and resize it bilinearly (align_corners=True), a few rows at a time.

    Equals ``F.interpolate(logits.sigmoid()[None, None], size, mode="bilinear", align_corners=True)[0, 0]`` (the
    authors' inference: sigmoid at model resolution, then the resize) up to float rounding, but never materialises a full-size float tensor other than
    the result itself, so an 8000x6000 mask costs 48 MB as uint8 instead of several 192 MB float copies.
    The work is done on `logits.device`; the result is on the CPU.

    Args:
        logits (`torch.Tensor` of shape (h, w)): one logit map at model resolution (any float dtype).
        size (`tuple[int, int]`): target (height, width).
        output (`str`): "float" -> float32 probabilities in [0, 1]; "uint8" -> `uint8(255 * p)`, truncating
            (`prediction.quantize_probabilities`, the authors' rule);
            "label" -> int64 labels `p > threshold` (1 foreground, 0 background).
        threshold (`float`): probability threshold for `output="label"`.
        chunk_elements (`int`): output elements computed per step (bounds the temporary memory).
    """
    if logits.ndim != 2:
        raise ValueError(f"Expected a (height, width) logit map, got shape {tuple(logits.shape)}.")
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"Target size must be positive, got {size}.")
    dtypes = {"float": torch.float32, "uint8": torch.uint8, "label": torch.int64}
    if output not in dtypes:
        raise ValueError(f"output must be one of {sorted(dtypes)}, got {output!r}.")

    logits = logits.detach().to(torch.float32).sigmoid()  # probabilities at model resolution
    in_height, in_width = logits.shape
    x0, x1, wx0, wx1 = _align_corners_taps(in_width, width, logits.device)
    y0, y1, wy0, wy1 = _align_corners_taps(in_height, height, logits.device)

    result = torch.empty((height, width), dtype=dtypes[output])
    rows_per_chunk = max(1, chunk_elements // width)
    for start in range(0, height, rows_per_chunk):
        stop = min(height, start + rows_per_chunk)
        # Source rows this chunk reads (the taps are sorted), interpolated along the width first, as PyTorch does.
        first, last = int(y0[start]), int(y1[stop - 1])
        band = logits[first : last + 1]
        columns = torch.index_select(band, 1, x0).mul_(wx0)
        columns.addcmul_(torch.index_select(band, 1, x1), wx1)
        # Then along the height, in place: a chunk needs three buffers of its size at most.
        rows = torch.index_select(columns, 0, y0[start:stop] - first).mul_(wy0[start:stop, None])
        rows.addcmul_(torch.index_select(columns, 0, y1[start:stop] - first), wy1[start:stop, None])
        del columns
        if output == "uint8":
            rows = quantize_probabilities(rows)
        elif output == "label":
            rows = rows > threshold
        result[start:stop] = rows.cpu()
    return result
