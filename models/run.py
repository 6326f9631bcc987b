"""The training run as one Qt-free object: its configs, dataset, resumable state,
metric history, file and progress, with plain-callback events (napari's evented
models without Qt).

A run is fed by a *feed*: today the window's training process
(``vaegui.worker.TrainingController``) calls the ``on_*`` methods as its messages
arrive; a follower of a run folder written by another process can call the same
methods. Views (the plots, the progress bar, the status bar) subscribe to
:attr:`Run.events` and draw what the run holds; saving and the CSV export read the
run's :class:`MetricHistory`, which is the one copy of the metrics.

Direction of events::

    feed (training process, run folder) ──on_*()──▶ Run ──events──▶ views
                                                     ▲
                     window actions (train, open, save, continue) ──┘
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from models.config import ModelConfig, TrainConfig
from models.state import TrainingState
from models.trainer import EpochEnd, StepBatch, TrainingDone


class Event:
    """A list of callbacks: ``connect(cb)``, ``disconnect(cb)``, ``emit(*args)``."""

    def __init__(self) -> None:
        self._callbacks: list[Callable] = []

    def connect(self, callback: Callable) -> Callable:
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args) -> None:
        for callback in list(self._callbacks):
            callback(*args)


class RunEvents:
    """The events of a :class:`Run`.

    * ``reset()``: a new run began, or a model was opened: everything was replaced.
    * ``started(device, precision)``: the training process started the run.
    * ``steps(batch)``, ``epoch(end)``: new metrics (already in the history).
    * ``truncated(step)``: metrics after ``step`` were dropped (training went back).
    * ``progress(progress)``: the :class:`Progress` changed.
    * ``finished(done)``, ``failed(message, details)``: the run ended.
    * ``state(state)``: a resumable :class:`~models.state.TrainingState` arrived.
    * ``autosaved(path)``, ``autosave_failed(reason)``.
    * ``file(path, dirty)``: the run's file or its saved/unsaved status changed.
    """

    NAMES = ("reset", "started", "steps", "epoch", "truncated", "progress", "finished", "failed", "state",
             "autosaved", "autosave_failed", "file")

    def __init__(self) -> None:
        for name in self.NAMES:
            setattr(self, name, Event())


class GrowingBuffer:
    """An append-only float array with amortised O(1) appends (capacity doubling)."""

    def __init__(self, capacity: int = 1024):
        self._data = np.empty(capacity, dtype=np.float64)
        self.size = 0

    def extend(self, values) -> None:
        values = np.asarray(values, dtype=np.float64)
        need = self.size + len(values)
        if need > len(self._data):
            new = np.empty(max(need, 2 * len(self._data)), dtype=np.float64)
            new[: self.size] = self._data[: self.size]
            self._data = new
        self._data[self.size : need] = values
        self.size = need

    @property
    def data(self) -> np.ndarray:
        """The values so far, ``(size,)`` (a view: copy before keeping it)."""
        return self._data[: self.size]

    def clear(self) -> None:
        self.size = 0


#: the per-step terms, nats per image
STEP_TERMS = ("neg_elbo", "recon", "kl", "loss")


class MetricHistory:
    """Every metric of a run: per training step (−ELBO, reconstruction, KL and the
    weighted loss, nats per image, batch means) and per epoch (:class:`EpochEnd`)."""

    def __init__(self) -> None:
        self.steps = GrowingBuffer()
        self.terms = {key: GrowingBuffer() for key in STEP_TERMS}
        self.epochs: list[EpochEnd] = []
        #: bumped on every change, so a view redraws only when something changed
        self.revision = 0

    def clear(self) -> None:
        self.steps.clear()
        for buf in self.terms.values():
            buf.clear()
        self.epochs = []
        self.revision += 1

    def add_steps(self, batch: StepBatch) -> None:
        self.steps.extend(batch.steps)
        for key in STEP_TERMS:
            self.terms[key].extend(getattr(batch, key))
        self.revision += 1

    def add_epoch(self, end: EpochEnd) -> None:
        self.epochs.append(end)
        self.revision += 1

    def truncate(self, step: int) -> bool:
        """Drop what came after ``step``; True if anything was dropped."""
        keep = int(np.searchsorted(self.steps.data, step, side="right"))
        if keep == self.steps.size and all(e.step <= step for e in self.epochs):
            return False
        for buf in (self.steps, *self.terms.values()):
            buf.size = min(buf.size, keep)
        self.epochs = [e for e in self.epochs if e.step <= step]
        self.revision += 1
        return True

    def step_metrics(self) -> dict[str, list]:
        """The per-step curves as a checkpoint stores them (``info["step_metrics"]``)."""
        return {"step": [int(v) for v in self.steps.data],
                **{key: self.terms[key].data.tolist() for key in STEP_TERMS}}

    def load(self, info: dict) -> None:
        """Replace the history by a checkpoint's (``step_metrics`` and ``history``)."""
        self.clear()
        steps = info.get("step_metrics") or {}
        if steps.get("step"):
            self.steps.extend(steps["step"])
            for key in STEP_TERMS:
                self.terms[key].extend(steps.get(key, steps["neg_elbo"]))
        self.epochs = [EpochEnd(**e) for e in info.get("history", [])]
        self.revision += 1

    def rows(self) -> tuple[list[str], list[list[object]]]:
        """CSV header and rows: every step (split ``train``) and every epoch (split
        ``test``), nats per image; the objective's own terms (epoch means over the
        training steps) are columns of the epoch rows, and so are a hierarchical VAE's test KL and
        active units of each layer."""
        terms = sorted({k for e in self.epochs for k in e.train_terms})
        errors = any(e.test_error is not None for e in self.epochs)
        tests = sorted({k for e in self.epochs for k in e.test_terms})
        header = ["split", "step", "epoch", "neg_elbo_nats", "recon_nats", "kl_nats", "loss_nats",
                  "nll_iw_nats", "iw_gap_nats",
                  *(f"train_{k}" if k in ("disc_accuracy", "commitment") else f"train_{k}_nats" for k in terms),
                  *(["test_error"] if errors else []),
                  *(f"test_{k}_nats" if k.startswith("kl") else f"test_{k}" for k in tests)]
        rows: list[list[object]] = []
        t = {key: self.terms[key].data for key in STEP_TERMS}
        epoch_of_step = np.searchsorted([e.step for e in self.epochs], self.steps.data, side="left") + 1
        for i, step in enumerate(self.steps.data):
            rows.append(["train", int(step), int(epoch_of_step[i]), t["neg_elbo"][i], t["recon"][i], t["kl"][i],
                         t["loss"][i], "", "", *[""] * (len(terms) + errors + len(tests))])
        for e in self.epochs:
            rows.append(["test", e.step, e.epoch, e.test_neg_elbo, e.test_recon, e.test_kl, "",
                         "" if e.test_nll_iw is None else e.test_nll_iw,
                         "" if e.test_iw_gap is None else e.test_iw_gap, *(e.train_terms.get(k, "") for k in terms),
                         *(["" if e.test_error is None else e.test_error] if errors else []),
                         *(e.test_terms.get(k, "") for k in tests)])
        return header, rows


