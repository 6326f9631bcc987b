"""Long work off the GUI thread: a QThread that runs a function with a progress
callback and a cancel flag, and reports back through queued signals."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal


class Cancelled(Exception):
    """Raise from the task's function when ``stopped()`` is True (any exception whose
    class is named in ``BackgroundTask.cancel_errors`` counts as a cancel too)."""


class BackgroundTask(QThread):
    """Runs ``fn(progress, stopped)`` in a thread.

    ``progress(fraction, text)`` is forwarded as ``progressed`` (at most every 50 ms,
    and always at 100%); ``stopped()`` turns True after :meth:`cancel`. The thread ends
    with exactly one of ``succeeded(result)``, ``failed(message, details)`` or
    ``cancelled()``; a cancelled task's result is never delivered.
    """

    progressed = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()

    def __init__(self, fn: Callable, cancel_errors: tuple[type[BaseException], ...] = (),
                 parent: QObject | None = None):
        super().__init__(parent)
        self.fn = fn
        self.cancel_errors = (Cancelled, *cancel_errors)
        self._stop = threading.Event()
        self._last = 0.0
        self.started_at = time.perf_counter()

    def cancel(self) -> None:
        """Ask the task to stop at its next check (it then emits ``cancelled``)."""
        self._stop.set()

    @property
    def is_cancelled(self) -> bool:
        return self._stop.is_set()

    def _progress(self, fraction: float, text: str) -> None:
        now = time.perf_counter()
        if now - self._last >= 0.05 or fraction >= 1.0:
            self._last = now
            self.progressed.emit(float(fraction), text)

    def run(self) -> None:
        self.started_at = time.perf_counter()
        try:
            result = self.fn(self._progress, self._stop.is_set)
        except self.cancel_errors:
            self.cancelled.emit()
            return
        except Exception as exc:  # noqa: BLE001 - reported to the user, the app stays alive
            self.failed.emit(str(exc) or type(exc).__name__, traceback.format_exc())
            return
        if self._stop.is_set():
            self.cancelled.emit()
        else:
            self.succeeded.emit(result)


def eta_text(fraction: float, elapsed_s: float) -> str:
    """", about 12 s left" from the fraction done and the time spent (empty early on)."""
    from models.run import format_duration

    if fraction <= 0.02 or elapsed_s < 0.5:
        return ""
    return f", about {format_duration(elapsed_s * (1 - fraction) / fraction)} left"
