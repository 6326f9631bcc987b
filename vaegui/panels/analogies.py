"""Analogies for a conditional VAE: one image's z decoded with every label, so that
style (z) and label (y) separate (Kingma et al. 2014, M2; Sohn et al. 2015)."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtWidgets import QFormLayout, QSpinBox, QWidget

from vaegui.figures import GridFigure
from vaegui.widgets import GridPanel


class AnalogiesPanel(GridPanel):
    """Rows: test images #i, #i+1, …; first column the image itself, then its posterior
    mean z (encoded with its own label) decoded with each label in turn."""

    title = "analogies"

    def __init__(self, handle, settings=None, parent: QWidget | None = None):
        super().__init__(handle, settings, parent)
        self.index_spin = QSpinBox()
        self.index_spin.setPrefix("#")
        self.rows_spin = QSpinBox()
        self.rows_spin.setRange(1, 20)
        self.rows_spin.setValue(6)
        form = QFormLayout()
        form.addRow("First test image:", self.index_spin)
        form.addRow("Rows:", self.rows_spin)
        self.lay_out_beside(form)
        self.index_spin.valueChanged.connect(self.refresh)
        self.rows_spin.valueChanged.connect(self.refresh)
        handle.dataset_changed.connect(
            lambda: self.index_spin.setRange(0, len(handle.dataset.test_x) - 1) if handle.dataset else None
        )

    def compute_grid(self):
        if not self.handle.conditional:
            self._why = ("Analogies need a model that decodes with a label: choose Model ▸ conditional VAE or "
                         "semi-supervised VAE (M2) and train.")
            return None
        data = self.handle.dataset
        start = self.index_spin.value()
        stop = min(start + self.rows_spin.value(), len(data.test_x))
        x, y = data.test_x[start:stop], data.test_y[start:stop]
        mu = self.handle.posterior_mean(x, y)
        k = len(self.handle.class_names)
        decoded = [self.handle.decode(mu, torch.full((len(mu),), label)) for label in range(k)]
        columns = [x.numpy()] + decoded  # each (R, C, H, W)
        images = np.stack(columns, axis=1).reshape(-1, *x.shape[1:])
        self._shown = (start, stop, k)
        return GridFigure(kind="analogies", images=images, rows=stop - start, cols=k + 1,
                          row_labels=[f"#{i}" for i in range(start, stop)],
                          col_labels=["image", *(f"y={name}" for name in self.handle.class_names)],
                          latents=np.repeat(mu.numpy(), k + 1, axis=0), params={"first": start, "rows": stop - start},
                          caption="Analogies: each test image's style z decoded with every label y "
                                  "(Kingma et al. 2014, Fig. 1).")

    def restore(self, record) -> str:
        """The first test image and row count of a reopened analogies figure."""
        self.rows_spin.setValue(int(record.params["rows"]))
        self.index_spin.setValue(int(record.params["first"]))
        return f"test images from #{self.index_spin.value()}"

    def grid_caption(self) -> str:
        start, stop, k = self._shown
        names = ", ".join(self.handle.class_names)
        return (
            f"Rows: test images #{start}–#{stop - 1}. Left: the image; then its z (the posterior mean, encoded "
            f"with its own label) decoded with each label y = {names}. Weights: snapshot {self.handle.version}."
        )
