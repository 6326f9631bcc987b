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
KINDS = ("traversal", "interpolation", "samples", "manifold", "data", "analogies", "layers", "codebook")


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


@torch.inference_mode()
def code_samples_figure(model, rows: int, cols: int, seed: int, temperature: float = 1.0) -> GridFigure:
    """``rows × cols`` decoded code grids of a VQ-VAE (:mod:`models.vqvae`) drawn from its prior: the
    learned prior cell by cell at ``temperature``, or the uniform prior (said in the caption), with
    ``seed``; ``latents`` are the codes ``(rows·cols, h·w)`` as float32."""
    codes = model.sample_codes(rows * cols, temperature, torch.Generator().manual_seed(int(seed)))
    learned = model.prior is not None
    return GridFigure(
        kind="samples", images=model.decode_codes(codes).numpy(), rows=rows, cols=cols,
        latents=codes.flatten(1).numpy().astype(np.float32),
        params={"rows": rows, "cols": cols, "seed": int(seed), "temperature": float(temperature)},
        caption=(f"Mean images E[x|z_q] of {rows * cols} code grids drawn from the learned prior at temperature "
                 f"{temperature:g}, seed {seed}." if learned else
                 f"Mean images E[x|z_q] of {rows * cols} code grids drawn from the uniform prior (no learned "
                 f"prior), seed {seed}."),
    )


@torch.inference_mode()
def layer_samples_figure(model, rows: int, cols: int, seed: int) -> GridFigure:
    """What each layer of a two-layer or ladder VAE (:mod:`models.hierarchical`) holds: row r decodes
    one z2 ~ p(z2) = N(0, I); its first column has z1 at the mean of p(z1|z2), the others draws
    z1 ~ p(z1|z2). What stays the same along a row is z2's; what changes, z1's. Reproducible for
    ``seed``; ``latents`` are ``[z1, z2]`` per tile, ``(rows·cols, D1 + D2)``."""
    d1, d2 = model.layer_dims
    g = torch.Generator().manual_seed(int(seed))
    z2 = torch.randn((rows, d2), generator=g)
    eps = torch.randn((rows, cols, d1), generator=g)
    eps[:, 0] = 0.0
    mu, logvar = model.prior_z1(z2)
    z1 = (mu.unsqueeze(1) + torch.exp(0.5 * logvar).unsqueeze(1) * eps).reshape(rows * cols, d1)
    z2_tiles = z2.repeat_interleave(cols, dim=0)
    return GridFigure(
        kind="layers", images=model.decode_layers(z2_tiles, z1=z1).numpy(), rows=rows, cols=cols,
        row_labels=[f"z2 #{r + 1}" for r in range(rows)],
        col_labels=["z1 mean", *[f"z1 draw {c}" for c in range(1, cols)]],
        latents=torch.cat([z1, z2_tiles], 1).numpy().astype(np.float32),
        params={"mode": "samples", "rows": int(rows), "cols": int(cols), "seed": int(seed)},
        caption=f"Each row one z2 ~ N(0, I) (seed {seed}); first column z1 at the mean of p(z1|z2), the "
                f"others z1 ~ p(z1|z2): the top layer holds what a row shares, the lower layer what varies.",
    )


@torch.inference_mode()
def layer_traversal_figure(model, image: torch.Tensor, layer: int, dims: Sequence[int], values: torch.Tensor,
                           draw_seed: int | None = None, params: dict | None = None,
                           activity: Sequence[float] = ()) -> GridFigure:
    """A traversal of one layer of a two-layer or ladder VAE from the posterior means of ``image``
    ``(1, C, H, W)``: row r varies unit ``dims[r]`` of z_``layer`` over ``values`` ``(V,)``.

    * ``layer`` 2: z2_k = v (the prior is N(0, I)), the rest of z2 at its mean; z1 at the mean of
      p(z1|z2), or drawn with one fixed ε (``draw_seed``) so that only z2 changes along a row.
    * ``layer`` 1: z2 held at its posterior mean; z1_k = mean + v·σ, σ the standard deviation of
      p(z1|z2) in that unit, the rest of z1 at its posterior mean.

    ``latents`` are ``[z1, z2]`` per tile; ``activity`` (one value per unit of the layer: Burda et al.
    2016's A_u) labels the rows. Raises ``ValueError`` for a layer other than 1 or 2 or a unit outside
    the layer."""
    if layer not in (1, 2):
        raise ValueError(f"layer must be 1 or 2, got {layer}")
    d1, d2 = model.layer_dims
    size = d1 if layer == 1 else d2
    if any(not 0 <= k < size for k in dims):
        raise ValueError(f"units of z{layer} run from 0 to {size - 1}, got {list(dims)}")
    (mu1, _), (mu2, _) = model.encode_layers(image.float())
    n = len(dims) * len(values)
    grid = values.float().repeat(len(dims))
    rows = torch.arange(len(dims)).repeat_interleave(len(values))
    units = torch.as_tensor(list(dims), dtype=torch.long)[rows]
    z2 = mu2.expand(n, d2).clone()
    if layer == 2:
        z2[torch.arange(n), units] = grid
        pm, plv = model.prior_z1(z2)
        eps = torch.zeros(d1) if draw_seed is None else torch.randn(d1, generator=torch.Generator().manual_seed(
            int(draw_seed)))
        z1 = pm + torch.exp(0.5 * plv) * eps
    else:
        pm, plv = model.prior_z1(mu2)
        z1 = mu1.expand(n, d1).clone()
        z1[torch.arange(n), units] += grid * torch.exp(0.5 * plv[0, units])
    how = {1: "z1_k = mean + v·σ of p(z1|z2), z2 at its posterior mean",
           2: "z2_k = v, z1 " + ("at the mean of p(z1|z2)" if draw_seed is None
                                  else f"from p(z1|z2) with one fixed draw (seed {draw_seed})")}[layer]
    return GridFigure(
        kind="layers", images=model.decode_layers(z2, z1=z1).numpy(), rows=len(dims), cols=len(values),
        row_labels=[f"z{layer}[{k}] · A {activity[k]:.2f}" if len(activity) == size else f"z{layer}[{k}]"
                    for k in dims], col_labels=[signed(float(v)) for v in values],
        latents=torch.cat([z1, z2], 1).numpy().astype(np.float32),
        params={**(params or {}), "mode": f"z{layer}", "dims": [int(k) for k in dims],
                "values": [float(v) for v in values], "draw_seed": draw_seed},
        caption=f"Traversal of layer z{layer}: each row varies one unit from {signed(float(values[0]))} to "
                f"{signed(float(values[-1]))} ({how}).",
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
