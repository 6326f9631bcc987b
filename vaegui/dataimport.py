"""File ▸ Import images / dataset file: the import runs on a background thread with
a progress dialog and Cancel; the report of skipped files is shown and can be copied;
a failed import changes nothing. A mixin of :class:`vaegui.mainwindow.MainWindow`."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QMessageBox,
    QProgressDialog,
    QVBoxLayout,
)

from models.datasets import resolve_dataset
from models.downloads import SOURCES
from vaegui.widgets import show_message


class ImportOptionsDialog(QDialog):
    """Image size, channels and how images become square."""

    def __init__(self, parent, settings):
        super().__init__(parent)
        self.setWindowTitle("Import images")
        self.size_combo = QComboBox()
        for size in (28, 32, 64):
            self.size_combo.addItem(f"{size} × {size}", size)
        self.channels_combo = QComboBox()
        self.channels_combo.addItem("grayscale", 1)
        self.channels_combo.addItem("RGB", 3)
        self.fit_combo = QComboBox()
        self.fit_combo.addItem("centre-crop", "crop")
        self.fit_combo.addItem("pad", "pad")
        for combo, key in ((self.size_combo, "size"), (self.channels_combo, "channels"), (self.fit_combo, "fit")):
            i = combo.findData(settings.value(f"import/{key}"))
            if i < 0 and key != "fit":
                i = combo.findData(int(settings.value(f"import/{key}", -1) or -1))
            if i >= 0:
                combo.setCurrentIndex(i)
        form = QFormLayout()
        form.addRow("Size:", self.size_combo)
        form.addRow("Colour:", self.channels_combo)
        form.addRow("Make square by:", self.fit_combo)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def values(self) -> tuple[int, int, str]:
        return self.size_combo.currentData(), self.channels_combo.currentData(), self.fit_combo.currentData()


class DataImportActions:
    """Import a folder of images, an IDX file or a .npz/.npy file as the dataset."""

    def import_folder_dialog(self) -> None:
        if self._busy("import data"):
            return
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of images", str(self._last_folder()))
        if folder:
            self._ask_options_and_import(folder)

    def import_file_dialog(self) -> None:
        if self._busy("import data"):
            return
        path = self.choose_open_path("Import a dataset file",
                                     "Dataset files (*.npz *.npy *-ubyte *-ubyte.gz *idx*);;All files (*)")
        if path:
            self.import_data(path, 28, 1, "crop")

    def _ask_options_and_import(self, folder: str) -> None:
        dialog = ImportOptionsDialog(self, self.settings)
        if dialog.exec():
            size, channels, fit = dialog.values()
            for key, value in (("size", size), ("channels", channels), ("fit", fit)):
                self.settings.setValue(f"import/{key}", value)
            self.import_data(folder, size, channels, fit)

    def import_data(self, path: str, size: int = 28, channels: int = 1, fit: str = "crop") -> None:
        """Import on a background thread; the dataset changes only if it succeeds."""

        def work(state, cancel):
            return resolve_dataset(path, size=size, channels=channels, fit=fit,
                                   progress=lambda done, total: state.update(done=done, total=total),
                                   cancelled=cancel.is_set)

        self._run_in_background(f"Importing {Path(path).name}…", path, work)

    def download_dataset(self, key: str) -> None:
        """Download a standard dataset (verified, cached) on a background thread."""
        if self._busy("download data"):
            return
        cache = self.download_cache()

        def work(state, cancel):
            return resolve_dataset(f"download:{key}", cache=cache)

        self._run_in_background(f"Downloading {SOURCES[key][0]}…", SOURCES[key][0], work)

    def download_cache(self) -> str:
        import pooch

        return str(Path(self.data_dir) / "downloads") if self.data_dir else str(pooch.os_cache("vaegui"))

    def _run_in_background(self, label: str, source: str, work) -> None:
        cancel = threading.Event()
        state = {"done": 0, "total": 0, "result": None, "error": None}
        path = source

        def run() -> None:
            try:
                state["result"] = work(state, cancel)
            except ValueError as exc:  # DatasetError, a name that does not parse
                state["error"] = str(exc)
            except Exception as exc:  # an unexpected failure must not take the window down
                state["error"] = f"{type(exc).__name__}: {exc}"

        thread = threading.Thread(target=run, name="vaegui-import", daemon=True)
        progress = QProgressDialog(label, "Cancel", 0, 0, self)
        progress.setWindowTitle("Import")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(300)
        progress.canceled.connect(cancel.set)
        timer = QTimer(self)
        timer.setInterval(50)
        self.import_progress = progress

        def poll() -> None:
            if state["total"]:
                progress.setMaximum(state["total"])
                progress.setValue(state["done"])
            if thread.is_alive() and not cancel.is_set():
                return
            if cancel.is_set() and thread.is_alive():  # a download cannot stop mid-file: drop its result
                state["error"] = "cancelled; nothing was changed"
            timer.stop()
            progress.reset()
            progress.deleteLater()
            self.import_progress = None
            if state["error"]:
                self.last_import_report = state["error"]
                show_message(self, QMessageBox.Icon.Warning, "Import", "Nothing was imported; the current dataset "
                             "and model are unchanged.", state["error"])
                self.statusBar().showMessage(f"{path}: nothing was imported", 8000)
                if self.handle.dataset is not None:  # the drop-down shows the dataset still in use
                    self.form.show_dataset(self.handle.dataset.name, load=False)
                return
            data, report = state["result"]
            self._add_imported(data)
            self.last_import_report = report.text()
            box = show_message(self, QMessageBox.Icon.Information, "Import", report.text().splitlines()[0]
                               + (f" {len(report.skipped)} file(s) were skipped (see details)." if report.skipped
                                  else ""), report.text())
            box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        timer.timeout.connect(poll)
        thread.start()
        timer.start()

    def _add_imported(self, data) -> None:
        self._imported[data.name] = data
        combo = self.form.dataset_combo
        if combo.findData(data.name) < 0:
            combo.addItem(f"Imported: {Path(data.name.split(':', 1)[-1]).name}", data.name)
        combo.setCurrentIndex(combo.findData(data.name))  # selects it through select_dataset
