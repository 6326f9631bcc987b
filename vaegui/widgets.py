"""Shared widgets: the image-grid view and the base class of every panel that shows
an exportable grid of decoded images."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from models.latent import tile_images
from vaegui.figdialog import FigureExportDialog
from vaegui.figrender import FigureStyle, is_figure, render_figure, save_figure_png
from vaegui.figures import GridFigure


def on_screen(widget: QWidget) -> bool:
    """Whether ``widget`` can be seen: shown, and its window not minimised (Qt counts the widgets
    of a minimised window as visible). The live panels skip their work when it is not, which
    leaves the cores to the training process, and catch up when the window comes back."""
    return widget.isVisible() and not widget.window().isMinimized()


class EpochRefresh(QObject):
    """Keeps a costly view following training: at an epoch's end (:meth:`epoch_ended`) it calls
    ``refresh`` once the epoch's weights are in (the next snapshot, :meth:`snapshot_arrived`, which
    comes close to the epoch's figures in either order; ``wait_ms`` at most) if ``widget`` can be
    seen, and otherwise marks the view :attr:`stale` for :meth:`catch_up` (the widget shown, the
    window restored)."""

    def __init__(self, widget: QWidget, refresh: Callable[[], None], wait_ms: int = 500):
        super().__init__(widget)
        self.widget, self.refresh = widget, refresh
        self.stale = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(wait_ms)
        self._timer.timeout.connect(refresh)

    def epoch_ended(self) -> None:
        if on_screen(self.widget):
            self._timer.start()
        else:
            self.stale = True

    def snapshot_arrived(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.refresh()

    def catch_up(self, also: bool = False) -> None:
        """Refresh now if epochs ended while the view could not be seen (or if ``also``) and it can be."""
        if (self.stale or also) and on_screen(self.widget):
            self.stale = False
            self.refresh()


def show_message(parent: QWidget, icon: QMessageBox.Icon, title: str, text: str, details: str = "") -> QMessageBox:
    """A window-modal message box that does not block the caller (``open()``)."""
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def dropped_image_paths(mime) -> list[str]:
    """Local image files in a drag's MIME data, but for figures exported by vaegui (those
    go to the window, which restores their latents: :func:`figure_paths`)."""
    from models.importers import IMAGE_SUFFIXES

    paths = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []
    return [p for p in paths if Path(p).suffix.lower() in IMAGE_SUFFIXES and not is_figure(p)]


def figure_paths(mime) -> list[str]:
    """The PNG files exported by vaegui among a drag's local files."""
    paths = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []
    return [p for p in paths if is_figure(p)]


def load_dropped_image(path: str, handle):
    """A dropped file, preprocessed like the dataset: ``(1, C, H, W)`` float tensor in [0, 1].

    Raises:
        ValueError: the file is not a readable image (the reason is in the message).
    """
    import torch

    from models.importers import load_image

    c, h, _w = handle.dataset.image_shape
    return torch.from_numpy(load_image(path, h, c, "crop")).float().div(255.0)[None]


def restore_label(panel, label) -> None:
    """Choose ``label`` (an int, or None) in a panel's label combo."""
    if label is not None and panel.label_combo.findData(label) >= 0:
        panel.label_combo.setCurrentIndex(panel.label_combo.findData(label))


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


