"""The GUI side of a model: a CPU copy of the newest weight snapshot that every
panel decodes from, and the data the panels pick images from."""

from __future__ import annotations

import weakref

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal

from models.config import ModelConfig
from models.data import ImageDataset
from models.state import dataset_tensors, share_tensors
from models.vae import build_model


class ModelHandle(QObject):
    """Holds the dataset and a CPU decoding copy of the model for the GUI thread.

    Weights arrive as versioned snapshots from the training worker; only a snapshot
    newer than the one held is loaded. ``changed`` is emitted when the weights or
    the model change, ``dataset_changed`` when another dataset is chosen.
    """

    changed = Signal()
    dataset_changed = Signal()
    activity_changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.dataset: ImageDataset | None = None
        #: datasets this handle has offered to shared memory (once each, see set_dataset)
        self._offered: weakref.WeakSet[ImageDataset] = weakref.WeakSet()
        self.model: torch.nn.Module | None = None
        self.version = -1
        #: each latent dimension's KL averaged over the test split (nats), newest epoch
        self.kl_per_dim: list[float] = []

    def set_activity(self, kl_per_dim: list[float]) -> None:
        """Each latent dimension's KL on the test split, ``(D,)`` nats, newest epoch."""
        self.kl_per_dim = list(kl_per_dim)
        self.activity_changed.emit()

    @property
    def ready(self) -> bool:
        """True when a model with at least one snapshot is loaded."""
        return self.model is not None and self.version >= 0

    @property
    def latent_dim(self) -> int:
        """D, the latent size of the model (0 without one)."""
        return self.model.latent_dim if self.model is not None else 0

    def mismatch(self) -> str:
        """Why the open model cannot take the chosen dataset's images, or ""."""
        if self.model is None or self.dataset is None:
            return ""
        want, have = tuple(self.model.config.input_shape), tuple(self.dataset.image_shape)
        if want != have:
            return (f"The open model takes {want[0]}×{want[1]}×{want[2]} images but this dataset has "
                    f"{have[0]}×{have[1]}×{have[2]}: train a new model here, or pick the dataset it was trained on.")
        if self.conditional and len(self.dataset.class_names) != self.model.config.n_classes:
            return "The open conditional VAE was trained with another number of labels than this dataset has."
        return ""

    @property
    def conditional(self) -> bool:
        """True for a conditional VAE: decoding needs a label."""
        return self.model is not None and self.model.config.conditional

    @property
    def discrete(self) -> bool:
        """True for the VQ-VAE: its latents are code grids (``latent_dim`` is the flattened encoder output)."""
        return self.model is not None and self.model.config.discrete

    @property
    def has_prior(self) -> bool:
        """False for the plain autoencoder (no p(z) to sample or to map Φ⁻¹ through)."""
        return self.model is not None and self.model.config.has_prior

    @property
    def class_names(self) -> tuple[str, ...]:
        """The dataset's label names (empty without a dataset)."""
        return tuple(self.dataset.class_names) if self.dataset is not None else ()

    def set_dataset(self, dataset: ImageDataset) -> None:
        """Use ``dataset`` for the panels' images (the model stays until Train). The first time
        it comes, its tensors move into shared memory where there is room
        (:func:`models.state.share_tensors`), before any panel reads them or holds a numpy view
        of them, so that the training process maps them; a dataset that found no room is not
        moved later, when panels may hold views of it."""
        if dataset not in self._offered:
            self._offered.add(dataset)
            share_tensors(dataset_tensors(dataset))
        self.dataset = dataset
        self.dataset_changed.emit()

    def new_model(self, config: ModelConfig) -> None:
        """Replace the model by a fresh one; panels stay empty until its first snapshot."""
        self.model = build_model(config).eval()
        self.version = -1
        self.kl_per_dim = []
        self.changed.emit()

    def load_snapshot(self, version: int, state: dict[str, torch.Tensor], force: bool = False) -> bool:
        """Load a weight snapshot if it is newer than the one held (or ``force``, for a
        training state that went back to an earlier step); returns whether it was."""
        if self.model is None or (version <= self.version and not force):
            return False
        self.model.load_state_dict(state)
        self.version = version
        self.changed.emit()
        return True

    def _labels(self, label: int | torch.Tensor | None, n: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if label is None:
            label = 0
        return torch.as_tensor(label).long().expand(n) if torch.as_tensor(label).dim() == 0 else label

    @torch.inference_mode()
    def decode(self, z: torch.Tensor, label: int | torch.Tensor | None = None) -> np.ndarray:
        """Mean images ``(N, C, H, W)``, pixels in [0, 1], for latents ``(N, D)``; a
        conditional VAE decodes with ``label`` (one int for all, or ``(N,)``)."""
        assert self.model is not None
        return self.model.decode(z.float(), self._labels(label, len(z))).numpy()

    @torch.inference_mode()
    def posterior_mean(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior means ``mu`` ``(N, D)`` of images ``(N, C, H, W)`` (with their labels
        ``(N,)`` for a conditional VAE)."""
        assert self.model is not None
        return self.model.encode(images.float(), self._labels(labels, len(images)))[0]

    def test_label(self, index: int) -> int:
        """The label of test image ``index``; raises IndexError when out of range."""
        assert self.dataset is not None
        return int(self.dataset.test_y[index])

    def test_image(self, index: int) -> torch.Tensor:
        """Test-split image ``index`` as ``(1, C, H, W)``; raises IndexError when out of range."""
        assert self.dataset is not None
        n = len(self.dataset.test_x)
        if not 0 <= index < n:
            raise IndexError(f"image index {index} outside 0..{n - 1}")
        return self.dataset.test_x[index : index + 1]
