"""What each stochastic layer of a two-layer or ladder VAE controls (Burda et al. 2016;
Sønderby et al. 2016): samples with the top layer per row and the lower layer drawn per column,
and a traversal of either layer from a test image's posterior means."""

from __future__ import annotations

import torch
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from models.data import as_float
from models.hierarchical import activity
from vaegui.figures import layer_samples_figure, layer_traversal_figure
from vaegui.widgets import GridPanel

MODES = {
    "samples": "Samples: one z2 per row, z1 drawn per column",
    "z1": "Traverse z1 (z2 held at its posterior mean)",
    "z2": "Traverse z2 (z1 from p(z1|z2))",
}
#: test images whose posterior means rank the units by activity
ACTIVITY_IMAGES = 500


class LayersPanel(GridPanel):
    """The grids of :func:`~vaegui.figures.layer_samples_figure` and
    :func:`~vaegui.figures.layer_traversal_figure` for the open hierarchical VAE; for other
    models the panel says what it is for. Traversal rows are the layer's most active units
    (Burda et al. 2016's A_u over the first 500 test images)."""

    title = "layers"

    def __init__(self, handle, settings=None, parent: QWidget | None = None):
        super().__init__(handle, settings, parent)
        self.mode_combo = QComboBox()
        for key, text in MODES.items():
            self.mode_combo.addItem(text, key)
        self.mode_combo.setToolTip("Which layer to look at: samples show both, a traversal varies one")
        self.rows_spin, self.cols_spin = QSpinBox(), QSpinBox()
        self.rows_spin.setRange(1, 16)
        self.rows_spin.setValue(6)
        self.rows_spin.setToolTip("Rows: prior draws of z2, or the layer's most active units")
        self.cols_spin.setRange(2, 16)
        self.cols_spin.setValue(8)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.image_spin = QSpinBox()
        self.image_spin.setPrefix("test image ")
        self.image_spin.setToolTip("The traversal starts from this test image's posterior means")
        self.range_spin = QDoubleSpinBox()
        self.range_spin.setRange(0.5, 6.0)
        self.range_spin.setSingleStep(0.5)
        self.range_spin.setValue(3.0)
        self.range_spin.setPrefix("±")
        self.range_spin.setToolTip("z2: values of z2_k; z1: standard deviations of p(z1|z2) around the mean")
        self.draw_check = QCheckBox("draw z1 (one fixed ε, the seed's)")
        self.draw_check.setToolTip("Off: z1 at the mean of p(z1|z2); on: one draw from it, the same for every tile")
        form = QFormLayout()
        form.addRow("Show:", self.mode_combo)
        form.addRow("Rows:", self.rows_spin)
        form.addRow("Columns:", self.cols_spin)
        form.addRow("Seed:", self.seed_spin)
        form.addRow("From:", self.image_spin)
        form.addRow("Range:", self.range_spin)
        form.addRow(self.draw_check)
        self.form = form
        self.lay_out_beside(form)
        self._activity: tuple[object, list[list[float]]] | None = None
        for w in (self.rows_spin, self.cols_spin, self.seed_spin, self.image_spin):
            w.valueChanged.connect(self.refresh)
        self.range_spin.valueChanged.connect(self.refresh)
        self.draw_check.toggled.connect(self.refresh)
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        handle.dataset_changed.connect(self._sync_images)
        self._sync_images()
        self._mode_changed()

    def mode(self) -> str:
        return self.mode_combo.currentData()

    def _mode_changed(self) -> None:
        mode = self.mode()
        for w in (self.image_spin, self.range_spin):
            self.form.setRowVisible(w, mode != "samples")
        self.form.setRowVisible(self.draw_check, mode == "z2")
        self.form.setRowVisible(self.seed_spin, mode != "z1")
        self.refresh()

    def _sync_images(self) -> None:
        n = len(self.handle.dataset.test_x) if self.handle.dataset is not None else 1
        self.image_spin.setRange(0, max(0, n - 1))

    def unit_activity(self) -> list[list[float]]:
        """A_u of every unit of z1 and z2 for the held weights (cached per snapshot)."""
        key = (id(self.handle.model), self.handle.version, id(self.handle.dataset))
        if self._activity is None or self._activity[0] != key:
            x = as_float(self.handle.dataset.test_x[:ACTIVITY_IMAGES])
            with torch.inference_mode():
                layers = self.handle.model.encode_layers(x.float())
            self._activity = (key, [activity(mu)[0] for mu, _ in layers])
        return self._activity[1]

    def compute_grid(self):
        model = self.handle.model
        if not getattr(model, "hierarchical", False):
            self._why = ("This tab shows what each stochastic layer of a two-layer or ladder VAE controls. Choose "
                         "Model: two-layer VAE (Burda 2016) or ladder VAE (Sønderby 2016) in the form and train, "
                         "or open such a model.")
            return None
        mode, rows, cols, seed = self.mode(), self.rows_spin.value(), self.cols_spin.value(), self.seed_spin.value()
        if mode == "samples":
            return layer_samples_figure(model, rows, cols, seed)
        layer = int(mode[1])
        act = self.unit_activity()[layer - 1]
        dims = sorted(range(len(act)), key=lambda k: -act[k])[:rows]
        r = self.range_spin.value()
        draw = seed if layer == 2 and self.draw_check.isChecked() else None
        return layer_traversal_figure(
            model, as_float(self.handle.test_image(self.image_spin.value())), layer, dims,
            torch.linspace(-r, r, cols), draw_seed=draw, activity=act,
            params={"rows": rows, "cols": cols, "image": self.image_spin.value(), "range": r, "seed": seed})

    def grid_caption(self) -> str:
        f = self.figure
        return "" if f is None else f"{f.caption} Weights: snapshot {self.handle.version}."

    def restore(self, record) -> str:
        """The mode, rows, columns, seed, image, range and draw of a reopened layers figure."""
        p = record.params
        if p.get("mode") not in MODES:
            raise ValueError(f"not a layers figure: mode {p.get('mode')!r}")
        widgets = ((self.rows_spin, "rows"), (self.cols_spin, "cols"), (self.seed_spin, "seed"),
                   (self.image_spin, "image"), (self.range_spin, "range"))
        for w, key in widgets:
            w.blockSignals(True)
        try:
            self.mode_combo.setCurrentIndex(self.mode_combo.findData(p["mode"]))
            for w, key in widgets:
                if key in p:
                    w.setValue(p[key])
            if p.get("draw_seed") is not None:
                self.seed_spin.setValue(int(p["draw_seed"]))
            self.draw_check.blockSignals(True)
            self.draw_check.setChecked(p.get("draw_seed") is not None)
            self.draw_check.blockSignals(False)
        finally:
            for w, _ in widgets:
                w.blockSignals(False)
        self.refresh()
        return f"{MODES[p['mode']].lower()}, {self.rows_spin.value()}×{self.cols_spin.value()}"
