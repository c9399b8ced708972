# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Argument types shared by the inference commands (`birefnet-hf segment`, `segment-dataset`, `video`, `serve`)."""

from __future__ import annotations

import argparse
import re

__all__ = ["parse_resolution", "positive_int"]


def parse_resolution(text: str) -> dict:
    """`--resolution N` or `HEIGHTxWIDTH` (multiples of 32) as an image-processor size dict."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected N or HEIGHTxWIDTH (multiples of 32), got {text!r}")
    height = int(match.group(1))
    width = int(match.group(2) or height)
    if height % 32 or width % 32 or height <= 0 or width <= 0:
        raise argparse.ArgumentTypeError(f"resolution sides must be positive multiples of 32, got {text!r}")
    return {"height": height, "width": width}


def positive_int(text: str) -> int:
    """A command-line integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
