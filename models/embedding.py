"""The encoder's view of the latent space: where the data lands in z.

:func:`encode_split` encodes a split of a dataset (posterior means ``mu``, or one
sample z ~ q(z|x)) with each image's ELBO terms; :func:`project` maps the codes to a
plane (the latent itself, two chosen dimensions, PCA, t-SNE or UMAP) and says how a
point of the plane maps back to a latent; :func:`build_map` does both, as the window's
Latent map panel and ``vaegui embed`` do. Attribute vectors (White 2016; Liu, Jun, Li &
Heer 2019) are in :mod:`models.attributes`.

Long work takes ``progress(fraction, text)`` and ``stopped()`` callables: the
encoding checks ``stopped`` between chunks, t-SNE every 10 iterations, so a Cancel
takes effect within a fraction of a second (UMAP offers no hook: it is checked
before and after the fit).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from models.data import ImageDataset, as_float
from models.objectives import gaussian_kl, objective_terms

Progress = Callable[[float, str], None]
Stopped = Callable[[], bool]

SPLITS = ("test", "train", "both")
#: projection key → (name shown, the module it needs or "")
PROJECTIONS = {
    "latent": ("latent (D = 2)", ""),
    "dims": ("two latent dimensions", ""),
    "pca": ("PCA", "sklearn"),
    "tsne": ("t-SNE (openTSNE)", "openTSNE"),
    "umap": ("UMAP (umap-learn)", "umap"),
}
#: the pip package that provides a projection's module
PACKAGES = {"openTSNE": "openTSNE", "umap": "umap-learn", "sklearn": "scikit-learn"}


class MapStopped(Exception):
    """The map's computation was cancelled (``stopped()`` returned True)."""


class MissingExtra(ImportError):
    """A projection needs an optional package that is not installed (the message says which)."""


@dataclass
class Encoded:
    """A split encoded by one model.

    Attributes:
        split: ``"test"``, ``"train"`` or ``"both"``.
        source: ``(N,)`` int8, 0 for a test image, 1 for a training image.
        index: ``(N,)`` int64, the image's index within its split.
        labels: ``(N,)`` int64 class labels.
        codes: ``(N, D)`` float32, the points: posterior means ``mu`` or, with
            ``points="sample"``, one draw z ~ q(z|x) (reparameterized, seeded).
        mu: ``(N, D)`` float32 posterior means (equal to ``codes`` for ``points="mean"``).
        kl: ``(N,)`` KL(q(z|x) ‖ p(z)) per image, nats (0 for the plain autoencoder).
        neg_elbo: ``(N,)`` −ELBO per image, nats (one-sample estimate; the
            reconstruction alone for the autoencoder).
        factors: ``(N, F)`` ground-truth factor values, or None.
        factor_names: the factors' names.
        class_names: one name per label value.
        points: ``"mean"`` or ``"sample"``.
    """

    split: str
    source: np.ndarray
    index: np.ndarray
    labels: np.ndarray
    codes: np.ndarray
    mu: np.ndarray
    kl: np.ndarray
    neg_elbo: np.ndarray
    factors: np.ndarray | None = None
    factor_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    points: str = "mean"

    def __len__(self) -> int:
        return len(self.codes)

    def columns(self) -> dict[str, np.ndarray]:
        """Per-point values by name, for colouring and for group conditions: ``label``,
        each factor, ``neg_elbo``, ``kl`` and ``z0``, ``z1``, … (the codes)."""
        out = {"label": self.labels, "neg_elbo": self.neg_elbo, "kl": self.kl}
        if self.factors is not None:
            out.update({name: self.factors[:, i] for i, name in enumerate(self.factor_names)})
        out.update({f"z{k}": self.codes[:, k] for k in range(self.codes.shape[1])})
        return out


