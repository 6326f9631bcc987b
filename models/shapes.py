"""Procedural shapes with ground-truth factors, in the style of dSprites (Matthey et
al. 2017): 64×64 binary images of a square, an ellipse and a heart at 6 scales,
40 orientations and 32×32 positions, 3 × 6 × 40 × 32 × 32 = 737,280 combinations.

Any combination is rendered on demand from its index (Pillow draws the polygons),
so the whole product is reachable without holding it in memory; a dataset is a
seeded sample of distinct indices.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * math.pi, 40, endpoint=False)
POSITIONS = np.linspace(0.0, 1.0, 32)
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (len(SHAPES), len(SCALES), len(ORIENTATIONS), len(POSITIONS), len(POSITIONS))
TOTAL = int(np.prod(FACTOR_SIZES))


def factors_of(index: int | np.ndarray) -> np.ndarray:
    """Factor indices ``(..., 5)`` (shape, scale, orientation, pos_x, pos_y) of flat indices.

    Raises:
        ValueError: for an index outside 0..737,279.
    """
    index = np.asarray(index, dtype=np.int64)
    if (index < 0).any() or (index >= TOTAL).any():
        raise ValueError(f"shape indices must lie in 0..{TOTAL - 1}")
    return np.stack(np.unravel_index(index, FACTOR_SIZES), axis=-1)


def factor_values(factors: np.ndarray) -> np.ndarray:
    """Factor indices → values: shape id, scale (0.5..1), orientation (radians),
    position x and y (0..1, left→right and top→bottom). ``(..., 5)`` float64."""
    f = np.asarray(factors)
    return np.stack(
        [f[..., 0], SCALES[f[..., 1]], ORIENTATIONS[f[..., 2]], POSITIONS[f[..., 3]], POSITIONS[f[..., 4]]], axis=-1
    ).astype(np.float64)


def _outline(shape: int, n: int = 48) -> np.ndarray:
    """Unit-size outline ``(P, 2)`` centred on 0, radius about 1."""
    if SHAPES[shape] == "square":
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) * 0.8
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    if SHAPES[shape] == "ellipse":
        return np.stack([np.cos(t), 0.55 * np.sin(t)], axis=1)
    # heart: the classic parametric curve, scaled to about the unit disc, tip down
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y], axis=1) / 17.0
    return pts - pts.mean(axis=0)


def render(index: int) -> np.ndarray:
    """The binary image ``(64, 64)`` uint8 (0 or 1) of one flat index."""
    shape, scale, orient, px, py = (int(v) for v in factors_of(index))
    pts = _outline(shape)
    angle = ORIENTATIONS[orient]
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    radius = 10.0 * SCALES[scale]
    margin = 12.0
    centre = np.array([margin + POSITIONS[px] * (SIZE - 2 * margin), margin + POSITIONS[py] * (SIZE - 2 * margin)])
    poly = pts @ rot.T * radius + centre
    img = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(img).polygon([tuple(p) for p in poly], fill=1)
    return np.asarray(img, dtype=np.uint8)


def sample_indices(n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct flat indices, the same for the same seed.

    Raises:
        ValueError: unless 1 ≤ n ≤ 737,280.
    """
    if not 1 <= n <= TOTAL:
        raise ValueError(f"the number of shapes must be between 1 and {TOTAL}, got {n}")
    return np.sort(np.random.default_rng(seed).choice(TOTAL, size=n, replace=False))


def render_many(indices: np.ndarray, on: int = 1) -> np.ndarray:
    """Images ``(N, 1, 64, 64)`` uint8 of the given flat indices, the shape's pixels ``on``
    (1, or 255 for pixels stored as 0..255), the rest 0: one array, written in place."""
    out = np.empty((len(indices), 1, SIZE, SIZE), dtype=np.uint8)
    for k, i in enumerate(indices):
        out[k, 0] = render(int(i))
    if on != 1:
        np.multiply(out, np.uint8(on), out=out)
    return out
