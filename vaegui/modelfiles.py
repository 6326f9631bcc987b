"""Opening, saving and importing models; Open Recent; Continue; closing with unsaved
work; offering to restore the autosave of a session that crashed.

A mixin of :class:`vaegui.mainwindow.MainWindow`: the methods use its form, plots,
model handle and training controller.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from models.checkpoint import (
    SUFFIX,
    CheckpointError,
    check_folder_writable,
    import_state_dict,
    read_checkpoint,
    save_checkpoint,
)
from models.config import TrainConfig, fields_of
from models.datasets import DatasetSpec, parse_dataset
from models.state import TrainingState
from vaegui.protocol import AutosaveSettings
from vaegui.recovery import crashed_sessions, mark_offered
from vaegui.widgets import show_message

MODEL_FILTER = f"vaegui models (*{SUFFIX})"
MAX_RECENT = 8


def dataset_spec(name: str) -> DatasetSpec | None:
    """The parsed dataset name of a checkpoint, or None when it does not parse (a
    folder that has gone, say)."""
    try:
        return parse_dataset(name)
    except ValueError:
        return None


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


class ModelFileActions:
    """File ▸ Open / Open Recent / Save / Save As / Import, and Training ▸ Continue."""

    # -- file choosers (Qt dialogs a person, or a test, fills in) ---------------------------
    def choose_open_path(self, title: str, name_filter: str) -> str:
        dialog = QFileDialog(self, title, str(self._last_folder()), name_filter)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        return dialog.selectedFiles()[0] if dialog.exec() and dialog.selectedFiles() else ""

    def choose_save_path(self, title: str, default_name: str) -> str:
        dialog = QFileDialog(self, title, str(self._last_folder() / default_name), MODEL_FILTER)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix(SUFFIX.lstrip("."))
        return dialog.selectedFiles()[0] if dialog.exec() and dialog.selectedFiles() else ""

    def _last_folder(self) -> Path:
        return Path(self.settings.value("files/folder", str(Path.home())))

    # -- recent files ----------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.settings.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember(self, path: str) -> None:
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("files/recent", recent[:MAX_RECENT])
        self.settings.setValue("files/folder", str(Path(path).parent))
        self._rebuild_recent_menu()

    def _forget(self, path: str) -> None:
        self.settings.setValue("files/recent", [p for p in self.recent_files() if p != path])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        recent = self.recent_files()
        for i, path in enumerate(recent):
            action = menu.addAction(f"&{i + 1} {Path(path).name}  ({Path(path).parent})")
            action.triggered.connect(lambda _checked=False, p=path: self._open_recent(p))
        if not recent:
            menu.addAction("(none)").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear list").triggered.connect(
                lambda: (self.settings.setValue("files/recent", []), self._rebuild_recent_menu())
            )

    def _open_recent(self, path: str) -> None:
        if not Path(path).is_file():
            self._forget(path)
            show_message(self, QMessageBox.Icon.Warning, "Open Recent", f"{path} no longer exists.")
            return
        self.open_model(path)

    # -- open ------------------------------------------------------------------------------
    def open_model_dialog(self) -> None:
        if self._busy("open a model"):
            return
        path = self.choose_open_path("Open model", MODEL_FILTER)
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> bool:
        """Open a checkpoint. On any problem a dialog says what is wrong and the model
        already open stays as it was."""
        if self._busy("open a model"):
            return False
        try:
            c = read_checkpoint(path)
            spec = dataset_spec(c.dataset_name)
            if (spec is None or not spec.builtin) and c.dataset_name not in self._imported:
                raise CheckpointError(
                    f"{Path(path).name} was trained on {c.dataset_name or 'an unnamed dataset'!r}: import that "
                    "data first (File ▸ Import image folder / dataset file), then open the model again"
                )
            if not c.has_training_state:
                raise CheckpointError(
                    f"{Path(path).name} has no optimizer state (or random-number state, or data order), so "
                    "its training cannot be continued exactly; import its weights with File ▸ Import "
                    "PyTorch weights to explore them"
                )
        except CheckpointError as exc:
            show_message(self, QMessageBox.Icon.Critical, "Open model", f"Could not open {path}:\n{exc}")
            self.statusBar().showMessage(f"Could not open {path}", 8000)
            return False
        self.form.show_dataset(c.dataset_name)  # loads the dataset if it differs
        data = self.handle.dataset
        if data is None or tuple(data.image_shape) != tuple(c.model_config.input_shape):
            show_message(self, QMessageBox.Icon.Critical, "Open model",
                         f"Could not open {path}: its images are {c.model_config.input_shape}, the dataset's "
                         f"{None if data is None else data.image_shape}")
            return False
        self.form.show_configs(c.model_config, c.train_config)
        state = TrainingState.from_tensors(c.tensors, c.info)
        self.handle.new_model(c.model_config)
        self.handle.load_snapshot(state.position.version, c.weights)
        self.run.open(state, c.dataset_name, str(path))
        history = self.run.history.epochs
        if history and history[-1].kl_per_dim:
            self.handle.set_activity(history[-1].kl_per_dim)
        self._remember(path)
        self._refresh_actions()
        self.form.show_error("")
        last = c.info.get("history", [])[-1:] or [{}]
        score = f"; test −ELBO {last[0]['test_neg_elbo']:.2f} nats per image" if "test_neg_elbo" in last[0] else ""
        self.statusBar().showMessage(f"Opened {Path(path).name}: {c.epochs_done} epochs{score}.")
        self.setWindowTitle(f"vaegui — {Path(path).name} — {data.title}")
        return True

    # -- save ------------------------------------------------------------------------------
    def save_model(self, path: str | None = None) -> bool:
        """Save the current model with its training state (atomic; errors leave the old file)."""
        if self._busy("save"):
            return False
        if self.run.state is None:
            show_message(self, QMessageBox.Icon.Information, "Save model",
                         "There is no trained model with a training state to save yet.")
            return False
        if path is None:
            path = self.model_path or self.choose_save_path("Save model", "model" + SUFFIX)
            if not path:
                return False
        if not path.endswith(SUFFIX):
            path += SUFFIX
        try:
            save_checkpoint(path, self.run.state.tensors(), self.run.checkpoint_info())
        except CheckpointError as exc:
            show_message(self, QMessageBox.Icon.Critical, "Save model", f"{exc}\nNothing was overwritten.")
            return False
        self.run.set_file(path, dirty=False)
        self._remember(path)
        self.statusBar().showMessage(f"Saved {path}", 8000)
        return True

    def save_model_as(self) -> bool:
        path = self.choose_save_path("Save model as", Path(self.model_path or "model" + SUFFIX).name)
        return bool(path) and self.save_model(path)

    # -- import ----------------------------------------------------------------------------
    def import_weights_dialog(self) -> None:
        if self._busy("import weights"):
            return
        path = self.choose_open_path("Import PyTorch weights", "PyTorch state dicts (*.pt *.pth)")
        if path:
            self.import_weights(path)

    def import_weights(self, path: str) -> bool:
        """Import a plain ``.pt`` state dict for the model the form describes (never unpickles)."""
        data = self.handle.dataset
        config = self.form.model_config(data.image_shape)
        try:
            weights = import_state_dict(path, config)
        except CheckpointError as exc:
            show_message(self, QMessageBox.Icon.Critical, "Import PyTorch weights", f"Could not import:\n{exc}")
            return False
        self.handle.new_model(config)
        self.handle.load_snapshot(0, weights)
        self.run.forget()  # no optimizer state: explore only
        self._refresh_actions()
        self.statusBar().showMessage(
            f"Imported {Path(path).name} into a {config.input_dim}-{config.hidden_dim}-{config.latent_dim} model "
            "(weights only: Continue needs a vaegui checkpoint).", 10000)
        return True

    # -- continue --------------------------------------------------------------------------
    def continue_training(self) -> None:
        """Train the current model further, up to the form's epoch count in total."""
        if self.controller.running or self.run.state is None or self.handle.dataset is None:
            return
        state = self.run.state
        done, finished = state.position.epoch, state.at_epoch_end
        if self.form.epochs_spin.value() <= done and finished:
            self.form.show_error(f"The model has trained {done} epochs: set Epochs above {done} to continue.")
            return
        config = resumed_config(state.train_config, self.form.train_config())
        config = dataclasses.replace(config, epochs=max(config.epochs, done + (0 if finished else 1)))
        model_config = state.model_config
        self.form.show_error("")
        self.run.last_error = ""
        if not self._resources_ok(model_config, config):
            return
        self.run.begin(model_config, config, self.handle.dataset.name, resume=True)
        self.controller.start(model_config, config, self.handle.dataset, resume=state,
                              autosave=self._autosave_job())
        self.statusBar().showMessage(f"Continuing from epoch {done} to {config.epochs}…")

    # -- helpers ---------------------------------------------------------------------------
    def _busy(self, what: str) -> bool:
        if self.controller.running:
            self.statusBar().showMessage(f"Stop training first to {what}.", 5000)
            return True
        return False

    def _refresh_actions(self) -> None:
        running = self.controller.running
        has_state = self.run.state is not None
        self.form.set_running(running, paused=self.controller.paused, can_continue=has_state)
        for action in (self.save_action, self.save_as_action):
            action.setEnabled(has_state and not running)
        for action in (self.open_action, self.import_action, self.recent_menu.menuAction(),
                       self.import_folder_action, self.import_file_action, self.download_menu.menuAction()):
            action.setEnabled(not running)
        self.continue_action.setEnabled(has_state and not running)

    def _autosave_job(self) -> AutosaveSettings | None:
        """Where and how often the run autosaves; None (and a note in the status bar)
        when the session folder cannot be written, checked before the run starts."""
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
        every_s, keep = self.form.autosave_settings()
        return AutosaveSettings(str(self.session.path), keep=keep, every_s=every_s)

    # -- closing and recovery --------------------------------------------------------------
    def confirm_close(self) -> bool:
        """Ask what to do with running training or unsaved work; False cancels the close."""
        running = self.controller.running
        if not running and not (self.run.dirty and self.run.state is not None):
            return True
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Close vaegui")
        if running:
            box.setText("Training is still running.")
            save = box.addButton("Stop and save…", QMessageBox.ButtonRole.AcceptRole)
            discard = box.addButton("Stop and discard", QMessageBox.ButtonRole.DestructiveRole)
        else:
            box.setText("The trained model has not been saved.")
            save = box.addButton("Save…", QMessageBox.ButtonRole.AcceptRole)
            discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(save)
        box.exec()
        clicked = box.clickedButton()
        if clicked is cancel or clicked is None:
            return False
        if running:
            self.controller.shutdown()  # ends within one step; the state comes back
        if clicked is save:
            return self.save_model()
        return clicked is discard

    def offer_recovery(self) -> QMessageBox | None:
        """If an earlier session crashed, offer its newest autosave (non-blocking)."""
        if self.data_dir is None:
            return None
        sessions = crashed_sessions(Path(self.data_dir) / "sessions")
        if not sessions:
            return None
        folder, newest = sessions[0]
        for other, _ in sessions:
            mark_offered(other)
        box = QMessageBox(QMessageBox.Icon.Question, "Restore autosave",
                          f"vaegui did not close normally last time. Restore its newest autosave?\n{newest}",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setObjectName("recovery-box")
        yes = box.button(QMessageBox.StandardButton.Yes)
        box.finished.connect(lambda _result: box.clickedButton() is yes and self.open_model(str(newest)))
        box.open()
        return box
