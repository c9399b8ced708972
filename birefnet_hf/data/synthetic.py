# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""A synthetic dataset in the DIS5K layout, for tests, examples and smoke-training without DIS5K.

``python -m birefnet_hf.data.synthetic --output-dir D`` (or ``birefnet-hf synthetic ...``) writes::

    D/DIS5K/DIS-TR/{im,gt}   --num-train images
    D/DIS5K/DIS-VD/{im,gt}   --num-val images
    D/DIS5K/DIS-TE1..4/...   --num-test images each, of increasing structural complexity (like DIS-TE1..4)

with DIS5K-style names (``1#Electronics#1#Cable#syn-DIS-TR-00000.jpg``) over six real DIS5K classes,
JPEG images and 0/255 PNG masks. The objects have what DIS is about -- thin wires (Cable), meshes
(Fence), rings and spokes (Bicycle), branches (Tree), woven holes and handles (Basket), teeth and holes
(Gear) -- on noise-textured backgrounds with distractor shapes. Objects take their colours from their own
palette, backgrounds and distractors from others, so a small model can learn the task in minutes but has to
use both colour and shape. Shapes are drawn at twice the resolution and box-filtered, so images have
antialiased edges while masks are binary.

Generation is deterministic: every image is drawn from its own ``numpy`` generator seeded by
``(seed, split, index)``, so the same arguments give byte-identical files. Only numpy and PIL are used.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageChops
import PIL.ImageDraw
from tqdm.auto import tqdm
from transformers.utils import logging

from ..atomic_io import atomic_folder
from .dis5k import DIS5K_SPLITS

logger = logging.get_logger(__name__)

_SUPERSAMPLING = 2
_JPEG_QUALITY = 92

Point = tuple[float, float]
DrawFunction = Callable[[PIL.ImageDraw.ImageDraw, np.random.Generator, int, float], None]

# Palettes (RGB). Objects, backgrounds and distractors draw from disjoint palettes (with jitter).
_OBJECT_PALETTE = np.array(
    [(38, 36, 44), (150, 38, 30), (232, 118, 22), (196, 32, 112), (236, 198, 36), (28, 58, 168)],
    dtype=np.float32,
)
_BACKGROUND_PALETTE = np.array(
    [
        (168, 194, 214),
        (204, 190, 158),
        (122, 150, 102),
        (150, 150, 146),
        (214, 214, 204),
        (96, 122, 132),
        (178, 160, 188),
    ],
    dtype=np.float32,
)
_DISTRACTOR_PALETTE = np.array(
    [(64, 142, 72), (92, 182, 200), (242, 242, 238), (112, 92, 152), (172, 132, 92), (88, 88, 84)],
    dtype=np.float32,
)


# --------------------------------------------------------------------------------------------------- shapes


def _width(value: float) -> int:
    """A line width on the supersampled canvas: at least one output pixel."""
    return max(_SUPERSAMPLING, int(round(value)))


def _thick_line(
    draw: PIL.ImageDraw.ImageDraw, points: Sequence[Point], width: float, fill: int = 255
) -> None:
    """A polyline with round joints and caps."""
    width = _width(width)
    draw.line(list(points), fill=fill, width=width, joint="curve")
    radius = width / 2
    for x, y in (points[0], points[-1]):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)


def _ring(draw: PIL.ImageDraw.ImageDraw, center: Point, radius: float, width: float, fill: int = 255) -> None:
    x, y = center
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=fill, width=_width(width))


def _disk(draw: PIL.ImageDraw.ImageDraw, center: Point, radius: float, fill: int) -> None:
    x, y = center
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)


def _bezier(points: np.ndarray, samples: int = 48) -> list[Point]:
    """Points along the cubic Bezier curve with control points ``points`` (4, 2)."""
    t = np.linspace(0.0, 1.0, samples, dtype=np.float64)[:, None]
    curve = (
        (1 - t) ** 3 * points[0]
        + 3 * (1 - t) ** 2 * t * points[1]
        + 3 * (1 - t) * t**2 * points[2]
        + t**3 * points[3]
    )
    return [(float(x), float(y)) for x, y in curve]


