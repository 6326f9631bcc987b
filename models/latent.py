"""Latent-space tools: manifold grids, traversals, interpolation, prior samples,
and the tiling of decoded images into one grid image.

Everything here works on latents ``(N, D)`` (torch) and images ``(N, C, H, W)``
with pixels in [0, 1] (numpy); decoding is left to the caller's model.
"""

from __future__ import annotations

import numpy as np
import torch


def manifold_latents(
    grid: int,
    latent_dim: int,
    dims: tuple[int, int] = (0, 1),
    base: torch.Tensor | None = None,
) -> torch.Tensor:
    """Latents of a G×G manifold grid through the inverse Gaussian CDF.

    Linearly spaced points u on the unit square (cell centres, (i + ½)/G) are mapped
    through Φ⁻¹ so that the grid covers the prior N(0, I) evenly (Kingma & Welling
    2014, Fig. 4; seeds 000 and 004). Dimension ``dims[0]`` grows left to right,
    ``dims[1]`` grows bottom to top, as on a plot; the other dimensions are held at
    ``base`` (zeros, the prior mean, by default).

    Args:
        grid: G, points per side (≥ 1).
        latent_dim: D.
        dims: the two latent dimensions spanned.
        base: ``(D,)`` values of the held dimensions.

    Returns:
        ``(G*G, D)`` latents in row-major order (top row first).

    Raises:
        ValueError: on G < 1, a dimension outside 0..D-1, equal dims, or a base of the wrong size.
    """
    if grid < 1:
        raise ValueError(f"grid must be at least 1, got {grid}")
    i, j = dims
    if not (0 <= i < latent_dim and 0 <= j < latent_dim) or i == j:
        raise ValueError(f"dims must be two different indices in 0..{latent_dim - 1}, got {dims}")
    if base is None:
        base = torch.zeros(latent_dim)
    if base.shape != (latent_dim,):
        raise ValueError(f"base must have shape ({latent_dim},), got {tuple(base.shape)}")
    values = torch.special.ndtri((torch.arange(grid, dtype=torch.float64) + 0.5) / grid).float()
    z = base.float().repeat(grid * grid, 1)
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    z[:, i] = values[cols.flatten()]
    z[:, j] = values.flip(0)[rows.flatten()]
    return z


def traversal_latents(base: torch.Tensor, dims: list[int], values: torch.Tensor) -> torch.Tensor:
    """Latents of a traversal grid: row r varies dimension ``dims[r]`` over ``values``
    with the others held at ``base`` (the traversal figure of Higgins et al. 2017).

    Args:
        base: ``(D,)``.
        dims: the dimensions, one per row.
        values: ``(V,)`` values of the varied dimension, one per column.

    Returns:
        ``(len(dims) * V, D)`` in row-major order.

    Raises:
        ValueError: on a dimension outside 0..D-1.
    """
    d = base.shape[0]
    if any(not 0 <= k < d for k in dims):
        raise ValueError(f"dimensions must lie in 0..{d - 1}, got {dims}")
    z = base.float().repeat(len(dims) * len(values), 1)
    for r, k in enumerate(dims):
        z[r * len(values) : (r + 1) * len(values), k] = values
    return z


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, steps: int, mode: str = "linear") -> torch.Tensor:
    """Latents on the path from ``z_a`` to ``z_b`` (both ends included).

    ``mode="linear"``: (1 − t) z_a + t z_b. ``mode="slerp"``: spherical interpolation
    (Shoemake 1985; White 2016, "Sampling Generative Networks"), which keeps the
    norm typical of Gaussian samples; it falls back to linear when the vectors are
    (anti-)parallel.

    Args:
        z_a, z_b: ``(D,)``.
        steps: number of points, ≥ 2.

    Returns:
        ``(steps, D)``.

    Raises:
        ValueError: on steps < 2, mismatched shapes or an unknown mode.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    if z_a.shape != z_b.shape or z_a.dim() != 1:
        raise ValueError(f"z_a {tuple(z_a.shape)} and z_b {tuple(z_b.shape)} must be equal (D,) vectors")
    t = torch.linspace(0, 1, steps, dtype=torch.float64)[:, None]
    a, b = z_a.double()[None], z_b.double()[None]
    if mode == "linear":
        return ((1 - t) * a + t * b).float()
    if mode != "slerp":
        raise ValueError(f"mode must be 'linear' or 'slerp', got {mode!r}")
    na, nb = a.norm(), b.norm()
    if na < 1e-12 or nb < 1e-12:
        return ((1 - t) * a + t * b).float()
    cos = torch.clamp((a @ b.T).squeeze() / (na * nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    if torch.sin(omega).abs() < 1e-6:
        return ((1 - t) * a + t * b).float()
    out = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    return out.float()


def prior_samples(n: int, latent_dim: int, seed: int) -> torch.Tensor:
    """``(n, D)`` draws from the prior N(0, I), reproducible for a seed."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(int(seed)))


