"""The grid export dialog: file, upscale, padding, and the annotations a paper needs
(labels, title, caption, font size, DPI), with a preview of the file as it will be
written and its exact pixel size."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
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

from vaegui.figrender import FigureStyle, figure_size, render_figure
from vaegui.figures import GridFigure

PREVIEW = (460, 340)
#: larger figures are previewed at a smaller upscale (the file is still drawn in full)
PREVIEW_MAX_PIXELS = 16_000_000


def pil_to_qimage(image: Image.Image) -> QImage:
    """A Pillow image (mode L, RGB or RGBA) as a QImage that owns its pixels."""
    image = image if image.mode in ("L", "RGB", "RGBA") else image.convert("RGB")
    fmt = {"L": QImage.Format.Format_Grayscale8, "RGB": QImage.Format.Format_RGB888,
           "RGBA": QImage.Format.Format_RGBA8888}[image.mode]
    data = image.tobytes()
    w, h = image.size
    return QImage(data, w, h, len(data) // h, fmt).copy()


def file_row(dialog: QWidget, edit: QLineEdit, title: str, name_filter: str) -> QHBoxLayout:
    """The file name field with its Browse… button (a save dialog that fills the field)."""
    def browse() -> None:
        path, _ = QFileDialog.getSaveFileName(dialog, title, edit.text().strip(), name_filter)
        if path:
            edit.setText(path)

    button = QPushButton("Browse…")
    button.clicked.connect(browse)
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row


def checked_path(dialog: QWidget, edit: QLineEdit, suffixes: tuple[str, ...]) -> str:
    """The field's file name with one of ``suffixes`` (the first added when none is there),
    or "" after telling the user to choose one."""
    path = edit.text().strip()
    if not path:
        QMessageBox.warning(dialog, dialog.windowTitle(), "Choose a file name first.")
        return ""
    if Path(path).suffix.lower() not in suffixes:
        path += suffixes[0]
        edit.setText(path)
    return path


class FigureExportDialog(QDialog):
    """Asks for the PNG file of a grid and how it is drawn (:class:`FigureStyle`);
    the preview and the size label show the file as it will be written.

    Choices are remembered in ``settings`` under ``export/*``.
    """

    def __init__(self, parent: QWidget, figure: GridFigure, default_path: str, caption: str,
                 settings: QSettings | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export grid as PNG")
        self.figure, self.settings = figure, settings
        self.path_edit = QLineEdit(default_path)
        path_row = file_row(self, self.path_edit, "Export grid as PNG", "PNG images (*.png)")
        self.scale_spin = QSpinBox()
        self.scale_spin.setRange(1, 64)
        self.scale_spin.setSuffix("×")
        self.padding_spin = QSpinBox()
        self.padding_spin.setRange(0, 256)
        self.padding_spin.setSuffix(" px")
        self.labels_check = QCheckBox("Row, column and tile labels")
        self.labels_check.setToolTip("Traversal: each row's dimension and KL, each column's z value; interpolation: "
                                     "the fractions t; manifold: the z values; samples and data: the labels")
        self.title_edit = QLineEdit()
        self.title_edit.setPlaceholderText("no title")
        self.caption_check = QCheckBox("Caption line")
        self.caption_edit = QLineEdit(caption)
        self.caption_edit.setToolTip("Model, dataset, epoch and seed: what made this figure")
        self.font_spin = QDoubleSpinBox()
        self.font_spin.setRange(4.0, 48.0)
        self.font_spin.setSingleStep(0.5)
        self.font_spin.setSuffix(" pt")
        self.dpi_spin = QSpinBox()
        self.dpi_spin.setRange(36, 1200)
        self.dpi_spin.setSuffix(" dpi")
        self.dpi_spin.setToolTip("Text is (font size × dpi / 72) pixels high; the PNG records the dpi")
        self.size_label = QLabel()
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(*PREVIEW)
        self.preview.setStyleSheet("background: #e8e8e8;")
        form = QFormLayout()
        form.addRow("File:", path_row)
        form.addRow("Upscale:", self.scale_spin)
        form.addRow("Padding:", self.padding_spin)
        form.addRow("Annotations:", self.labels_check)
        form.addRow("Title:", self.title_edit)
        caption_row = QHBoxLayout()
        caption_row.addWidget(self.caption_check)
        caption_row.addWidget(self.caption_edit, 1)
        form.addRow("", caption_row)
        text_row = QHBoxLayout()
        text_row.addWidget(self.font_spin)
        text_row.addWidget(self.dpi_spin)
        text_row.addStretch(1)
        form.addRow("Font:", text_row)
        form.addRow("Image size:", self.size_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept_if_valid)
        buttons.rejected.connect(self.reject)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        body = QHBoxLayout()
        body.addLayout(form, 1)
        body.addWidget(self.preview, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body)
        layout.addWidget(buttons)
        self._load_settings()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(80)
        self._timer.timeout.connect(self.update_preview)
        for spin in (self.scale_spin, self.padding_spin, self.font_spin, self.dpi_spin):
            spin.valueChanged.connect(self._timer.start)
        for check in (self.labels_check, self.caption_check):
            check.toggled.connect(self._timer.start)
        for edit in (self.title_edit, self.caption_edit):
            edit.textChanged.connect(self._timer.start)
        self.caption_check.toggled.connect(self.caption_edit.setEnabled)
        self.caption_edit.setEnabled(self.caption_check.isChecked())
        self.update_preview()

    def _load_settings(self) -> None:
        s = self.settings

        def get(key, default, kind):
            if s is None:
                return default
            try:
                value = s.value(f"export/{key}", default)
                return value.lower() == "true" if kind is bool and isinstance(value, str) else kind(value)
            except (TypeError, ValueError):
                return default

        self.scale_spin.setValue(get("scale", 4, int))
        self.padding_spin.setValue(get("padding", 2, int))
        self.labels_check.setChecked(get("labels", False, bool))
        self.caption_check.setChecked(get("caption", False, bool))
        self.font_spin.setValue(get("font_pt", 9.0, float))
        self.dpi_spin.setValue(get("dpi", 150, int))

    def remember(self) -> None:
        """Keep the choices for the next export."""
        if self.settings is None:
            return
        for key, value in (("scale", self.scale_spin.value()), ("padding", self.padding_spin.value()),
                           ("labels", self.labels_check.isChecked()), ("caption", self.caption_check.isChecked()),
                           ("font_pt", self.font_spin.value()), ("dpi", self.dpi_spin.value()),
                           ("folder", str(Path(self.path()).parent))):
            self.settings.setValue(f"export/{key}", value)

    def style(self) -> FigureStyle:
        """The drawing options chosen."""
        return FigureStyle(scale=self.scale_spin.value(), padding=self.padding_spin.value(),
                           labels=self.labels_check.isChecked(), title=self.title_edit.text().strip(),
                           caption=self.caption_edit.text().strip() if self.caption_check.isChecked() else "",
                           font_pt=self.font_spin.value(), dpi=self.dpi_spin.value())

    def path(self) -> str:
        return self.path_edit.text().strip()

    def output_size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels of the file that will be written."""
        return self._size

    def _update_size(self) -> tuple[int, int]:
        """Say the exact size of the file (computed without drawing it)."""
        w, h = self._size = figure_size(self.figure, self.style())
        dpi = self.dpi_spin.value()
        self.size_label.setText(f"{w} × {h} pixels ({w / dpi * 2.54:.1f} × {h / dpi * 2.54:.1f} cm at {dpi} dpi)")
        return w, h

    def update_preview(self) -> None:
        """Render the figure as it will be written (above 16 megapixels at a smaller upscale,
        so the dialog stays quick); show it scaled down and say the file's exact size."""
        style = self.style()
        w, h = self._update_size()
        note = ""
        while w * h > PREVIEW_MAX_PIXELS and style.scale > 1:
            style = replace(style, scale=style.scale // 2)
            w, h = figure_size(self.figure, style)
            note = f"; preview at {style.scale}×"
        if note:
            self.size_label.setText(self.size_label.text()[:-1] + note + ")")
        image = render_figure(self.figure, style)
        pixmap = QPixmap.fromImage(pil_to_qimage(image))
        self.preview.setPixmap(pixmap.scaled(*PREVIEW, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation))

    def _accept_if_valid(self) -> None:
        if checked_path(self, self.path_edit, (".png",)):
            self._timer.stop()
            self._update_size()  # the file is drawn once, on writing
            self.accept()


class PlotExportDialog(QDialog):
    """Asks for the file (PNG, SVG or PDF, by its suffix) and the size of a plot export;
    choices are remembered in ``settings`` under ``export/plots_*``."""

    def __init__(self, parent: QWidget, default_path: str, screen_size: tuple[int, int],
                 settings: QSettings | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export plots")
        self.settings = settings
        self.path_edit = QLineEdit(default_path)
        path_row = file_row(self, self.path_edit, "Export plots",
                            "PNG images (*.png);;SVG vector images (*.svg);;PDF documents (*.pdf)")
        self.width_spin, self.height_spin = QSpinBox(), QSpinBox()
        for spin in (self.width_spin, self.height_spin):
            spin.setRange(16, 16384)
            spin.setSuffix(" px")
        self.dpi_spin = QSpinBox()
        self.dpi_spin.setRange(36, 1200)
        self.dpi_spin.setSuffix(" dpi")
        self.dpi_spin.setToolTip("PDF: the page is width / dpi inches wide; PNG: recorded in the file")
        same = QPushButton("As on screen")
        same.clicked.connect(lambda: (self.width_spin.setValue(screen_size[0]),
                                      self.height_spin.setValue(screen_size[1])))
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_spin)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin)
        size_row.addWidget(same)
        form = QFormLayout()
        form.addRow("File:", path_row)
        form.addRow("Size:", size_row)
        form.addRow("Resolution:", self.dpi_spin)
        form.addRow(QLabel("SVG and PDF are vector files: each curve is one path, as on screen "
                           "(smoothing, log y); the PDF embeds its fonts."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept_if_valid)
        buttons.rejected.connect(self.reject)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        s = settings
        try:
            w = int(s.value("export/plots_width", screen_size[0])) if s else screen_size[0]
            h = int(s.value("export/plots_height", screen_size[1])) if s else screen_size[1]
            dpi = int(s.value("export/plots_dpi", 96)) if s else 96
        except (TypeError, ValueError):
            (w, h), dpi = screen_size, 96
        self.width_spin.setValue(w)
        self.height_spin.setValue(h)
        self.dpi_spin.setValue(dpi)

    def path(self) -> str:
        return self.path_edit.text().strip()

    def remember(self) -> None:
        """Keep the size, resolution and folder for the next export."""
        if self.settings is None:
            return
        for key, value in (("plots_width", self.width_spin.value()), ("plots_height", self.height_spin.value()),
                           ("plots_dpi", self.dpi_spin.value()), ("folder", str(Path(self.path()).parent))):
            self.settings.setValue(f"export/{key}", value)

    def _accept_if_valid(self) -> None:
        if checked_path(self, self.path_edit, (".png", ".svg", ".pdf")):
            self.accept()
