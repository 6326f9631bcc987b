"""The Latent map panel: where the data lands in z (the encoder's view), live while
training, with click-to-decode, selections, hand-offs to the other panels, a second
model's map beside the first, and exports (PNG, CSV, NPZ, TensorBoard Projector)."""

from __future__ import annotations

import copy

import numpy as np
import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from models.embedding import LatentMap, MapRequest, MapStopped, build_maps, points_in_polygon, split_image
from vaegui.mapexport import MapExport
from vaegui.maptext import legend_entries, manifold_centres, map_caption
from vaegui.mapview import MapPlot, colour_codes
from vaegui.panels.attributes import AttributePanel
from vaegui.panels.mapcompare import SecondModel
from vaegui.panels.mapcontrols import MapControls
from vaegui.panels.mappoint import PointInspector
from vaegui.tasks import BackgroundTask, TaskSlot
from vaegui.widgets import EpochRefresh


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
        self.selection: np.ndarray | None = None
        self.chosen_index: int | None = None
        self.chosen_z: torch.Tensor | None = None
        self._pending = False
        self._synced_dim = -1
        self._build()
        self.live = EpochRefresh(self, self.update_map)
        handle.changed.connect(self._model_changed)
        handle.changed.connect(self.live.snapshot_arrived)
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

        self.controls = MapControls()
        #: the point under the cursor and the decoded click, with the hand-off buttons
        self.inspector = PointInspector()
        self.attributes = AttributePanel(self)
        #: the "Compare" tab: a second model's map beside this one, and the Export button
        self.comparison = SecondModel(self.handle, self.settings)
        self.close_compare, self.export_button = self.comparison.close_compare, self.comparison.export_button
        self.exports = MapExport(self)
        self.exports.add_menu(self.export_button)
        #: what made the map (model fingerprint, dataset, epoch, seed), written into its PNG: set by the window
        self.model_info = dict

        self.side_tabs = QTabWidget()
        for layout, name in ((self.controls.map_form, "Map"), (self.controls.look_form, "Look")):
            page = QWidget()
            page.setLayout(layout)
            self.side_tabs.addTab(page, name)
        self.side_tabs.addTab(self.comparison, "Compare")
        self.side_tabs.addTab(self.attributes, "Attributes")
        side = QVBoxLayout()
        side.addWidget(self.inspector)
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

        self.controls.update_button.clicked.connect(self.update_map)
        self.controls.cancel_button.clicked.connect(self.cancel)
        self.slot = TaskSlot(self, self.controls.progress, self.controls.cancel_button, (MapStopped,), self._done,
                             self._failed, self._task_ended)
        QShortcut(QKeySequence("F5"), self, self.update_map, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.controls.colour_combo.currentIndexChanged.connect(lambda _i: self.redraw(keep_view=True))
        self.controls.size_spin.valueChanged.connect(lambda _v: self.redraw(keep_view=True))
        self.controls.opacity.valueChanged.connect(lambda _v: self.redraw(keep_view=True))
        self.controls.manifold_check.toggled.connect(lambda _on: self.draw_overlay())
        self.controls.select_check.toggled.connect(self._select_mode)
        self.controls.shape_combo.currentIndexChanged.connect(self._select_mode)
        for plot in (self.plot, self.plot2):
            plot.hovered.connect(lambda i, plot=plot: self._hovered(plot, i))
            plot.box.clicked.connect(lambda xy, plot=plot: self.click_at(plot, xy.x(), xy.y()))
            plot.box.selected.connect(lambda poly, plot=plot: self.select_polygon(plot, poly))
        self.inspector.traverse.connect(lambda: self.chosen_z is not None and self.traverse_from.emit(self.chosen_z))
        self.inspector.hand_end.connect(self._hand_end)
        self.comparison.opened.connect(self._second_model_opened)
        self.close_compare.clicked.connect(self.close_comparison)

    # -- state ------------------------------------------------------------------------------------
    def request(self) -> MapRequest:
        """The map the controls ask for."""
        return self.controls.request(getattr(self.handle.model, "hierarchical", False))

    def _select_mode(self) -> None:
        for plot in (self.plot, self.plot2):
            plot.box.select_mode = self.controls.select_check.isChecked()
            plot.box.selection_shape = self.controls.shape_combo.currentData()

    def _model_changed(self) -> None:
        self.controls.show_layers(getattr(self.handle.model, "hierarchical", False))
        d = self.handle.latent_dim
        if self.handle.version < 0 and self.attributes.vectors:  # a new model: the old one's vectors mean nothing
            self.attributes.from_info({})
        if d == self._synced_dim and self.handle.version >= 0:
            return  # new weights every 0.25 s while training: nothing here depends on them
        self._synced_dim = d
        self.controls.set_latent_dim(d, has_map=self.map is not None)
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
            plot.reset()
        self.close_comparison()
        self.export_button.setEnabled(False)
        self.inspector.forget()
        self.caption.setText("Press Update map (F5) to encode the data with the newest weights."
                             if self.handle.ready else "No model yet: press Train (Ctrl+Return).")

    def _sync_colours(self) -> None:
        data = self.handle.dataset  # not a VQ-VAE's 1,568 z_e values
        self.controls.set_colour_keys(data.factor_names if data is not None else (),
                                      0 if self.handle.discrete else self.handle.latent_dim)

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
        request, model = self.request(), copy.deepcopy(self.handle.model).cpu().eval()
        second, dataset, previous = self.comparison.model, self.handle.dataset, (self.map, self.other)
        version = self.handle.version
        self.slot.start(lambda progress, stopped: (*build_maps(model, second, dataset, request, previous=previous,
                                                               progress=progress, stopped=stopped), version))

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
        self.controls.progress.setFormat("failed")
        self.caption.setText(f"The map could not be made: {message}")

    def _done(self, result) -> None:
        first, second, version = result
        same_kind = self.map is not None and self.map.request.projection == first.request.projection
        if self.map is None or len(self.map.encoded) != len(first.encoded):
            self.controls.suggest_point_size(len(first.encoded))
        self.map, self.other = first, second
        self.snapshot = version
        self.controls.progress.setValue(1000)
        self.controls.progress.setFormat(f"{len(first.encoded):,} points")
        self.export_button.setEnabled(True)
        if self.selection is not None and len(self.selection) != len(first.encoded):
            self.selection = None
        self.redraw(keep_view=same_kind)
        self.attributes.map_changed()

    def refresh_live(self) -> None:
        """At an epoch's end: map the epoch's weights if the map is live and shown (else when it is)."""
        if self.controls.live_check.isChecked():
            self.live.epoch_ended()

    def window_restored(self) -> None:
        """The window came back from being minimised: map the data again if epochs ended meanwhile."""
        if self.handle.ready and not self.busy:
            self.live.catch_up()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.handle.ready and not self.busy:  # first shown with a model, or epochs ended while hidden
            self.live.catch_up(also=self.map is None)

    # -- drawing ----------------------------------------------------------------------------------
    def redraw(self, keep_view: bool = False) -> None:
        """Draw the map(s) with the chosen colours, size and opacity."""
        if self.map is None:
            return
        size, opacity = self.controls.size_spin.value(), self.controls.opacity.value() / 100.0
        for plot, m in ((self.plot, self.map), (self.plot2, self.other)):
            plot.setVisible(m is not None)
            if m is None:
                continue
            values, categorical = self.controls.colour_values(m)
            codes, colours, value_range = colour_codes(values, categorical)
            points = self.attributes.points_for(m)
            plot.show_points(points, codes, colours, size, opacity, keep_view=keep_view)
            axes = ("a (along the attribute)", "jitter") if self.attributes.projecting() else m.projection.axes
            plot.setLabel("bottom", axes[0])
            plot.setLabel("left", axes[1])
            plot.set_legend(legend_entries(values, categorical, colours, value_range, self.controls.colour_key(),
                                           m.encoded.class_names, self.controls.colour_combo.currentText()))
            plot.mark_selection(self.selection if self.selection is not None and
                                len(self.selection) == len(points) else None)
        self.draw_overlay()
        self._caption()

    def manifold_centres(self) -> np.ndarray | None:
        """The manifold grid's latents on this map ``(G*G, 2)``, when the map shows the
        manifold's two dimensions directly (latent or the same two dims); else None."""
        if self.map is None or self.manifold_grid is None or self.attributes.projecting():
            return None
        dims, grid = self.manifold_grid()
        return manifold_centres(self.map, dims, grid)

    def draw_overlay(self) -> None:
        centres = self.manifold_centres() if self.controls.manifold_check.isChecked() else None
        self.plot.set_overlay(centres)
        if self.controls.manifold_check.isChecked() and centres is None and self.map is not None:
            self.caption.setText("The manifold's grid is drawn on the latent itself or on the manifold's two "
                                 "dimensions (projection: two latent dimensions).")

    def _caption(self) -> None:
        text = map_caption(self.map, self.handle.discrete, getattr(self, "snapshot", self.handle.version))
        if self.other is not None:
            text += f" Right: {self.comparison.name}, same images and colours."
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
        label = e.class_names[e.labels[i]] if 0 <= e.labels[i] < len(e.class_names) else str(e.labels[i])
        split = "train" if e.source[i] else "test"
        self.inspector.show_hovered(image.numpy(),
                                    f"{split} #{int(e.index[i])}, label {label}, −ELBO {e.neg_elbo[i]:.1f} nats")

    def click_at(self, plot, x: float, y: float) -> None:
        """Decode what the map shows at ``(x, y)`` (data coordinates of ``plot``): the data
        point there when one is within 6 pixels (its ``mu``), else the latent under the
        cursor (exact inverse), else the nearest data point's latent."""
        from PySide6.QtCore import QPointF

        m = self._map_of(plot)
        if m is None:
            return
        model = self.handle.model if plot is self.plot else self.comparison.model
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
        self.chosen_index, self.chosen_z = i, z
        plot.mark_chosen((x, y))
        e = m.encoded
        where = {"point": "the clicked point's", "nearest": "the nearest point's",
                 "exact": "the latent under the cursor", "approximate": "UMAP's approximate inverse of the cursor"}[how]
        point = f" ({'train' if e.source[i] else 'test'} #{int(e.index[i])})" if i is not None else ""
        self.inspector.show_decoded(image, f"Decoded: {where}{' code' if how in ('point', 'nearest') else ''}{point}",
                                    traversable=plot is self.plot and not lower,
                                    a_data_point=plot is self.plot and i is not None)
        self.attributes.point_chosen()

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
    def compare_with(self, path: str) -> bool:
        """Open the model in ``path`` and map the same data with it, beside this map."""
        return self.comparison.open(path)

    def _second_model_opened(self) -> None:
        self.other = None
        self.update_map()

    def close_comparison(self) -> None:
        """Back to one map."""
        self.comparison.close_model()
        self.other = None
        self.plot2.hide()
        if self.map is not None:
            self._caption()
