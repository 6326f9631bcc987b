"""A small driver for the GUI tests: what a person does with the window (click
Train, set a field, pick a tab, save a file) and what they see (the progress bar's
text, the status bar, the error banner, open message boxes). Tests say what happens
in these words, so the window's inner structure can change under unchanged tests."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from vaegui.fields import set_value

TRAIN_TIMEOUT_MS = 120_000


class UI:
    """Drive ``window`` (a :class:`vaegui.mainwindow.MainWindow`) with ``qtbot``."""

    def __init__(self, qtbot, window):
        self.qtbot, self.window = qtbot, window

    # -- the form -------------------------------------------------------------------------------
    def set(self, **fields) -> UI:
        """Set form fields by their config names (``latent_dim=2``, ``lr=0.01``)."""
        for name, value in fields.items():
            assert set_value(self.window.form.fields[name], value), f"{name} has no choice {value!r}"
        return self

    def click(self, button) -> None:
        self.qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    # -- training -------------------------------------------------------------------------------
    def start(self, epochs: int | None = None) -> UI:
        """Click Train and wait until the run has started."""
        if epochs is not None:
            self.set(epochs=epochs)
        with self.qtbot.waitSignal(self.window.controller.running_changed, timeout=5000):
            self.click(self.window.form.train_button)
        return self

    def wait(self) -> UI:
        """Wait until the run has ended (finished, stopped or failed) and said so."""
        w = self.window
        self.qtbot.waitUntil(lambda: not w.controller.running, timeout=TRAIN_TIMEOUT_MS)
        self.qtbot.waitUntil(lambda: w.run.last_done is not None or bool(w.run.last_error), timeout=5000)
        return self

    def train(self, epochs: int = 2) -> UI:
        """Train a new model for ``epochs`` and wait for it; no error may show."""
        self.start(epochs).wait()
        assert self.error_text() == "", self.error_text()
        return self

    def continue_to(self, epochs: int) -> UI:
        """Set Epochs and click Continue, then wait for the run to end."""
        self.set(epochs=epochs)
        self.click(self.window.form.continue_button)
        return self.wait()

    def stop(self) -> None:
        self.click(self.window.form.stop_button)

    # -- what a person sees ---------------------------------------------------------------------
    def progress_text(self) -> str:
        bar = self.window.form.progress
        return bar.text()

    def status_text(self) -> str:
        return self.window.statusBar().currentMessage()

    def error_text(self) -> str:
        """The error banner's text ("" when hidden)."""
        label = self.window.form.error_label
        return label.text() if label.isVisibleTo(self.window) else ""

    def messages(self) -> str:
        """The texts of the open message boxes, joined by " | "."""
        boxes = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
        return " | ".join(box.text() for box in boxes)

    def grid(self, title: str):
        """The grid the tab called ``title`` shows: ``(images (N, C, H, W), rows, cols)`` or None."""
        return self.panel(title).current_grid

    def caption(self, title: str) -> str:
        """The text under the grid of the tab called ``title``."""
        return self.panel(title).caption.text()

    def panel(self, title: str):
        tabs = self.window.tabs
        return tabs.widget(next(i for i in range(tabs.count()) if tabs.tabText(i) == title))

    def visible(self, widget) -> bool:
        """True when ``widget`` lies wholly inside the window and is not hidden or clipped."""
        from PySide6.QtCore import QPoint, QRect

        rect = QRect(widget.mapTo(self.window, QPoint(0, 0)), widget.size())
        return widget.isVisible() and self.window.rect().contains(rect) and not widget.visibleRegion().isEmpty()

    def close_messages(self) -> None:
        for box in [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]:
            box.close()

    def show(self, title: str):
        """Bring the tab called ``title`` to the front (as Ctrl+1…Ctrl+8 do); returns its panel."""
        tabs = self.window.tabs
        index = next(i for i in range(tabs.count()) if tabs.tabText(i) == title)
        tabs.setCurrentIndex(index)
        return tabs.widget(index)

    # -- plots ----------------------------------------------------------------------------------
    def _plot_pos(self, plot, x: float, y: float):
        from PySide6.QtCore import QPointF

        scene = plot.getPlotItem().getViewBox().mapViewToScene(QPointF(x, y))
        return plot.mapFromScene(scene)

    def click_plot(self, plot, x: float, y: float) -> None:
        """Click a pyqtgraph plot at data coordinates ``(x, y)``."""
        self.qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=self._plot_pos(plot, x, y))

    def drag_plot(self, plot, path, shift: bool = True) -> None:
        """Press, move along ``path`` (data coordinates) and release on a plot (with Shift held:
        a selection on the latent map)."""
        from PySide6.QtCore import QEvent, QPointF
        from PySide6.QtGui import QMouseEvent
        from PySide6.QtTest import QTest

        mods = Qt.KeyboardModifier.ShiftModifier if shift else Qt.KeyboardModifier.NoModifier
        port = plot.viewport()
        self.qtbot.wait(QApplication.doubleClickInterval() + 20)  # not a double click after an earlier click
        points = [self._plot_pos(plot, x, y) for x, y in path]  # where they are now, the layout settled
        QTest.mousePress(port, Qt.MouseButton.LeftButton, mods, points[0])
        for p in points[1:]:
            self.qtbot.wait(25)  # pyqtgraph's scene takes at most ~60 moves a second, as a hand makes
            event = QMouseEvent(QEvent.Type.MouseMove, QPointF(p), QPointF(port.mapToGlobal(p)),
                                Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton, mods)
            QApplication.sendEvent(port, event)
        QTest.mouseRelease(port, Qt.MouseButton.LeftButton, mods, points[-1])


def open_window(qtbot, settings, dataset: str, hidden: int, latent: int, batch: int, epochs: int = 2):
    """The main window on ``dataset``, shown, with a small network so tests run fast on a CPU."""
    from vaegui.mainwindow import MainWindow

    w = MainWindow(settings=settings, dataset=dataset)
    qtbot.addWidget(w)
    w.form.hidden_spin.setValue(hidden)
    w.form.latent_spin.setValue(latent)
    w.form.epochs_spin.setValue(epochs)
    w.form.batch_spin.setValue(batch)
    w.show()
    qtbot.waitExposed(w)
    return w
