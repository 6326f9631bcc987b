"""The 2-D manifold grid (Kingma & Welling 2014, Fig. 4), made interactive."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QSpinBox, QWidget

from vaegui.figures import manifold_figure
from vaegui.widgets import GridPanel, restore_label


class ManifoldPanel(GridPanel):
    """A G×G grid of decoded images at z = Φ⁻¹(u) over the unit square.

    For D > 2 the user picks the two spanned dimensions; the others are held at 0
    (the prior mean) or at the posterior mean of a chosen test image.
    """

    title = "manifold"
    discrete_ok = False
    animatable = True
    display_padding = 0

    def __init__(self, handle, settings=None, parent: QWidget | None = None):
        super().__init__(handle, settings, parent)
        self.grid_spin = QSpinBox()
        self.grid_spin.setRange(2, 40)
        self.grid_spin.setValue(20)
        self.grid_spin.setToolTip("G: images per side")
        self.dim_x = QSpinBox()
        self.dim_y = QSpinBox()
        self.dim_x.setToolTip("Latent dimension that grows left → right")
        self.dim_y.setToolTip("Latent dimension that grows bottom → top")
        self.active_check = QCheckBox("most active")
        self.active_check.setChecked(True)
        self.active_check.setToolTip(
            "Span the two dimensions with the largest KL on the test split (the ones the encoder uses most; "
            "the traversal's first two rows when sorted by KL). Picking a dimension by hand turns this off."
        )
        self.hold_combo = QComboBox()
        self.hold_combo.addItem("0 (prior mean)", "zero")
        self.hold_combo.addItem("posterior mean of test image", "image")
        self.hold_index = QSpinBox()
        self.hold_index.setPrefix("#")
        self.hold_index.setEnabled(False)
        form = QFormLayout()
        form.addRow("Grid size G:", self.grid_spin)
        dims = QHBoxLayout()
        dims.addWidget(self.dim_x)
        dims.addWidget(self.dim_y)
        dims.addWidget(self.active_check)
        form.addRow("Dimensions (x, y):", dims)
        hold = QHBoxLayout()
        hold.addWidget(self.hold_combo, 1)
        hold.addWidget(self.hold_index)
        form.addRow("Other dimensions held at:", hold)
        form.addRow(self.label_title, self.label_combo)
        self.lay_out_beside(form)
        for spin in (self.grid_spin, self.dim_x, self.dim_y, self.hold_index):
            spin.valueChanged.connect(self.refresh)
        for spin in (self.dim_x, self.dim_y):  # a dimension picked by hand
            spin.valueChanged.connect(lambda _v: self.active_check.setChecked(False))
        self.active_check.toggled.connect(self._follow_activity)
        self.hold_combo.currentIndexChanged.connect(self._hold_changed)
        handle.changed.connect(self._sync_ranges)
        handle.dataset_changed.connect(self._sync_ranges)
        handle.activity_changed.connect(self._follow_activity)
        self._sync_ranges()

    def most_active(self) -> tuple[int, int] | None:
        """The two dimensions with the largest test KL, largest first; None before the
        first epoch's figures (or for D = 2, where the manifold spans both)."""
        kl, d = self.handle.kl_per_dim, self.handle.latent_dim
        if d <= 2 or len(kl) != d:
            return None
        first, second = sorted(range(d), key=lambda k: -kl[k])[:2]
        return first, second

    def _follow_activity(self) -> None:
        pair = self.most_active() if self.active_check.isChecked() else None
        if pair is not None and pair != self.dims():
            for spin, k in zip((self.dim_x, self.dim_y), pair):
                spin.blockSignals(True)
                spin.setValue(k)
                spin.blockSignals(False)
        self._on_model_changed()  # redrawn in the next turn if visible, else when shown

    def _hold_changed(self) -> None:
        self.hold_index.setEnabled(self.hold_combo.currentData() == "image" and self.handle.latent_dim > 2)
        self.refresh()

    def _sync_ranges(self) -> None:
        d = self.handle.latent_dim
        for spin, default in ((self.dim_x, 0), (self.dim_y, 1)):
            spin.blockSignals(True)
            spin.setRange(0, max(d - 1, 1))
            if spin.value() >= d:
                spin.setValue(default)
            spin.setEnabled(d > 2)
            spin.blockSignals(False)
        self.hold_combo.setEnabled(d > 2)
        self.active_check.setEnabled(d > 2)
        if self.handle.dataset is not None:
            self.hold_index.blockSignals(True)
            self.hold_index.setRange(0, len(self.handle.dataset.test_x) - 1)
            self.hold_index.blockSignals(False)
        self.hold_index.setEnabled(self.hold_combo.currentData() == "image" and d > 2)

    def dims(self) -> tuple[int, int]:
        """The two spanned latent dimensions ``(x, y)``."""
        return self.dim_x.value(), self.dim_y.value()

    def compute_grid(self):
        if not self.needs_prior():
            return None
        d = self.handle.latent_dim
        i, j = self.dims() if d > 2 else (0, 1)
        if i == j:
            self._why = "Pick two different dimensions."
            return None
        base = None
        if d > 2 and self.hold_combo.currentData() == "image":
            index = self.hold_index.value()
            base = self.handle.posterior_mean(self.handle.test_image(index), self.handle.test_label(index))[0]
        label = self.label()
        fig = manifold_figure(lambda z: self.handle.decode(z, label), self.grid_spin.value(), d, (i, j), base)
        fig.params.update(hold=self.hold_combo.currentData(), hold_index=self.hold_index.value(), label=label)
        self._axes = (i, j)
        return fig

    def restore(self, record) -> str:
        """Grid size, dimensions, held values and label of a reopened manifold figure."""
        p = record.params
        i, j = (int(k) for k in p["dims"])
        if max(i, j) >= max(self.handle.latent_dim, 2):
            raise ValueError(f"the figure spans z{i} and z{j}; the model has {self.handle.latent_dim} dimensions")
        widgets = [(self.grid_spin, int(p["grid"])), (self.dim_x, i), (self.dim_y, j),
                   (self.hold_combo, max(0, self.hold_combo.findData(p.get("hold", "zero")))),
                   (self.hold_index, int(p.get("hold_index", 0)))]
        self.active_check.blockSignals(True)
        self.active_check.setChecked(self.most_active() == (i, j))
        self.active_check.blockSignals(False)
        for w, v in widgets:
            w.blockSignals(True)
            w.setCurrentIndex(v) if w is self.hold_combo else w.setValue(v)
            w.blockSignals(False)
        self.hold_index.setEnabled(self.hold_combo.currentData() == "image" and self.handle.latent_dim > 2)
        restore_label(self, p.get("label"))
        self.refresh()
        return f"{p['grid']}×{p['grid']} manifold over z{i} and z{j}"

    def grid_caption(self) -> str:
        i, j = self._axes
        g = self.grid_spin.value()
        held = ""
        if self.handle.latent_dim > 2:
            held = (
                " Other dimensions at 0."
                if self.hold_combo.currentData() == "zero"
                else f" Other dimensions at the posterior mean of test image #{self.hold_index.value()}."
            )
        why = ""
        if self.active_check.isChecked() and self.most_active() == (i, j):
            kl = self.handle.kl_per_dim
            why = (f" z{i} and z{j} are the two most active dimensions (KL {kl[i]:.2f} and {kl[j]:.2f} nats on "
                   "the test split).")
        return (
            f"z{i} grows left → right, z{j} bottom → top, at Φ⁻¹ of a uniform {g}×{g} grid "
            f"on the unit square (Kingma & Welling 2014, Fig. 4).{why}{held} "
            f"Weights: snapshot {self.handle.version}."
        )