class GridPanel(QWidget):
    """Base of the panels that show a decoded-image grid.

    A subclass implements :meth:`compute_grid` (returning a
    :class:`~vaegui.figures.GridFigure`, or ``None`` when nothing can be shown) and calls
    :meth:`refresh` when its inputs change. New weights arrive through :class:`~vaegui.session.ModelHandle`; a hidden
    panel only marks itself stale and redraws when it is shown.
    """

    exported = Signal(str)
    title = "grid"
    #: the panel offers Animate… (traversal, interpolation, samples and manifold)
    animatable = False
    #: white pixels between tiles on screen (exports choose their own padding)
    display_padding = 1
    #: the panel has a meaning for the VQ-VAE's discrete codes (the manifold and the traversal have not)
    discrete_ok = True

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
        self.animate_button = QPushButton("Animate…")
        self.animate_button.setToolTip("Export this panel as an animation: GIF, animated PNG or MP4 (Ctrl+Shift+A)")
        self.animate_button.clicked.connect(self.animate_dialog)
        self.animate_button.setEnabled(False)
        self.animate_button.setVisible(self.animatable)
        #: where checkpoints for animations over training are looked for: set by the window
        self.checkpoint_folder: Callable[[], str] = str
        self._stale = True
        self._refresh_queued = False
        self._figure: GridFigure | None = None
        #: what made the grid (model fingerprint, file, configs, dataset, epoch): set by the window
        self.model_info: Callable[[], dict] = dict
        #: the caption line offered in the export dialog (model, dataset, epoch, seed): set by the window
        self.caption_line: Callable[[], str] = str
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
        row = QHBoxLayout()
        row.addWidget(self.export_button)
        row.addWidget(self.animate_button)
        form.addRow(row)
        side = QVBoxLayout()
        side.addLayout(form)
        side.addWidget(self.caption)
        side.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addWidget(self.grid_view, 3)
        layout.addLayout(side, 1)

    # -- to implement ---------------------------------------------------------------------
    def compute_grid(self) -> GridFigure | None:
        """The grid to show (images ``(rows·cols, C, H, W)``, pixels in [0, 1], decoded from
        the newest snapshot, with its labels and latents); None (with ``self._why`` set)
        when there is nothing to show. Subclasses implement it."""
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
        """The weights (or what the grid depends on) changed: the grid is decoded again in the
        event loop's next turn, once however many changes came in this one (at an epoch's end the
        window gets the new weights, then the epoch's KL per dimension: one decode, not two, and
        not in the same stretch of the GUI thread as reading them)."""
        self._stale = True
        self.window_restored()

    def window_restored(self) -> None:
        """Decode in the event loop's next turn if the grid is stale and can be seen (called by the
        window when it comes back from being minimised, too)."""
        if self._stale and on_screen(self) and not self._refresh_queued:
            self._refresh_queued = True
            QTimer.singleShot(0, self, self._refresh_if_stale)  # dropped if the panel is deleted first

    def _refresh_if_stale(self) -> None:
        self._refresh_queued = False
        if self._stale and on_screen(self):
            self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def refresh(self) -> None:
        """Decode and show the grid now (on the GUI thread; a hidden panel waits until shown)."""
        self._stale = False
        self._why = self.handle.mismatch()
        if not self._why and self.handle.discrete and not self.discrete_ok:
            self._why = (f"The VQ-VAE's latents are grids of discrete codes, not a Gaussian z with a prior N(0, I), so "
                         f"the {self.title} does not apply. Samples, Interpolation (of the encoder's output, quantised "
                         f"at each step) and the Codebook tab do.")
        t0 = time.perf_counter()
        grid = self.compute_grid() if self.handle.ready and not self._why else None
        self._figure = grid
        if grid is None:
            self.grid_view.clear()
            self.caption.setText(self.empty_caption())
            self.export_button.setEnabled(False)
            self.animate_button.setEnabled(False)
        else:
            self.grid_view.show_grid(grid.images, grid.rows, grid.cols, self.display_padding)
            self.caption.setText(self.grid_caption())
            self.export_button.setEnabled(True)
            self.animate_button.setEnabled(self.animatable and not self.handle.discrete)
        self.last_refresh_s = time.perf_counter() - t0

    @property
    def current_grid(self) -> tuple[np.ndarray, int, int] | None:
        """The grid on screen, ``(images (N, C, H, W), rows, cols)``, or None."""
        f = self._figure
        return None if f is None else (f.images, f.rows, f.cols)

    @property
    def figure(self) -> GridFigure | None:
        """The grid on screen with its labels, latents and settings, or None."""
        return self._figure

    def restore(self, record) -> str:
        """Put the panel back to the settings of a reopened figure
        (:class:`~vaegui.figrender.FigureRecord`); returns what was restored, for the
        status bar. Panels that can restore override it."""
        raise ValueError(f"the {self.title} panel cannot restore a figure")

    # -- export ----------------------------------------------------------------------------
    def rendered(self, style: FigureStyle | None = None):
        """The grid as a Pillow image, as the export writes it (default: 4×, 2 px padding)."""
        return render_figure(self._figure, style or FigureStyle())

    def export_dialog(self) -> FigureExportDialog | None:
        """Open the export dialog (non-blocking); the grid is written when it is accepted."""
        if self._figure is None:
            return None
        folder = self.settings.value("export/folder", str(Path.home())) if self.settings else str(Path.home())
        default = str(Path(folder) / f"{self.title}.png")
        figure = self._figure
        dialog = FigureExportDialog(self, figure, default, self.caption_line(), self.settings)
        dialog.accepted.connect(lambda: self._write(dialog, figure))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def animate_dialog(self):
        """Open the animation dialog (non-blocking); None when the panel cannot animate now."""
        if not self.animatable or self._figure is None or self.handle.discrete:
            return None
        from vaegui.animdialog import AnimationDialog

        dialog = AnimationDialog(self, self.checkpoint_folder(), self.settings)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def save_png(self, path: str, style: FigureStyle, figure: GridFigure | None = None) -> tuple[int, int]:
        """Write the grid (or ``figure``) as PNG with its description (:func:`~vaegui.figrender.save_figure_png`).

        Raises:
            ValueError, OSError: as :func:`~vaegui.figrender.save_figure_png`.
        """
        return save_figure_png(path, figure or self._figure, style, self.model_info())

    def _write(self, dialog: FigureExportDialog, figure: GridFigure) -> None:
        path = dialog.path()
        try:
            w, h = self.save_png(path, dialog.style(), figure)
        except (OSError, ValueError) as exc:
            show_message(self, QMessageBox.Icon.Critical, "Export failed", f"Could not write {path}:\n{exc}")
            return
        dialog.remember()
        self.exported.emit(f"Saved {path} ({w} × {h} pixels)")