def _border_point(rng: np.random.Generator, size: int, side: int) -> np.ndarray:
    position = rng.uniform(0.05, 0.95) * size
    margin = 0.02 * size
    return np.array(
        [(position, -margin), (size + margin, position), (position, size + margin), (-margin, position)][side]
    )


def _draw_cables(
    draw: PIL.ImageDraw.ImageDraw, rng: np.random.Generator, size: int, complexity: float
) -> None:
    """Thin wires crossing the image (sagging, sometimes in bundles)."""
    for _ in range(int(rng.integers(2, 4 + round(4 * complexity)))):
        side = int(rng.integers(4))
        start = _border_point(rng, size, side)
        end = _border_point(rng, size, (side + int(rng.integers(1, 4))) % 4)
        controls = rng.uniform(0.1, 0.9, size=(2, 2)) * size
        width = rng.uniform(1.0, 2.5 + 4.0 * (1.0 - complexity)) * _SUPERSAMPLING
        for strand in range(int(rng.integers(1, 4))):
            offset = np.array([0.0, strand * width * rng.uniform(2.0, 4.0)])
            _thick_line(draw, _bezier(np.stack([start, *controls, end]) + offset), width)


def _draw_fence(
    draw: PIL.ImageDraw.ImageDraw, rng: np.random.Generator, size: int, complexity: float
) -> None:
    """A chain-link mesh on a skewed panel, with posts and a top rail."""
    left, right = rng.uniform(0.0, 0.2) * size, rng.uniform(0.8, 1.0) * size
    top, bottom = rng.uniform(0.1, 0.4) * size, rng.uniform(0.75, 1.0) * size
    skew = rng.uniform(-0.12, 0.12) * size
    corners = [(left, top + skew), (right, top - skew), (right, bottom - skew / 2), (left, bottom + skew / 2)]
    panel = PIL.Image.new("L", (size, size), 0)
    PIL.ImageDraw.Draw(panel).polygon(corners, fill=255)
    mesh = PIL.Image.new("L", (size, size), 0)
    mesh_draw = PIL.ImageDraw.Draw(mesh)
    spacing = rng.uniform(0.035, 0.08) * size * (1.0 - 0.45 * complexity)
    wire = rng.uniform(1.0, 2.2) * _SUPERSAMPLING
    angle = math.radians(rng.uniform(35.0, 55.0))
    for direction in (1.0, -1.0):
        dx, dy = math.cos(angle), direction * math.sin(angle)
        normal = np.array([-dy, dx])
        for k in range(-int(2 * size / spacing), int(2 * size / spacing) + 1):
            origin = np.array([size / 2, size / 2]) + normal * k * spacing
            a, b = origin - 2 * size * np.array([dx, dy]), origin + 2 * size * np.array([dx, dy])
            mesh_draw.line([tuple(a), tuple(b)], fill=255, width=_width(wire))
    draw.bitmap((0, 0), PIL.ImageChops.multiply(mesh, panel), fill=255)
    post = wire * rng.uniform(3.0, 6.0)
    for x_fraction in (0.0, 1.0) if rng.random() < 0.5 else (0.0, 0.5, 1.0):
        top_point = np.array(corners[0]) * (1 - x_fraction) + np.array(corners[1]) * x_fraction
        bottom_point = np.array(corners[3]) * (1 - x_fraction) + np.array(corners[2]) * x_fraction
        _thick_line(draw, [tuple(top_point - [0, post]), tuple(bottom_point)], post)
    _thick_line(draw, [corners[0], corners[1]], post * 0.6)


