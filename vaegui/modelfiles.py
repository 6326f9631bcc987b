"""File ▸ Open / Open Recent / Save / Save As / Import PyTorch weights, the question
on closing with unsaved work, and the offer to restore the autosave of a session
that crashed: a helper of the main window, working on the run and the model handle
of its :class:`~vaegui.context.WindowContext`."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMenu, QMessageBox

from models.checkpoint import SUFFIX, CheckpointError, import_state_dict, read_checkpoint, save_checkpoint
from models.datasets import DatasetSpec, parse_dataset
from models.run import epochs_text
from models.state import TrainingState
from vaegui.context import WindowContext
from vaegui.dialogs import choose_open_path, choose_save_path
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


class ModelFiles(QObject):
    """Model files for the window described by ``ctx``; ``imported`` is the window's
    registry of imported datasets (a model trained on one opens only once it is there).

    Attributes:
        recent_menu: File ▸ Open Recent, kept up to date.
        extra_info: () -> dict of what the panels keep with a saved model (attribute
            vectors), added to the checkpoint's description.
        opened: (info) -> None, given an opened checkpoint's description.
    """

    def __init__(self, ctx: WindowContext, imported: dict):
        super().__init__(ctx.window)
        self.ctx, self.imported = ctx, imported
        self.extra_info = dict
        self.opened = lambda _info: None
        self.recent_menu = QMenu("Open Recent", ctx.window)
        self._rebuild_recent_menu()

    # -- recent files ----------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        """The model files opened or saved most recently, newest first (at most 8)."""
        value = self.ctx.settings.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember(self, path: str) -> None:
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self.recent_files() if p != path]
        self.ctx.settings.setValue("files/recent", recent[:MAX_RECENT])
        self.ctx.settings.setValue("files/folder", str(Path(path).parent))
        self._rebuild_recent_menu()

    def _forget(self, path: str) -> None:
        self.ctx.settings.setValue("files/recent", [p for p in self.recent_files() if p != path])
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
                lambda: (self.ctx.settings.setValue("files/recent", []), self._rebuild_recent_menu())
            )

    def _open_recent(self, path: str) -> None:
        if not Path(path).is_file():
            self._forget(path)
            show_message(self.ctx.window, QMessageBox.Icon.Warning, "Open Recent", f"{path} no longer exists.")
            return
        self.open_model(path)

    # -- open ------------------------------------------------------------------------------
    def open_model_dialog(self) -> None:
        """File ▸ Open model (Ctrl+O): pick a ``.vae`` file and open it."""
        if self.ctx.busy("open a model"):
            return
        path = choose_open_path(self.ctx.window, self.ctx.settings, "Open model", MODEL_FILTER)
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> bool:
        """Open a checkpoint. On any problem a dialog says what is wrong and the model
        already open stays as it was."""
        if self.ctx.busy("open a model"):
            return False
        try:
            c = read_checkpoint(path)
            spec = dataset_spec(c.dataset_name)
            if (spec is None or not spec.builtin) and c.dataset_name not in self.imported:
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
            show_message(self.ctx.window, QMessageBox.Icon.Critical, "Open model", f"Could not open {path}:\n{exc}")
            self.ctx.status(f"Could not open {path}", 8000)
            return False
        self.ctx.form.show_dataset(c.dataset_name)  # loads the dataset if it differs
        data = self.ctx.handle.dataset
        if data is None or tuple(data.image_shape) != tuple(c.model_config.input_shape):
            show_message(self.ctx.window, QMessageBox.Icon.Critical, "Open model",
                         f"Could not open {path}: its images are {c.model_config.input_shape}, the dataset's "
                         f"{None if data is None else data.image_shape}")
            return False
        self.ctx.form.show_configs(c.model_config, c.train_config)
        state = TrainingState.from_tensors(c.tensors, c.info)
        self.ctx.handle.new_model(c.model_config)
        self.ctx.handle.load_snapshot(state.position.version, c.weights)
        self.ctx.run.open(state, c.dataset_name, str(path))
        self.opened(c.info)
        history = self.ctx.run.history.epochs
        if history and history[-1].kl_per_dim:
            self.ctx.handle.set_activity(history[-1].kl_per_dim)
        self._remember(path)
        self.ctx.refresh()
        self.ctx.form.show_error("")
        last = c.info.get("history", [])[-1:] or [{}]
        score = f"; test −ELBO {last[0]['test_neg_elbo']:.2f} nats per image" if "test_neg_elbo" in last[0] else ""
        self.ctx.status(f"Opened {Path(path).name}: {epochs_text(c.epochs_done)}{score}.")
        self.ctx.window.setWindowTitle(f"vaegui — {Path(path).name} — {data.title}")
        return True

    # -- save ------------------------------------------------------------------------------
    def save_model(self, path: str | None = None) -> bool:
        """Save the current model with its training state (atomic; errors leave the old file)."""
        if self.ctx.busy("save"):
            return False
        if self.ctx.run.state is None:
            show_message(self.ctx.window, QMessageBox.Icon.Information, "Save model",
                         "There is no trained model with a training state to save yet.")
            return False
        if path is None:
            path = self.ctx.run.path or choose_save_path(self.ctx.window, self.ctx.settings, "Save model",
                                                         "model" + SUFFIX, MODEL_FILTER, SUFFIX)
            if not path:
                return False
        if not path.endswith(SUFFIX):
            path += SUFFIX
        try:
            info = self.ctx.run.checkpoint_info()
            info.update(self.extra_info())
            save_checkpoint(path, self.ctx.run.state.tensors(), info)
        except CheckpointError as exc:
            show_message(self.ctx.window, QMessageBox.Icon.Critical, "Save model", f"{exc}\nNothing was overwritten.")
            return False
        self.ctx.run.set_file(path, dirty=False)
        self._remember(path)
        self.ctx.status(f"Saved {path}", 8000)
        return True

    def save_model_as(self) -> bool:
        """File ▸ Save model as: ask for a file and save there; False when cancelled or failed."""
        path = choose_save_path(self.ctx.window, self.ctx.settings, "Save model as",
                                Path(self.ctx.run.path or "model" + SUFFIX).name, MODEL_FILTER, SUFFIX)
        return bool(path) and self.save_model(path)

    # -- import ----------------------------------------------------------------------------
    def import_weights_dialog(self) -> None:
        """File ▸ Import PyTorch weights: pick a ``.pt`` state dict and import it."""
        if self.ctx.busy("import weights"):
            return
        path = choose_open_path(self.ctx.window, self.ctx.settings, "Import PyTorch weights",
                                "PyTorch state dicts (*.pt *.pth)")
        if path:
            self.import_weights(path)

    def import_weights(self, path: str) -> bool:
        """Import a plain ``.pt`` state dict for the model the form describes (never unpickles)."""
        data = self.ctx.handle.dataset
        config = self.ctx.form.model_config(data.image_shape)
        try:
            weights = import_state_dict(path, config)
        except CheckpointError as exc:
            show_message(self.ctx.window, QMessageBox.Icon.Critical, "Import PyTorch weights",
                         f"Could not import:\n{exc}")
            return False
        self.ctx.handle.new_model(config)
        self.ctx.handle.load_snapshot(0, weights)
        self.ctx.run.forget()  # no optimizer state: explore only
        self.ctx.refresh()
        self.ctx.status(
            f"Imported {Path(path).name} into a {config.input_dim}-{config.hidden_dim}-{config.latent_dim} model "
            "(weights only: Continue needs a vaegui checkpoint).", 10000)
        return True

    # -- closing and recovery --------------------------------------------------------------
    def confirm_close(self) -> bool:
        """Ask what to do with running training or unsaved work; False cancels the close."""
        running = self.ctx.controller.running
        if not running and not (self.ctx.run.dirty and self.ctx.run.state is not None):
            return True
        box = QMessageBox(self.ctx.window)
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
            self.ctx.controller.shutdown()  # ends within one step; the state comes back
        if clicked is save:
            return self.save_model()
        return clicked is discard

    def offer_recovery(self) -> QMessageBox | None:
        """If an earlier session crashed, offer its newest autosave (non-blocking)."""
        if self.ctx.data_dir is None:
            return None
        sessions = crashed_sessions(Path(self.ctx.data_dir) / "sessions")
        if not sessions:
            return None
        folder, newest = sessions[0]
        for other, _ in sessions:
            mark_offered(other)
        box = QMessageBox(QMessageBox.Icon.Question, "Restore autosave",
                          f"vaegui did not close normally last time. Restore its newest autosave?\n{newest}",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self.ctx.window)
        box.setObjectName("recovery-box")
        yes = box.button(QMessageBox.StandardButton.Yes)
        box.finished.connect(lambda _result: box.clickedButton() is yes and self.open_model(str(newest)))
        box.open()
        return box
