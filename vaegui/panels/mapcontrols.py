"""The Latent map panel's controls: what to map (its "Map" tab: split, points, layer, projection,
Update and Cancel, the progress) and how to draw it (its "Look" tab: colours, point size,
opacity, the manifold's grid, selecting by dragging)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
)

from models.embedding import PROJECTIONS, LatentMap, MapRequest


class MapControls:
    """The widgets of the map's two control tabs, laid out in :attr:`map_form` and :attr:`look_form`
    (the panel puts each on a tab page); the panel connects their signals."""

    def __init__(self):
        self.split_combo = QComboBox()
        for key, name in (("test", "test split"), ("train", "training split"), ("both", "both splits")):
            self.split_combo.addItem(name, key)
        self.points_combo = QComboBox()
        self.points_combo.addItem("posterior means mu", "mean")
        self.points_combo.addItem("a sample z ~ q(z|x)", "sample")
        self.layer_combo = QComboBox()
        self.layer_combo.addItem("the top layer z2", 0)
        self.layer_combo.addItem("the lower layer z1", 1)
        self.layer_combo.setToolTip("Two-layer and ladder VAEs: which layer's posterior means to map (a click on a z1 "
                                    "map decodes z1 directly)")
        self.projection_combo = QComboBox()
        for key, (name, _module) in PROJECTIONS.items():
            self.projection_combo.addItem(name, key)
        self.projection_combo.setCurrentIndex(self.projection_combo.findData("pca"))
        self.dim_x, self.dim_y = QSpinBox(), QSpinBox()
        self.dim_y.setValue(1)
        self.perplexity = QDoubleSpinBox()
        self.perplexity.setRange(2, 200)
        self.perplexity.setValue(30)
        self.update_button = QPushButton("Update map")
        self.update_button.setToolTip("Encode the split with the newest weights and project it (F5)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.live_check = QCheckBox("refresh at each epoch end")
        self.live_check.setChecked(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.colour_combo = QComboBox()
        self.size_spin = QSpinBox()
        self.size_spin.setRange(1, 20)
        self.size_spin.setValue(5)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(5, 100)
        self.opacity.setValue(70)
        self.manifold_check = QCheckBox("draw the manifold's grid")
        self.manifold_check.setToolTip("The Manifold panel's G×G latents (Kingma & Welling 2014, Fig. 4) over the "
                                       "map: for the latent itself or two dimensions, those of the manifold")
        self.select_check = QCheckBox("select by dragging")
        self.select_check.setToolTip("Drag to select points (or hold Shift and drag); otherwise a drag pans")
        self.shape_combo = QComboBox()
        self.shape_combo.addItem("lasso", "lasso")
        self.shape_combo.addItem("box", "box")
        self._lay_out()
        self.projection_combo.currentIndexChanged.connect(self._projection_changed)
        self._projection_changed()

    def _lay_out(self) -> None:
        dims = QHBoxLayout()
        dims.addWidget(self.dim_x)
        dims.addWidget(self.dim_y)
        run_row = QHBoxLayout()
        run_row.addWidget(self.update_button)
        run_row.addWidget(self.cancel_button)
        self.map_form = QFormLayout()
        self.map_form.addRow("Split:", self.split_combo)
        self.map_form.addRow("Points:", self.points_combo)
        self.map_form.addRow("Layer:", self.layer_combo)
        self.map_form.setRowVisible(self.layer_combo, False)  # shown for the two-layer VAEs
        self.map_form.addRow("Projection:", self.projection_combo)
        self.map_form.addRow("Dimensions:", dims)
        self.map_form.addRow("Perplexity:", self.perplexity)
        self.map_form.addRow(run_row)
        self.map_form.addRow(self.live_check)
        self.map_form.addRow(self.progress)
        self.look_form = QFormLayout()
        self.look_form.addRow("Colour by:", self.colour_combo)
        self.look_form.addRow("Point size:", self.size_spin)
        self.look_form.addRow("Opacity:", self.opacity)
        self.look_form.addRow(self.manifold_check)
        sel_row = QHBoxLayout()
        sel_row.addWidget(self.select_check)
        sel_row.addWidget(self.shape_combo)
        self.look_form.addRow(sel_row)

    def request(self, hierarchical: bool) -> MapRequest:
        """The map the controls ask for (the layer only for a two-layer model, ``hierarchical``)."""
        return MapRequest(split=self.split_combo.currentData(), points=self.points_combo.currentData(),
                          projection=self.projection_combo.currentData(),
                          dims=(self.dim_x.value(), self.dim_y.value()), perplexity=self.perplexity.value(),
                          layer=self.layer_combo.currentData() if hierarchical else 0)

    def _projection_changed(self) -> None:
        kind = self.projection_combo.currentData()
        self.dim_x.setEnabled(kind == "dims")
        self.dim_y.setEnabled(kind == "dims")
        self.perplexity.setEnabled(kind == "tsne")

    def show_layers(self, hierarchical: bool) -> None:
        """Show the Layer row for a two-layer model."""
        self.map_form.setRowVisible(self.layer_combo, hierarchical)

    def set_latent_dim(self, d: int, has_map: bool) -> None:
        """A model of ``d`` latent dimensions: the dimensions' ranges, and the projection "the
        latent itself" only for ``d`` = 2 (chosen for a new 2-D model while no map is drawn)."""
        for spin in (self.dim_x, self.dim_y):
            spin.setRange(0, max(d - 1, 1))
        latent = self.projection_combo.model().item(self.projection_combo.findData("latent"))
        latent.setEnabled(d == 2)
        if d == 2 and not has_map:
            self.projection_combo.setCurrentIndex(self.projection_combo.findData("latent"))
        elif d != 2 and self.projection_combo.currentData() == "latent":
            self.projection_combo.setCurrentIndex(self.projection_combo.findData("pca"))

    def set_colour_keys(self, factor_names, latent_dims: int) -> None:
        """Offer colouring by label, each ground-truth factor, −ELBO, KL and the first ``latent_dims``
        latent dimensions, keeping the current choice where it is still offered (no signal)."""
        combo = self.colour_combo
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("label", "label")
        for name in factor_names:
            combo.addItem(f"factor: {name}", name)
        combo.addItem("−ELBO (nats)", "neg_elbo")
        combo.addItem("KL (nats)", "kl")
        for k in range(latent_dims):
            combo.addItem(f"z{k}", f"z{k}")
        combo.setCurrentIndex(max(combo.findData(current), 0))
        combo.blockSignals(False)

    def suggest_point_size(self, points: int) -> None:
        """A new map of ``points`` points: a smaller point size for a large map (no signal)."""
        self.size_spin.blockSignals(True)
        self.size_spin.setValue(3 if points > 20_000 else 5)
        self.size_spin.blockSignals(False)

    def colour_key(self) -> str:
        """What the points are coloured by: ``"label"``, a factor's name, ``"neg_elbo"``, ``"kl"`` or ``"z{k}"``."""
        return self.colour_combo.currentData() or "label"

    def colour_values(self, m: LatentMap) -> tuple[np.ndarray, bool]:
        """The values ``(N,)`` the points of ``m`` are coloured by, and whether they are categorical."""
        key = self.colour_key()
        values = m.encoded.columns().get(key, m.encoded.labels)
        if key in m.encoded.factor_names:
            return values, len(np.unique(values)) <= 8
        return values, key == "label"
