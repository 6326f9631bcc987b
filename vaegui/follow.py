"""File ▸ Open run folder: the window follows a run that another process writes
(``vaegui train --run-dir``, a distributed run's rank 0, another window), on a local
disk or a network mount.

A :class:`RunFolderFeed` is a :class:`models.run.RunFeed`: it calls the window's
:class:`~models.run.Run` ``on_*`` methods with what the folder's files say, exactly as
the window's own training process does, so the plots, the progress bar and the latent
panels are the same view over the same run model. It reads only what was appended
(:class:`models.runfolder.MetricsTail`), when ``QFileSystemWatcher`` says a file
changed and on a polling timer (watchers miss changes on network mounts); the newest
checkpoint is decoded by the latent panels when it appears; a finished, stopped or
failed run, or one whose writer is gone, says so.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from models.checkpoint import CheckpointError, read_checkpoint
from models.run import Run
from models.runfolder import (
    CHECKPOINTS,
    METRICS_FILE,
    STATUS_FILE,
    MetricsTail,
    checkpoints,
    parse_epoch,
    parse_steps,
    read_config,
    read_status,
)
from models.state import TrainingState
from models.trainer import StepBatch, TrainingDone
from vaegui.trainproc import merge_steps


class RunFolderFeed(QObject):
    """Feeds a :class:`~models.run.Run` (and the decoding model) from a run folder.

    Args:
        folder: the run folder.
        load_weights: ``load_weights(version, weights, checkpoint)`` is called with each
            newer checkpoint's weights (the window hands them to its latent panels).
        poll_ms: the polling interval besides the file-system watcher.

    Signals:
        ended(str): the run is over: ``"finished"``, ``"stopped"``, ``"failed"`` or
            ``"stopped unexpectedly"``.
        checkpoint(str): a newer checkpoint was loaded (its path).

    Raises:
        models.runfolder.RunFolderError: when ``folder`` is not a run folder.
    """

    ended = Signal(str)
    checkpoint = Signal(str)

    def __init__(self, folder: str | Path, load_weights=None, poll_ms: int = 250, parent: QObject | None = None):
        super().__init__(parent)
        self.folder = Path(folder)
        self.model_config, self.train_config, self.dataset = read_config(self.folder)
        self.load_weights = load_weights
        self.run: Run | None = None
        self.tail = MetricsTail(self.folder / METRICS_FILE)
        self.state = ""
        self._checkpoint_key: tuple | None = None
        self._status_mtime = 0.0
        self.last_read = 0.0
        self.watcher = QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(self._changed)
        self.watcher.directoryChanged.connect(self._changed)
        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self.poll)
        self._scheduled = False

    @property
    def dataset_name(self) -> str:
        return str(self.dataset.get("name", ""))

    @property
    def following(self) -> bool:
        return self.timer.isActive()

    def attach(self, run: Run) -> None:
        """Start feeding ``run``: it begins anew with the folder's configs and everything
        written so far, then follows what is appended."""
        self.run = run
        run.begin(self.model_config, self.train_config, self.dataset_name)
        self._watch()
        self.poll()
        if self.state in ("", "running"):
            self.timer.start()

    def stop(self) -> None:
        """Stop following (the run keeps what it has)."""
        self.timer.stop()
        paths = self.watcher.files() + self.watcher.directories()
        if paths:
            self.watcher.removePaths(paths)

    def _watch(self) -> None:
        paths = [str(p) for p in (self.folder, self.folder / CHECKPOINTS, self.folder / METRICS_FILE,
                                  self.folder / STATUS_FILE) if p.exists()]
        missing = [p for p in paths if p not in self.watcher.files() + self.watcher.directories()]
        if missing:
            self.watcher.addPaths(missing)

    def _changed(self, _path: str) -> None:
        if not self._scheduled:  # coalesce a burst of notifications into one read
            self._scheduled = True
            QTimer.singleShot(0, self.poll)

    def poll(self) -> None:
        """Read what is new: metric lines, a newer checkpoint, the status."""
        self._scheduled = False
        if self.run is None:
            return
        self._watch()  # files created after the start (and replaced status files) are watched again
        self._read_lines()
        self._read_checkpoint()
        self._read_status()
        self.last_read = time.perf_counter()

    def _read_lines(self) -> None:
        run = self.run
        pending: list[StepBatch] = []

        def flush() -> None:
            if pending:
                run.on_steps(merge_steps(pending))
                pending.clear()

        for line in self.tail.read():
            kind = line.get("event")
            try:
                if kind == "steps":  # the steps up to an epoch's end go to the run in one batch
                    pending.append(parse_steps(line))
                elif kind == "epoch":
                    flush()
                    run.on_epoch(parse_epoch(line))
                elif kind == "resume":
                    flush()
                    step = int(line["step"])
                    if run.history.truncate(step):
                        run.events.truncated.emit(step)
            except (TypeError, ValueError, KeyError):
                continue
        flush()

    def _read_checkpoint(self) -> None:
        for path in checkpoints(self.folder):
            key = (path.name, path.stat().st_mtime_ns)
            if key == self._checkpoint_key:
                return
            try:
                c = read_checkpoint(path)
            except (CheckpointError, OSError):
                continue  # a damaged file: the next older one
            self._checkpoint_key = key
            state = TrainingState.from_tensors(c.tensors, c.info) if c.has_training_state else None
            if state is not None:
                self.run.state = state
            if self.load_weights is not None:
                self.load_weights(int(c.info.get("position", {}).get("version", 0)), c.weights, c)
            self.checkpoint.emit(str(path))
            return

    def _read_status(self) -> None:
        status = read_status(self.folder)
        state = str(status.get("state", ""))
        if state == self.state:
            return
        self.state = state
        run = self.run
        if state == "running":  # (again: another process continued the run in this folder)
            if not self.timer.isActive():
                self.timer.start()
            return
        self.timer.stop()
        epochs = run.history.epochs
        done = TrainingDone(state != "finished", epochs[-1].epoch if epochs else 0,
                            epochs[-1].step if epochs else 0, list(epochs))
        if state in ("finished", "stopped"):
            run.on_finished(done)
        elif state == "failed":
            run.on_failed(str(status.get("message") or "the run failed"), "")
        else:
            run.progress.phase = "stopped"
            run.fail(f"The run in {self.folder.name} stopped unexpectedly: {status.get('message', '')}".rstrip(": "))
        run.on_ended()
        self.ended.emit(state)
