"""The scatter of a latent map: tens of thousands of points in one
``ScatterPlotItem`` (pixel-mode symbols, a small palette of shared brushes), hover
and click in data coordinates, and box or lasso selection by dragging."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem

#: colours of labels (categorical), then a continuous colour map for values
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
           "#756bb1", "#636363")
LEVELS = 64


def colour_codes(values: np.ndarray, categorical: bool) -> tuple[np.ndarray, list[QColor], tuple[float, float]]:
    """Per-point colour indices ``(N,)`` into a list of colours, and the value range.

    Categorical values (labels, a factor with few values) take one palette colour
    each; continuous values are cut into 64 levels of viridis between their 1st and
    99th percentiles (outliers take the end colours)."""
    values = np.asarray(values)
    if categorical:
        keys, codes = np.unique(values, return_inverse=True)
        colours = [QColor(PALETTE[k % len(PALETTE)]) for k in range(len(keys))]
        return codes.astype(np.int64), colours, (float(keys.min()), float(keys.max()))
    v = values.astype(np.float64)
    finite = np.isfinite(v)
    lo, hi = (np.percentile(v[finite], [1, 99]) if finite.any() else (0.0, 1.0))
    if hi <= lo:
        hi = lo + 1.0
    codes = np.clip(((v - lo) / (hi - lo) * (LEVELS - 1)).round(), 0, LEVELS - 1)
    codes = np.where(finite, codes, 0).astype(np.int64)
    cmap = pg.colormap.get("viridis")
    colours = [cmap.map(k / (LEVELS - 1), mode="qcolor") for k in range(LEVELS)]
    return codes, colours, (float(lo), float(hi))


class MapViewBox(pg.ViewBox):
    """A ViewBox that reports left clicks in data coordinates (``clicked``, emitted by
    :class:`MapPlot` for any click inside the box, on a point or not) and turns a drag into a box
    or lasso selection when ``select_mode`` is on or Shift is held (otherwise a drag pans)."""

    clicked = Signal(QPointF)
    selected = Signal(object)  # the polygon (K, 2) in data coordinates

    def __init__(self):
        super().__init__(enableMenu=False)
        self.select_mode = False
        self.selection_shape = "lasso"  # or "box"
        self._trace: list[tuple[float, float]] = []
        self._outline = QGraphicsPathItem()
        pen = QPen(QColor("#d62728"))
        pen.setCosmetic(True)
        pen.setStyle(Qt.PenStyle.DashLine)
        self._outline.setPen(pen)
        self._outline.setZValue(100)
        self.addItem(self._outline, ignoreBounds=True)
        self._outline.hide()

    def polygon(self) -> np.ndarray:
        """The selection outline being drawn ``(K, 2)``."""
        if self.selection_shape == "box" and len(self._trace) >= 2:
            (x0, y0), (x1, y1) = self._trace[0], self._trace[-1]
            return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        return np.array(self._trace, dtype=np.float64).reshape(-1, 2)

    def mouseDragEvent(self, ev, axis=None):
        selecting = self.select_mode or bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if ev.button() != Qt.MouseButton.LeftButton or not selecting:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        p = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            start = self.mapSceneToView(ev.buttonDownScenePos())
            self._trace = [(start.x(), start.y())]
        self._trace.append((p.x(), p.y()))
        poly = self.polygon()
        path = QPainterPath()
        if len(poly):
            path.moveTo(*poly[0])
            for x, y in poly[1:]:
                path.lineTo(x, y)
            path.closeSubpath()
        self._outline.setPath(path)
        self._outline.show()
        if ev.isFinish():
            self._outline.hide()
            self.selected.emit(poly)
            self._trace = []


class MapPlot(pg.PlotWidget):
    """One latent map: the points, the hovered / clicked / selected marks, and an
    optional overlay (the manifold's grid). ``hovered(index or -1)`` is emitted after
    the cursor moves (coalesced to one nearest-point search per event-loop pass)."""

    hovered = Signal(int)

    def __init__(self, parent=None):
        self.box = MapViewBox()
        super().__init__(parent, viewBox=self.box, background="w")
        self.setMinimumSize(200, 160)
        #: one scatter item per colour (see :meth:`show_points`)
        self.layers: list[pg.ScatterPlotItem] = []
        self._jobs: list = []
        self._follow = False
        self._fill_timer = QTimer(self)
        self._fill_timer.setSingleShot(True)
        self._fill_timer.setInterval(0)
        self._fill_timer.timeout.connect(self._fill)
        self.marks = pg.ScatterPlotItem(pxMode=True, size=12, brush=None, pen=pg.mkPen("#d62728", width=2))
        self.chosen = pg.ScatterPlotItem(pxMode=True, size=16, symbol="+", pen=pg.mkPen("k", width=2), brush=None)
        self.selection = pg.ScatterPlotItem(pxMode=True, size=7, brush=None, pen=pg.mkPen("#000", width=1))
        self.overlay = pg.ScatterPlotItem(pxMode=True, size=4, symbol="x", pen=pg.mkPen("#d62728"), brush=None)
        self.overlay_box = pg.PlotCurveItem(pen=pg.mkPen("#d62728", width=1, style=Qt.PenStyle.DashLine))
        for item in (self.selection, self.overlay, self.overlay_box, self.marks, self.chosen):
            self.addItem(item)
        self.legend = self.getPlotItem().addLegend(offset=(-5, 5), labelTextSize="8pt")
        self.points = np.zeros((0, 2), dtype=np.float32)
        self._hover_at: QPointF | None = None
        self._hovered_index: int | None = None
        self._hover_timer = QTimer(self)
        self._hover_timer.setSingleShot(True)
        self._hover_timer.setInterval(0)
        self._hover_timer.timeout.connect(self._find_hovered)
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)

    def _clicked(self, ev) -> None:
        # at the scene, before any item: a click on a point is a click on the map too
        if ev.button() == Qt.MouseButton.LeftButton and self.box.sceneBoundingRect().contains(ev.scenePos()):
            self.box.clicked.emit(self.box.mapSceneToView(ev.scenePos()))

    #: points per scatter item; items are filled one after another between events
    CHUNK = 4000

    def show_points(self, points: np.ndarray, codes: np.ndarray, colours: list[QColor], size: int,
                    opacity: float, keep_view: bool = False) -> None:
        """Draw ``points`` ``(N, 2)`` coloured by ``colours[codes]``.

        Each colour's points go to scatter items of at most :attr:`CHUNK` points with a
        single brush, filled a few at a time between events: pyqtgraph spends ~3 µs of
        Python per point on a new item's symbols, so 60,000 points at once would stall
        the window ~0.3 s; in chunks the map appears over a few frames instead."""
        self.points = np.asarray(points, dtype=np.float32)
        codes = np.asarray(codes)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(colours) + 1))
        jobs = []
        for k in range(len(colours)):
            c = QColor(colours[k])
            c.setAlphaF(opacity)
            brush = pg.mkBrush(c)
            for start in range(bounds[k], bounds[k + 1], self.CHUNK):
                stop = min(bounds[k + 1], start + self.CHUNK)
                jobs.append((self.points[order[start:stop]], brush, size))
        while len(self.layers) < len(jobs):
            layer = pg.ScatterPlotItem(pxMode=True, pen=None)
            layer.setZValue(-1)
            self.addItem(layer)
            self.layers.append(layer)
        self._jobs = list(zip(self.layers, jobs))
        for layer in self.layers[len(jobs):]:
            layer.setData(pos=np.zeros((0, 2)))
        self._fill_timer.start()
        #: follow the points unless the user zoomed or panned (auto-range stays on, so the next
        #: map follows its points too); set again once every chunk is drawn, as the items'
        #: bounds (what pyqtgraph's auto-range reads) hold the previous map until then
        self._follow = not keep_view or all(self.box.autoRangeEnabled())
        self._frame()

    def _frame(self) -> None:
        if self._follow and all(self.box.autoRangeEnabled()):  # not after the user zoomed meanwhile
            self.box.setRange(xRange=self._span(0), yRange=self._span(1), padding=0.05, disableAutoRange=False)

    @property
    def drawing(self) -> bool:
        """True while chunks of the newest points are still to be drawn."""
        return bool(self._jobs)

    def _span(self, axis: int) -> tuple[float, float]:
        if not len(self.points):
            return (-1.0, 1.0)
        lo, hi = float(self.points[:, axis].min()), float(self.points[:, axis].max())
        return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)

    def _fill(self, budget_s: float = 0.012) -> None:
        import time

        end = time.perf_counter() + budget_s
        while self._jobs and time.perf_counter() < end:
            layer, (pos, brush, size) = self._jobs.pop(0)
            layer.setData(pos=pos, brush=brush, size=size, pen=None)
        if self._jobs:
            self._fill_timer.start()
        else:
            self._frame()

    def flush(self) -> None:
        """Draw every point now (before an export)."""
        self._fill_timer.stop()
        self._fill(budget_s=float("inf"))

    def clear_points(self) -> None:
        """Show no points."""
        self.points = np.zeros((0, 2), dtype=np.float32)
        self._jobs = []
        for layer in self.layers:
            layer.setData(pos=np.zeros((0, 2)))

    def reset(self) -> None:
        """No points, marks, selection, overlay or legend (another model or dataset)."""
        self.clear_points()
        self.mark(None)
        self.mark_chosen(None)
        self.mark_selection(None)
        self.set_overlay(None)
        self.set_legend([])

    def set_legend(self, entries: list[tuple[str, QColor]]) -> None:
        """One legend row per (name, colour); none for an empty list."""
        self.legend.clear()
        for name, colour in entries[:20]:
            self.legend.addItem(pg.ScatterPlotItem(pen=None, brush=pg.mkBrush(colour), size=8), name)

    def mark(self, index: int | None) -> None:
        """Ring the hovered point (None: none)."""
        self._hovered_index = index
        self.marks.setData(pos=self.points[[index]] if index is not None and index < len(self.points) else [])

    def mark_chosen(self, xy: tuple[float, float] | None) -> None:
        """A cross where the user clicked (None: none)."""
        self.chosen.setData(pos=[xy] if xy is not None else [])

    def mark_selection(self, mask: np.ndarray | None) -> None:
        """Outline the selected points (None: none)."""
        self.selection.setData(pos=self.points[mask] if mask is not None and mask.any() else [])

    def set_overlay(self, centres: np.ndarray | None) -> None:
        """The manifold grid's cell centres ``(G*G, 2)`` and their bounding box (None: hidden)."""
        if centres is None or len(centres) == 0:
            self.overlay.setData(pos=[])
            self.overlay_box.setData([], [])
            return
        self.overlay.setData(pos=centres)
        (x0, y0), (x1, y1) = centres.min(axis=0), centres.max(axis=0)
        self.overlay_box.setData([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0])

    def pixel_radius(self, pixels: float) -> tuple[float, float]:
        """``pixels`` on screen in data units along x and y."""
        px = self.box.viewPixelSize()
        return pixels * px[0], pixels * px[1]

    def point_near(self, xy: QPointF, pixels: float = 6.0) -> int | None:
        """The data point within ``pixels`` of ``xy`` (data coordinates), or None."""
        from models.embedding import nearest

        if not len(self.points):
            return None
        return nearest(self.points, (xy.x(), xy.y()), within=self.pixel_radius(pixels))

    def _moved(self, scene_pos) -> None:
        if self.box.sceneBoundingRect().contains(scene_pos):
            self._hover_at = self.box.mapSceneToView(scene_pos)
            self._hover_timer.start()

    def _find_hovered(self) -> None:
        if self._hover_at is None:
            return
        i = self.point_near(self._hover_at)
        if i == self._hovered_index:  # the same point: nothing to redraw
            return
        self._hovered_index = i
        self.mark(i)
        self.hovered.emit(-1 if i is None else i)
