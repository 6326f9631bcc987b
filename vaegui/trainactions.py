"""Training ▸ Train / Continue / Pause / Stop: starting runs in the training process
(after the resource guard), the autosave session, and what the window shows of a
run's end (status bar, error banner, the device and autosave corners)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QMessageBox

from models.checkpoint import CheckpointError, check_folder_writable
from models.config import TrainConfig, fields_of
from models.resources import check_memory, dataset_bytes
from models.run import epochs_text
from models.state import TrainingState, arrays_to_tensors
from models.trainer import EpochEnd, TrainingDone, training_device
from vaegui.context import WindowContext
from vaegui.protocol import AutosaveSettings
from vaegui.recovery import SessionFolder
from vaegui.widgets import show_message


def resumed_config(saved: TrainConfig, form: TrainConfig) -> TrainConfig:
    """The config a continued run trains with: the saved one, with
    ``dataclasses.replace`` of the fields the user changed in the form among those
    that may change on resume (metadata ``resume="free"``: epochs, learning rate, β,
    ...); batch size and seed stay as saved, so the resume is exact."""
    changed = {
        f.name: getattr(form, f.name) for f in fields_of(TrainConfig)
        if f.metadata.get("resume") == "free" and getattr(form, f.name) != getattr(saved, f.name)
    }
    return dataclasses.replace(saved, **changed)


class TrainingActions(QObject):
    """Start, continue, pause and stop training for the window described by ``ctx``.

    Attributes:
        session: this app session's autosave folder (None without a data folder, or
            when it cannot be written: ``autosave_problem`` says why).
        device_label, autosave_label: the status bar's corners (device and precision;
            time of the newest autosave, its path in the tooltip).
    """

    def __init__(self, ctx: WindowContext):
        super().__init__(ctx.window)
        self.ctx = ctx
        self.session: SessionFolder | None = None
        #: the window's run folders (vaegui.runfolders.RunFolders), set by the window
        self.run_folders = None
        self.autosave_problem = ""
        if ctx.data_dir:
            try:
                self.session = SessionFolder(Path(ctx.data_dir) / "sessions")
            except OSError as exc:  # an unwritable data folder must not stop the app
                self.autosave_problem = f"cannot write to {Path(ctx.data_dir) / 'sessions'}: {exc.strerror or exc}"
        self.device_label = QLabel()
        self.device_label.setToolTip("The training process leaves one core to the window, and takes it too "
                                     "while it measures faster that way (measured again every 30 s)")
        self.autosave_label = QLabel()
        events = ctx.run.events
        self._device = ("", "")
        self._threads = (0, 0)
        events.started.connect(self._on_started)
        ctx.controller.threads_changed.connect(self._on_threads)
        events.progress.connect(ctx.form.show_progress)
        events.epoch.connect(self._on_epoch_end)
        events.finished.connect(self._on_finished)
        events.failed.connect(self._on_failed)
        events.state.connect(self._on_state)
        events.autosaved.connect(self._on_autosaved)
        events.autosave_failed.connect(lambda why: ctx.status(f"Autosave failed: {why}", 10000))
        ctx.controller.snapshot.connect(lambda version, weights: ctx.handle.load_snapshot(
            version, arrays_to_tensors(weights)))

    def _on_started(self, device: str, precision: str) -> None:
        self._device = (device, precision)
        self._show_device()

    def _on_threads(self, threads: int, cores: int) -> None:
        self._threads = (threads, cores)
        self._show_device()

    def _show_device(self) -> None:
        """"device: cpu · bf16 · 1 of 2 threads" (the threads only for a CPU run)."""
        device, precision = self._device
        threads, cores = self._threads
        text = f"device: {device} · {precision}"
        if device == "cpu" and threads and cores:
            text += f" · {threads} of {cores} threads"
        self.device_label.setText(text)

    # -- the buttons ---------------------------------------------------------------------------
    def start_training(self) -> None:
        """Train a new model with the form's settings (the Train button)."""
        ctx = self.ctx
        data = ctx.handle.dataset
        if ctx.controller.running or data is None:
            return
        ctx.form.show_error("")
        ctx.run.last_error = ""
        try:
            model_config = ctx.form.model_config(data.image_shape)
            train_config = ctx.form.train_config()
        except ValueError as exc:
            ctx.run.fail(f"Cannot start training: {exc}")
            return
        if not self.resources_ok(model_config, train_config):
            return
        ctx.form.save_settings()
        ctx.handle.new_model(model_config)
        ctx.run.begin(model_config, train_config, data.name)
        ctx.controller.start(model_config, train_config, data, autosave=self.autosave_settings(),
                             run_folder=self.run_folder(model_config, data.name, resume=False))
        ctx.status(f"Training {model_config.describe()} on {data.title} for {epochs_text(train_config.epochs)}…")

    def continue_training(self) -> None:
        """Train the current model further, up to the form's epoch count in total
        (Continue): the saved configs with what the user changed (:func:`resumed_config`)."""
        ctx = self.ctx
        state: TrainingState | None = ctx.run.state
        if ctx.controller.running or state is None or ctx.handle.dataset is None:
            return
        done, finished = state.position.epoch, state.at_epoch_end
        form_config = ctx.form.train_config()
        if form_config.epochs <= done and finished:
            ctx.form.show_error(f"The model has trained {epochs_text(done)}: set Epochs above {done} to continue.")
            return
        config = resumed_config(state.train_config, form_config)
        config = dataclasses.replace(config, epochs=max(config.epochs, done + (0 if finished else 1)))
        ctx.form.show_error("")
        ctx.run.last_error = ""
        if not self.resources_ok(state.model_config, config):
            return
        ctx.run.begin(state.model_config, config, ctx.handle.dataset.name, resume=True)
        ctx.controller.start(state.model_config, config, ctx.handle.dataset, resume=state,
                             autosave=self.autosave_settings(),
                             run_folder=self.run_folder(state.model_config, ctx.handle.dataset.name, resume=True))
        ctx.status(f"Continuing from epoch {done} to {config.epochs}…")

    def toggle_pause(self) -> None:
        """Pause a running run, or resume a paused one (Ctrl+P)."""
        controller = self.ctx.controller
        if not controller.running:
            return
        if controller.paused:
            controller.resume()
            self.ctx.status("Training resumed.")
        else:
            controller.pause()
            self.ctx.status("Training paused: the panels keep the latest weights.")
        self.ctx.refresh()

    def stop_training(self) -> None:
        """Stop the run before its next step, or within one chunk of its evaluation (Ctrl+.)."""
        if self.ctx.controller.running:
            self.ctx.controller.stop()
            self.ctx.status("Stopping after the current step…")

    # -- before a run ----------------------------------------------------------------------------
    def resources_ok(self, model_config, train_config) -> bool:
        """The resource guard (:func:`models.resources.check_memory`): False, with the
        figures in the error banner and a dialog, when the run would not fit in memory."""
        try:
            check_memory(model_config, train_config, dataset_bytes(self.ctx.handle.dataset),
                         training_device(train_config.device))
        except ValueError as exc:  # ResourceError, or a device that is not usable here
            self.ctx.run.fail(f"Cannot start training: {exc}.")
            return False
        return True

    def autosave_settings(self) -> AutosaveSettings | None:
        """Where and how often the run autosaves; None (and "autosave off" in the status
        bar, the reason in its tooltip) when the session folder cannot be written,
        checked before the run starts."""
        if self.session is not None:
            try:
                check_folder_writable(self.session.path)
                self.autosave_problem = ""
            except CheckpointError as exc:
                self.autosave_problem = str(exc)
        if self.session is None or self.autosave_problem:
            if self.autosave_problem:
                self.autosave_label.setText("autosave off")
                self.autosave_label.setToolTip(f"Autosave is off for this run: {self.autosave_problem}")
            return None
        every_s, keep = self.ctx.form.outputs.autosave_settings()
        return AutosaveSettings(str(self.session.path), keep=keep, every_s=every_s)

    def run_folder(self, model_config, dataset: str, resume: bool):
        """The run folder settings of a run about to start (``run_folders`` decides; None without)."""
        return None if self.run_folders is None else self.run_folders.settings_for(model_config, dataset, resume)

    # -- what a run shows -----------------------------------------------------------------------
    def _on_epoch_end(self, end: EpochEnd) -> None:
        if end.kl_per_dim:
            self.ctx.handle.set_activity(end.kl_per_dim)
        self.ctx.form.show_epoch(end)

    def _on_finished(self, done: TrainingDone) -> None:
        last = done.history[-1] if done.history else None
        score = f"; test −ELBO {last.test_neg_elbo:.2f} nats per image" if last else ""
        if done.stopped:
            self.ctx.status(f"Stopped at step {done.step} after {epochs_text(done.epochs_completed)}{score}.")
        else:
            self.ctx.status(f"Finished {epochs_text(done.epochs_completed)}{score}.")

    def _on_failed(self, message: str, details: str) -> None:
        self.ctx.form.show_error(message + " The last good weights are still shown.")
        self.ctx.status(message)
        show_message(self.ctx.window, QMessageBox.Icon.Warning, "vaegui", message, details)

    def _on_state(self, state: TrainingState) -> None:
        handle = self.ctx.handle
        if state.position.version < handle.version:  # training went back to a known-good state
            handle.load_snapshot(state.position.version, state.weights(), force=True)
        self.ctx.refresh()

    def _on_autosaved(self, path: str) -> None:
        self.autosave_label.setText(f"autosaved {time.strftime('%H:%M:%S')}")
        self.autosave_label.setToolTip(f"Newest autosave: {path}")

    def close(self) -> None:
        """A clean exit: the session folder and its autosaves go."""
        if self.session is not None:
            self.session.close()
            self.session = None
