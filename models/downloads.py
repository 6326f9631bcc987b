"""Standard datasets downloaded with checksum verification into a cache folder.

pooch (a well-kept library for exactly this) does the HTTP, the hash check and the
atomic placement: a file is written to a temporary name and moved into the cache
only when its hash matches, so a failed, dropped or mismatched download leaves no
partial file behind. CIFAR-10 comes as its *binary* version (fixed-length records),
which is read without unpickling anything.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import torch

from models.data import ImageDataset, as_float
from models.importers import DatasetError, read_idx

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR_MEMBERS = tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)) + (
    "cifar-10-batches-bin/test_batch.bin",)
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")

#: key → (title, base URL, {file name: "md5:…"}) — the published checksums of each file
SOURCES: dict[str, tuple[str, str, dict[str, str]]] = {
    "mnist": ("MNIST (70,000 digits)", "https://ossci-datasets.s3.amazonaws.com/mnist/", {
        "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
    }),
    "fashion-mnist": ("Fashion-MNIST (70,000 images)", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", {
        "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
    }),
    "cifar10": ("CIFAR-10 (60,000 colour images)", "https://www.cs.toronto.edu/~kriz/", {
        "cifar-10-binary.tar.gz": "md5:c32a1d4ab5d03f1284b67883e8d87530",
    }),
}


class DownloadError(DatasetError):
    """A download failed, was cut off or did not match its checksum; nothing partial was kept."""


def fetch(key: str, cache: str | os.PathLike[str], base_url: str | None = None,
          registry: dict[str, str] | None = None) -> list[Path]:
    """Download (or find in ``cache``) every file of ``SOURCES[key]``, verified.

    ``base_url`` and ``registry`` override the source (tests serve files from 127.0.0.1).

    Raises:
        DownloadError: unknown key, a network failure, a cut connection or a checksum
            mismatch; the message names the file.
    """
    import pooch
    import requests

    if key not in SOURCES:
        raise DownloadError(f"unknown dataset {key!r}; choose one of {sorted(SOURCES)}")
    _, default_url, default_registry = SOURCES[key]
    registry = registry or default_registry
    store = pooch.create(path=Path(cache) / key, base_url=base_url or default_url, registry=registry)
    paths = []
    for name in registry:
        try:
            paths.append(Path(store.fetch(name)))
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            if "hash" in first.lower():
                raise DownloadError(f"{name}: the downloaded file does not match its published checksum, so it "
                                    f"was discarded ({first})") from exc
            raise DownloadError(f"{name}: cannot be downloaded ({first})") from exc
        except (requests.RequestException, OSError) as exc:
            raise DownloadError(f"{name}: the download failed ({type(exc).__name__}: {exc}); nothing was kept, "
                                "try again when the network is back") from exc
    return paths


def load(key: str, cache: str | os.PathLike[str], base_url: str | None = None,
         registry: dict[str, str] | None = None) -> ImageDataset:
    """Fetch and read a standard dataset with its official train/test split.

    Raises:
        DownloadError: see :func:`fetch`; DatasetError: a file that does not parse.
    """
    paths = {p.name: p for p in fetch(key, cache, base_url, registry)}
    if key in ("mnist", "fashion-mnist"):
        def pair(prefix: str) -> tuple[np.ndarray, np.ndarray]:
            x = read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"])
            y = read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"]).astype(np.int64)
            if len(x) != len(y):
                raise DatasetError(f"{prefix}: {len(x)} images but {len(y)} labels")
            return x, y

        (xtr, ytr), (xte, yte) = pair("train"), pair("t10k")
        names = FASHION_CLASSES if key == "fashion-mnist" else tuple(str(i) for i in range(10))
    else:
        (xtr, ytr), (xte, yte) = read_cifar_archive(paths["cifar-10-binary.tar.gz"])
        names = CIFAR_CLASSES

    def tensor(x):
        x = torch.from_numpy(np.array(x, copy=True))
        return x[:, None] if x.dim() == 3 else x

    # the training split stays uint8 (4× smaller, converted per batch); the test split is float
    return ImageDataset(f"download:{key}", tensor(xtr), torch.from_numpy(ytr), as_float(tensor(xte)),
                        torch.from_numpy(yte), names)


def read_cifar_binary(data: bytes, name: str = "batch") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 binary records (1 label byte + 3×32×32 pixel bytes) → ``(N, 3, 32, 32)`` uint8, labels.

    Raises:
        DatasetError: when the length is not a whole number of records.
    """
    record = 1 + 3 * 32 * 32
    if not data or len(data) % record:
        raise DatasetError(f"{name}: {len(data)} bytes is not a whole number of CIFAR-10 records")
    arr = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    return arr[:, 1:].reshape(-1, 3, 32, 32).copy(), arr[:, 0].astype(np.int64)


def read_cifar_archive(path: str | os.PathLike[str]) -> tuple[tuple[np.ndarray, np.ndarray], tuple]:
    """Read the six expected members of the CIFAR-10 binary archive (nothing is extracted
    to disk, no other member is touched): ``((train_x, train_y), (test_x, test_y))``."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            parts = {}
            for member in CIFAR_MEMBERS:
                info = tar.getmember(member)
                if not info.isfile():
                    raise DatasetError(f"{member} is not a regular file")
                parts[member] = read_cifar_binary(tar.extractfile(info).read(), member)
    except (tarfile.TarError, KeyError, OSError, EOFError) as exc:
        raise DatasetError(f"{Path(path).name}: not a complete CIFAR-10 binary archive ({exc})") from exc
    train = [parts[m] for m in CIFAR_MEMBERS[:5]]
    test = parts[CIFAR_MEMBERS[5]]
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])), test
