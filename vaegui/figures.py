"""The grids the latent panels show, as figures: the decoded images with the labels a
paper needs (rows, columns, tiles), the latent of every tile, and the settings that
made it. Qt-free: the window's panels and ``vaegui export`` / ``vaegui animate`` build
their grids here, so a headless export is pixel-identical to the window's.

Every builder takes ``decode``: latents ``(N, D)`` → mean images ``(N, C, H, W)``,
pixels in [0, 1] (the model's decoder, with the label of a conditional VAE bound).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from models.latent import interpolate, manifold_latents, prior_samples, traversal_latents

Decode = Callable[[torch.Tensor], np.ndarray]

#: the figure kinds a PNG can remember, and the panel each restores into
KINDS = ("traversal", "interpolation", "samples", "manifold", "data", "analogies")


@dataclass
class GridFigure:
    """A grid of images and what it shows.

    Attributes:
        kind: one of :data:`KINDS`.
        images: ``(rows·cols, C, H, W)``, pixels in [0, 1].
        rows, cols: the grid's layout (row-major).
        row_labels: one per row (drawn left of the grid), or empty.
        col_labels: one per column (drawn above it), or empty.
        tile_labels: one per tile (drawn under it), or empty.
        latents: ``(rows·cols, D)`` float32, the latent decoded in each tile (NaN rows for
            tiles that are data images), or None when the grid shows data only.
        params: the settings that made the grid (JSON-able): what a reopened PNG restores.
        caption: what the grid shows, one sentence (the caption line of a labelled export).
    """

    kind: str
    images: np.ndarray
    rows: int
    cols: int
    row_labels: list[str] = field(default_factory=list)
    col_labels: list[str] = field(default_factory=list)
    tile_labels: list[str] = field(default_factory=list)
    latents: np.ndarray | None = None
    params: dict = field(default_factory=dict)
    caption: str = ""


def signed(v: float) -> str:
    """``v`` with its sign and two decimals, minus as "−" (U+2212), as the labels show it."""
    return f"{v:+.2f}".replace("-", "−")


def traversal_figure(decode: Decode, base: torch.Tensor, dims: Sequence[int], values: torch.Tensor,
                     kl: Sequence[float] = ()) -> GridFigure:
    """The traversal grid of Higgins et al. 2017 (Fig. 7): row r varies ``z[dims[r]]``
    over ``values`` ``(V,)`` with the other dimensions at ``base`` ``(D,)``.

    Row labels name the dimension and its test KL in nats (when ``kl`` ``(D,)`` is
    given); column labels are the values.

    Raises:
        ValueError: a dimension outside 0..D-1 (see :func:`models.latent.traversal_latents`).
    """
    z = traversal_latents(base, list(dims), values)
    known = len(kl) == len(base)
    return GridFigure(
        kind="traversal", images=decode(z), rows=len(dims), cols=len(values),
        row_labels=[f"z{k} · KL {kl[k]:.2f}" if known else f"z{k}" for k in dims],
        col_labels=[signed(float(v)) for v in values],
        latents=z.numpy().astype(np.float32),
        params={"z": [float(v) for v in base], "dims": [int(k) for k in dims],
                "values": [float(v) for v in values]},
        caption=f"Latent traversal: each row varies one z_k from {signed(float(values[0]))} to "
                f"{signed(float(values[-1]))}, the other dimensions held (Higgins et al. 2017).",
    )


def interpolation_figure(decode: Decode, image_a: np.ndarray, image_b: np.ndarray, mu_a: torch.Tensor,
                         mu_b: torch.Tensor, steps: int, mode: str, params: dict | None = None) -> GridFigure:
    """Image A ``(1, C, H, W)``, ``steps`` decoded points on the path from ``mu_a`` to
    ``mu_b`` (``(D,)`` posterior means; linear or slerp, White 2016), then image B.

    Column labels: "A", the fractions t, "B". ``params`` (the picked test indices, say)
    is stored with the figure beside the two means.

    Raises:
        ValueError: steps < 2, mismatched means, an unknown mode (:func:`models.latent.interpolate`).
    """
    z = interpolate(mu_a, mu_b, steps, mode)
    images = np.concatenate([image_a, decode(z), image_b])
    latents = np.full((steps + 2, z.shape[1]), np.nan, dtype=np.float32)
    latents[1:-1] = z.numpy()
    t = np.linspace(0.0, 1.0, steps)
    return GridFigure(
        kind="interpolation", images=images, rows=1, cols=steps + 2,
        col_labels=["A", *[f"t={v:.2f}" for v in t], "B"], latents=latents,
        params={**(params or {}), "mu_a": [float(v) for v in mu_a], "mu_b": [float(v) for v in mu_b],
                "steps": int(steps), "mode": mode},
        caption=f"Interpolation: image A, {steps} decoded points on the "
                f"{'linear' if mode == 'linear' else 'spherical (slerp)'} path between the posterior means, image B.",
    )


def samples_figure(decode: Decode, rows: int, cols: int, latent_dim: int, seed: int,
                   label_name: str = "") -> GridFigure:
    """``rows × cols`` decoded prior samples z ~ N(0, I), reproducible for ``seed``; a
    conditional VAE's tiles are labelled with the label they were decoded with."""
    z = prior_samples(rows * cols, latent_dim, seed)
    return GridFigure(
        kind="samples", images=decode(z), rows=rows, cols=cols,
        tile_labels=[label_name] * (rows * cols) if label_name else [],
        latents=z.numpy().astype(np.float32), params={"rows": rows, "cols": cols, "seed": int(seed)},
        caption=f"Mean images E[x|z] of {rows * cols} prior samples z ~ N(0, I), seed {seed}.",
    )


def manifold_figure(decode: Decode, grid: int, latent_dim: int, dims: tuple[int, int],
                    base: torch.Tensor | None = None) -> GridFigure:
    """The G×G manifold of Kingma & Welling 2014 (Fig. 4): ``z[dims[0]]`` grows left →
    right, ``z[dims[1]]`` bottom → top, at Φ⁻¹ of cell centres; labels are those values.

    Raises:
        ValueError: see :func:`models.latent.manifold_latents`.
    """
    z = manifold_latents(grid, latent_dim, dims, base)
    i, j = dims
    xs = [float(v) for v in z[:grid, i]]
    ys = [float(z[r * grid, j]) for r in range(grid)]
    return GridFigure(
        kind="manifold", images=decode(z), rows=grid, cols=grid,
        row_labels=[f"z{j}={signed(v)}" for v in ys], col_labels=[f"z{i}={signed(v)}" for v in xs],
        latents=z.numpy().astype(np.float32),
        params={"grid": int(grid), "dims": [int(i), int(j)],
                "base": None if base is None else [float(v) for v in base]},
        caption=f"Manifold: z{i} grows left to right, z{j} bottom to top, at the inverse Gaussian CDF of a "
                f"uniform {grid}×{grid} grid (Kingma & Welling 2014, Fig. 4).",
    )


def data_figure(images: np.ndarray, labels: Sequence[str], rows: int, cols: int, first: int) -> GridFigure:
    """A page of data images ``(N, C, H, W)`` with their labels under each tile."""
    return GridFigure(kind="data", images=images, rows=rows, cols=cols, tile_labels=list(labels),
                      params={"first": int(first)},
                      caption=f"Test images #{first}–#{first + len(images) - 1}.")


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """A fingerprint of a model's weights: SHA-256 over the sorted names, dtypes, shapes
    and bytes of its ``state_dict``. Equal for the same weights whichever file holds them."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
