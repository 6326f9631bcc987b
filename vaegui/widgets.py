"""Shared widgets: the image-grid view, the export dialog, and the base class of
every panel that shows an exportable grid of decoded images."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.latent import grid_size, tile_images
from vaegui.export import save_grid_png


def show_message(parent: QWidget, icon: QMessageBox.Icon, title: str, text: str, details: str = "") -> QMessageBox:
    """A window-modal message box that does not block the caller (``open()``)."""
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def dropped_image_paths(mime) -> list[str]:
    """Local image files in a drag's MIME data."""
    from models.importers import IMAGE_SUFFIXES

    paths = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []
    return [p for p in paths if Path(p).suffix.lower() in IMAGE_SUFFIXES]


def load_dropped_image(path: str, handle):
    """A dropped file, preprocessed like the dataset: ``(1, C, H, W)`` float tensor in [0, 1].

    Raises:
        ValueError: the file is not a readable image (the reason is in the message).
    """
    import torch

    from models.importers import load_image

    c, h, _w = handle.dataset.image_shape
    return torch.from_numpy(load_image(path, h, c, "crop")).float().div(255.0)[None]


class PaintedImageItem(pg.ImageItem):
    """An ImageItem that reports when it has painted (used to measure latency)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_paint = None

    def paint(self, p, *args):
        super().paint(p, *args)
        if self.on_paint is not None:
            self.on_paint()


class ImageGridView(pg.GraphicsView):
    """Shows a grid of images ``(N, C, H, W)`` (pixels in [0, 1]) as one picture,
    upright, with fixed levels (0, 1) and a locked aspect ratio."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, background="w")
        self.view = pg.ViewBox(lockAspect=True, enableMouse=False, invertY=True, enableMenu=False)
        self.setCentralItem(self.view)
        self.item = PaintedImageItem()
        self.item.setOpts(axisOrder="row-major")
        self.view.addItem(self.item)
        self.pixels: np.ndarray | None = None
        self.setMinimumSize(160, 160)

    def show_grid(self, images: np.ndarray, rows: int, cols: int, padding: int = 0) -> None:
        """Tile ``images`` ``(rows·cols, C, H, W)`` (pixels in [0, 1]) and show them."""
        pixels = tile_images(images, rows, cols, scale=1, padding=padding)
        self.pixels = pixels
        self.item.setImage(pixels, levels=(0.0, 1.0), autoLevels=False)
        self.view.autoRange(padding=0.0)

    def clear(self) -> None:
        """Show nothing."""
        self.pixels = None
        self.item.clear()


