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


class TaskSlot:
    """One :class:`BackgroundTask` at a time for a panel, shown on its progress bar (text with
    ETA) and its Cancel button.

    Args:
        owner: the panel (the tasks' parent).
        progress: a ``QProgressBar`` with range 0..1000.
        cancel_button: enabled while a task runs.
        cancel_errors: exceptions of the job that mean it was cancelled.
        done(result), failed(message, details): the task's outcome; ``ended()`` after either,
            and after a cancel (the slot is free again by then).
    """

    def __init__(self, owner: QObject, progress, cancel_button, cancel_errors: tuple[type[BaseException], ...],
                 done: Callable, failed: Callable, ended: Callable):
        self.owner, self.progress, self.cancel_button = owner, progress, cancel_button
        self.cancel_errors, self.done, self.failed, self.ended = cancel_errors, done, failed, ended
        self.task: BackgroundTask | None = None

    def start(self, job: Callable, text: str = "starting…") -> None:
        """Run ``job(progress, stopped)`` in a thread."""
        task = BackgroundTask(job, cancel_errors=self.cancel_errors, parent=self.owner)
        task.progressed.connect(self._progressed)
        task.succeeded.connect(lambda result: self._finish(self.done, result))
        task.failed.connect(lambda message, details: self._finish(self.failed, message, details))
        task.cancelled.connect(lambda: self._finish(None))
        task.finished.connect(task.deleteLater)
        self.task = task
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setFormat(text)
        task.start()

    def cancel(self, text: str) -> bool:
        """Ask the task to stop (the thread ends at its next check) and free the slot at once:
        its result is never delivered. False when none ran."""
        task, self.task = self.task, None
        if task is None:
            return False
        task.cancel()
        for signal in (task.progressed, task.succeeded, task.failed, task.cancelled):
            signal.disconnect()  # its finished → deleteLater stays connected
        self.cancel_button.setEnabled(False)
        self.progress.setValue(0)
        self.progress.setFormat(text)
        return True

    def wait(self, ms: int = 10_000) -> None:
        """Cancel and wait for every task of the owner (closing the window)."""
        task = self.task
        self.cancel("cancelled")
        for t in self.owner.findChildren(BackgroundTask):
            t.cancel()
            t.wait(ms)
        if task is not None:
            task.wait(ms)

    def _progressed(self, fraction: float, text: str) -> None:
        if self.task is not None:
            self.progress.setValue(int(1000 * fraction))
            self.progress.setFormat(text + eta_text(fraction, time.perf_counter() - self.task.started_at))

    def _finish(self, outcome: Callable | None, *args) -> None:
        self.task = None
        self.cancel_button.setEnabled(False)
        if outcome is not None:
            outcome(*args)
        self.ended()
