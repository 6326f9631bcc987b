"""Random samples from the prior, and a preview of the dataset."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QPushButton, QSpinBox, QWidget

from vaegui.figures import code_samples_figure, data_figure, samples_figure
from vaegui.widgets import GridPanel, restore_label


class SamplesPanel(GridPanel):
    """A grid of decoded prior samples z ~ N(0, I), reproducible for a seed."""

    title = "samples"
    animatable = True

    def __init__(self, handle, settings=None, parent: QWidget | None = None):
        super().__init__(handle, settings, parent)
        self.rows_spin = QSpinBox()
        self.rows_spin.setRange(1, 32)
        self.rows_spin.setValue(8)
        self.cols_spin = QSpinBox()
        self.cols_spin.setRange(1, 32)
        self.cols_spin.setValue(8)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.new_button = QPushButton("New samples")
        self.new_button.setToolTip("Draw with the next seed (Ctrl+R)")
        self.new_button.clicked.connect(self.new_samples)
        self.temperature_spin = QDoubleSpinBox()
        self.temperature_spin.setRange(0.05, 5.0)
        self.temperature_spin.setSingleStep(0.1)
        self.temperature_spin.setValue(1.0)
        self.temperature_spin.setToolTip("VQ-VAE: the code prior's temperature (below 1: likelier codes, "
                                         "above: more varied)")
        form = QFormLayout()
        form.addRow("Rows:", self.rows_spin)
        form.addRow("Columns:", self.cols_spin)
        form.addRow("Seed:", self.seed_spin)
        form.addRow("Temperature:", self.temperature_spin)
        self.form = form
        form.addRow(self.new_button)
        form.addRow(self.label_title, self.label_combo)
        self.lay_out_beside(form)
        for spin in (self.rows_spin, self.cols_spin, self.seed_spin, self.temperature_spin):
            spin.valueChanged.connect(self.refresh)
        handle.changed.connect(lambda: form.setRowVisible(self.temperature_spin, handle.discrete))
        form.setRowVisible(self.temperature_spin, False)

    def new_samples(self) -> None:
        """Draw new prior samples (the next seed)."""
        self.seed_spin.setValue(self.seed_spin.value() + 1)

    def compute_grid(self):
        if not self.needs_prior():
            return None
        if self.handle.discrete:
            return code_samples_figure(self.handle.model, self.rows_spin.value(), self.cols_spin.value(),
                                       self.seed_spin.value(), self.temperature_spin.value())
        label = self.label()
        fig = samples_figure(lambda z: self.handle.decode(z, label), self.rows_spin.value(), self.cols_spin.value(),
                             self.handle.latent_dim, self.seed_spin.value(),
                             "" if label is None else f"y={self.handle.class_names[label]}")
        fig.params["label"] = label
        return fig

    def restore(self, record) -> str:
        """Rows, columns, seed and label of a reopened samples figure."""
        p = record.params
        for spin, key in ((self.rows_spin, "rows"), (self.cols_spin, "cols"), (self.seed_spin, "seed"),
                          (self.temperature_spin, "temperature")):
            if key in p:
                spin.blockSignals(True)
                spin.setValue(p[key])
                spin.blockSignals(False)
        restore_label(self, p.get("label"))
        self.refresh()
        return f"{p['rows']}×{p['cols']} samples, seed {p['seed']}"

    def grid_caption(self) -> str:
        if self.handle.discrete and self.figure is not None:
            return f"{self.figure.caption} Weights: snapshot {self.handle.version}."
        return (
            f"Mean images E[x|z] of {self.rows_spin.value() * self.cols_spin.value()} draws z ~ N(0, I), "
            f"seed {self.seed_spin.value()}. Weights: snapshot {self.handle.version}."
        )


class DataPanel(GridPanel):
    """A page of the test split's real images (shown before any model exists)."""

    title = "data"

    def __init__(self, handle, settings=None, parent: QWidget | None = None):
        super().__init__(handle, settings, parent)
        self.page_spin = QSpinBox()
        self.page_spin.setPrefix("page ")
        self.page_spin.setMinimum(1)
        form = QFormLayout()
        form.addRow("Test images:", self.page_spin)
        self.lay_out_beside(form)
        self.page_spin.valueChanged.connect(self.refresh)
        handle.dataset_changed.connect(self._dataset_changed)

    PER_PAGE = 100

    def _dataset_changed(self) -> None:
        n = len(self.handle.dataset.test_x)
        self.page_spin.setMaximum(max(1, (n + self.PER_PAGE - 1) // self.PER_PAGE))
        self.page_spin.setSuffix(f" of {self.page_spin.maximum()}")
        self._on_model_changed()

    def refresh(self) -> None:
        # Data needs no model: show it whatever the model's state.
        self._stale = False
        grid = self.compute_grid()
        self._figure = grid
        if grid is not None:
            self.grid_view.show_grid(grid.images, grid.rows, grid.cols, self.display_padding)
            self.caption.setText(self.grid_caption())
            self.export_button.setEnabled(True)

    def compute_grid(self):
        data = self.handle.dataset
        if data is None:
            return None
        start = (self.page_spin.value() - 1) * self.PER_PAGE
        images = data.test_x[start : start + self.PER_PAGE].numpy()
        names = [data.class_names[int(y)] for y in data.test_y[start : start + len(images)]]
        return data_figure(images, names, 10, 10, start)

    def restore(self, record) -> str:
        """The page of a reopened data figure."""
        self.page_spin.setValue(int(record.params["first"]) // self.PER_PAGE + 1)
        return f"page {self.page_spin.value()}"

    def grid_caption(self) -> str:
        data = self.handle.dataset
        start = (self.page_spin.value() - 1) * self.PER_PAGE
        end = min(start + self.PER_PAGE, len(data.test_x))
        labels = " ".join(str(int(v)) for v in data.test_y[start : min(start + 10, end)])
        return (
            f"{data.title}: test images #{start}–#{end - 1} of {len(data.test_x)} "
            f"(training split: {len(data.train_x)}). First row's labels: {labels}. "
            "These are the indices the other panels pick images by."
        )
