"""The Latent map panel: where the data lands in z (the encoder's view), live while
training, with click-to-decode, selections, hand-offs to the other panels, a second
model's map beside the first, and exports (PNG, CSV, NPZ, TensorBoard Projector)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from models.embedding import PROJECTIONS, LatentMap, MapRequest, MapStopped, build_map, points_in_polygon, split_image
from vaegui.mapexport import MapExport
from vaegui.mapview import MapPlot, colour_codes
from vaegui.panels.attributes import AttributePanel
from vaegui.tasks import BackgroundTask, TaskSlot
from vaegui.widgets import ImageGridView, on_screen, show_message


class LatentMapPanel(QWidget):
    """Encodes a split off the GUI thread and shows the codes on a plane.

    Signals: ``traverse_from(z (D,) tensor)``, ``interpolation_end(end "a"/"b",
    source 0 test / 1 train, index)``, ``exported(message)``.
    """

    traverse_from = Signal(object)
    interpolation_end = Signal(str, int, int)
    exported = Signal(str)
    title = "latent-map"

    def __init__(self, handle, settings=None, manifold_grid=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.handle, self.settings = handle, settings
        #: () -> ((i, j), G) of the manifold panel, for the overlay
        self.manifold_grid = manifold_grid
        self.map: LatentMap | None = None
        self.other: LatentMap | None = None
        self.other_model = None
        self.other_name = ""
        self.selection: np.ndarray | None = None
        self.chosen_index: int | None = None
        self.chosen_z: torch.Tensor | None = None
        self._pending = False
        self._synced_dim = -1
        self._build()
        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(500)
        self._live_timer.timeout.connect(self.update_map)
        handle.changed.connect(self._model_changed)
        handle.changed.connect(self._snapshot_arrived)
        handle.dataset_changed.connect(self._dataset_changed)
        self._model_changed()

    # -- building ---------------------------------------------------------------------------------
    def _build(self) -> None:
        self.plot = MapPlot()
        self.plot2 = MapPlot()
        self.plot2.hide()
        self.plot2.setXLink(None)
        plots = QSplitter()
        plots.addWidget(self.plot)
        plots.addWidget(self.plot2)
        self.caption = QLabel("No model yet: press Train (Ctrl+Return), then the map shows where the data lands in z.")
        self.caption.setWordWrap(True)

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

        dims = QHBoxLayout()
        dims.addWidget(self.dim_x)
        dims.addWidget(self.dim_y)
        run_row = QHBoxLayout()
        run_row.addWidget(self.update_button)
        run_row.addWidget(self.cancel_button)
        map_form = QFormLayout()
        map_form.addRow("Split:", self.split_combo)
        map_form.addRow("Points:", self.points_combo)
        map_form.addRow("Layer:", self.layer_combo)
        map_form.setRowVisible(self.layer_combo, False)  # shown for the two-layer VAEs
        self.map_form = map_form
        map_form.addRow("Projection:", self.projection_combo)
        map_form.addRow("Dimensions:", dims)
        map_form.addRow("Perplexity:", self.perplexity)
        map_form.addRow(run_row)
        map_form.addRow(self.live_check)
        map_form.addRow(self.progress)
        look_form = QFormLayout()
        look_form.addRow("Colour by:", self.colour_combo)
        look_form.addRow("Point size:", self.size_spin)
        look_form.addRow("Opacity:", self.opacity)
        look_form.addRow(self.manifold_check)
        sel_row = QHBoxLayout()
        sel_row.addWidget(self.select_check)
        sel_row.addWidget(self.shape_combo)
        look_form.addRow(sel_row)

        # the point under the cursor and the decoded click
        self.hover_view, self.decoded_view = ImageGridView(), ImageGridView()
        for view in (self.hover_view, self.decoded_view):
            view.setMinimumSize(72, 72)
            view.setMaximumHeight(110)
        self.hover_label, self.decoded_label = QLabel("Hover a point"), QLabel("Click the map to decode")
        for label in (self.hover_label, self.decoded_label):
            label.setWordWrap(True)
        self.to_traversal = QPushButton("→ Traversal")
        self.to_traversal.setToolTip("Start the traversal's sliders at the decoded latent")
        self.to_a, self.to_b = QPushButton("→ A"), QPushButton("→ B")
        self.to_a.setToolTip("Make the chosen data point the interpolation's end A")
        self.to_b.setToolTip("Make the chosen data point the interpolation's end B")
        views = QHBoxLayout()
        for view, label in ((self.hover_view, self.hover_label), (self.decoded_view, self.decoded_label)):
            col = QVBoxLayout()
            col.addWidget(view)
            col.addWidget(label)
            views.addLayout(col)
        hands = QHBoxLayout()
        for b in (self.to_traversal, self.to_a, self.to_b):
            b.setEnabled(False)
            hands.addWidget(b)

        self.attributes = AttributePanel(self)
        self.compare_button = QPushButton("Compare with a model file…")
        self.compare_button.setToolTip("Show a second model's map beside this one: same data, same colours "
                                       "(AE vs VAE, β = 1 vs β = 4)")
        self.close_compare = QPushButton("Close the comparison")
        self.close_compare.setEnabled(False)
        self.export_button = QPushButton("Export…")
        menu = QMenu(self.export_button)
        self.exports = MapExport(self)
        #: what made the map (model fingerprint, dataset, epoch, seed), written into its PNG: set by the window
        self.model_info = dict
        menu.addAction("Map as PNG…", self.exports.export_png_dialog)
        menu.addAction("Embedding as CSV…", lambda: self.exports.export_dialog("csv"))
        menu.addAction("Embedding as NPZ…", lambda: self.exports.export_dialog("npz"))
        menu.addAction("TensorBoard Projector folder…", lambda: self.exports.export_dialog("projector"))
        self.export_button.setMenu(menu)
        self.export_button.setEnabled(False)
        more = QVBoxLayout()
        more.addWidget(self.compare_button)
        more.addWidget(self.close_compare)
        more.addWidget(self.export_button)
        more.addStretch(1)

        self.side_tabs = QTabWidget()
        for layout, name in ((map_form, "Map"), (look_form, "Look"), (more, "Compare")):
            page = QWidget()
            page.setLayout(layout)
            self.side_tabs.addTab(page, name)
        self.side_tabs.addTab(self.attributes, "Attributes")
        side = QVBoxLayout()
        side.addLayout(views)
        side.addLayout(hands)
        side.addWidget(self.side_tabs, 1)
        side_w = QWidget()
        side_w.setLayout(side)
        side_w.setMaximumWidth(380)
        left = QVBoxLayout()
        left.addWidget(plots, 1)
        left.addWidget(self.caption)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 3)
        layout.addWidget(side_w, 2)

        self.update_button.clicked.connect(self.update_map)
        self.cancel_button.clicked.connect(self.cancel)
        self.slot = TaskSlot(self, self.progress, self.cancel_button, (MapStopped,), self._done, self._failed,
                             self._task_ended)
        QShortcut(QKeySequence("F5"), self, self.update_map, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.projection_combo.currentIndexChanged.connect(self._projection_changed)
        for w in (self.colour_combo,):
            w.currentIndexChanged.connect(lambda _i: self.redraw(keep_view=True))
        self.size_spin.valueChanged.connect(lambda _v: self.redraw(keep_view=True))
        self.opacity.valueChanged.connect(lambda _v: self.redraw(keep_view=True))
        self.manifold_check.toggled.connect(lambda _on: self.draw_overlay())
        self.select_check.toggled.connect(self._select_mode)
        self.shape_combo.currentIndexChanged.connect(self._select_mode)
        for plot in (self.plot, self.plot2):
            plot.hovered.connect(lambda i, plot=plot: self._hovered(plot, i))
            plot.box.clicked.connect(lambda xy, plot=plot: self.click_at(plot, xy.x(), xy.y()))
            plot.box.selected.connect(lambda poly, plot=plot: self.select_polygon(plot, poly))
        self.to_traversal.clicked.connect(lambda: self.chosen_z is not None and self.traverse_from.emit(self.chosen_z))
        self.to_a.clicked.connect(lambda: self._hand_end("a"))
        self.to_b.clicked.connect(lambda: self._hand_end("b"))
        self.compare_button.clicked.connect(self.compare_dialog)
        self.close_compare.clicked.connect(self.close_comparison)
        self._projection_changed()

    # -- state ------------------------------------------------------------------------------------
    def request(self) -> MapRequest:
        """The map the controls ask for."""
        return MapRequest(split=self.split_combo.currentData(), points=self.points_combo.currentData(),
                          projection=self.projection_combo.currentData(),
                          dims=(self.dim_x.value(), self.dim_y.value()), perplexity=self.perplexity.value(),
                          layer=self.layer_combo.currentData() if getattr(self.handle.model, "hierarchical", False)
                          else 0)

    def _projection_changed(self) -> None:
        kind = self.projection_combo.currentData()
        self.dim_x.setEnabled(kind == "dims")
        self.dim_y.setEnabled(kind == "dims")
        self.perplexity.setEnabled(kind == "tsne")

    def _select_mode(self) -> None:
        for plot in (self.plot, self.plot2):
            plot.box.select_mode = self.select_check.isChecked()
            plot.box.selection_shape = self.shape_combo.currentData()

    def _model_changed(self) -> None:
        self.map_form.setRowVisible(self.layer_combo, getattr(self.handle.model, "hierarchical", False))
        d = self.handle.latent_dim
        if self.handle.version < 0 and self.attributes.vectors:  # a new model: the old one's vectors mean nothing
            self.attributes.from_info({})
        if d == self._synced_dim and self.handle.version >= 0:
            return  # new weights every 0.25 s while training: nothing here depends on them
        self._synced_dim = d
        for spin in (self.dim_x, self.dim_y):
            spin.setRange(0, max(d - 1, 1))
        latent = self.projection_combo.model().item(self.projection_combo.findData("latent"))
        latent.setEnabled(d == 2)
        if d == 2 and self.map is None:
            self.projection_combo.setCurrentIndex(self.projection_combo.findData("latent"))
        elif d != 2 and self.projection_combo.currentData() == "latent":
            self.projection_combo.setCurrentIndex(self.projection_combo.findData("pca"))
        self._sync_colours()
        if self.map is not None and self.map.encoded.codes.shape[1] != d:
            self.clear()

    def _dataset_changed(self) -> None:
        self.clear()
        self._sync_colours()

    def clear(self) -> None:
        """Forget the map (another model or dataset)."""
        self.cancel()
        self.map = None
        self.selection = None
        self.chosen_index = self.chosen_z = None
        for plot in (self.plot, self.plot2):
            plot.clear_points()
            plot.mark(None)
            plot.mark_chosen(None)
            plot.mark_selection(None)
            plot.set_overlay(None)
            plot.set_legend([])
        self.close_comparison()
        self.export_button.setEnabled(False)
        for b in (self.to_traversal, self.to_a, self.to_b):
            b.setEnabled(False)
        self.caption.setText("Press Update map (F5) to encode the data with the newest weights."
                             if self.handle.ready else "No model yet: press Train (Ctrl+Return).")

    def _sync_colours(self) -> None:
        current = self.colour_combo.currentData()
        self.colour_combo.blockSignals(True)
        self.colour_combo.clear()
        self.colour_combo.addItem("label", "label")
        data = self.handle.dataset
        for name in (data.factor_names if data is not None else ()):
            self.colour_combo.addItem(f"factor: {name}", name)
        self.colour_combo.addItem("−ELBO (nats)", "neg_elbo")
        self.colour_combo.addItem("KL (nats)", "kl")
        for k in range(0 if self.handle.discrete else self.handle.latent_dim):  # not a VQ-VAE's 1,568 z_e values
            self.colour_combo.addItem(f"z{k}", f"z{k}")
        index = self.colour_combo.findData(current)
        self.colour_combo.setCurrentIndex(max(index, 0))
        self.colour_combo.blockSignals(False)

    # -- computing --------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.slot.task is not None

    @property
    def task(self) -> BackgroundTask | None:
        """The computation running now, or None."""
        return self.slot.task

    def update_map(self) -> None:
        """Encode and project with the newest weights, off the GUI thread (F5)."""
        if not self.handle.ready or self.handle.dataset is None:
            self.caption.setText("No model yet: press Train (Ctrl+Return).")
            return
        why = self.handle.mismatch()
        if why:
            self.caption.setText(why)
            return
        if self.task is not None:
            self._pending = True
            return
        request = self.request()
        model = copy.deepcopy(self.handle.model).cpu().eval()
        other_model = self.other_model
        dataset, previous, other_prev = self.handle.dataset, self.map, self.other
        version = self.handle.version

        def job(progress, stopped):
            share = 0.5 if other_model is not None else 1.0
            first = build_map(model, dataset, request, previous=previous,
                              progress=lambda f, t: progress(share * f, t), stopped=stopped)
            second = None
            if other_model is not None:
                second = build_map(other_model, dataset, request, previous=other_prev,
                                   progress=lambda f, t: progress(0.5 + 0.5 * f, "second model: " + t),
                                   stopped=stopped)
            return first, second, version

        self.slot.start(job)

    def cancel(self) -> None:
        """Stop the computation: the previous map stays, at once (the thread stops at its
        next check: between chunks of the encoding, every 10 t-SNE iterations)."""
        if self.slot.cancel("cancelled: the previous map stays"):
            self._pending = False

    def wait(self, ms: int = 10_000) -> None:
        """Cancel and wait for any running computation (closing the window)."""
        self.slot.wait(ms)

    def _task_ended(self) -> None:
        if self._pending:
            self._pending = False
            self.update_map()

    def _failed(self, message: str, _details: str) -> None:
        self.progress.setFormat("failed")
        self.caption.setText(f"The map could not be made: {message}")

    def _done(self, result) -> None:
        first, second, version = result
        same_kind = self.map is not None and self.map.request.projection == first.request.projection
        if self.map is None or len(self.map.encoded) != len(first.encoded):  # a new map: a point size for its count
            self.size_spin.blockSignals(True)
            self.size_spin.setValue(3 if len(first.encoded) > 20_000 else 5)
            self.size_spin.blockSignals(False)
        self.map, self.other = first, second
        self.snapshot = version
        self.progress.setValue(1000)
        self.progress.setFormat(f"{len(first.encoded):,} points")
        self.export_button.setEnabled(True)
        if self.selection is not None and len(self.selection) != len(first.encoded):
            self.selection = None
        self.redraw(keep_view=same_kind)
        self.attributes.map_changed()

    def refresh_live(self) -> None:
        """At an epoch's end: refresh the map if it is live and shown (or mark it stale).

        The epoch's weights arrive as a snapshot close to the epoch's figures, in either
        order: the refresh waits for the next snapshot, or half a second at most."""
        if self.live_check.isChecked():
            if on_screen(self):
                self._live_timer.start()
            else:
                self._stale = True

    def window_restored(self) -> None:
        """The window came back from being minimised: map the data again if epochs ended meanwhile."""
        if getattr(self, "_stale", False) and on_screen(self) and self.handle.ready and not self.busy:
            self._stale = False
            self.update_map()

    def _snapshot_arrived(self) -> None:
        if self._live_timer.isActive():
            self._live_timer.stop()
            self.update_map()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if (getattr(self, "_stale", False) or self.map is None) and self.handle.ready and not self.busy:
            self._stale = False  # first shown with a model, or epochs ended while hidden: map it now
            self.update_map()

    # -- drawing ----------------------------------------------------------------------------------
    def colour_values(self, m: LatentMap) -> tuple[np.ndarray, bool]:
        """The values the points are coloured by, and whether they are categorical."""
        key = self.colour_combo.currentData() or "label"
        columns = m.encoded.columns()
        values = columns.get(key, m.encoded.labels)
        if key in m.encoded.factor_names:
            return values, len(np.unique(values)) <= 8
        return values, key == "label"

    def redraw(self, keep_view: bool = False) -> None:
        """Draw the map(s) with the chosen colours, size and opacity."""
        if self.map is None:
            return
        size, opacity = self.size_spin.value(), self.opacity.value() / 100.0
        entries: list = []
        for plot, m in ((self.plot, self.map), (self.plot2, self.other)):
            plot.setVisible(m is not None)
            if m is None:
                continue
            values, categorical = self.colour_values(m)
            codes, colours, (lo, hi) = colour_codes(values, categorical)
            points = self.attributes.points_for(m)
            plot.show_points(points, codes, colours, size, opacity, keep_view=keep_view)
            axes = ("a (along the attribute)", "jitter") if self.attributes.projecting() else m.projection.axes
            plot.setLabel("bottom", axes[0])
            plot.setLabel("left", axes[1])
            key = self.colour_combo.currentData() or "label"
            if categorical:
                keys = np.unique(values)
                names = m.encoded.class_names
                entries = [((names[int(k)] if key == "label" and 0 <= int(k) < len(names) else f"{key} = {k:g}"),
                            colours[c]) for c, k in enumerate(keys)]
            else:
                entries = [(f"{self.colour_combo.currentText()} {lo:.3g}", colours[0]),
                           (f"{self.colour_combo.currentText()} {hi:.3g}", colours[-1])]
            plot.set_legend(entries)
            plot.mark_selection(self.selection if self.selection is not None and
                                len(self.selection) == len(points) else None)
        self.draw_overlay()
        self._caption()

    def manifold_centres(self) -> np.ndarray | None:
        """The manifold grid's latents on this map ``(G*G, 2)``, when the map shows the
        manifold's two dimensions directly (latent or the same two dims); else None."""
        if self.map is None or self.manifold_grid is None or self.attributes.projecting():
            return None
        from models.latent import manifold_latents

        (i, j), g = self.manifold_grid()
        p = self.map.projection
        if p.dims is None or set(p.dims) != {i, j} or self.map.request.layer:
            return None
        d = self.map.encoded.codes.shape[1]
        z = manifold_latents(g, d, (i, j)).numpy()
        return z[:, list(p.dims)]

    def draw_overlay(self) -> None:
        centres = self.manifold_centres() if self.manifold_check.isChecked() else None
        self.plot.set_overlay(centres)
        if self.manifold_check.isChecked() and centres is None and self.map is not None:
            self.caption.setText("The manifold's grid is drawn on the latent itself or on the manifold's two "
                                 "dimensions (projection: two latent dimensions).")

    def _caption(self) -> None:
        m = self.map
        e, p = m.encoded, m.projection
        what = "posterior means mu" if e.points == "mean" else "one sample z ~ q(z|x) per image"
        if self.handle.discrete:
            what = "encoder outputs z_e (before quantisation)"
        if m.request.layer == 1:
            what += " of the lower layer z1"
        click = {True: "a click decodes the exact latent under the cursor (or the point clicked)",
                 False: "a click decodes the nearest data point's latent"}[p.exact]
        if p.kind == "umap":
            click = "a click decodes UMAP's approximate inverse of the cursor"
        text = (f"{len(e):,} images of the {e.split} split{'s' if e.split == 'both' else ''} at their {what}; "
                f"{p.note}; {click}. Weights: snapshot {getattr(self, 'snapshot', self.handle.version)}.")
        if self.other is not None:
            text += f" Right: {self.other_name}, same images and colours."
        if self.attributes.projecting():
            text = self.attributes.axis_caption() + " " + text
        self.caption.setText(text)

    # -- hover, click, selection ------------------------------------------------------------------
    def _map_of(self, plot) -> LatentMap | None:
        return self.map if plot is self.plot else self.other

    def _hovered(self, plot, i: int) -> None:
        m = self._map_of(plot)
        if m is None or i < 0 or i >= len(m.encoded):
            return
        e = m.encoded
        image = split_image(self.handle.dataset, int(e.source[i]), int(e.index[i]))
        self.hover_view.show_grid(image.numpy(), 1, 1)
        label = e.class_names[e.labels[i]] if 0 <= e.labels[i] < len(e.class_names) else str(e.labels[i])
        split = "train" if e.source[i] else "test"
        self.hover_label.setText(f"{split} #{int(e.index[i])}, label {label}, −ELBO {e.neg_elbo[i]:.1f} nats")

    def click_at(self, plot, x: float, y: float) -> None:
        """Decode what the map shows at ``(x, y)`` (data coordinates of ``plot``): the data
        point there when one is within 6 pixels (its ``mu``), else the latent under the
        cursor (exact inverse), else the nearest data point's latent."""
        from PySide6.QtCore import QPointF

        m = self._map_of(plot)
        if m is None:
            return
        model = self.handle.model if plot is self.plot else self.other_model
        i = plot.point_near(QPointF(x, y))
        if i is not None:
            z, how = m.encoded.codes[i], "point"
        elif self.attributes.projecting():
            i = plot.point_near(QPointF(x, y), pixels=1e9)
            z, how = m.encoded.codes[i], "nearest"
        else:
            z, i, how = m.projection.latent_at((x, y), m.encoded.codes)
        z = torch.as_tensor(np.asarray(z, dtype=np.float32))
        label = int(m.encoded.labels[i]) if i is not None else 0
        lower = m.request.layer == 1  # a map of z1: decoded through p(x|z1) alone
        with torch.inference_mode():
            y_lab = torch.tensor([label]) if model.config.conditional else None
            image = (model.decode_layers(None, z1=z[None]) if lower else model.decode(z[None], y_lab)).numpy()
        self.decoded_view.show_grid(image, 1, 1)
        self.chosen_index, self.chosen_z = i, z
        plot.mark_chosen((x, y))
        e = m.encoded
        where = {"point": "the clicked point's", "nearest": "the nearest point's",
                 "exact": "the latent under the cursor", "approximate": "UMAP's approximate inverse of the cursor"}[how]
        point = f" ({'train' if e.source[i] else 'test'} #{int(e.index[i])})" if i is not None else ""
        self.decoded_label.setText(f"Decoded: {where}{' code' if how in ('point', 'nearest') else ''}{point}")
        self.to_traversal.setEnabled(plot is self.plot and not lower)
        for b in (self.to_a, self.to_b):
            b.setEnabled(plot is self.plot and i is not None)
        self.attributes.point_chosen()

    def decoded_pixels(self) -> np.ndarray | None:
        """The decoded image on screen ``(H, W)`` or ``(H, W, C)``, or None."""
        return self.decoded_view.pixels

    def select_polygon(self, plot, polygon: np.ndarray) -> None:
        """Select the points of ``plot`` inside ``polygon`` ``(K, 2)`` (data coordinates)."""
        if self._map_of(plot) is None:
            return
        self.selection = points_in_polygon(plot.points, polygon)
        for p in (self.plot, self.plot2):
            p.mark_selection(self.selection if len(p.points) == len(self.selection) else None)
        self.attributes.selection_changed(int(self.selection.sum()))

    def _hand_end(self, end: str) -> None:
        if self.map is None or self.chosen_index is None:
            return
        e = self.map.encoded
        self.interpolation_end.emit(end, int(e.source[self.chosen_index]), int(e.index[self.chosen_index]))

    # -- a second model ---------------------------------------------------------------------------
    def compare_dialog(self) -> None:
        folder = self.settings.value("files/folder", str(Path.home())) if self.settings else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Compare with a model", folder, "vaegui models (*.vae)")
        if path:
            self.compare_with(path)

    def compare_with(self, path: str) -> bool:
        """Open the model in ``path`` and map the same data with it, beside this map."""
        from models.checkpoint import CheckpointError, read_checkpoint
        from models.vae import build_model

        try:
            ckpt = read_checkpoint(path)
            model = build_model(ckpt.model_config)
            model.load_state_dict(ckpt.weights)
        except (CheckpointError, ValueError, OSError, RuntimeError) as exc:
            show_message(self, QMessageBox.Icon.Warning, "Compare", f"Could not open {Path(path).name}:\n{exc}")
            return False
        data = self.handle.dataset
        if data is None or tuple(ckpt.model_config.input_shape) != tuple(data.image_shape):
            show_message(self, QMessageBox.Icon.Warning, "Compare",
                         f"{Path(path).name} takes {tuple(ckpt.model_config.input_shape)} images; this dataset has "
                         f"{tuple(data.image_shape) if data is not None else 'none'}.")
            return False
        self.other_model = model.eval()
        c = ckpt.model_config
        kind = "AE" if c.model == "ae" else c.model.upper()
        self.other_name = f"{Path(path).name} ({kind}, D = {c.latent_dim}, β = {ckpt.train_config.beta:g})"
        self.close_compare.setEnabled(True)
        self.other = None
        self.update_map()
        return True

    def close_comparison(self) -> None:
        """Back to one map."""
        self.other_model, self.other, self.other_name = None, None, ""
        self.plot2.hide()
        self.close_compare.setEnabled(False)
        if self.map is not None:
            self._caption()
