"""Where a run is, under the Train button: a progress bar and, below it, the throughput with the
ETA (or the last epoch's figures), shown a few times a second however fast the run reports."""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer
from PySide6.QtWidgets import QLabel, QProgressBar, QWidget

from models.run import Progress

#: the most values a second the progress bar shows while a run trains and evaluates
PROGRESS_HZ = 5


def _throttled(phase: str) -> str:
    """The phase as :meth:`RunProgress.show` throttles it: training and evaluating as one."""
    return "running" if phase in ("training", "evaluating") else phase


class RunProgress(QObject):
    """The bar (:attr:`bar`) and the line below it (:attr:`speed_label`) of a run's
    :class:`~models.run.Progress`; children of ``parent``'s lifetime, placed by the panel."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat("Not started")
        self.speed_label = QLabel("")
        self.speed_label.setWordWrap(True)
        # a fixed height: a line that wraps differently would re-lay out the whole form
        # (measured: a 170 ms stall of the window mid-run); the full text is in the tooltip
        self.speed_label.setFixedHeight(2 * self.speed_label.fontMetrics().lineSpacing() + 4)
        self.speed_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # the bar repaints itself at once at every new value (about 1 ms): while a run trains and
        # evaluates, at most PROGRESS_HZ times a second, the newest at the end of each interval; in a
        # minimised window, none until it comes back
        self._last_shown = QElapsedTimer()
        self._shown_phase = ""
        self._pending: Progress | None = None  # the newest progress not shown yet
        self._pending_text = True  # whether it came after the line's last text
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._show_pending)

    def show(self, progress: Progress) -> None:
        """Show ``progress`` in the bar (busy while starting) and its throughput with the ETA below it;
        in a minimised window, the last one when it comes back (:meth:`window_restored`). A new
        phase (starting, finished, stopped…) shows at once; while a run trains and evaluates (each
        epoch's evaluation is a phase of its own, and short epochs alternate the two many times a
        second), at most :data:`PROGRESS_HZ` values a second, the newest within 1 / :data:`PROGRESS_HZ` s."""
        self._pending, self._pending_text = progress, True
        if self.bar.window().isMinimized():
            return
        wait_ms = 1000 // PROGRESS_HZ - (self._last_shown.elapsed() if self._last_shown.isValid() else 10**6)
        if _throttled(progress.phase) == _throttled(self._shown_phase) and wait_ms > 0:
            if not self._timer.isActive():
                self._timer.start(int(wait_ms))
            return
        self._apply(progress)

    def _show_pending(self) -> None:
        if self._pending is not None and not self.bar.window().isMinimized():
            self._apply(self._pending, text=self._pending_text)

    def _apply(self, progress: Progress, text: bool = True) -> None:
        self._timer.stop()
        self._pending = None
        self._shown_phase = progress.phase
        self._last_shown.start()
        if progress.phase in ("starting", "resuming"):
            self.bar.setRange(0, 0)
        elif progress.total:
            self.bar.setRange(0, progress.total)
            self.bar.setValue(progress.done)
        else:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
        self.bar.setFormat(progress.text())
        if text and progress.phase in ("training", "evaluating"):
            self.speed_label.setText(progress.speed_text())

    def show_text(self, text: str) -> None:
        """A line of its own below the bar (an epoch's figures), the whole of it in the tooltip; a
        progress that came before it and still waits to be shown then moves the bar only."""
        self._pending_text = False
        self.speed_label.setText(text)
        self.speed_label.setToolTip(text)

    def window_restored(self) -> None:
        """The window came back from being minimised: show the progress that came meanwhile."""
        self._show_pending()
