"""Data a person has: image folders and standard dataset files, read robustly.

* an image folder (recursively; PNG, JPEG, BMP, GIF first frame, WebP, TIFF through
  Pillow); sub-folder names become labels; converted to grayscale or RGB and brought to
  a square size by centre-crop or padding;
* MNIST-format IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST; raw or ``.gz``), with
  the labels file found beside the images file;
* ``.npz`` / ``.npy`` arrays, read with ``allow_pickle=False``.

A bad file is skipped and listed, with its reason, in an :class:`ImportReport`;
good files still load. When nothing at all can be loaded a :class:`DatasetError`
says why. Nothing here runs code from a file: CIFAR-10's "python" batches are pickles
and are therefore not read (convert them to ``.npz`` first).
"""

from __future__ import annotations

import gzip
import os
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.data import ImageDataset, split_images

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class DatasetError(ValueError):
    """Nothing usable could be read; the message says why, for a person."""


@dataclass
class ImportReport:
    """What an import did: ``loaded`` images, and ``skipped`` ``(path, reason)`` pairs."""

    source: str
    loaded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """A report a person can read and copy."""
        lines = [f"Imported {self.loaded:,} images from {self.source}."]
        lines += self.notes
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped):,} files:")
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


# -- image folders ---------------------------------------------------------------------------
def _to_mode(img, channels: int):
    """Convert any Pillow mode (16-bit, CMYK, palette, alpha, ...) to L or RGB."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), mode="L")
    if img.mode in ("P", "PA", "LA", "RGBA") or "transparency" in img.info:
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("L" if channels == 1 else "RGB")


def load_image(path: str | os.PathLike[str], size: int, channels: int = 1, fit: str = "crop") -> np.ndarray:
    """One image file → ``(C, size, size)`` uint8.

    Raises:
        ValueError: the file is empty, not an image, truncated or otherwise unreadable
            (the message is the reason shown in the report).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if path.stat().st_size == 0:
        raise ValueError("empty file")
    try:
        with Image.open(path) as img:
            img.seek(0)  # the first frame of an animation
            img.load()
            img = _to_mode(img, channels)
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"too large to open safely: {exc}") from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"damaged or truncated ({exc})") from None
    if fit == "crop":
        img = ImageOps.fit(img, (size, size), method=Image.Resampling.LANCZOS)
    elif fit == "pad":
        img = ImageOps.pad(img, (size, size), method=Image.Resampling.LANCZOS, color=0)
    else:
        raise ValueError(f"fit must be 'crop' or 'pad', got {fit!r}")
    arr = np.array(img, dtype=np.uint8)  # a writable copy
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def find_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Files below ``folder`` whose suffix is an image format, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def import_folder(
    folder: str | os.PathLike[str],
    size: int = 28,
    channels: int = 1,
    fit: str = "crop",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[ImageDataset, ImportReport]:
    """Import an image folder; sub-folder names (the first level) become labels.

    ``progress(done, total)`` is called as files are read; when ``cancelled()``
    returns True the import stops with :class:`DatasetError`.

    Raises:
        DatasetError: the folder is missing or holds no readable image, or the import
            was cancelled.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    if size not in (28, 32, 64) or channels not in (1, 3):
        raise DatasetError("choose an image size of 28, 32 or 64 and 1 or 3 channels")
    report = ImportReport(str(folder))
    files = find_images(folder)
    others = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES]
    for p in others:
        report.skipped.append((str(p), f"not an image file type ({p.suffix or 'no suffix'})"))
    images, labels, names = [], [], {}
    for i, path in enumerate(files):
        if cancelled is not None and cancelled():
            raise DatasetError("the import was cancelled; nothing was changed")
        try:
            images.append(load_image(path, size, channels, fit))
        except ValueError as exc:
            report.skipped.append((str(path), str(exc)))
            continue
        rel = path.relative_to(folder).parts
        label = rel[0] if len(rel) > 1 else "(top folder)"
        labels.append(names.setdefault(label, len(names)))
        if progress is not None and (i % 16 == 0 or i == len(files) - 1):
            progress(i + 1, len(files))
    report.loaded = len(images)
    if len(images) < 2:
        raise DatasetError(f"{folder} holds {len(images)} readable image(s); at least 2 are needed.\n" + report.text())
    x = np.stack(images)  # uint8: kept compact
    n_test = max(1, len(x) // 5)
    data = split_images(f"folder:{folder}", x, np.array(labels), n_test=n_test, seed=seed,
                        class_names=tuple(names))
    report.notes.append(f"{len(names)} label(s) from sub-folders: {', '.join(names)}; "
                        f"{size}×{size}, {channels} channel(s), {fit}; split {len(x) - n_test}/{n_test}.")
    return data, report


# -- IDX (MNIST format) ----------------------------------------------------------------------
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzip), e.g. ``train-images-idx3-ubyte.gz``.

    Raises:
        DatasetError: a wrong magic number, an unknown type, or a body shorter or longer
            than the header says.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path.name}: cannot be read ({exc})") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES or not 1 <= data[3] <= 4:
        raise DatasetError(f"{path.name}: wrong magic number {data[:4].hex() or '(empty)'}: not an IDX file")
    dtype = np.dtype(_IDX_TYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path.name}: the header is cut short")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) * dtype.itemsize
    body = len(data) - header
    if body != expected:
        raise DatasetError(f"{path.name}: the header announces {shape} ({expected:,} bytes) but the body has "
                           f"{body:,} bytes: the file is {'short' if body < expected else 'too long'}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _labels_beside(images_path: Path) -> Path | None:
    name = images_path.name
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1"), ("images", "labels")):
        if a in name:
            candidate = images_path.with_name(name.replace(a, b))
            if candidate.exists():
                return candidate
    return None


def import_idx(path: str | os.PathLike[str], seed: int = 0) -> tuple[ImageDataset, ImportReport]:
    """Import an IDX images file (uint8, ``(N, H, W)``) and its labels file if it is beside it.

    Raises:
        DatasetError: for a bad file or labels that do not match the images.
    """
    path = Path(path)
    report = ImportReport(str(path))
    images = read_idx(path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{path.name}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    labels_path = _labels_beside(path)
    labels = np.zeros(len(images), dtype=np.int64)
    if labels_path is not None:
        try:
            labels = read_idx(labels_path).astype(np.int64)
        except DatasetError as exc:
            report.skipped.append((str(labels_path), str(exc)))
            labels = np.zeros(len(images), dtype=np.int64)
        if len(labels) != len(images):
            report.skipped.append((str(labels_path), f"{len(labels)} labels for {len(images)} images"))
            labels = np.zeros(len(images), dtype=np.int64)
    else:
        report.notes.append("No labels file found beside it: every image gets label 0.")
    x = images[:, None]
    report.loaded = len(x)
    n_test = max(1, len(x) // 6)
    return split_images(f"file:{path}", x, labels, n_test=n_test, seed=seed), report


# -- numpy arrays ----------------------------------------------------------------------------
def import_npz(path: str | os.PathLike[str], seed: int = 0) -> tuple[ImageDataset, ImportReport]:
    """Import ``.npz`` (arrays ``x``/``images``/``X`` and optionally ``y``/``labels``, and
    ground-truth ``factors`` ``(N, K)`` with ``factor_names`` ``(K,)`` for the disentanglement
    scores) or ``.npy`` (images only): ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``,
    uint8 or floats in [0, 1]. Read with ``allow_pickle=False``. Labels or factors that do
    not fit the images are left out with the reason in the report.

    Raises:
        DatasetError: no image array, a wrong rank, values out of range, or a pickle inside.
    """
    path = Path(path)
    report = ImportReport(str(path))
    try:
        images, labels, factors, factor_names = _read_numpy(path)
    except DatasetError:
        raise
    except (ValueError, OSError, EOFError, KeyError, TypeError, IndexError, SyntaxError, MemoryError,
            tokenize.TokenError, zipfile.BadZipFile, zlib.error) as exc:
        # numpy parses the .npy header with Python's tokenizer: a damaged one raises any of these
        raise DatasetError(f"{path.name}: not a readable numpy file ({str(exc)[:200] or type(exc).__name__})") from exc
    if images.dtype != np.uint8 and images.dtype.kind not in "fiu":
        raise DatasetError(f"{path.name}: pixels must be uint8 or real numbers, not {images.dtype}")
    if labels is not None and (labels.ndim != 1 or labels.dtype.kind not in "iu"):
        report.skipped.append((str(path), f"labels of shape {labels.shape} and type {labels.dtype} ignored: "
                                          "one integer per image is needed"))
        labels = None
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DatasetError(f"{path.name}: images must be (N, H, W), (N, H, W, C) or (N, C, H, W); got {images.shape}")
    if len(images) < 2 or min(images.shape[2:]) < 1:
        raise DatasetError(f"{path.name}: at least 2 images of at least 1×1 pixels are needed; got {images.shape}")
    if images.dtype == np.uint8:
        x = np.array(images, order="C")  # a writable copy (an .npz member is read-only)
    else:
        x = images.astype(np.float32)
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise DatasetError(f"{path.name}: float pixels must be finite and lie in [0, 1]")
    if labels is None or len(labels) != len(x):
        if labels is not None:
            report.skipped.append((str(path), f"{len(labels)} labels for {len(x)} images: labels ignored"))
        labels = np.zeros(len(x), dtype=np.int64)
    report.loaded = len(x)
    if len(x) < 2:
        raise DatasetError(f"{path.name}: at least 2 images are needed")
    factors, factor_names = _checked_factors(path, factors, factor_names, len(x), report)
    return split_images(f"file:{path}", x, np.asarray(labels).astype(np.int64), n_test=max(1, len(x) // 6),
                        seed=seed, factors=factors, factor_names=factor_names), report


def _checked_factors(path: Path, factors, names, n: int, report: ImportReport):
    """``(factors (N, K) float64, names)``, or ``(None, ())`` with the reason in the report."""
    if factors is None:
        return None, ()
    factors = np.asarray(factors)
    if factors.ndim == 1:
        factors = factors[:, None]
    why = ""
    if factors.ndim != 2 or len(factors) != n or factors.shape[1] < 1:
        why = f"factors of shape {factors.shape} for {n} images: (N, K) is needed"
    elif factors.dtype.kind not in "fiu" or not np.isfinite(factors).all():
        why = f"factors must be finite numbers, not {factors.dtype}"
    if why:
        report.skipped.append((str(path), why + "; factors ignored"))
        return None, ()
    k = factors.shape[1]
    names = [str(v) for v in np.asarray(names).ravel()] if names is not None else []
    if len(names) != k:
        if names:
            report.skipped.append((str(path), f"{len(names)} factor_names for {k} factors: named factor 0..{k - 1}"))
        names = [f"factor {i}" for i in range(k)]
    report.notes.append(f"{k} ground-truth factors: {', '.join(names)}")
    return factors.astype(np.float64), tuple(names)


def _read_numpy(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The image array, the labels, the factors and their names (None where absent) of a
    ``.npy`` / ``.npz`` file."""
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.ndarray):
        return loaded, None, None, None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path.name}: not a numpy array file")
    with loaded:
        keys = {k.lower(): k for k in loaded.files}
        image_key = next((keys[k] for k in ("x", "images", "x_train", "data") if k in keys), None)
        if image_key is None:
            raise DatasetError(f"{path.name}: no image array (x, images, x_train or data) among {loaded.files}")
        label_key = next((keys[k] for k in ("y", "labels", "y_train", "targets") if k in keys), None)
        factors = loaded[keys["factors"]] if "factors" in keys else None
        names = loaded[keys["factor_names"]] if "factor_names" in keys and factors is not None else None
        return loaded[image_key], None if label_key is None else loaded[label_key], factors, names


def import_path(
    path: str | os.PathLike[str], size: int = 28, channels: int = 1, fit: str = "crop", seed: int = 0,
    progress=None, cancelled=None,
) -> tuple[ImageDataset, ImportReport]:
    """Import a folder, an IDX file or a numpy file, by what ``path`` is.

    Raises:
        DatasetError: when nothing usable can be read (the message says why).
    """
    path = Path(path)
    if path.is_dir():
        return import_folder(path, size, channels, fit, seed, progress, cancelled)
    if not path.is_file():
        raise DatasetError(f"{path} does not exist")
    name = path.name.lower()
    if name.endswith((".npz", ".npy")):
        return import_npz(path, seed)
    if "idx" in name or name.endswith("-ubyte") or name.endswith("-ubyte.gz"):
        return import_idx(path, seed)
    if name.endswith(".pkl") or "_batch" in name:
        raise DatasetError(f"{path.name} looks like a pickled (CIFAR python) batch: vaegui never unpickles "
                           "files; convert it to .npz (x, y arrays) first")
    raise DatasetError(f"{path.name}: not a folder, an IDX file or a .npz/.npy file")