def _draw_bicycle(
    draw: PIL.ImageDraw.ImageDraw, rng: np.random.Generator, size: int, complexity: float
) -> None:
    """Two spoked wheels (rings + thin spokes), a tube frame, fork, handlebar, saddle and chainring."""
    radius = rng.uniform(0.12, 0.18) * size
    center = np.array([rng.uniform(0.45, 0.55) * size, rng.uniform(0.55, 0.68) * size])
    rotation = math.radians(rng.uniform(-12.0, 12.0))
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    rot = np.array([[math.cos(rotation), -math.sin(rotation)], [math.sin(rotation), math.cos(rotation)]])

    def at(x: float, y: float) -> tuple[float, float]:
        point = rot @ np.array([mirror * x * radius, y * radius]) + center
        return float(point[0]), float(point[1])

    rear, front = at(-1.35, 0.0), at(1.35, 0.0)
    bracket, seat, head = at(-0.1, 0.05), at(-0.55, -1.05), at(0.85, -0.95)
    spokes = int(rng.choice([12, 16, 24, 32]) if complexity > 0.3 else rng.choice([8, 12, 16]))
    spoke_width = max(1.0, 0.012 * radius)
    phase = rng.uniform(0, 2 * math.pi)
    for hub in (rear, front):
        _ring(draw, hub, radius, 0.09 * radius)  # tyre
        _ring(draw, hub, 0.86 * radius, 0.03 * radius)  # rim
        for k in range(spokes):
            theta = phase + 2 * math.pi * k / spokes
            rim_point = (hub[0] + 0.86 * radius * math.cos(theta), hub[1] + 0.86 * radius * math.sin(theta))
            _thick_line(draw, [hub, rim_point], spoke_width)
        _disk(draw, hub, 0.08 * radius, 255)
    tube = 0.065 * radius
    for a, b in (
        (rear, bracket),
        (rear, seat),
        (bracket, seat),
        (seat, head),
        (bracket, head),
        (head, front),
    ):
        _thick_line(draw, [a, b], tube)
    _ring(draw, bracket, 0.2 * radius, 0.05 * radius)  # chainring
    _thick_line(draw, [bracket, rear], 0.02 * radius)  # chain
    stem = at(0.75, -1.3)
    _thick_line(draw, [head, stem, at(0.5, -1.35)], tube)  # handlebar
    draw.polygon([at(-0.8, -1.2), at(-0.3, -1.2), at(-0.45, -1.1), at(-0.75, -1.08)], fill=255)  # saddle
    _thick_line(draw, [seat, at(-0.58, -1.15)], tube)


def _draw_tree(draw: PIL.ImageDraw.ImageDraw, rng: np.random.Generator, size: int, complexity: float) -> None:
    """A recursively branching tree (bonsai-like when it has leaf tufts)."""
    max_depth = 5 + int(round(3 * complexity))
    leaves = rng.random() < 0.5

    def branch(start: np.ndarray, angle: float, length: float, width: float, depth: int) -> None:
        end = start + length * np.array([math.cos(angle), math.sin(angle)])
        _thick_line(draw, [tuple(start), tuple(end)], width)
        if depth >= max_depth or width < 0.8 * _SUPERSAMPLING:
            if leaves:
                _disk(draw, tuple(end), rng.uniform(1.5, 4.0) * _SUPERSAMPLING, 255)
            return
        children = 3 if rng.random() < 0.25 else 2
        spread = math.radians(rng.uniform(18.0, 42.0))
        for k in range(children):
            offset = spread * (2 * k / (children - 1) - 1) + math.radians(rng.uniform(-8.0, 8.0))
            branch(
                end,
                angle + offset,
                length * rng.uniform(0.62, 0.8),
                width * rng.uniform(0.6, 0.74),
                depth + 1,
            )

    trunk = rng.uniform(0.02, 0.04) * size
    branch(
        np.array([rng.uniform(0.35, 0.65) * size, size * 1.01]),
        math.radians(-90.0 + rng.uniform(-10.0, 10.0)),
        rng.uniform(0.2, 0.3) * size,
        trunk,
        0,
    )


