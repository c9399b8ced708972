# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Deterministic weights for the parity tests, re-implemented from the spec in shared/parity/recipe.py.

Each tensor depends only on its *official* BiRefNet key and shape:
``u = torch.rand(shape, generator=manual_seed(crc32(key)))``, then ``num_batches_tracked`` -> 0,
``running_mean`` -> 0.2u-0.1, ``running_var`` -> 0.5+u, ndim >= 2 -> (2u-1)*sqrt(3/fan_in),
1-D ``.weight`` -> 0.8+0.4u, other 1-D -> 0.2u-0.1. ``relative_position_index`` buffers are computed by the model.
"""

import json
import math
import zlib
from pathlib import Path

import torch

FIXTURES = Path(__file__).parent / "fixtures" / "parity"


def recipe_tensor(key: str, shape) -> torch.Tensor:
    shape = tuple(int(s) for s in shape)
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode("utf-8")))
    u = torch.rand(shape, generator=generator, dtype=torch.float32)
    if key.endswith("running_mean"):
        return 0.2 * u - 0.1
    if key.endswith("running_var"):
        return 0.5 + u
    if len(shape) >= 2:
        return (2.0 * u - 1.0) * math.sqrt(3.0 / math.prod(shape[1:]))
    if key.endswith(".weight"):
        return 0.8 + 0.4 * u
    return 0.2 * u - 0.1


def official_manifest(backbone: str) -> list:
    """``[[key, shape, dtype], ...]`` of the authors' ``BiRefNet().state_dict()`` for ``backbone``."""
    return json.loads((FIXTURES / "keys" / f"{backbone}.json").read_text())


def official_state_dict(backbone: str) -> dict:
    """An authors'-format state dict filled with the recipe (computed buffers omitted)."""
    return {
        key: recipe_tensor(key, shape)
        for key, shape, _ in official_manifest(backbone)
        if not key.endswith("relative_position_index")
    }