def epochs_text(n: int) -> str:
    """``"1 epoch"``, ``"2 epochs"``, ``"1,000 epochs"``."""
    return f"{n:,} epoch" if n == 1 else f"{n:,} epochs"


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` or ``m:ss``."""
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass
class Progress:
    """Where a run is, for a progress bar.

    Attributes:
        phase: ``"idle"``, ``"starting"``, ``"resuming"``, ``"training"``,
            ``"evaluating"``, ``"finished"``, ``"stopped"`` or ``"failed"``.
        epoch, epochs: the current epoch (1-based) and the total.
        done, total: steps done and in all.
        samples_per_s: training throughput (evaluation and pauses excluded).
    """

    phase: str = "idle"
    epoch: int = 0
    epochs: int = 0
    done: int = 0
    total: int = 0
    samples_per_s: float = 0.0
    batch_size: int = 0

    @property
    def eta_s(self) -> float:
        """Seconds left at the current throughput (0 when unknown)."""
        if self.samples_per_s <= 0:
            return 0.0
        return (self.total - self.done) * self.batch_size / self.samples_per_s

    def text(self) -> str:
        """The bar's text, e.g. ``"Epoch 2/10 · step 64/320 (20%)"``."""
        if self.phase in ("starting", "resuming"):
            return "Starting…" if self.phase == "starting" else "Resuming…"
        if self.phase == "idle":
            return "Not started"
        if self.phase == "finished":
            return f"Finished {epochs_text(self.epoch)}"
        evaluating = " · evaluating on the test split…" if self.phase == "evaluating" else ""
        return f"Epoch {self.epoch}/{self.epochs} · step {self.done}/{self.total} (%p%){evaluating}"

    def speed_text(self) -> str:
        return f"{self.samples_per_s:,.0f} samples/s · ETA {format_duration(self.eta_s)}"


class RunFeed(Protocol):
    """What feeds a :class:`Run`: the window's training process today, a run folder
    written by another process later. A feed calls the run's ``on_*`` methods."""

    def attach(self, run: Run) -> None: ...


@dataclass
class Run:
    """One training run, without Qt.

    Attributes:
        model_config, train_config: what is trained (None before the first run).
        dataset_name: the dataset's name (:mod:`models.datasets`).
        state: the resumable state of the model, when there is one.
        history: the metrics, the one copy every view draws.
        progress: where the run is.
        path: the file it was opened from or saved to; ``dirty``: changed since.
        device, precision: where the newest run trains.
        last_done, last_error: how the newest run ended.
        folder: the run folder the run is written to or read from (:mod:`models.runfolder`), if any.
    """

    model_config: ModelConfig | None = None
    train_config: TrainConfig | None = None
    dataset_name: str = ""
    state: TrainingState | None = None
    history: MetricHistory = field(default_factory=MetricHistory)
    progress: Progress = field(default_factory=Progress)
    path: str | None = None
    dirty: bool = False
    device: str = ""
    precision: str = ""
    last_done: TrainingDone | None = None
    last_error: str = ""
    folder: str | None = None
    events: RunEvents = field(default_factory=RunEvents, repr=False)

    # -- what the window does ------------------------------------------------------------------
    def begin(self, model_config: ModelConfig, train_config: TrainConfig, dataset_name: str,
              resume: bool = False) -> None:
        """A run starts: a new model (the history is cleared) or, with ``resume``, the
        current one continued to ``train_config.epochs`` in total."""
        self.model_config, self.train_config, self.dataset_name = model_config, train_config, dataset_name
        self.last_done, self.last_error = None, ""
        if not resume:
            self.history.clear()
            self.state, self.path, self.dirty, self.folder = None, None, False, None
            self.events.reset.emit()
        self._set_progress(Progress("resuming" if resume else "starting", epochs=train_config.epochs,
                                    batch_size=train_config.batch_size))

    def open(self, state: TrainingState, dataset_name: str, path: str | None) -> None:
        """A saved model was opened (or imported, with ``state`` None): its configs,
        state and history replace the run's."""
        self.model_config, self.train_config = state.model_config, state.train_config
        self.dataset_name, self.state, self.folder = dataset_name, state, None
        self.history.load(state.info)
        self.last_done, self.last_error = None, ""
        self.progress = Progress()
        self.events.reset.emit()
        self.set_file(path, dirty=False)

    def forget(self) -> None:
        """No model with a training state any more (weights imported for exploring)."""
        self.state, self.last_done, self.last_error = None, None, ""
        self.history.clear()
        self.progress = Progress()
        self.events.reset.emit()
        self.set_file(None, dirty=False)

    def set_file(self, path: str | None, dirty: bool) -> None:
        self.path, self.dirty = path, dirty
        self.events.file.emit(path, dirty)

    def fail(self, message: str, details: str = "") -> None:
        """The run (or starting it) failed: ``message`` for the user, ``details`` (a
        traceback) for the curious."""
        self.last_error = message
        self.events.failed.emit(message, details)

    def checkpoint_info(self) -> dict:
        """The state's description with the per-step curves, for saving.

        Raises:
            ValueError: when there is no training state to save.
        """
        if self.state is None:
            raise ValueError("there is no trained model with a training state to save yet")
        info = dict(self.state.info)
        if self.history.steps.size:
            info["step_metrics"] = self.history.step_metrics()
        return info

    # -- what the feed calls ---------------------------------------------------------------------
    def on_started(self, device: str, precision: str, steps_per_epoch: int, total_steps: int) -> None:
        self.device, self.precision = device, precision
        self.events.started.emit(device, precision)

    def on_steps(self, batch: StepBatch) -> None:
        self.history.add_steps(batch)
        at_end = batch.step_in_epoch == batch.steps_per_epoch
        epochs = self.train_config.epochs if self.train_config is not None else 0
        self._set_progress(Progress(
            "evaluating" if at_end else "training", batch.epoch, epochs,
            (batch.epoch - 1) * batch.steps_per_epoch + batch.step_in_epoch, batch.total_steps,
            batch.samples_per_s, self.train_config.batch_size if self.train_config is not None else 0,
        ))
        self.events.steps.emit(batch)

    def on_epoch(self, end: EpochEnd) -> None:
        self.history.add_epoch(end)
        self.events.epoch.emit(end)

    def on_finished(self, done: TrainingDone) -> None:
        self.last_done = done
        if not done.stopped:
            p = self.progress
            self._set_progress(Progress("finished", done.epochs_completed, p.epochs, p.total, p.total,
                                        p.samples_per_s, p.batch_size))
        else:
            self.progress.phase = "stopped"
        self.events.finished.emit(done)

    def on_failed(self, message: str, details: str) -> None:
        """The run ended on an error (the model keeps its last good weights)."""
        self.progress.phase = "failed"
        self.fail(f"Training stopped: {message}", details)

    def on_state(self, state: TrainingState) -> None:
        """The resumable state at the end of a run: metrics after its step are dropped
        (a run that went back to a known-good state), and the run is unsaved."""
        self.state = state
        if self.history.truncate(state.position.step):
            self.events.truncated.emit(state.position.step)
        self.events.state.emit(state)
        self.set_file(self.path, dirty=True)

    def on_autosaved(self, path: str) -> None:
        self.events.autosaved.emit(path)

    def on_autosave_failed(self, reason: str) -> None:
        self.events.autosave_failed.emit(reason)

    def on_ended(self) -> None:
        """The feed has nothing more for this run (whatever ended it)."""
        if self.progress.phase in ("starting", "resuming"):
            self._set_progress(Progress())

    def _set_progress(self, progress: Progress) -> None:
        self.progress = progress
        self.events.progress.emit(progress)

