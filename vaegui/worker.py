"""Training on a QThread.

A parentless worker QObject is moved to a QThread (``thread.started → worker.run``,
``worker.done → thread.quit``, ``thread.finished → worker.deleteLater``). Stop and pause are flags on the
:class:`~models.trainer.Trainer`, checked between steps, not queued slots: a busy
loop never runs queued slots. Only plain data crosses threads: metric dataclasses
of floats and detached CPU weight snapshots.
"""

from __future__ import annotations

import time
import traceback

from PySide6.QtCore import QObject, Qt, QThread, Signal

from models.trainer import EpochEnd, NonFiniteLossError, StepBatch, Trainer, TrainingDone


def merge_steps(batches: list[StepBatch]) -> StepBatch:
    """Concatenate consecutive :class:`StepBatch` es into one (the newest progress fields)."""
    last = batches[-1]
    return StepBatch(
        epoch=last.epoch,
        steps=[s for b in batches for s in b.steps],
        recon=[v for b in batches for v in b.recon],
        kl=[v for b in batches for v in b.kl],
        neg_elbo=[v for b in batches for v in b.neg_elbo],
        loss=[v for b in batches for v in b.loss],
        step_in_epoch=last.step_in_epoch,
        steps_per_epoch=last.steps_per_epoch,
        total_steps=last.total_steps,
        samples_per_s=last.samples_per_s,
    )


class TrainingWorker(QObject):
    """Runs :meth:`Trainer.run` and forwards its events, throttled.

    Signals:
        steps(StepBatch): step metrics, at most every ``metrics_interval`` seconds.
        epoch_end(EpochEnd): after each epoch's evaluation.
        snapshot(int, dict): a versioned CPU weight copy, at most every
            ``snapshot_interval`` seconds and at every epoch end.
        finished(TrainingDone): the run ended normally or by Stop.
        failed(str, str): message and traceback; the run ended on an error.
        done(): the worker is about to return (always emitted last).
    """

    steps = Signal(object)
    epoch_end = Signal(object)
    snapshot = Signal(int, object)
    finished = Signal(object)
    failed = Signal(str, str)
    done = Signal()

    def __init__(self, trainer: Trainer, metrics_interval: float = 0.05, snapshot_interval: float = 0.25):
        super().__init__()
        self.trainer = trainer
        self.metrics_interval = metrics_interval
        self.snapshot_interval = snapshot_interval

    def _send_snapshot(self) -> None:
        version, state = self.trainer.snapshot()
        self.snapshot.emit(version, state)

    def run(self) -> None:
        pending: list[StepBatch] = []
        last_metrics = last_snapshot = time.perf_counter()
        try:
            self._send_snapshot()
            for event in self.trainer.run():
                now = time.perf_counter()
                if isinstance(event, StepBatch):
                    pending.append(event)
                    if now - last_metrics >= self.metrics_interval:
                        self.steps.emit(merge_steps(pending))
                        pending, last_metrics = [], now
                    if now - last_snapshot >= self.snapshot_interval:
                        self._send_snapshot()
                        last_snapshot = now
                    continue
                if pending:
                    self.steps.emit(merge_steps(pending))
                    pending = []
                if isinstance(event, EpochEnd):
                    self._send_snapshot()
                    last_snapshot = now
                    self.epoch_end.emit(event)
                elif isinstance(event, TrainingDone):
                    self._send_snapshot()
                    self.finished.emit(event)
        except NonFiniteLossError as exc:
            if pending:
                self.steps.emit(merge_steps(pending))
            self.failed.emit(str(exc), "")
        except Exception as exc:  # any worker error must reach the window, not kill the app
            self.failed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        finally:
            self.done.emit()


class TrainingController(QObject):
    """Owns the training thread: start, pause/resume, stop, and a clean shutdown.

    Signals:
        running_changed(bool): a run started (True) or its thread ended (False).
    """

    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.trainer: Trainer | None = None
        self.worker: TrainingWorker | None = None
        self.thread: QThread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None

    def start(self, trainer: Trainer) -> TrainingWorker:
        """Start ``trainer.run()`` on a new thread; returns the worker to connect to.

        Raises:
            RuntimeError: if a run is already in progress.
        """
        if self.running:
            raise RuntimeError("a training run is already in progress")
        self.trainer = trainer
        thread = QThread()
        thread.setObjectName("vaegui-training")
        worker = TrainingWorker(trainer)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Direct: quit() is thread-safe, and a queued call would wait for the GUI
        # thread, which may itself be blocked in shutdown()'s wait().
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(worker.deleteLater)
        thread.finished.connect(self._on_thread_finished)
        self.thread, self.worker = thread, worker
        thread.start()
        self.running_changed.emit(True)
        return worker

    def _on_thread_finished(self, thread: QThread | None = None) -> None:
        thread = thread or self.sender()
        if thread is None or thread is not self.thread:
            return  # already handled (shutdown), or a finished run's late signal
        self.thread = self.worker = None
        thread.deleteLater()
        self.running_changed.emit(False)

    def pause(self) -> None:
        if self.trainer is not None:
            self.trainer.pause()

    def resume(self) -> None:
        if self.trainer is not None:
            self.trainer.resume()

    @property
    def paused(self) -> bool:
        return self.trainer is not None and self.running and self.trainer.paused

    def stop(self) -> None:
        """Ask the run to stop before its next step (returns at once)."""
        if self.trainer is not None:
            self.trainer.request_stop()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop and wait for the thread to end (for closing the window); True if it ended."""
        thread = self.thread
        if thread is None:
            return True
        self.stop()
        ok = thread.wait(timeout_ms)
        if ok:
            self._on_thread_finished(thread)
        return ok
