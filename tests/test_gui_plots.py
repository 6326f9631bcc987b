"""The live training plots' ranges: the step axis spans the planned run from the start, the
views move in steps rather than at every redraw, and a zoom by the user stays put."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from models.run import MetricHistory
from models.trainer import EpochEnd, StepBatch
from vaegui.liverange import sticky_range
from vaegui.panels.plots import PlotsPanel

STEPS_PER_EPOCH, EPOCHS = 32, 6
PLANNED = STEPS_PER_EPOCH * EPOCHS


def test_sticky_range_keeps_a_range_that_holds_and_fills():
    assert sticky_range((10.0, 20.0), (9.0, 21.0)) is None
    # data leaves the range: fitted again with 5 % of the span either side
    assert sticky_range((10.0, 30.0), (9.0, 21.0)) == pytest.approx((9.0, 31.0))
    assert sticky_range((5.0, 20.0), (9.0, 21.0)) == pytest.approx((4.25, 20.75))
    # data fills less than 60 % of the range: fitted again
    assert sticky_range((10.0, 15.0), (9.0, 21.0)) == pytest.approx((9.75, 15.25))
    # one value
    assert sticky_range((4.0, 4.0), (0.0, 1.0)) == pytest.approx((3.8, 4.2))
    assert sticky_range((0.0, 0.0), (5.0, 6.0)) == pytest.approx((-1.0, 1.0))
    with pytest.raises(ValueError):
        sticky_range((float("nan"), 1.0), (0.0, 1.0))
    with pytest.raises(ValueError):
        sticky_range((2.0, 1.0), (0.0, 1.0))


def feed(history: MetricHistory, epoch: int, rng: np.random.Generator, redraw=lambda: None) -> None:
    """One epoch of a falling, noisy −ELBO, three steps per message, and its test point;
    ``redraw`` is called after each message (as the 10 Hz timer would)."""
    start = (epoch - 1) * STEPS_PER_EPOCH
    for k in range(0, STEPS_PER_EPOCH, 3):
        steps = list(range(start + k + 1, start + min(k + 3, STEPS_PER_EPOCH) + 1))
        v = (300.0 / (1 + np.array(steps) / 20) + 90 + rng.normal(0, 3, len(steps))).tolist()
        history.add_steps(StepBatch(epoch, steps, [x * 0.8 for x in v], [x * 0.2 for x in v], v, v,
                                    steps[-1] - start, STEPS_PER_EPOCH, PLANNED, 1000.0))
        redraw()
    last = start + STEPS_PER_EPOCH
    history.add_epoch(EpochEnd(epoch, last, 1.0, 1.0, 1.0, 20.0, 5.0, 95.0 + 30 / epoch, 1000.0, 1.0))
    redraw()


@pytest.fixture
def panel(qtbot):
    history = MetricHistory()
    panel = PlotsPanel(history, planned_steps=lambda: PLANNED)
    panel.timer.stop()  # the test redraws when it wants
    qtbot.addWidget(panel)
    panel.resize(1000, 300)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def all_points_visible(panel: PlotsPanel) -> bool:
    for key, plot in panel.plots.items():
        (x0, x1), (y0, y1) = plot.vb.viewRange()
        for curve in (panel.train_raw[key], panel.test_curves[key]):
            x, y = curve.xData, curve.yData
            if x is None or not len(x):
                continue
            if x.min() < x0 or x.max() > x1 or y.min() < y0 or y.max() > y1:
                return False
    return True


def test_step_axis_spans_the_planned_run_and_every_point_stays_in_view(panel):
    rng = np.random.default_rng(0)
    changes, redraws = [], []

    def redraw():
        panel.redraw()
        QApplication.processEvents()
        redraws.append(1)
        for plot in panel.plots.values():
            (x0, x1), _ = plot.vb.viewRange()
            assert x0 <= 1 and x1 >= PLANNED  # from the first step on, the axis reaches the last one
        assert all_points_visible(panel)

    panel.plots["neg_elbo"].vb.sigRangeChanged.connect(lambda *_: changes.append(1))
    for epoch in range(1, EPOCHS + 1):
        feed(panel.history, epoch, rng, redraw)
    # pyqtgraph's own auto-range gives the view a new range at every redraw that adds a step (and
    # the axes are laid out anew); here it moves in steps, as the curve leaves or shrinks in its view
    assert len(redraws) == EPOCHS * 12 and len(changes) < len(redraws) / 4


def wheel(panel: PlotsPanel, key: str, clicks: int) -> None:
    """Turn the mouse wheel over the middle of one plot (zoom in for positive clicks)."""
    view = panel.layout_widget
    centre = view.mapFromScene(panel.plots[key].vb.sceneBoundingRect().center())
    event = QWheelEvent(QPointF(centre), QPointF(view.viewport().mapToGlobal(centre)), QPoint(0, 0),
                        QPoint(0, 120 * clicks), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), event)


def test_a_zoom_by_the_user_stays_until_auto_range_is_asked_again(qtbot, panel):
    rng = np.random.default_rng(1)
    feed(panel.history, 1, rng)
    panel.redraw()
    QApplication.processEvents()
    vb = panel.plots["kl"].vb
    (fx0, fx1), (fy0, fy1) = vb.viewRange()
    wheel(panel, "kl", 3)
    (zx0, zx1), (zy0, zy1) = vb.viewRange()
    assert zx1 - zx0 < fx1 - fx0 and zy1 - zy0 < fy1 - fy0  # zoomed in
    for epoch in range(2, 4):  # training goes on: the zoomed view stays where the user put it
        feed(panel.history, epoch, rng)
        panel.redraw()
        QApplication.processEvents()
        assert vb.viewRange() == [[zx0, zx1], [zy0, zy1]]
    # the plot's "A" button (auto-range) follows the data again
    panel.plots["kl"].autoBtnClicked()
    qtbot.waitUntil(lambda: all_points_visible(panel), timeout=2000)
    (ax0, ax1), _ = vb.viewRange()
    assert ax0 <= 1 and ax1 >= PLANNED


def test_a_short_panel_draws_compact_plots_and_still_exports_the_full_figure(qtbot, panel, tmp_path):
    import xml.etree.ElementTree as ET

    rng = np.random.default_rng(0)
    feed(panel.history, 1, rng, panel.redraw)
    plot = panel.plots["neg_elbo"]
    assert not panel.compact and plot.getAxis("bottom").label.isVisible()
    tall = plot.vb.height()
    panel.resize(1000, 160)  # what a laptop's 1280×720 leaves the dock
    qtbot.waitUntil(lambda: panel.compact)
    assert not plot.getAxis("bottom").label.isVisible() and plot.titleLabel.maximumHeight() == 18
    assert plot.legend.labelTextSize() == "7pt"
    panel.export_figure(str(tmp_path / "curves.svg"), 1000, 320)
    svg = ET.parse(tmp_path / "curves.svg").getroot()
    titles = [t.text.strip() for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert titles.count("step") == 3 and "−ELBO" in titles  # the figure has its axis labels back
    assert panel.compact and not plot.getAxis("bottom").label.isVisible()  # and the panel stays compact
    panel.resize(1000, 300)
    qtbot.waitUntil(lambda: not panel.compact)
    assert plot.getAxis("bottom").label.isVisible() and plot.titleLabel.maximumHeight() == 30
    qtbot.waitUntil(lambda: abs(plot.vb.height() - tall) < 2)
