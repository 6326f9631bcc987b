"""Writing image grids and metrics to files (Pillow for PNG, the csv module for CSV)."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

from models.latent import tile_images


def grid_to_uint8(grid: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] → uint8, rounding to nearest."""
    return np.clip(np.rint(np.asarray(grid) * 255.0), 0, 255).astype(np.uint8)


def save_grid_png(
    path: str | os.PathLike[str],
    images: np.ndarray,
    rows: int,
    cols: int,
    scale: int = 1,
    padding: int = 0,
    pad_value: float = 1.0,
) -> tuple[int, int]:
    """Save ``images`` ``(N, C, H, W)`` (pixels in [0, 1]) as one PNG grid.

    The file is exactly ``models.latent.grid_size(rows, cols, (H, W), scale, padding)``
    pixels (height, width). Returns ``(width, height)`` as written.

    Raises:
        ValueError: on bad grid arguments (see ``tile_images``).
        OSError: when the file cannot be written (the message names the path).
    """
    pixels = grid_to_uint8(tile_images(images, rows, cols, scale, padding, pad_value))
    img = Image.fromarray(pixels, mode="L" if pixels.ndim == 2 else "RGB")
    img.save(os.fspath(path), format="PNG")
    return img.size


def save_metrics_csv(path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write a CSV file with a header line; returns the number of data rows written."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            n += 1
    return n
