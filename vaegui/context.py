"""What the window's helpers share: the declared interface between the main window
and its parts (training, model files, datasets, exports)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMainWindow

from models.run import Run
from vaegui.panels.training import TrainingPanel
from vaegui.session import ModelHandle
from vaegui.worker import TrainingController


@dataclass
class WindowContext:
    """The objects a helper of the window may use, and nothing else of it.

    Attributes:
        window: the parent of dialogs; its status bar and title.
        settings: remembered choices (folders, recent files, import options).
        run: the training run (Qt-free), the source of truth for configs, state and metrics.
        handle: the decoding copy of the model and the chosen dataset.
        controller: the training process.
        form: the training form (its configs, dataset choice, error banner).
        data_dir: the app's data folder (autosave sessions, data folder, downloads); None: none.
        refresh: re-enables the actions and buttons after the state changed.
    """

    window: QMainWindow
    settings: QSettings
    run: Run
    handle: ModelHandle
    controller: TrainingController
    form: TrainingPanel
    data_dir: str | None
    refresh: Callable[[], None]

    def status(self, text: str, ms: int = 0) -> None:
        """Show ``text`` in the status bar (for ``ms`` milliseconds; 0: until replaced)."""
        self.window.statusBar().showMessage(text, ms)

    def busy(self, what: str) -> bool:
        """True (and says so) while training runs, when ``what`` must wait for it."""
        if self.controller.running:
            self.status(f"Stop training first to {what}.", 5000)
            return True
        return False