def _draw_basket(
    draw: PIL.ImageDraw.ImageDraw, rng: np.random.Generator, size: int, complexity: float
) -> None:
    """A woven basket: a trapezoid body with a grid of holes, a thick rim and a ring-like handle."""
    cx = rng.uniform(0.4, 0.6) * size
    top_half = rng.uniform(0.2, 0.32) * size
    bottom_half = top_half * rng.uniform(0.6, 0.85)
    top, bottom = rng.uniform(0.42, 0.55) * size, rng.uniform(0.8, 0.92) * size
    draw.polygon(
        [(cx - top_half, top), (cx + top_half, top), (cx + bottom_half, bottom), (cx - bottom_half, bottom)],
        fill=255,
    )
    spacing = rng.uniform(0.03, 0.055) * size * (1.0 - 0.4 * complexity)
    hole = spacing * rng.uniform(0.4, 0.62) / 2
    diamond = rng.random() < 0.5
    rim = rng.uniform(0.015, 0.025) * size
    y = top + rim + spacing / 2
    row = 0
    while y < bottom - rim:
        half = top_half + (bottom_half - top_half) * (y - top) / (bottom - top) - rim
        x = cx - half + spacing / 2 + (spacing / 2 if row % 2 else 0.0)
        while x < cx + half - hole:
            if diamond:
                draw.polygon([(x, y - hole), (x + hole, y), (x, y + hole), (x - hole, y)], fill=0)
            else:
                draw.rectangle((x - hole, y - hole * 0.6, x + hole, y + hole * 0.6), fill=0)
            x += spacing
        y += spacing
        row += 1
    _thick_line(draw, [(cx - top_half, top), (cx + top_half, top)], rim * 1.6)
    handle_height = rng.uniform(0.18, 0.32) * size
    box = (cx - top_half * 0.85, top - handle_height, cx + top_half * 0.85, top + handle_height)
    draw.arc(box, 180, 360, fill=255, width=_width(rim))


def _draw_gears(
    draw: PIL.ImageDraw.ImageDraw, rng: np.random.Generator, size: int, complexity: float
) -> None:
    """One to three toothed gears with a bore and lightening holes."""
    for _ in range(int(rng.integers(1, 3 + round(complexity)))):
        radius = rng.uniform(0.1, 0.25) * size
        cx, cy = rng.uniform(radius, size - radius), rng.uniform(radius, size - radius)
        teeth = int(rng.integers(8, 16 + round(16 * complexity)))
        depth = rng.uniform(0.08, 0.15) * radius
        phase = rng.uniform(0, 2 * math.pi)
        outline = []
        for k in range(teeth):
            for fraction, r in ((0.0, radius - depth), (0.2, radius), (0.5, radius), (0.7, radius - depth)):
                theta = phase + 2 * math.pi * (k + fraction) / teeth
                outline.append((cx + r * math.cos(theta), cy + r * math.sin(theta)))
        draw.polygon(outline, fill=255)
        _disk(draw, (cx, cy), rng.uniform(0.12, 0.22) * radius, 0)
        holes = int(rng.integers(3, 7))
        for k in range(holes):
            theta = phase + 2 * math.pi * k / holes
            ring_radius = 0.55 * (radius - depth)
            _disk(
                draw,
                (cx + ring_radius * math.cos(theta), cy + ring_radius * math.sin(theta)),
                0.14 * radius,
                0,
            )


@dataclass(frozen=True)
class SyntheticClass:
    """A DIS5K class the generator draws, with the group fields of its DIS5K-style file names."""

    group_id: int
    group: str
    class_id: int
    name: str
    draw: DrawFunction

    def file_stem(self, folder: str, index: int) -> str:
        return f"{self.group_id}#{self.group}#{self.class_id}#{self.name}#syn-{folder}-{index:05d}"


SYNTHETIC_CLASSES: tuple[SyntheticClass, ...] = (
    SyntheticClass(1, "Electronics", 1, "Cable", _draw_cables),
    SyntheticClass(2, "Architecture", 1, "Fence", _draw_fence),
    SyntheticClass(3, "NonMotorVehicle", 1, "Bicycle", _draw_bicycle),
    SyntheticClass(4, "Plant", 1, "Tree", _draw_tree),
    SyntheticClass(5, "Kitchenware", 1, "Basket", _draw_basket),
    SyntheticClass(6, "Machine", 1, "Gear", _draw_gears),
)