class ExportDialog(QDialog):
    """Asks for the PNG path, the integer upscale and the padding of a grid export,
    and shows the resulting pixel size as they change."""

    def __init__(self, parent: QWidget, rows: int, cols: int, tile_hw: tuple[int, int], default_path: str):
        super().__init__(parent)
        self.setWindowTitle("Export grid as PNG")
        self.rows, self.cols, self.tile_hw = rows, cols, tile_hw
        self.path_edit = QLineEdit(default_path)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        self.scale_spin = QSpinBox()
        self.scale_spin.setRange(1, 64)
        self.scale_spin.setValue(4)
        self.scale_spin.setSuffix("×")
        self.padding_spin = QSpinBox()
        self.padding_spin.setRange(0, 256)
        self.padding_spin.setValue(2)
        self.padding_spin.setSuffix(" px")
        self.size_label = QLabel()
        form = QFormLayout()
        form.addRow("File:", path_row)
        form.addRow("Upscale:", self.scale_spin)
        form.addRow("Padding:", self.padding_spin)
        form.addRow("Image size:", self.size_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept_if_valid)
        buttons.rejected.connect(self.reject)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.scale_spin.valueChanged.connect(self._update_size)
        self.padding_spin.valueChanged.connect(self._update_size)
        self._update_size()

    def output_size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels of the file that will be written."""
        h, w = grid_size(self.rows, self.cols, self.tile_hw, self.scale_spin.value(), self.padding_spin.value())
        return w, h

    def _update_size(self) -> None:
        w, h = self.output_size()
        self.size_label.setText(f"{w} × {h} pixels")

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export grid as PNG", self.path_edit.text(), "PNG images (*.png)")
        if path:
            self.path_edit.setText(path)

    def _accept_if_valid(self) -> None:
        path = self.path_edit.text().strip()
        if not path:
            QMessageBox.warning(self, "Export", "Choose a file name first.")
            return
        if not path.lower().endswith(".png"):
            self.path_edit.setText(path + ".png")
        self.accept()


class GridPanel(QWidget):
    """Base of the panels that show a decoded-image grid.

    A subclass implements :meth:`compute_grid` (returning ``(images, rows, cols)`` or
    ``None`` when nothing can be shown) and calls :meth:`refresh` when its inputs
    change. New weights arrive through :class:`~vaegui.session.ModelHandle`; a hidden
    panel only marks itself stale and redraws when it is shown.
    """

    exported = Signal(str)
    title = "grid"
    #: white pixels between tiles on screen (exports choose their own padding)
    display_padding = 1

    def __init__(self, handle, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.handle = handle
        self.settings = settings
        self._why = ""
        self.grid_view = ImageGridView()
        self.caption = QLabel(GridPanel.empty_caption(self))
        self.caption.setWordWrap(True)
        self.export_button = QPushButton("Export PNG…")
        self.export_button.setToolTip("Save this grid as a PNG file (Ctrl+E)")
        self.export_button.clicked.connect(self.export_dialog)
        self.export_button.setEnabled(False)
        self._stale = True
        self._grid: tuple[np.ndarray, int, int] | None = None
        self.last_refresh_s = 0.0
        self.label_combo = QComboBox()
        self.label_combo.setToolTip("The label y that the conditional VAE decodes with")
        self.label_title = QLabel("Label y:")
        self.label_combo.currentIndexChanged.connect(self.refresh)
        handle.changed.connect(self._sync_labels)
        handle.dataset_changed.connect(self._sync_labels)
        handle.changed.connect(self._on_model_changed)
        self._sync_labels()

    def _sync_labels(self) -> None:
        names = self.handle.class_names
        if self.label_combo.count() != len(names):
            self.label_combo.blockSignals(True)
            self.label_combo.clear()
            for i, name in enumerate(names):
                self.label_combo.addItem(name, i)
            self.label_combo.blockSignals(False)
        for w in (self.label_combo, self.label_title):
            w.setVisible(self.handle.conditional)

    def label(self) -> int | None:
        """The label to decode with (conditional VAE), else None."""
        return self.label_combo.currentData() if self.handle.conditional else None

    def lay_out_beside(self, form: QFormLayout) -> None:
        """The common layout: the grid on the left; the controls, the export button
        and the caption on the right."""
        form.addRow(self.export_button)
        side = QVBoxLayout()
        side.addLayout(form)
        side.addWidget(self.caption)
        side.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addWidget(self.grid_view, 3)
        layout.addLayout(side, 1)

    # -- to implement ---------------------------------------------------------------------
    def compute_grid(self) -> tuple[np.ndarray, int, int] | None:
        """The grid to show: ``(images, rows, cols)`` with images ``(rows·cols, C, H, W)``,
        pixels in [0, 1], decoded from the newest snapshot; None (with ``self._why``
        set) when there is nothing to show. Subclasses implement it."""
        raise NotImplementedError

    def empty_caption(self) -> str:
        """What the panel says when it has no grid (why, or how to get one)."""
        if self._why and self.handle.ready:
            return self._why
        return "No model yet: choose the settings on the left and press Train (Ctrl+Return)."

    def needs_prior(self) -> bool:
        """For panels that sample or map through p(z): False (with a message) for the AE."""
        if self.handle.has_prior:
            return True
        self._why = (
            "A plain autoencoder has no prior p(z): there is nothing to sample from or to map "
            "through Φ⁻¹, so this panel stays empty. Traversal and interpolation work on its codes."
        )
        return False

    def grid_caption(self) -> str:
        """The caption under the grid: what it shows, the source (paper, figure) and the snapshot."""
        return ""

    # -- refresh logic ---------------------------------------------------------------------
    def _on_model_changed(self) -> None:
        self._stale = True
        if self.isVisible():
            self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def refresh(self) -> None:
        """Decode and show the grid now (on the GUI thread; a hidden panel waits until shown)."""
        self._stale = False
        self._why = self.handle.mismatch()
        t0 = time.perf_counter()
        grid = self.compute_grid() if self.handle.ready and not self._why else None
        self._grid = grid
        if grid is None:
            self.grid_view.clear()
            self.caption.setText(self.empty_caption())
            self.export_button.setEnabled(False)
        else:
            images, rows, cols = grid
            self.grid_view.show_grid(images, rows, cols, self.display_padding)
            self.caption.setText(self.grid_caption())
            self.export_button.setEnabled(True)
        self.last_refresh_s = time.perf_counter() - t0

    @property
    def current_grid(self) -> tuple[np.ndarray, int, int] | None:
        """The grid on screen, ``(images (N, C, H, W), rows, cols)``, or None."""
        return self._grid

    # -- export ----------------------------------------------------------------------------
    def export_dialog(self) -> ExportDialog | None:
        """Open the export dialog (non-blocking); the grid is written when it is accepted."""
        if self._grid is None:
            return None
        images, rows, cols = self._grid
        folder = self.settings.value("export/folder", str(Path.home())) if self.settings else str(Path.home())
        default = str(Path(folder) / f"{self.title}.png")
        dialog = ExportDialog(self, rows, cols, images.shape[2:], default)
        if self.settings is not None:
            dialog.scale_spin.setValue(int(self.settings.value("export/scale", 4)))
            dialog.padding_spin.setValue(int(self.settings.value("export/padding", 2)))
        dialog.accepted.connect(lambda: self._write(dialog, images, rows, cols))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def _write(self, dialog: ExportDialog, images: np.ndarray, rows: int, cols: int) -> None:
        path = dialog.path_edit.text().strip()
        scale, padding = dialog.scale_spin.value(), dialog.padding_spin.value()
        try:
            w, h = save_grid_png(path, images, rows, cols, scale, padding)
        except (OSError, ValueError) as exc:
            show_message(self, QMessageBox.Icon.Critical, "Export failed", f"Could not write {path}:\n{exc}")
            return
        if self.settings is not None:
            self.settings.setValue("export/folder", str(Path(path).parent))
            self.settings.setValue("export/scale", scale)
            self.settings.setValue("export/padding", padding)
        self.exported.emit(f"Saved {path} ({w} × {h} pixels)")
