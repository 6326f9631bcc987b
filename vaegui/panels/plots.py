"""Live training plots: −ELBO, reconstruction and KL per step (train) and per epoch
(test), nats per image, on linked step axes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget

from models.penalties import TERM_TITLES
from models.run import MetricHistory
from vaegui.liverange import LiveViewBox
from vaegui.widgets import on_screen

#: the objective's terms drawn on the KL plot, nats per image (the DIP penalty and the discriminator's
#: accuracy are on other scales: they are in the CSV and the command line's output)
PLOTTED_TERMS = ("mi", "tc", "dim_kl", "capacity", "kl_z1", "kl_z2")
TERM_COLOURS = ((148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127))
#: (key, title) of the three plots.
TERMS = (("neg_elbo", "−ELBO"), ("recon", "Reconstruction −E[log p(x|z)]"), ("kl", "KL(q(z|x) ‖ p(z))"))
#: below this height (pixels) the panel draws its plots compact: smaller titles, no "step" under the axis
COMPACT_BELOW = 240


def ema(values: np.ndarray, weight: float, start: int = 0, prev: np.ndarray | None = None) -> np.ndarray:
    """TensorBoard's debiased exponential moving average of ``values[start:]``.

    ``prev`` holds the already smoothed ``values[:start]`` so that new points cost O(new).
    """
    out = np.empty(len(values))
    if prev is not None:
        out[:start] = prev[:start]
    if weight <= 0:
        out[start:] = values[start:]
        return out
    # Recover the biased accumulator from the last debiased value.
    acc = out[start - 1] * (1 - weight**start) if start > 0 else 0.0
    for i in range(start, len(values)):
        acc = acc * weight + (1 - weight) * values[i]
        out[i] = acc / (1 - weight ** (i + 1))
    return out


class PlotsPanel(QWidget):
    """Three linked plots, a smoothing slider, a log-y toggle and a cursor readout.

    Metrics are buffered as they arrive and drawn by a 10 Hz timer, only when
    something changed, and the latent panels' sliders need that thread too: the views'
    ranges move in steps (:class:`~vaegui.liverange.LiveViewBox`; the step axis spans
    ``planned_steps()``, the run's planned last step, from the start) and the per-epoch
    curves are given points only when an epoch ended. Measured with 990 steps in 330
    redraws at 1280×330 pixels: 6.1–7.4 ms of the GUI thread per redraw and paint (median
    of three runs) against 17.1–20.7 ms with pyqtgraph's auto-range at every redraw, where
    laying the axes' ticks and text out again dominated.
    """

    def __init__(self, history: MetricHistory, parent: QWidget | None = None,
                 planned_steps: Callable[[], int] | None = None):
        super().__init__(parent)
        #: what is drawn: the run's metrics (the one copy; this view only draws it)
        self.history = history
        #: the run's planned last step (0 when unknown): the step axis spans it from the start
        self.planned_steps = planned_steps or (lambda: 0)
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.layout_widget.setBackground("w")
        self.layout_widget.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click on the plots: Copy copies them
        self.plots: dict[str, pg.PlotItem] = {}
        self.train_raw: dict[str, pg.PlotDataItem] = {}
        self.train_smooth: dict[str, pg.PlotDataItem] = {}
        self.test_curves: dict[str, pg.PlotDataItem] = {}
        first = None
        for col, (key, title) in enumerate(TERMS):
            plot = self.layout_widget.addPlot(row=0, col=col, title=title,
                                              viewBox=LiveViewBox(planned_x=lambda: self.planned_steps()))
            plot.setLabel("bottom", "step")
            plot.setLabel("left", "nats per image")
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            legend = plot.addLegend(offset=(-10, 10))
            self.train_raw[key] = plot.plot(pen=pg.mkPen((31, 119, 180, 60), width=1))
            self.train_smooth[key] = plot.plot(pen=pg.mkPen((31, 119, 180), width=2), name="train")
            self.test_curves[key] = plot.plot(
                pen=pg.mkPen((214, 39, 40), width=2), symbol="o", symbolSize=6,
                symbolBrush=(214, 39, 40), name="test (per epoch)",
            )
            legend.setLabelTextColor("k")
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            self.plots[key] = plot
        # Curves that exist only for some runs join the legend when they get data.
        self.loss_curve = self.plots["neg_elbo"].plot(
            pen=pg.mkPen((255, 127, 14), width=2, style=Qt.PenStyle.DashLine)
        )
        self.iw_curve = self.plots["neg_elbo"].plot(
            pen=pg.mkPen((44, 160, 44), width=2), symbol="t", symbolSize=7, symbolBrush=(44, 160, 44)
        )
        self.gap_curve = self.plots["kl"].plot(
            pen=pg.mkPen((44, 160, 44), width=2), symbol="t", symbolSize=7, symbolBrush=(44, 160, 44)
        )
        self._optional = {
            self.loss_curve: (self.plots["neg_elbo"], "train loss (weighted KL)"),
            self.iw_curve: (self.plots["neg_elbo"], "test −log p(x), importance-sampled"),
            self.gap_curve: (self.plots["kl"], "gap log p(x) − ELBO ≈ KL(q ‖ p(z|x))"),
        }
        self._in_legend: set = set()
        #: the objective's own terms (β-TCVAE's decomposition, FactorVAE's TC, the capacity C), per epoch on
        #: the KL plot: made when a run first reports them
        self.term_curves: dict[str, pg.PlotDataItem] = {}
        #: epochs drawn on the per-epoch curves: they change at epoch ends, not at every step
        self._epochs_drawn = -1
        #: other runs' curves by run name (set_overlays)
        self.overlays: dict[str, list] = {}

        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setToolTip("Exponential moving average of the train curves, as in TensorBoard")
        self.smoothing_label = QLabel()
        self.log_check = QCheckBox("Log y")
        self.log_check.setToolTip("Logarithmic y axes")
        self.grid_check = QCheckBox("Grid")
        self.grid_check.setToolTip("Grid lines (they make each redraw several times slower)")
        self.readout = QLabel("Move the mouse over a plot to read values.")
        # the readout takes the row's room that is left (cut short in a narrow window), never widens it
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Smoothing:"))
        controls.addWidget(self.smoothing, 1)
        controls.addWidget(self.smoothing_label)
        controls.addWidget(self.log_check)
        controls.addWidget(self.grid_check)
        controls.addWidget(self.readout, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.layout_widget, 1)
        layout.addLayout(controls)

        #: the plots drawn compact (a short panel: a laptop's 1280×720 leaves the dock about 160 pixels)
        self.compact = False
        self._smoothed: dict[str, np.ndarray] = {key: np.empty(0) for key in (*dict(TERMS), "loss")}
        self._drawn_revision = -1
        self._drawn_steps = 0
        self._smoothed_upto = 0

        self.smoothing.valueChanged.connect(self._smoothing_changed)
        self.log_check.toggled.connect(self._set_log)
        self.grid_check.toggled.connect(self._set_grid)
        self.layout_widget.scene().sigMouseMoved.connect(self._mouse_moved)
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()
        self._smoothing_changed()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self.set_compact(self.height() < COMPACT_BELOW)

    def set_compact(self, compact: bool) -> None:
        """Compact plots give their data more of a short panel: the titles in 9 pt on an 18-pixel
        row instead of 11 pt on 30, no "step" label under the step axis (its ticks stay) and the
        legends' text in 7 pt instead of 9."""
        if compact == self.compact:
            return
        self.compact = compact
        for key, title in TERMS:
            plot = self.plots[key]
            plot.setTitle(title, size="9pt" if compact else "11pt")
            if compact:
                plot.titleLabel.setMaximumHeight(18)
                plot.layout.setRowFixedHeight(0, 18)
            plot.getAxis("bottom").showLabel(not compact)
            if plot.legend is not None:  # over less of the curves
                plot.legend.setLabelTextSize("7pt" if compact else "9pt")
                for _sample, label in plot.legend.items:
                    label.setText(label.text)  # setLabelTextSize alone keeps the old text's size
                plot.legend.updateSize()

    # -- what is drawn --------------------------------------------------------------------------
    @property
    def steps(self):
        """The history's step numbers (a :class:`~models.run.GrowingBuffer`)."""
        return self.history.steps

    @property
    def epochs(self):
        """The history's per-epoch records."""
        return self.history.epochs

    def invalidate(self) -> None:
        """Redraw everything on the next tick (after the history was replaced or cut)."""
        self._smoothed_upto = 0
        self._drawn_revision = -1
        self._epochs_drawn = -1

    # -- drawing ---------------------------------------------------------------------------
    @property
    def smoothing_weight(self) -> float:
        """The EMA weight of the train curves, 0 (none) to 0.99."""
        return self.smoothing.value() / 100.0

    def _smoothing_changed(self) -> None:
        self.smoothing_label.setText(f"{self.smoothing_weight:.2f}")
        self.invalidate()

    def _set_grid(self, on: bool) -> None:
        for plot in self.plots.values():
            plot.showGrid(x=on, y=on, alpha=0.25 if on else None)

    def _set_log(self, on: bool) -> None:
        for plot in self.plots.values():
            plot.setLogMode(y=on)

    def point_counts(self) -> dict[str, int]:
        """Points given to each curve: ``{"train": steps, "test": epochs}`` (what a person
        sees after scrolling; ``getData`` would give only the part clipped to the view)."""
        x = self.train_smooth["neg_elbo"].xData
        tx = self.test_curves["neg_elbo"].xData
        return {"train": 0 if x is None else len(x), "test": 0 if tx is None else len(tx)}

    def redraw(self) -> None:
        """Draw what changed in the history since the last redraw (the 10 Hz timer)."""
        h = self.history
        if h.revision == self._drawn_revision or not on_screen(self):
            return  # a minimised window draws what came meanwhile at the first tick after it comes back
        if h.steps.size < self._drawn_steps:  # cut or replaced: smooth again from the start
            self._smoothed_upto = 0
        self._drawn_revision, self._drawn_steps = h.revision, h.steps.size
        x = h.steps.data
        w = self.smoothing_weight
        # The per-epoch curves change only at an epoch's end: giving them the same points
        # again at every redraw cost about a fifth of it (their symbols are laid out anew).
        epochs_changed = self._smoothed_upto == 0 or len(self.epochs) != self._epochs_drawn
        self._epochs_drawn = len(self.epochs)
        for key, _title in TERMS:
            y = h.terms[key].data
            self._smoothed[key] = ema(y, w, self._smoothed_upto, self._smoothed[key])
            self.train_raw[key].setData(x, y)
            self.train_smooth[key].setData(x, self._smoothed[key])
            if epochs_changed:
                ex = np.array([e.step for e in self.epochs], dtype=np.float64)
                ey = np.array([getattr(e, f"test_{key}") for e in self.epochs], dtype=np.float64)
                self.test_curves[key].setData(ex, ey)
        loss = h.terms["loss"].data
        self._smoothed["loss"] = ema(loss, w, self._smoothed_upto, self._smoothed["loss"])
        weighted = len(loss) and not np.allclose(loss, h.terms["neg_elbo"].data, rtol=0, atol=1e-4)
        self.loss_curve.setData(x, self._smoothed["loss"]) if weighted else self.loss_curve.setData([], [])
        if epochs_changed:
            iw = [e for e in self.epochs if e.test_nll_iw is not None]
            ix = np.array([e.step for e in iw], dtype=np.float64)
            self.iw_curve.setData(ix, np.array([e.test_nll_iw for e in iw], dtype=np.float64))
            self.gap_curve.setData(ix, np.array([e.test_iw_gap for e in iw], dtype=np.float64))
            self._draw_terms()
        for curve, (plot, name) in self._optional.items():
            has_data = curve.xData is not None and len(curve.xData) > 0
            if has_data and curve not in self._in_legend:
                plot.legend.addItem(curve, name)
                self._in_legend.add(curve)
            elif not has_data and curve in self._in_legend:
                plot.legend.removeItem(curve)
                self._in_legend.discard(curve)
        self._smoothed_upto = len(x)

    def _draw_terms(self) -> None:
        """The objective's own terms of each epoch (train means) on the KL plot (called when the
        epochs changed)."""
        ex = np.array([e.step for e in self.epochs], dtype=np.float64)
        for key in dict.fromkeys(k for e in self.epochs for k in e.train_terms if k in PLOTTED_TERMS):
            curve = self.term_curves.get(key)
            if curve is None:
                colour = TERM_COLOURS[len(self.term_curves) % len(TERM_COLOURS)]
                dashed = key == "capacity"
                curve = self.term_curves[key] = self.plots["kl"].plot(
                    pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine),
                    symbol=None if dashed else "s", symbolSize=5, symbolBrush=colour)
                self._optional[curve] = (self.plots["kl"], f"{TERM_TITLES[key]} (train, per epoch)")
            ey = np.array([e.train_terms.get(key, np.nan) for e in self.epochs], dtype=np.float64)
            curve.setData(ex, ey, connect="finite")
        for key, curve in self.term_curves.items():
            if not any(key in e.train_terms for e in self.epochs):
                curve.setData([], [])

    # -- other runs, overlaid ---------------------------------------------------------------------
    def set_overlays(self, runs: list[tuple[str, tuple[int, int, int], MetricHistory]]) -> None:
        """Overlay other runs' curves (the Runs panel's ticked runs), TensorBoard-style:
        ``(name, colour, history)`` each, drawn as its smoothed train curve and its test
        points per epoch in its colour on the three plots; [] removes them all."""
        for items in self.overlays.values():
            for plot, item in items:
                plot.legend.removeItem(item)  # nothing happens for an item without a legend entry
                plot.removeItem(item)
        self.overlays = {}
        w = self.smoothing_weight
        for name, colour, history in runs:
            items = []
            x = history.steps.data
            ex = np.array([e.step for e in history.epochs], dtype=np.float64)
            for key, _title in TERMS:
                plot = self.plots[key]
                train = plot.plot(x, ema(history.terms[key].data, w), pen=pg.mkPen(colour, width=1.5))
                ey = np.array([getattr(e, f"test_{key}") for e in history.epochs], dtype=np.float64)
                test = plot.plot(ex, ey, pen=pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashLine), symbol="o",
                                 symbolSize=5, symbolBrush=colour, symbolPen=colour)
                items += [(plot, train), (plot, test)]
                if key == "neg_elbo":
                    plot.legend.addItem(train, name)
            self.overlays[name] = items

    def _mouse_moved(self, pos) -> None:
        for key, title in TERMS:
            plot = self.plots[key]
            if plot.sceneBoundingRect().contains(pos):
                p = plot.vb.mapSceneToView(pos)
                y = 10 ** p.y() if self.log_check.isChecked() else p.y()
                text = f"step {p.x():,.0f} · {title.split(' ')[0]} {y:,.2f} nats"
                n = self.steps.size
                if n:
                    i = int(np.clip(np.searchsorted(self.steps.data, p.x()), 0, n - 1))
                    text += f" · train at step {int(self.steps.data[i])}: {self._smoothed[key][i]:,.2f} (smoothed)"
                self.readout.setText(text)
                return

    # -- export ----------------------------------------------------------------------------
    def export_png(self, path: str) -> None:
        """Save the three plots as one PNG at their size on screen."""
        size = self.layout_widget.size()
        self.export_figure(path, size.width(), size.height())

    def export_figure(self, path: str, width: int, height: int, dpi: int = 96, text: dict | None = None) -> None:
        """Save the three plots as on screen (smoothing, log-y, legends) at ``width × height``
        (pixels; for PDF, points at ``dpi``) as PNG, SVG or PDF, chosen by the suffix
        (:func:`vaegui.plotfile.write_layout`), with their full titles and axis labels even while
        the panel draws them compact.

        Raises:
            ValueError: an unknown suffix or a size below 16 pixels.
            OSError: the file cannot be written.
        """
        from vaegui.plotfile import write_layout

        self.redraw()
        compact = self.compact
        self.set_compact(False)
        try:
            write_layout(self.layout_widget, path, width, height, dpi, text,
                         title="vaegui training curves (nats per image)")
        finally:
            self.set_compact(compact)