# --------------------------------------------------------------------------------------------- rendering


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth random field in [0, 1] of shape (size, size), from a ``cells`` x ``cells`` grid."""
    grid = PIL.Image.fromarray(rng.random((cells, cells), dtype=np.float32), mode="F")
    return np.asarray(grid.resize((size, size), PIL.Image.BICUBIC), dtype=np.float32).clip(0.0, 1.0)


def _jitter(rng: np.random.Generator, palette: np.ndarray, amount: float) -> np.ndarray:
    colour = palette[int(rng.integers(len(palette)))]
    return np.clip(colour + rng.uniform(-amount, amount, size=3), 0, 255).astype(np.float32)


def _background(rng: np.random.Generator, size: int, complexity: float) -> PIL.Image.Image:
    """Two blended background colours with blotchy texture, grain, and optional plank/brick lines."""
    first, second = _jitter(rng, _BACKGROUND_PALETTE, 18), _jitter(rng, _BACKGROUND_PALETTE, 18)
    blend = _smooth_field(rng, size, 3)[..., None]
    blotches = _smooth_field(rng, size, int(rng.integers(8, 24))) - 0.5
    image = first * (1 - blend) + second * blend + (blotches * rng.uniform(20, 45))[..., None]
    background = PIL.Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="RGB")
    if rng.random() < 0.5:
        draw = PIL.ImageDraw.Draw(background)
        tone = tuple(int(v) for v in np.clip(first * rng.uniform(0.75, 0.9), 0, 255))
        step = rng.uniform(0.04, 0.12) * size
        vertical = rng.random() < 0.5
        position = rng.uniform(0, step)
        while position < size:
            line = [(position, 0), (position, size)] if vertical else [(0, position), (size, position)]
            draw.line(line, fill=tone, width=max(1, int(size / 256)))
            position += step
    return background


def _draw_distractors(image: PIL.Image.Image, rng: np.random.Generator, complexity: float) -> None:
    """Shapes like the objects' (lines, rings, blobs) in distractor colours: not part of the mask."""
    size = image.size[0]
    draw = PIL.ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 4 + round(8 * complexity)))):
        colour = tuple(int(v) for v in _jitter(rng, _DISTRACTOR_PALETTE, 20))
        kind = int(rng.integers(4))
        x, y = rng.uniform(0, size, size=2)
        extent = rng.uniform(0.03, 0.15) * size
        if kind == 0:
            points = _bezier(np.stack([[x, y], *rng.uniform(0, size, size=(3, 2))]), samples=24)
            draw.line(points, fill=colour, width=int(rng.integers(1, 4)), joint="curve")
        elif kind == 1:
            draw.ellipse(
                (x - extent, y - extent, x + extent, y + extent),
                outline=colour,
                width=int(rng.integers(1, 5)),
            )
        elif kind == 2:
            draw.ellipse((x - extent, y - extent * 0.6, x + extent, y + extent * 0.6), fill=colour)
        else:
            corners = [
                (float(px), float(py)) for px, py in rng.uniform(-extent, extent, size=(4, 2)) + [x, y]
            ]
            draw.polygon(corners, fill=colour)


def render_example(
    rng: np.random.Generator, size: int, synthetic_class: SyntheticClass, complexity: float
) -> tuple[PIL.Image.Image, PIL.Image.Image]:
    """Draw one ``(image RGB, mask L 0/255)`` pair of ``synthetic_class`` at ``size`` x ``size``."""
    canvas = size * _SUPERSAMPLING
    shape = PIL.Image.new("L", (canvas, canvas), 0)
    synthetic_class.draw(PIL.ImageDraw.Draw(shape), rng, canvas, complexity)
    alpha_image = shape.reduce(_SUPERSAMPLING)  # box filter: antialiased coverage
    alpha = np.asarray(alpha_image, dtype=np.float32)[..., None] / 255.0

    background = _background(rng, size, complexity)
    _draw_distractors(background, rng, complexity)
    base = _jitter(rng, _OBJECT_PALETTE, 22)
    shading = 0.72 + 0.5 * _smooth_field(rng, size, int(rng.integers(3, 8)))
    foreground = base * shading[..., None]
    image = np.asarray(background, dtype=np.float32) * (1.0 - alpha) + foreground * alpha
    lighting = 0.85 + 0.3 * _smooth_field(rng, size, 2)
    grain = rng.standard_normal((size, size), dtype=np.float32) * rng.uniform(2.0, 6.0)
    image = image * lighting[..., None] + grain[..., None]
    image_pil = PIL.Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    mask = alpha_image.point(lambda value: 255 if value >= 128 else 0)
    return image_pil, mask


# ----------------------------------------------------------------------------------------------- writing