def split_data(dataset: ImageDataset, split: str) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """``(images (N, C, H, W), labels (N,), source (N,), index (N,))`` of a split; the
    images may be uint8 storage (see :func:`models.data.as_float`).

    Raises:
        ValueError: on an unknown split name.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    parts = []
    if split in ("test", "both"):
        parts.append((dataset.test_x, dataset.test_y, 0))
    if split in ("train", "both"):
        parts.append((dataset.train_x, dataset.train_y, 1))
    xs = [p[0] for p in parts]
    if len(xs) == 2 and xs[0].dtype != xs[1].dtype:  # float test split beside uint8 training storage
        xs = [as_float(x) for x in xs]
    images = xs[0] if len(xs) == 1 else torch.cat(xs)
    labels = torch.cat([p[1] for p in parts])
    source = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts])
    index = np.concatenate([np.arange(len(p[0]), dtype=np.int64) for p in parts])
    return images, labels, source, index


def split_image(dataset: ImageDataset, source: int, index: int) -> torch.Tensor:
    """One image ``(1, C, H, W)`` float32 in [0, 1]: test (``source`` 0) or train (1) ``index``."""
    x = dataset.test_x if source == 0 else dataset.train_x
    return as_float(x[index : index + 1].clone())


@torch.inference_mode()
def encode_split(
    model,
    dataset: ImageDataset,
    split: str = "test",
    *,
    points: str = "mean",
    batch_size: int = 1000,
    seed: int = 0,
    progress: Progress | None = None,
    stopped: Stopped | None = None,
    layer: int = 0,
) -> Encoded:
    """Encode a split with ``model`` (any model of :func:`models.vae.build_model`, on the CPU or a
    device), chunk by chunk, with each image's one-sample ELBO terms.

    Args:
        model: the encoder and decoder; left in the mode it was in.
        dataset: the images; ``split`` is ``"test"``, ``"train"`` or ``"both"``.
        points: ``"mean"`` (posterior means ``mu``) or ``"sample"`` (one z ~ q(z|x)).
        batch_size: images per chunk (≥ 1).
        seed: the noise of the ELBO's one-sample estimate and of ``points="sample"``.
        layer: 0 for the model's latent (the top layer z2 of a hierarchical VAE, the flattened
            encoder output z_e of a VQ-VAE), 1 for the lower layer z1 of a hierarchical VAE
            (its posterior along the mean of z2 for the ladder).

    Returns:
        :class:`Encoded`, ELBO terms in nats per image.

    Raises:
        ValueError: on an unknown split or points, images of another shape than the model's, or a
            layer the model does not have.
        MapStopped: when ``stopped()`` turns True between two chunks.
    """
    if points not in ("mean", "sample"):
        raise ValueError(f"points must be 'mean' or 'sample', got {points!r}")
    images, labels, source, index = split_data(dataset, split)
    want = tuple(model.config.input_shape)
    if tuple(images.shape[1:]) != want:
        raise ValueError(f"the model takes {want} images, the dataset has {tuple(images.shape[1:])}")
    device = next(model.parameters()).device
    conditional = model.config.conditional
    gen = torch.Generator(device=device).manual_seed(int(seed))
    if layer not in (0, 1) or (layer == 1 and not getattr(model, "hierarchical", False)):
        raise ValueError(f"this {model.config.describe()} has no layer {layer} to map")
    # the VAE's encoder pass gives mu and the ELBO's terms at once; the other models' terms take their own pass
    one_pass = not (getattr(model, "hierarchical", False) or getattr(model, "discrete", False))
    n, d = len(images), (model.layer_dims[0] if layer == 1 else model.latent_dim)
    mu = np.empty((n, d), dtype=np.float32)
    codes = mu if points == "mean" else np.empty((n, d), dtype=np.float32)
    kl = np.empty(n, dtype=np.float32)
    neg = np.empty(n, dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, n, max(1, batch_size)):
            if stopped is not None and stopped():
                raise MapStopped
            stop = min(n, start + max(1, batch_size))
            xb = as_float(images[start:stop].to(device))
            yb = labels[start:stop].to(device) if conditional else None
            m, logvar = model.encode_layers(xb)[0] if layer == 1 else model.encode(xb, yb)
            z = m if logvar is None else model.reparameterize(m, logvar, gen)
            if one_pass:  # as objective_terms computes them, from the same pass
                recon = -model.likelihood.log_prob(model.decode_params(z, yb).float(), xb)
                k = torch.zeros_like(recon) if logvar is None else gaussian_kl(m.float(), logvar.float())
            else:
                terms = objective_terms(model, xb, yb, gen)
                recon, k = terms.recon, terms.kl
            mu[start:stop] = m.float().cpu().numpy()
            if points == "sample":
                codes[start:stop] = z.float().cpu().numpy()
            kl[start:stop] = k.cpu().numpy()
            neg[start:stop] = (recon + k).cpu().numpy()
            if progress is not None:
                progress(stop / n, f"encoded {stop:,} of {n:,} images")
    finally:
        model.train(was_training)
    factors = None
    if dataset.test_factors is not None:
        parts = []
        if split in ("test", "both"):
            parts.append(dataset.test_factors)
        if split in ("train", "both"):
            parts.append(dataset.train_factors)
        factors = torch.cat(parts).double().numpy()
    return Encoded(split=split, source=source, index=index, labels=labels.numpy().astype(np.int64), codes=codes,
                   mu=mu, kl=kl, neg_elbo=neg, factors=factors, factor_names=tuple(dataset.factor_names),
                   class_names=tuple(dataset.class_names), points=points)


# -- projections ----------------------------------------------------------------------------------
@dataclass
class Projection:
    """Codes ``(N, D)`` placed on a plane, and the way back.

    Attributes:
        kind: a key of :data:`PROJECTIONS` (or ``"attribute"``, see :mod:`models.attributes`).
        points: ``(N, 2)`` float32 positions.
        axes: the axes' names (``("z0", "z3")``, ``("PC 1", "PC 2")``, …).
        exact: True when :meth:`latent_at` inverts the projection exactly (the latent
            itself, PCA's plane); False when a click decodes the nearest data point's latent.
        note: what the projection is, for a caption (explained variance, settings).
        pca_mean, pca_components: PCA's plane, ``(D,)`` and ``(2, D)`` (PCA only).
        dims: the two dimensions shown (``latent`` and ``dims`` only).
        inverse: UMAP's approximate ``inverse_transform`` (UMAP only).
    """

    kind: str
    points: np.ndarray
    axes: tuple[str, str]
    exact: bool
    note: str = ""
    pca_mean: np.ndarray | None = None
    pca_components: np.ndarray | None = None
    dims: tuple[int, int] | None = None
    inverse: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def latent_at(self, xy: tuple[float, float], codes: np.ndarray) -> tuple[np.ndarray, int | None, str]:
        """The latent ``(D,)`` that a click at ``xy`` decodes, the data point used (or
        None) and how it was found: ``"exact"`` (the inverse of the projection),
        ``"approximate"`` (UMAP's inverse_transform) or ``"nearest"`` (the nearest data
        point's code)."""
        p = np.asarray(xy, dtype=np.float64)
        if self.kind == "latent":
            return p.astype(np.float32), None, "exact"
        if self.kind == "pca" and self.pca_components is not None:
            return (self.pca_mean + p @ self.pca_components).astype(np.float32), None, "exact"
        if self.inverse is not None:
            try:
                return np.asarray(self.inverse(p[None]), dtype=np.float32)[0], None, "approximate"
            except Exception:  # noqa: BLE001 - UMAP's inverse can fail on odd maps: fall back
                pass
        i = nearest(self.points, p)
        return codes[i].astype(np.float32), i, "nearest"


def _no_pynndescent_import() -> None:
    """openTSNE asks whether pynndescent is installed by importing it (to prefer it for
    sparse data or unusual metrics, never for our dense Euclidean codes). With umap-learn
    installed that import compiles numba code for ~25 s in the worker thread, holding the
    GIL in long stretches, and the window froze for as long. Ask the package index instead."""
    import importlib.util

    from openTSNE import affinity

    if hasattr(affinity, "is_package_installed"):
        affinity.is_package_installed = lambda name: importlib.util.find_spec(name) is not None


def nearest(points: np.ndarray, xy, within: float | tuple[float, float] | None = None) -> int | None:
    """Index of the point ``(N, 2)`` nearest to ``xy``; with ``within`` (a radius, or
    per-axis radii ``(rx, ry)`` for a plot whose axes differ in scale), None when the
    nearest is farther than that."""
    if len(points) == 0:
        return None
    scale = np.ones(2) if within is None else np.broadcast_to(np.asarray(within, dtype=np.float64), (2,))
    d2 = (((points - np.asarray(xy, dtype=np.float64)) / scale) ** 2).sum(axis=1)
    i = int(np.argmin(d2))
    if within is not None and d2[i] > 1.0:
        return None
    return i


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which points ``(N, 2)`` lie inside ``polygon`` ``(K, 2)`` (closed implicitly;
    even–odd rule by ray casting, vectorised over the points), a mask ``(N,)``.
    Fewer than 3 vertices select nothing."""
    pts = np.asarray(points, dtype=np.float64)
    poly = np.asarray(polygon, dtype=np.float64)
    inside = np.zeros(len(pts), dtype=bool)
    if len(poly) < 3:
        return inside
    x, y = pts[:, 0], pts[:, 1]
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_at)
    return inside


def require(module: str):
    """Import an optional projection's module, or raise :class:`MissingExtra` saying how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pkg = PACKAGES.get(module, module)
        raise MissingExtra(
            f"This projection needs the optional package {pkg}, which is not installed. "
            f"Install it with: pip install {pkg} (or pip install 'vaegui[maps]')."
        ) from exc


def _align(points: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Flip each axis of ``points`` whose correlation with ``previous`` is negative,
    so a recomputed map keeps its orientation (PCA's signs are arbitrary)."""
    if previous is None or previous.shape != points.shape:
        return points
    out = points.copy()
    for k in range(points.shape[1]):
        if float(np.dot(points[:, k] - points[:, k].mean(), previous[:, k] - previous[:, k].mean())) < 0:
            out[:, k] = -out[:, k]
    return out


def project(
    codes: np.ndarray,
    kind: str = "pca",
    *,
    dims: tuple[int, int] = (0, 1),
    previous: np.ndarray | None = None,
    seed: int = 0,
    perplexity: float = 30.0,
    progress: Progress | None = None,
    stopped: Stopped | None = None,
) -> Projection:
    """Place codes ``(N, D)`` on a plane.

    * ``latent``: z itself (D = 2 only); exact inverse.
    * ``dims``: the two latent dimensions ``dims``; a click decodes the nearest point.
    * ``pca``: scikit-learn's PCA onto two components; exact inverse within the plane
      (z = mean + p · components).
    * ``tsne``: openTSNE (Poličar, Stražar & Zupan 2019) with ``perplexity``; a
      ``previous`` map of the same points initialises it (rescaled to a small spread,
      as openTSNE advises), so a recomputed map moves instead of jumping.
    * ``umap``: umap-learn (McInnes, Healy & Melville 2018), ``previous`` as its
      initialisation; UMAP's approximate ``inverse_transform`` decodes a click.

    Raises:
        ValueError: on an unknown kind, ``latent`` with D ≠ 2, bad ``dims``, or fewer
            than 3 points for PCA/t-SNE/UMAP.
        MissingExtra: the optional package of t-SNE or UMAP is missing.
        MapStopped: ``stopped()`` turned True.
    """
    codes = np.asarray(codes, dtype=np.float32)
    if codes.ndim != 2:
        raise ValueError(f"codes must be (N, D), got shape {codes.shape}")
    n, d = codes.shape
    if previous is not None and previous.shape != (n, 2):
        previous = None

    def check() -> None:
        if stopped is not None and stopped():
            raise MapStopped

    if kind == "latent":
        if d != 2:
            raise ValueError(f"the latent itself is a plane only for D = 2, this model has D = {d}")
        return Projection("latent", codes.copy(), ("z0", "z1"), True, "the latent z itself", dims=(0, 1))
    if kind == "dims":
        i, j = dims
        if not (0 <= i < d and 0 <= j < d) or i == j:
            raise ValueError(f"dims must be two different indices in 0..{d - 1}, got {dims}")
        return Projection("dims", codes[:, [i, j]].copy(), (f"z{i}", f"z{j}"), d == 2,
                          f"dimensions z{i} and z{j}", dims=(i, j))
    if kind not in PROJECTIONS:
        raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}, got {kind!r}")
    if n < 3:
        raise ValueError(f"{PROJECTIONS[kind][0]} needs at least 3 points, got {n}")
    check()
    if kind == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(2, d), random_state=seed).fit(codes)
        comps = pca.components_.astype(np.float64)
        if d == 1:  # a one-dimensional latent: the second axis is empty
            comps = np.vstack([comps, np.zeros((1, 1))])
        # signs follow the previous map's, so the map keeps its orientation between epochs
        pts = (codes - pca.mean_) @ comps.T
        aligned = _align(pts, previous)
        flips = np.where((aligned * pts).sum(axis=0) < 0, -1.0, 1.0)
        comps = comps * flips[:, None]
        pts = (codes - pca.mean_) @ comps.T
        var = pca.explained_variance_ratio_
        note = "PCA: " + ", ".join(f"PC {k + 1} {100 * v:.1f}%" for k, v in enumerate(var)) + " of the variance"
        if progress is not None:
            progress(1.0, "PCA done")
        return Projection("pca", pts.astype(np.float32), ("PC 1", "PC 2"), True, note,
                          pca_mean=pca.mean_.astype(np.float64), pca_components=comps)
    if kind == "tsne":
        open_tsne = require("openTSNE")
        _no_pynndescent_import()
        total = 750  # openTSNE's defaults: 250 early-exaggeration + 500 iterations

        class Tick:
            done = 0

        def callback(iteration, error, _embedding):
            Tick.done += 10
            if stopped is not None and stopped():
                raise MapStopped
            if progress is not None:
                progress(min(1.0, Tick.done / total), f"t-SNE iteration {min(Tick.done, total)} of {total} "
                                                       f"(KL {error:.2f})")
            return False

        init = "pca"
        if previous is not None:
            centred = previous - previous.mean(axis=0)
            init = (centred / max(float(centred[:, 0].std()), 1e-12) * 1e-4).astype(np.float64)
        if progress is not None:
            progress(0.0, f"t-SNE: nearest neighbours of {n:,} points")
        tsne = open_tsne.TSNE(n_components=2, perplexity=min(perplexity, (n - 1) / 3), random_state=seed,
                              n_jobs=torch.get_num_threads(), callbacks=callback, callbacks_every_iters=10,
                              initialization=init, verbose=False)
        pts = np.asarray(tsne.fit(codes.astype(np.float64)), dtype=np.float32)
        check()
        return Projection("tsne", _align(pts, previous), ("t-SNE 1", "t-SNE 2"), False,
                          f"t-SNE, perplexity {tsne.perplexity:g} (openTSNE)")
    umap = require("umap")
    if progress is not None:
        progress(0.0, f"UMAP of {n:,} points (no progress from umap-learn; Cancel applies when it ends)")
    reducer = umap.UMAP(n_components=2, random_state=seed, init=previous if previous is not None else "spectral",
                        n_neighbors=min(15, n - 1))
    pts = np.asarray(reducer.fit_transform(codes), dtype=np.float32)
    check()
    return Projection("umap", _align(pts, previous), ("UMAP 1", "UMAP 2"), False, "UMAP, 15 neighbours (umap-learn)",
                      inverse=reducer.inverse_transform)


# -- the map: encoding and projection together ------------------------------------------------------
@dataclass(frozen=True)
class MapRequest:
    """What to map: the split, mean or sampled points, the projection and its settings."""

    split: str = "test"
    points: str = "mean"
    projection: str = "pca"
    dims: tuple[int, int] = (0, 1)
    seed: int = 0
    perplexity: float = 30.0
    #: 0: the model's latent; 1: the lower layer z1 of a hierarchical VAE (see :func:`encode_split`)
    layer: int = 0


@dataclass
class LatentMap:
    """An encoded split and its projection (see :func:`build_map`)."""

    request: MapRequest
    encoded: Encoded
    projection: Projection


def build_map(
    model,
    dataset: ImageDataset,
    request: MapRequest,
    *,
    previous: LatentMap | None = None,
    progress: Progress | None = None,
    stopped: Stopped | None = None,
) -> LatentMap:
    """Encode ``request.split`` and project it (the Latent map panel and ``vaegui embed``).

    The encoding takes the first 70% of the progress for PCA-like projections, 30% for
    t-SNE and UMAP. A ``previous`` map of the same split and projection seeds the new
    layout (see :func:`project`).

    Raises:
        ValueError, MissingExtra, MapStopped: as :func:`encode_split` and :func:`project`.
    """
    heavy = request.projection in ("tsne", "umap")
    share = 0.3 if heavy else 0.9

    def part(lo: float, width: float) -> Progress | None:
        if progress is None:
            return None
        return lambda f, text: progress(lo + width * f, text)

    if request.projection in ("tsne", "umap"):
        require(PROJECTIONS[request.projection][1])  # say what is missing before the encoding
    encoded = encode_split(model, dataset, request.split, points=request.points, seed=request.seed,
                           progress=part(0.0, share), stopped=stopped, layer=request.layer)
    prev = None
    if previous is not None and previous.request.split == request.split and \
            previous.request.projection == request.projection:
        prev = previous.projection.points
    proj = project(encoded.codes, request.projection, dims=request.dims, previous=prev, seed=request.seed,
                   perplexity=request.perplexity, progress=part(share, 1.0 - share), stopped=stopped)
    return LatentMap(request, encoded, proj)


def build_maps(
    model,
    second_model,
    dataset: ImageDataset,
    request: MapRequest,
    *,
    previous: tuple[LatentMap | None, LatentMap | None] = (None, None),
    progress: Progress | None = None,
    stopped: Stopped | None = None,
) -> tuple[LatentMap, LatentMap | None]:
    """:func:`build_map` of ``model`` and, when ``second_model`` is not None, of the second model
    over the same images with the same request (the Latent map panel's comparison), each seeded
    by its ``previous`` map; the progress is split between the two.

    Raises:
        ValueError, MissingExtra, MapStopped: as :func:`build_map`.
    """
    share = 0.5 if second_model is not None else 1.0

    def part(lo: float, prefix: str) -> Progress | None:
        return None if progress is None else (lambda f, text: progress(lo + share * f, prefix + text))

    first = build_map(model, dataset, request, previous=previous[0], progress=part(0.0, ""), stopped=stopped)
    if second_model is None:
        return first, None
    return first, build_map(second_model, dataset, request, previous=previous[1],
                            progress=part(0.5, "second model: "), stopped=stopped)
