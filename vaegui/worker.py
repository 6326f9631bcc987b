"""The GUI side of training: a controller that owns the training process.

Training runs in a spawned child process (:mod:`vaegui.trainproc`) so that the GUI
thread never competes with it for the GIL. The child is started once and reused
for later runs. Stop and pause are ``multiprocessing`` events that the trainer
checks between steps. Messages come back over a queue and are drained on the GUI
thread by a 30 ms timer (a reader thread does the blocking reads), which re-emits
them as Qt signals; only the newest weight snapshot of each drain is passed on
(superseded work is dropped).
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time

from PySide6.QtCore import QObject, QTimer, Signal

from models.config import ModelConfig, TrainConfig
from models.data import ImageDataset
from models.run import Run
from models.state import TrainingState, dataset_to_arrays
from models.trainer import StepBatch
from vaegui.protocol import (
    Autosaved,
    AutosaveFailed,
    AutosaveSettings,
    Done,
    Epoch,
    Exit,
    Failed,
    Idle,
    Job,
    ProtocolError,
    Ready,
    RunFolderSettings,
    Snapshot,
    Started,
    State,
    Steps,
    Threads,
)
from vaegui.trainproc import child_main, merge_steps


def _read_messages(events, inbox: queue.SimpleQueue) -> None:
    """Move the child's messages to ``inbox`` until it says goodbye or the pipe breaks."""
    while True:
        try:
            msg = events.get()
        except (EOFError, OSError, ValueError):
            return
        if isinstance(msg, Exit):
            return
        inbox.put(msg)


