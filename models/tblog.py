"""TensorBoard event files of a run folder, through ``torch.utils.tensorboard`` (the
optional ``tensorboard`` extra): the ELBO terms as scalars (nats per image), the
samples grid as an image, and the posterior means of test images for the Projector.

Tags: ``train/neg_elbo``, ``train/recon``, ``train/kl``, ``train/loss`` per step;
``epoch/train_neg_elbo``, ``epoch/test_neg_elbo``, ``epoch/test_recon``,
``epoch/test_kl``, ``epoch/test_nll_iw``, ``epoch/active_dims``, the objective's own
terms as ``epoch/train_<term>`` and the disentanglement scores as ``scores/<name>``,
all at the global step; ``samples`` images and a ``mu`` embedding at the chosen epochs.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from models.trainer import EpochEnd, StepBatch

TENSORBOARD = "tensorboard"


class MissingTensorBoard(ImportError):
    """The optional ``tensorboard`` package is not installed; the message says how to install it."""


def summary_writer(folder: str | os.PathLike[str]):
    """A ``SummaryWriter`` writing into ``folder``.

    Raises:
        MissingTensorBoard: without the ``tensorboard`` package.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise MissingTensorBoard(
            "TensorBoard logs need the tensorboard package: pip install 'vaegui[tensorboard]' "
            "(or pip install tensorboard)") from exc
    return SummaryWriter(log_dir=str(folder), flush_secs=5)


class TensorBoardLog:
    """Writes a run's metrics, sample grids and latent embeddings as TensorBoard events.

    Args:
        folder: the event files' folder (the run folder's ``tensorboard/``).
        embed_x: ``(N, C, H, W)`` test images (pixels in [0, 1]) whose posterior means are
            logged for the Projector at the sample epochs, or None; ``embed_labels``: ``(N,)``.

    Raises:
        MissingTensorBoard: without the ``tensorboard`` package.
    """

    def __init__(self, folder: str | os.PathLike[str], embed_x: torch.Tensor | None = None,
                 embed_labels=None, class_names=()):
        self.writer = summary_writer(folder)
        self.embed_x, self.embed_labels, self.class_names = embed_x, embed_labels, tuple(class_names)

    def steps(self, batch: StepBatch) -> None:
        for i, step in enumerate(batch.steps):
            for key in ("neg_elbo", "recon", "kl", "loss"):
                value = getattr(batch, key)[i]
                if value is not None and math.isfinite(value):
                    self.writer.add_scalar(f"train/{key}", value, step)

    def epoch(self, end: EpochEnd) -> None:
        scalars = {"train_neg_elbo": end.train_neg_elbo, "test_neg_elbo": end.test_neg_elbo,
                   "test_recon": end.test_recon, "test_kl": end.test_kl, "test_nll_iw": end.test_nll_iw,
                   "active_dims": end.active_dims, "test_error": end.test_error,
                   **{f"train_{k}": v for k, v in end.train_terms.items()},
                   **{f"test_{k}": v for k, v in end.test_terms.items()}}
        for key, value in scalars.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(f"epoch/{key}", value, end.step)
        for key, value in end.disentanglement.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"scores/{key}", value, end.step)

    def images(self, grid: np.ndarray, step: int, tag: str = "samples") -> None:
        """A grid image ``(H, W)`` or ``(H, W, 3)``, pixels in [0, 1]."""
        fmt = "HW" if grid.ndim == 2 else "HWC"
        self.writer.add_image(tag, np.clip(grid, 0, 1), step, dataformats=fmt)

    def embedding(self, model, step: int) -> None:
        """The posterior means ``(N, D)`` of the embedding images, with their labels and
        thumbnails, for TensorBoard's Projector."""
        if self.embed_x is None:
            return
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                x = self.embed_x.to(device)
                x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
                mu, _ = model.encode(x, None if not model.config.conditional else
                                     torch.as_tensor(self.embed_labels, device=device))
        finally:
            model.train(was_training)
        labels = None
        if self.embed_labels is not None:
            labels = [self.class_names[int(v)] if int(v) < len(self.class_names) else str(int(v))
                      for v in np.asarray(self.embed_labels)]
        thumbs = x.cpu()
        if thumbs.shape[1] == 1:
            thumbs = thumbs.repeat(1, 3, 1, 1)
        self.writer.add_embedding(mu.float().cpu(), metadata=labels, label_img=thumbs, global_step=step, tag="mu")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
