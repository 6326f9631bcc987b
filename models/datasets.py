"""The one dataset resolver: a dataset name or path in, the dataset and its import
report out. The command line (``--dataset``), the window's drop-down, File ▸ Import,
File ▸ Download and opening a saved model all go through :func:`parse_dataset` and
:func:`resolve_dataset`.

The names:

* ``mnist5k``, ``digits``, ``shapes`` (built in; ``shapes`` draws 5,000) and
  ``shapes:N`` (N of the 737,280 shapes);
* ``download:mnist``, ``download:fashion-mnist``, ``download:cifar10`` (verified, cached);
* ``folder:PATH`` (an image folder), ``file:PATH`` (IDX or ``.npz``/``.npy``),
  ``auto:PATH`` or a bare existing ``PATH`` (folder or file, by what it is).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.data import DATASETS, ImageDataset, load_dataset, shapes_count
from models.importers import DatasetError, ImportReport, import_path


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed dataset name.

    Attributes:
        kind: ``"builtin"``, ``"shapes"``, ``"download"``, ``"folder"`` or ``"file"``.
        value: the built-in key, the download key, or the path.
        count: the number of shapes drawn (``"shapes"`` only).
    """

    kind: str
    value: str
    count: int = 0

    @property
    def name(self) -> str:
        """The canonical name, as datasets and checkpoints carry it (``"shapes:5000"``,
        ``"folder:/data/faces"``)."""
        if self.kind == "builtin":
            return self.value
        if self.kind == "shapes":
            return f"shapes:{self.count}"
        return f"{self.kind}:{self.value}"

    @property
    def builtin(self) -> bool:
        """True for data that ships with the app (built-in keys and shapes)."""
        return self.kind in ("builtin", "shapes")


def parse_dataset(name: str) -> DatasetSpec:
    """Parse a dataset name (see the module's docstring).

    Raises:
        ValueError: an unknown name, a shapes count that is not a whole number in
            10..737,280, an unknown download key, or a path that does not exist.
    """
    from models.downloads import SOURCES

    name = str(name).strip()
    if name in DATASETS and name != "shapes":
        return DatasetSpec("builtin", name)
    if name == "shapes" or name.startswith("shapes:"):
        return DatasetSpec("shapes", "shapes", shapes_count(name))
    if name.startswith("download:"):
        key = name.split(":", 1)[1]
        if key not in SOURCES:
            raise ValueError(f"{name!r}: the downloads are {', '.join('download:' + k for k in SOURCES)}")
        return DatasetSpec("download", key)
    prefix, _, rest = name.partition(":")
    path = rest if prefix in ("folder", "file", "auto") and rest else name
    if prefix in ("folder", "file") and rest:
        return DatasetSpec(prefix, path)
    if os.path.isdir(path):
        return DatasetSpec("folder", path)
    if os.path.isfile(path):
        return DatasetSpec("file", path)
    raise ValueError(f"{name} is neither a built-in dataset ({', '.join(sorted(DATASETS))}, shapes:N), "
                     "download:KEY (mnist, fashion-mnist, cifar10) nor an existing folder or file")


def resolve_dataset(
    name: str | DatasetSpec,
    *,
    size: int = 28,
    channels: int = 1,
    fit: str = "crop",
    cache: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[ImageDataset, ImportReport | None]:
    """Load the dataset a name stands for.

    Args:
        name: a dataset name or a parsed :class:`DatasetSpec`.
        size, channels, fit: how imported images are made square (28, 32 or 64
            pixels; 1 or 3 channels; ``"crop"`` or ``"pad"``).
        cache: the download cache (pooch's cache for vaegui by default).
        progress, cancelled: passed to the folder importer (``progress(done, total)``;
            the import stops when ``cancelled()`` is True).

    Returns:
        ``(dataset, report)``; the report lists each skipped file with its reason, and is
        None for built-in data.

    Raises:
        ValueError: a name :func:`parse_dataset` refuses; DatasetError (a ValueError):
            a file or folder with nothing usable, or a cancelled import; DownloadError: a
            failed or mismatched download.
    """
    spec = name if isinstance(name, DatasetSpec) else parse_dataset(name)
    if spec.kind == "builtin":
        return load_dataset(spec.value), None
    if spec.kind == "shapes":
        return load_dataset(spec.name), None
    if spec.kind == "download":
        from models.downloads import SOURCES, load

        if cache is None:
            import pooch

            cache = pooch.os_cache("vaegui")
        data = load(spec.value, cache)
        report = ImportReport(f"{SOURCES[spec.value][1]} (verified against the published checksums)",
                              loaded=len(data.train_x) + len(data.test_x))
        report.notes.append(f"Cached in {Path(cache) / spec.value}; the official split "
                            f"{len(data.train_x):,}/{len(data.test_x):,} is kept.")
        return data, report
    path = Path(spec.value)
    if spec.kind == "folder" and not path.is_dir():
        raise DatasetError(f"{path} is not a folder")
    return import_path(path, size=size, channels=channels, fit=fit, progress=progress, cancelled=cancelled)