def _split_plan(
    num_train: int, num_val: int, num_test: int
) -> list[tuple[int, str, int, tuple[float, float]]]:
    """(split index, DIS5K folder, count, complexity range) for every split."""
    counts = {"train": num_train, "validation": num_val}
    plan = []
    for split_index, (split, folder) in enumerate(DIS5K_SPLITS.items()):
        if split.startswith("test_"):
            level = int(split.split("_")[1])
            plan.append((split_index, folder, num_test, ((level - 1) / 4, level / 4)))
        else:
            plan.append((split_index, folder, counts[split], (0.0, 1.0)))
    return plan


def generate_synthetic_dis5k(
    output_dir: str | os.PathLike,
    num_train: int = 100,
    num_val: int = 20,
    num_test: int = 20,
    size: int = 512,
    seed: int = 0,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a synthetic DIS5K-layout dataset under ``output_dir`` and return its ``DIS5K`` root.

    Args:
        output_dir: must be empty or missing, unless ``overwrite`` (then an existing ``output_dir/DIS5K`` is
            replaced; other contents are left alone).
        num_train / num_val / num_test: images in DIS-TR, DIS-VD and *each* of DIS-TE1..4 (at least 1 each).
        size: image side in pixels (square images), at least 32.
        seed: generation seed; the same arguments give byte-identical files.
        progress: show a tqdm progress bar.

    The tree is built in a hidden staging folder inside ``output_dir`` and swapped into place at the end
    (:func:`birefnet_hf.atomic_io.atomic_folder`), so no partial dataset is ever visible.
    """
    for name, count in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
        if int(count) < 1:
            raise ValueError(f"{name} must be at least 1, got {count}")
    if int(size) < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"output directory {output_dir} exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output directory {output_dir} is not empty; pass overwrite=True (--overwrite) to replace its DIS5K folder"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    final_root = output_dir / "DIS5K"

    plan = _split_plan(int(num_train), int(num_val), int(num_test))
    with atomic_folder(final_root) as staging, tqdm(
        total=sum(count for _, _, count, _ in plan), desc="Synthetic DIS5K", unit="img", disable=not progress
    ) as bar:
        for split_index, folder, count, (low, high) in plan:
            image_folder, mask_folder = staging / folder / "im", staging / folder / "gt"
            image_folder.mkdir(parents=True)
            mask_folder.mkdir(parents=True)
            for index in range(count):
                rng = np.random.default_rng(np.random.SeedSequence([int(seed), split_index, index]))
                synthetic_class = SYNTHETIC_CLASSES[index % len(SYNTHETIC_CLASSES)]
                complexity = float(rng.uniform(low, high))
                image, mask = render_example(rng, int(size), synthetic_class, complexity)
                stem = synthetic_class.file_stem(folder, index)
                image.save(image_folder / f"{stem}.jpg", format="JPEG", quality=_JPEG_QUALITY)
                mask.save(mask_folder / f"{stem}.png", format="PNG")
                bar.update()
    logger.info(f"Wrote a synthetic DIS5K set to {final_root}")
    return final_root


def main(argv: list[str] | None = None) -> int:
    """``birefnet-hf synthetic`` / ``python -m birefnet_hf.data.synthetic``."""
    parser = argparse.ArgumentParser(
        prog="birefnet-hf synthetic",
        description="Write a synthetic dataset in the DIS5K layout (DIS5K/DIS-TR, DIS-VD, DIS-TE1..4 with im/ and gt/).",
    )
    parser.add_argument(
        "--output-dir", required=True, type=Path, help="folder to create DIS5K/ in (empty or missing)"
    )
    parser.add_argument("--num-train", type=int, default=100, help="images in DIS-TR (default: 100)")
    parser.add_argument("--num-val", type=int, default=20, help="images in DIS-VD (default: 20)")
    parser.add_argument("--num-test", type=int, default=20, help="images in each of DIS-TE1..4 (default: 20)")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (default: 512)")
    parser.add_argument("--seed", type=int, default=0, help="generation seed (default: 0)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace output-dir/DIS5K if output-dir is not empty"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        root = generate_synthetic_dis5k(
            args.output_dir,
            num_train=args.num_train,
            num_val=args.num_val,
            num_test=args.num_test,
            size=args.size,
            seed=args.seed,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except (ValueError, FileExistsError, NotADirectoryError) as error:
        parser.error(str(error))
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
