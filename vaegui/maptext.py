"""What the Latent map panel writes beside its points: the legend's rows and the caption that
says which images, which latents and which projection the map shows, and what a click decodes."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

from models.embedding import LatentMap


def legend_entries(values: np.ndarray, categorical: bool, colours: list[QColor], value_range: tuple[float, float],
                   key: str, class_names: list[str], colour_name: str) -> list[tuple[str, QColor]]:
    """The legend of points coloured by ``values`` ``(N,)`` (:func:`vaegui.mapview.colour_codes`'s
    colours and range): one row per category (a label by its class name, else ``key = value``),
    or the two ends of a continuous range, named by ``colour_name`` (as the Colour box says it)."""
    if categorical:
        keys = np.unique(values)
        return [((class_names[int(k)] if key == "label" and 0 <= int(k) < len(class_names) else f"{key} = {k:g}"),
                 colours[c]) for c, k in enumerate(keys)]
    lo, hi = value_range
    return [(f"{colour_name} {lo:.3g}", colours[0]), (f"{colour_name} {hi:.3g}", colours[-1])]


def map_caption(m: LatentMap, discrete: bool, snapshot: int) -> str:
    """Which images of which split the map shows, at which latents (posterior means ``mu``, a sample
    z ~ q(z|x), a VQ-VAE's ``z_e``; the lower layer z1), the projection's note, what a click decodes,
    and the weights' snapshot."""
    e, p = m.encoded, m.projection
    what = "posterior means mu" if e.points == "mean" else "one sample z ~ q(z|x) per image"
    if discrete:
        what = "encoder outputs z_e (before quantisation)"
    if m.request.layer == 1:
        what += " of the lower layer z1"
    click = {True: "a click decodes the exact latent under the cursor (or the point clicked)",
             False: "a click decodes the nearest data point's latent"}[p.exact]
    if p.kind == "umap":
        click = "a click decodes UMAP's approximate inverse of the cursor"
    return (f"{len(e):,} images of the {e.split} split{'s' if e.split == 'both' else ''} at their {what}; "
            f"{p.note}; {click}. Weights: snapshot {snapshot}.")


def manifold_centres(m: LatentMap, dims: tuple[int, int], grid: int) -> np.ndarray | None:
    """The Manifold panel's ``grid``×``grid`` latents over its two dimensions ``dims`` (Kingma &
    Welling 2014, Fig. 4) in the map's coordinates, ``(G*G, 2)``, when the map shows those two
    dimensions directly (the latent itself or the same two dimensions of the top layer); else None."""
    from models.latent import manifold_latents

    p = m.projection
    if p.dims is None or set(p.dims) != set(dims) or m.request.layer:
        return None
    z = manifold_latents(grid, m.encoded.codes.shape[1], dims).numpy()
    return z[:, list(p.dims)]