class TrainingController(QObject):
    """Start, pause/resume and stop training in the child process.

    Signals:
        started(str, str): device and matmul precision of the new run.
        steps(StepBatch), epoch_end(EpochEnd), finished(TrainingDone): as the trainer yields them.
        snapshot(int, dict): a versioned copy of the weights (numpy arrays).
        failed(str, str): message and traceback; the run ended on an error.
        running_changed(bool): a run started (True) or ended (False).
        state_ready(TrainingState): the full training state of the run that ended.
        autosaved(str), autosave_failed(str): the path written, or why it was not.
        threads_changed(int, int): the training process's thread count and the machine's
            cores, at the start and after each measurement of which count trains faster.
    """

    started = Signal(str, str)
    steps = Signal(object)
    epoch_end = Signal(object)
    snapshot = Signal(int, object)
    finished = Signal(object)
    failed = Signal(str, str)
    running_changed = Signal(bool)
    state_ready = Signal(object)
    autosaved = Signal(str)
    autosave_failed = Signal(str)
    threads_changed = Signal(int, int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._ctx = mp.get_context("spawn")
        self._process = None
        self._jobs = self._events = None
        self._inbox: queue.SimpleQueue | None = None
        self._reader: threading.Thread | None = None
        self._dead_since: float | None = None
        self._stop = self._ctx.Event()
        self._run = self._ctx.Event()
        self._run.set()
        self.running = False
        self.steps_per_epoch = 0
        self.total_steps = 0
        self.last_step = 0
        self.device = ""
        self.precision = ""
        #: the training process's threads of the machine's cores; samples/s per count measured
        self.threads, self.cores = 0, 0
        self.thread_rates: dict[int, float] = {}
        self._poll = QTimer(self)
        self._poll.setInterval(30)
        self._poll.timeout.connect(self.poll)

    def attach(self, run: Run) -> None:
        """Feed ``run`` (a :class:`models.run.Run`) with this process's messages: the
        window's training process is one kind of :class:`models.run.RunFeed`."""
        self.started.connect(lambda device, precision: run.on_started(
            device, precision, self.steps_per_epoch, self.total_steps))
        self.steps.connect(run.on_steps)
        self.epoch_end.connect(run.on_epoch)
        self.finished.connect(run.on_finished)
        self.failed.connect(run.on_failed)
        self.state_ready.connect(run.on_state)
        self.autosaved.connect(run.on_autosaved)
        self.autosave_failed.connect(run.on_autosave_failed)
        self.running_changed.connect(lambda running: running or run.on_ended())

    # -- the child process -----------------------------------------------------------------
    def prewarm(self) -> None:
        """Start the child now (it imports torch) so that Train starts at once."""
        if self._process is None or not self._process.is_alive():
            self._jobs, self._events = self._ctx.Queue(), self._ctx.Queue()
            self._inbox = queue.SimpleQueue()
            self._process = self._ctx.Process(
                target=child_main, args=(self._jobs, self._events, self._stop, self._run),
                name="vaegui-training", daemon=True,
            )
            self._process.start()
            # A plain reader thread does the blocking reads: a child killed in the middle
            # of a message would otherwise block the GUI thread forever.
            self._reader = threading.Thread(
                target=_read_messages, args=(self._events, self._inbox), name="vaegui-messages", daemon=True
            )
            self._reader.start()
            self._dead_since = None

    # -- control ---------------------------------------------------------------------------
    def start(
        self,
        model_config: ModelConfig,
        train_config: TrainConfig,
        data: ImageDataset,
        resume: TrainingState | None = None,
        autosave: AutosaveSettings | None = None,
        run_folder: RunFolderSettings | None = None,
    ) -> None:
        """Train in the child: a new model, or ``resume`` continued to
        ``train_config.epochs`` in total, autosaving as ``autosave`` says and writing
        the run folder ``run_folder`` (:mod:`models.runfolder`) when given.

        Raises:
            RuntimeError: if a run is already in progress.
        """
        if self.running:
            raise RuntimeError("a training run is already in progress")
        self.prewarm()
        self._stop.clear()
        self._run.set()
        self.last_step = 0
        self.steps_per_epoch = self.total_steps = 0
        # the dataset goes over in shared memory where there is room for it: the child maps it, no copy
        self._jobs.put(Job(model_config, train_config, dataset_to_arrays(data, shared=True), resume, autosave,
                           run_folder))
        self.running = True
        self._poll.start()
        self.running_changed.emit(True)

    def pause(self) -> None:
        """Hold the run before its next step (the panels keep the latest weights)."""
        if self.running:
            self._run.clear()

    def resume(self) -> None:
        """Let a paused run go on."""
        self._run.set()

    @property
    def paused(self) -> bool:
        """True while a run is paused."""
        return self.running and not self._run.is_set()

    def stop(self) -> None:
        """Ask the run to stop before its next step (returns at once)."""
        if self.running:
            self._stop.set()
            self._run.set()

    # -- messages --------------------------------------------------------------------------
    def poll(self, block_s: float = 0.0) -> None:
        """Drain the child's messages and emit them as signals (the 30 ms timer)."""
        if self._events is None:
            return
        pending: list[StepBatch] = []
        newest_snapshot = None
        ended = False
        while True:
            try:
                msg = self._inbox.get(timeout=block_s) if block_s else self._inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(msg, Steps):
                pending.append(msg.batch)
                continue
            if pending:  # keep the order: steps before an epoch end or a failure
                self._emit_steps(pending)
                pending = []
            match msg:
                case Snapshot():
                    newest_snapshot = msg
                case Started(device=device, precision=precision):
                    self.device, self.precision = device, precision
                    self.steps_per_epoch, self.total_steps = msg.steps_per_epoch, msg.total_steps
                    self.threads, self.cores, self.thread_rates = msg.threads, msg.cores, {}
                    self.started.emit(device, precision)
                    self.threads_changed.emit(msg.threads, msg.cores)
                case Threads(threads=threads, cores=cores, rates=rates):
                    self.threads, self.cores, self.thread_rates = threads, cores, dict(rates)
                    self.threads_changed.emit(threads, cores)
                case Epoch(end=end):
                    self.epoch_end.emit(end)
                case Done(done=done):
                    if newest_snapshot is not None:
                        self.snapshot.emit(newest_snapshot.version, newest_snapshot.weights)
                        newest_snapshot = None
                    self.finished.emit(done)
                case Failed(message=message, details=details):
                    self.failed.emit(message, details)
                case State(state=state):
                    self.state_ready.emit(state)
                case Autosaved(path=path):
                    self.autosaved.emit(path)
                case AutosaveFailed(reason=reason):
                    self.autosave_failed.emit(reason)
                case Ready():
                    pass
                case Idle():
                    ended = True
                    break
                case _:
                    raise ProtocolError(f"unknown message from the training process: {msg!r:.200}")
        if pending:
            self._emit_steps(pending)
        if newest_snapshot is not None:
            self.snapshot.emit(newest_snapshot.version, newest_snapshot.weights)
        if not ended and self.running and self._process is not None and not self._process.is_alive():
            # Give the reader a moment for the messages the child wrote before it died.
            now = time.monotonic()
            self._dead_since = self._dead_since or now
            if now - self._dead_since > 0.3:
                code = self._process.exitcode
                self.failed.emit(
                    f"the training process ended unexpectedly (exit code {code}); the window and the "
                    "last weights received are unharmed", "",
                )
                ended = True
        if ended:
            self._end_run()

    def _emit_steps(self, batches: list[StepBatch]) -> None:
        merged = merge_steps(batches)
        self.last_step = merged.steps[-1]
        self.steps.emit(merged)

    def _end_run(self) -> None:
        self._poll.stop()
        self.running = False
        self._stop.clear()
        self._run.set()
        self.running_changed.emit(False)

    # -- closing ---------------------------------------------------------------------------
    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Stop any run and end the child (for closing the window); True if it ended cleanly."""
        if self._process is None:
            if self.running:
                self._end_run()
            return True
        self.stop()
        clean = True
        if self.running:
            # Let the run end between two steps and deliver its last messages.
            waited = 0.0
            while self.running and waited < timeout_s and self._process.is_alive():
                self.poll(block_s=0.1)
                waited += 0.1
            if self.running:
                self._end_run()
        try:
            self._jobs.put(None)
        except (OSError, ValueError):
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            clean = False
            self._process.terminate()
            self._process.join(timeout=5)
        self._reader.join(timeout=2)  # ends on the child's last message; left behind only after a crash
        for q in (self._jobs, self._events):
            q.cancel_join_thread()
            q.close()
        self._process = self._jobs = self._events = None
        return clean
