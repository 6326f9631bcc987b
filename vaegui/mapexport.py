"""The latent map's exports: the map as a PNG of an exact size (rendered from the
plot's scene), the embedding as CSV or NPZ, and a TensorBoard Projector folder
(:mod:`models.embedexport`)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSpinBox,
)

from vaegui.widgets import show_message


class MapExport:
    """Writes what a :class:`~vaegui.panels.latentmap.LatentMapPanel` shows; says
    "Saved …" through the panel's ``exported`` signal, and a failure in a message box."""

    def __init__(self, panel):
        self.panel = panel
        self.settings = panel.settings
        #: the open PNG dialog's (dialog, path edit, width, height), for tests and the driver
        self.png_dialog = None

    def add_menu(self, button: QPushButton) -> None:
        """Give ``button`` the menu of exports: the map as PNG, the embedding as CSV or NPZ, a
        TensorBoard Projector folder."""
        menu = QMenu(button)
        menu.addAction("Map as PNG…", self.export_png_dialog)
        menu.addAction("Embedding as CSV…", lambda: self.export_dialog("csv"))
        menu.addAction("Embedding as NPZ…", lambda: self.export_dialog("npz"))
        menu.addAction("TensorBoard Projector folder…", lambda: self.export_dialog("projector"))
        button.setMenu(menu)

    def _folder(self) -> str:
        return self.settings.value("export/folder", str(Path.home())) if self.settings else str(Path.home())

    def export_dialog(self, kind: str) -> None:
        """Ask for a path and write the embedding (``csv``, ``npz`` or ``projector``)."""
        if self.panel.map is None:
            return
        if kind == "projector":
            path = QFileDialog.getExistingDirectory(self.panel, "Export for TensorBoard's Projector", self._folder())
        else:
            path, _ = QFileDialog.getSaveFileName(self.panel, f"Export embedding as {kind.upper()}",
                                                  str(Path(self._folder()) / f"latent-map.{kind}"),
                                                  f"{kind.upper()} files (*.{kind})")
        if path:
            self.export(kind, path)

    def export(self, kind: str, path: str) -> bool:
        """Write the map: ``csv``, ``npz``, ``projector`` (a folder) or ``png``."""
        from models.embedexport import write_csv, write_npz, write_projector

        try:
            if kind == "csv":
                out = write_csv(path, self.panel.map)
            elif kind == "npz":
                out = write_npz(path, self.panel.map)
            elif kind == "projector":
                out = write_projector(path, self.panel.map, self.panel.handle.dataset)
            else:
                w, h = self.settings_size()
                out = self.save_png(path, w, h)
        except (OSError, ValueError) as exc:
            show_message(self.panel, QMessageBox.Icon.Critical, "Export failed", f"Could not write {path}:\n{exc}")
            return False
        if self.settings is not None:
            self.settings.setValue("export/folder", str(Path(out).parent if kind != "projector" else Path(out)))
        self.panel.exported.emit(f"Saved {out}")
        return True

    def settings_size(self) -> tuple[int, int]:
        if self.settings is None:
            return 1200, 900
        return int(self.settings.value("export/map_width", 1200)), int(self.settings.value("export/map_height", 900))

    def export_png_dialog(self) -> QDialog | None:
        """Ask for the file and the exact pixel size of the map's PNG (remembered), then write it."""
        if self.panel.map is None:
            return None
        dialog = QDialog(self.panel)
        dialog.setWindowTitle("Export map as PNG")
        path_edit = QLineEdit(str(Path(self._folder()) / "latent-map.png"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: path_edit.setText(QFileDialog.getSaveFileName(
            dialog, "Export map as PNG", path_edit.text(), "PNG images (*.png)")[0] or path_edit.text()))
        width, height = QSpinBox(), QSpinBox()
        for spin, value in zip((width, height), self.settings_size()):
            spin.setRange(64, 8192)
            spin.setSuffix(" px")
            spin.setValue(value)
        row = QHBoxLayout()
        row.addWidget(path_edit, 1)
        row.addWidget(browse)
        form = QFormLayout(dialog)
        form.addRow("File:", row)
        form.addRow("Width:", width)
        form.addRow("Height:", height)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        self.png_dialog = (dialog, path_edit, width, height)

        def write() -> None:
            path = path_edit.text().strip()
            if not path:
                return
            if self.settings is not None:
                self.settings.setValue("export/map_width", width.value())
                self.settings.setValue("export/map_height", height.value())
            self.export("png", path if path.lower().endswith(".png") else path + ".png")

        dialog.accepted.connect(write)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def save_png(self, path: str, width: int, height: int) -> Path:
        """Render the map plot (axes, legend, points) into a ``width`` × ``height`` PNG.

        Raises:
            OSError: the file cannot be written.
        """
        from models.checkpoint import check_writable

        target = check_writable(path)
        self.panel.plot.flush()
        image = QImage(width, height, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.white)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        item = self.panel.plot.getPlotItem()
        self.panel.plot.scene().render(painter, QRectF(0, 0, width, height), item.sceneBoundingRect(),
                                 Qt.AspectRatioMode.IgnoreAspectRatio)
        painter.end()
        from vaegui import __version__

        image.setText("Software", f"vaegui {__version__}")
        latent_map = self.panel.map
        note = getattr(getattr(latent_map, "projection", None), "note", "")
        info = self.panel.model_info()
        image.setText("Description", "; ".join(
            [f"latent map{': ' + note if note else ''}"]
            + [f"{k} {info[k]}" for k in ("describe", "dataset", "epoch", "seed", "weights_sha256", "file",
                                           "file_sha256") if k in info]))
        if not image.save(str(target), "PNG"):
            raise OSError(f"Qt could not write {target}")
        return target
