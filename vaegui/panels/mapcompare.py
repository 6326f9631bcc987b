"""The Latent map panel's "Compare" tab: a second model read from a file, whose map of the same
data is drawn beside the first (an AE beside a VAE, β = 1 beside β = 4), and the map's Export
button."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QPushButton, QVBoxLayout, QWidget

from vaegui.widgets import show_message


class SecondModel(QWidget):
    """Opens the model to compare with and holds it (:attr:`model`, eval mode, on the CPU, and
    :attr:`name`, which says its kind, D and β); it must take the images of ``handle``'s dataset.
    The Close button is the panel's to connect.

    Signals: ``opened()`` after a model was opened.
    """

    opened = Signal()

    def __init__(self, handle, settings=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.handle, self.settings = handle, settings
        self.model = None
        self.name = ""
        self.compare_button = QPushButton("Compare with a model file…")
        self.compare_button.setToolTip("Show a second model's map beside this one: same data, same colours "
                                       "(AE vs VAE, β = 1 vs β = 4)")
        self.close_compare = QPushButton("Close the comparison")
        self.close_compare.setEnabled(False)
        self.export_button = QPushButton("Export…")
        self.export_button.setEnabled(False)
        layout = QVBoxLayout(self)
        for b in (self.compare_button, self.close_compare, self.export_button):
            layout.addWidget(b)
        layout.addStretch(1)
        self.compare_button.clicked.connect(self.open_dialog)

    def open_dialog(self) -> None:
        folder = self.settings.value("files/folder", str(Path.home())) if self.settings else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Compare with a model", folder, "vaegui models (*.vae)")
        if path:
            self.open(path)

    def open(self, path: str) -> bool:
        """Read the model in ``path``; it must take the shown dataset's images. A file that cannot
        be read, or a model for other images, gets a message and changes nothing; returns whether
        it was opened."""
        from models.checkpoint import CheckpointError, read_checkpoint
        from models.vae import build_model

        try:
            ckpt = read_checkpoint(path)
            model = build_model(ckpt.model_config)
            model.load_state_dict(ckpt.weights)
        except (CheckpointError, ValueError, OSError, RuntimeError) as exc:
            show_message(self, QMessageBox.Icon.Warning, "Compare", f"Could not open {Path(path).name}:\n{exc}")
            return False
        data = self.handle.dataset
        image_shape = tuple(data.image_shape) if data is not None else None
        if image_shape is None or tuple(ckpt.model_config.input_shape) != image_shape:
            show_message(self, QMessageBox.Icon.Warning, "Compare",
                         f"{Path(path).name} takes {tuple(ckpt.model_config.input_shape)} images; this dataset has "
                         f"{image_shape or 'none'}.")
            return False
        self.model = model.eval()
        c = ckpt.model_config
        kind = "AE" if c.model == "ae" else c.model.upper()
        self.name = f"{Path(path).name} ({kind}, D = {c.latent_dim}, β = {ckpt.train_config.beta:g})"
        self.close_compare.setEnabled(True)
        self.opened.emit()
        return True

    def close_model(self) -> None:
        """Forget the second model."""
        self.model, self.name = None, ""
        self.close_compare.setEnabled(False)
