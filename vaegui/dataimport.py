"""The window's datasets: the drop-down's choice, the app's data folder, File ▸ Import
images / dataset file and File ▸ Download. Imports run on a background thread with a
progress dialog and Cancel; the report of skipped files is shown and can be copied;
a failed import changes nothing. A helper of the main window, working through its
:class:`~vaegui.context.WindowContext`."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QMessageBox,
    QProgressDialog,
    QVBoxLayout,
)

from models.data import DATASETS
from models.datasets import resolve_dataset
from models.downloads import SOURCES
from vaegui.context import WindowContext
from vaegui.dialogs import choose_open_path, last_folder
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
        """``(size, channels, fit)``: 28, 32 or 64 pixels; 1 or 3 channels; "crop" or "pad"."""
        return self.size_combo.currentData(), self.channels_combo.currentData(), self.fit_combo.currentData()


class Datasets(QObject):
    """Choose, import and download datasets for the window described by ``ctx``.

    Attributes:
        imported: datasets imported or downloaded in this session, by name.
        last_import_report: the text of the newest import's report (or its error).
    """

    def __init__(self, ctx: WindowContext):
        super().__init__(ctx.window)
        self.ctx = ctx
        self.imported: dict = {}
        self.last_import_report = ""
        self.import_progress: QProgressDialog | None = None

    # -- the drop-down -------------------------------------------------------------------------
    def list_data_folder(self) -> None:
        """Folders and dataset files placed in ``<data_dir>/datasets`` join the drop-down;
        they are imported (in the background) when chosen."""
        if not self.ctx.data_dir:
            return
        folder = Path(self.ctx.data_dir) / "datasets"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            entries = sorted(folder.iterdir())
        except OSError:  # an unusable data folder: no entries, the built-in datasets still work
            return
        for entry in entries:
            if entry.is_dir() or entry.suffix.lower() in (".npz", ".npy", ".gz") or "ubyte" in entry.name:
                if "labels" in entry.name:
                    continue  # found beside its images file
                self.ctx.form.add_dataset_entry(f"Data folder: {entry.name}", f"auto:{entry}")

    def select_dataset(self, key: str) -> None:
        """Load the dataset the drop-down names (:func:`models.datasets.resolve_dataset`);
        the current model stays until Train is pressed."""
        ctx = self.ctx
        if key.startswith("auto:"):
            self.import_data(key.split(":", 1)[1])
            return
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            data = self.imported[key] if key in self.imported else resolve_dataset(key)[0]
        except Exception as exc:  # an import or file error: keep what we have
            ctx.form.show_error(f"Could not load {DATASETS.get(key, key)}: {exc}")
            return
        finally:
            QApplication.restoreOverrideCursor()
        ctx.handle.set_dataset(data)
        c, h, w = data.image_shape
        ctx.form.set_data_info(
            f"{len(data.train_x):,} training and {len(data.test_x):,} test images, "
            f"{h}×{w} pixels, {len(data.class_names)} classes.",
            data.image_shape, len(data.class_names),
        )
        ctx.window.setWindowTitle(f"vaegui — {data.title}")

    # -- import and download ---------------------------------------------------------------------

    def import_folder_dialog(self) -> None:
        """File ▸ Import image folder (Ctrl+I): pick a folder, the size and colour, import."""
        if self.ctx.busy("import data"):
            return
        folder = QFileDialog.getExistingDirectory(self.ctx.window, "Import a folder of images",
                                                  str(last_folder(self.ctx.settings)))
        if folder:
            self._ask_options_and_import(folder)

    def import_file_dialog(self) -> None:
        """File ▸ Import dataset file: pick an IDX or ``.npz``/``.npy`` file and import it."""
        if self.ctx.busy("import data"):
            return
        path = choose_open_path(self.ctx.window, self.ctx.settings, "Import a dataset file",
                                "Dataset files (*.npz *.npy *-ubyte *-ubyte.gz *idx*);;All files (*)")
        if path:
            self.import_data(path, 28, 1, "crop")

    def _ask_options_and_import(self, folder: str) -> None:
        dialog = ImportOptionsDialog(self.ctx.window, self.ctx.settings)
        if dialog.exec():
            size, channels, fit = dialog.values()
            for key, value in (("size", size), ("channels", channels), ("fit", fit)):
                self.ctx.settings.setValue(f"import/{key}", value)
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
        if self.ctx.busy("download data"):
            return
        cache = self.download_cache()

        def work(state, cancel):
            return resolve_dataset(f"download:{key}", cache=cache)

        self._run_in_background(f"Downloading {SOURCES[key][0]}…", SOURCES[key][0], work)

    def download_cache(self) -> str:
        """Where downloads are cached: ``<data_dir>/downloads`` (pooch's cache without a data folder)."""
        import pooch

        return str(Path(self.ctx.data_dir) / "downloads") if self.ctx.data_dir else str(pooch.os_cache("vaegui"))

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
        progress = QProgressDialog(label, "Cancel", 0, 0, self.ctx.window)
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
                show_message(self.ctx.window, QMessageBox.Icon.Warning, "Import",
                             "Nothing was imported; the current dataset and model are unchanged.", state["error"])
                self.ctx.status(f"{path}: nothing was imported", 8000)
                if self.ctx.handle.dataset is not None:  # the drop-down shows the dataset still in use
                    self.ctx.form.show_dataset(self.ctx.handle.dataset.name, load=False)
                return
            data, report = state["result"]
            self._add_imported(data)
            self.last_import_report = report.text()
            box = show_message(self.ctx.window, QMessageBox.Icon.Information, "Import", report.text().splitlines()[0]
                               + (f" {len(report.skipped)} file(s) were skipped (see details)." if report.skipped
                                  else ""), report.text())
            box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        timer.timeout.connect(poll)
        thread.start()
        timer.start()

    def _add_imported(self, data) -> None:
        self.imported[data.name] = data
        self.ctx.form.add_dataset_entry(f"Imported: {Path(data.name.split(':', 1)[-1]).name}", data.name)
        self.ctx.form.show_dataset(data.name)  # selects it through select_dataset