def grid_size(rows: int, cols: int, tile_hw: tuple[int, int], scale: int = 1, padding: int = 0) -> tuple[int, int]:
    """``(height, width)`` in pixels of :func:`tile_images`' output."""
    h, w = tile_hw
    return rows * h * scale + (rows + 1) * padding, cols * w * scale + (cols + 1) * padding


def tile_images(
    images: np.ndarray,
    rows: int,
    cols: int,
    scale: int = 1,
    padding: int = 0,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Tile ``images`` ``(N, C, H, W)`` (pixels in [0, 1]) into one grid image.

    Each tile is enlarged ``scale`` times (nearest neighbour, so pixels stay crisp) and
    ``padding`` pixels of ``pad_value`` separate the tiles and frame the grid; the
    result is exactly :func:`grid_size` pixels. Cells beyond N are left as padding.

    Returns:
        float32 ``(H_out, W_out)`` for one channel, ``(H_out, W_out, C)`` otherwise.

    Raises:
        ValueError: on a wrong rank, N > rows*cols, scale < 1 or padding < 0.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    n, c, h, w = images.shape
    if n > rows * cols:
        raise ValueError(f"{n} images do not fit a {rows}×{cols} grid")
    if scale < 1 or padding < 0:
        raise ValueError(f"scale must be ≥ 1 and padding ≥ 0, got {scale}, {padding}")
    out_h, out_w = grid_size(rows, cols, (h, w), scale, padding)
    out = np.full((out_h, out_w, c), pad_value, dtype=np.float32)
    big = np.asarray(images, dtype=np.float32).transpose(0, 2, 3, 1)
    if scale > 1:
        big = big.repeat(scale, axis=1).repeat(scale, axis=2)
    th, tw = h * scale, w * scale
    for k in range(n):
        r, col = divmod(k, cols)
        y = padding + r * (th + padding)
        x = padding + col * (tw + padding)
        out[y : y + th, x : x + tw] = big[k]
    return out[..., 0] if c == 1 else out


def samples_grid(model, rows: int = 8, cols: int = 8, seed: int = 0, scale: int = 2, padding: int = 2) -> np.ndarray:
    """``rows × cols`` prior samples of ``model`` (any model of :func:`models.vae.build_model`) at
    fixed z (:func:`prior_samples` with ``seed``; a VQ-VAE's code grids drawn from its prior with a
    generator seeded so), decoded to their mean images and tiled (:func:`tile_images`); a conditional
    model cycles through its classes. Pixels in [0, 1]."""
    n = rows * cols
    device = next(model.parameters()).device
    discrete = model.config.discrete
    z = None if discrete else prior_samples(n, model.latent_dim, seed).to(device)
    y = torch.arange(n, device=device) % model.config.n_classes if model.config.conditional else None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if discrete:
                codes = model.sample_codes(n, generator=torch.Generator(device=device).manual_seed(seed))
                images = model.decode_codes(codes).clamp(0, 1).cpu().numpy()
            else:
                images = model.decode(z, y).clamp(0, 1).cpu().numpy()
    finally:
        model.train(was_training)
    return tile_images(images, rows, cols, scale=scale, padding=padding)


def png_bytes(image: np.ndarray) -> bytes:
    """A grid image ``(H, W)`` or ``(H, W, 3)``, pixels in [0, 1], as PNG bytes (Pillow)."""
    import io

    from PIL import Image

    array = np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
