"""The main window: the training form, the live plots and the latent-space panels."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from models.data import DATASETS
from models.datasets import resolve_dataset
from models.downloads import SOURCES
from models.resources import ResourceError, check_memory, dataset_bytes, resolve_device
from models.run import Run
from models.state import arrays_to_tensors
from models.trainer import EpochEnd, TrainingDone
from vaegui import __version__
from vaegui.dataimport import DataImportActions
from vaegui.export import save_metrics_csv
from vaegui.modelfiles import ModelFileActions
from vaegui.panels.activity import ActivityPanel
from vaegui.panels.analogies import AnalogiesPanel
from vaegui.panels.browser import BrowserPanel
from vaegui.panels.interpolation import InterpolationPanel
from vaegui.panels.manifold import ManifoldPanel
from vaegui.panels.plots import PlotsPanel
from vaegui.panels.samples import DataPanel, SamplesPanel
from vaegui.panels.training import TrainingPanel
from vaegui.panels.traversal import TraversalPanel
from vaegui.recovery import SessionFolder
from vaegui.session import ModelHandle
from vaegui.widgets import GridPanel, show_message
from vaegui.worker import TrainingController

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def app_icon() -> QIcon:
    return QIcon(str(ASSETS / "vaegui.svg"))


class MainWindow(ModelFileActions, DataImportActions, QMainWindow):
    """vaegui's window.

    Args:
        settings: where the form, the window layout, recent files and export choices
            are remembered; the user's ``QSettings("vaegui", "vaegui")`` by default.
        dataset: the dataset key to open on (overrides the remembered one).
        data_dir: where this session's autosaves go (``<data_dir>/sessions/...``) and
            where crashed sessions are looked for; None disables autosave.
        ask_on_close: ask what to do with running training or unsaved work on close.
    """

    def __init__(
        self,
        settings: QSettings | None = None,
        dataset: str | None = None,
        data_dir: str | None = None,
        ask_on_close: bool = False,
    ):
        super().__init__()
        self.settings = settings if settings is not None else QSettings("vaegui", "vaegui")
        self.data_dir = data_dir
        self.session = None
        self.autosave_problem = ""
        if data_dir:
            try:
                self.session = SessionFolder(Path(data_dir) / "sessions")
            except OSError as exc:  # an unwritable data folder must not stop the app
                self.autosave_problem = f"cannot write to {Path(data_dir) / 'sessions'}: {exc.strerror or exc}"
        self.ask_on_close = ask_on_close
        #: the training run the window shows (Qt-free): configs, state, metrics, file, progress
        self.run = Run()
        self._imported: dict = {}
        self.last_import_report = ""
        self.import_progress = None
        self.setWindowIcon(app_icon())
        self.resize(1440, 920)
        self.handle = ModelHandle(self)
        self.controller = TrainingController(self)
        self.controller.attach(self.run)

        self.form = TrainingPanel(self.settings)
        self.plots = PlotsPanel(self.run.history)
        self.data_panel = DataPanel(self.handle, self.settings)
        self.manifold = ManifoldPanel(self.handle, self.settings)
        self.traversal = TraversalPanel(self.handle, self.settings)
        self.interpolation = InterpolationPanel(self.handle, self.settings)
        self.samples = SamplesPanel(self.handle, self.settings)
        self.activity = ActivityPanel(self.handle)
        self.browser = BrowserPanel(self.handle)
        self.analogies = AnalogiesPanel(self.handle, self.settings)
        self.tabs = QTabWidget()
        for panel, name in (
            (self.data_panel, "Data"),
            (self.manifold, "Manifold"),
            (self.traversal, "Traversal"),
            (self.interpolation, "Interpolation"),
            (self.samples, "Samples"),
            (self.analogies, "Analogies"),
        ):
            self.tabs.addTab(panel, name)
            panel.exported.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        self.tabs.addTab(self.activity, "Latent activity")
        self.tabs.insertTab(1, self.browser, "Browse")
        self.browser.use_as_start.connect(self._use_as_start)
        self.browser.use_as_a.connect(lambda i: self._use_as_endpoint(self.interpolation.index_a, i))
        self.browser.use_as_b.connect(lambda i: self._use_as_endpoint(self.interpolation.index_b, i))
        self.setCentralWidget(self.tabs)

        form_scroll = QScrollArea()
        form_scroll.setWidgetResizable(True)
        form_scroll.setWidget(self.form)
        form_scroll.setMinimumWidth(self.form.sizeHint().width() + 24)
        form_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        dock_body = QWidget()
        dock_layout = QVBoxLayout(dock_body)
        dock_layout.setContentsMargins(0, 0, 0, 0)
        dock_layout.setSpacing(0)
        dock_layout.addWidget(form_scroll, 1)
        dock_layout.addWidget(self.form.controls)  # pinned: the form scrolls, the controls do not
        self.form_dock = QDockWidget("Training", self)
        self.form_dock.setObjectName("training-dock")
        self.form_dock.setWidget(dock_body)
        # the training dock runs the full height, so its controls never sit under the plots
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.form_dock)
        self.plots_dock = QDockWidget("Training curves (nats per image)", self)
        self.plots_dock.setObjectName("plots-dock")
        self.plots_dock.setWidget(self.plots)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.plots_dock)

        self.device_label = QLabel()
        #: the newest autosave, in its own corner of the status bar (its full path in the tooltip)
        self.autosave_label = QLabel()
        self.statusBar().addPermanentWidget(self.autosave_label)
        self.statusBar().addPermanentWidget(self.device_label)
        self._build_menus()

        self.form.train_requested.connect(self.start_training)
        self.form.continue_requested.connect(self.continue_training)
        self.form.pause_requested.connect(self.toggle_pause)
        self.form.stop_requested.connect(self.stop_training)
        self.form.dataset_selected.connect(self.select_dataset)
        self.controller.running_changed.connect(self._running_changed)
        self.controller.snapshot.connect(self._on_snapshot)
        events = self.run.events
        events.started.connect(lambda device, precision: self.device_label.setText(f"device: {device} · {precision}"))
        events.progress.connect(self.form.show_progress)
        events.epoch.connect(self._on_epoch_end)
        events.finished.connect(self._on_finished)
        events.failed.connect(self._on_failed)
        events.state.connect(self._on_state)
        events.reset.connect(self.plots.invalidate)
        events.truncated.connect(lambda _step: self.plots.invalidate())
        events.autosaved.connect(self._on_autosaved)
        events.autosave_failed.connect(lambda why: self.statusBar().showMessage(f"Autosave failed: {why}", 10000))

        self.resizeDocks([self.plots_dock], [300], Qt.Orientation.Vertical)
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        try:
            self.tabs.setCurrentIndex(int(self.settings.value("window/tab", 0)))
        except (TypeError, ValueError):
            pass
        self._list_data_folder()
        if dataset is not None:
            self.form.set_dataset_key(dataset)
        if self.form.dataset_key().startswith("auto:"):
            self.form.set_dataset_key("mnist5k")
        self.select_dataset(self.form.dataset_key())
        self.statusBar().showMessage("Ready: press Train (Ctrl+Return) to train a VAE on these images.")
        self._refresh_actions()

    def fit_to_screen(self) -> None:
        """Keep the window inside the screen's available area (a laptop's 1280×720, say),
        so that nothing, the Train button above all, opens off-screen."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry()
        width, height = min(self.width(), area.width()), min(self.height(), area.height())
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        if not area.contains(self.frameGeometry().topLeft()):
            self.move(area.topLeft())

    # -- the run, as the window's tests and helpers read it ---------------------------------------
    @property
    def last_done(self) -> TrainingDone | None:
        return self.run.last_done

    @property
    def last_error(self) -> str:
        return self.run.last_error

    @property
    def dirty(self) -> bool:
        return self.run.dirty

    @property
    def model_path(self) -> str | None:
        return self.run.path

    # -- menus -----------------------------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = self._action(
            file_menu, "Open model…", self.open_model_dialog, QKeySequence.StandardKey.Open
        )
        self.recent_menu = file_menu.addMenu("Open Recent")
        self._rebuild_recent_menu()
        self.save_action = self._action(
            file_menu, "Save model", lambda: self.save_model(), QKeySequence.StandardKey.Save
        )
        self.save_as_action = self._action(file_menu, "Save model as…", self.save_model_as, "Ctrl+Shift+S")
        self.import_action = self._action(file_menu, "Import PyTorch weights…", self.import_weights_dialog)
        file_menu.addSeparator()
        self.import_folder_action = self._action(file_menu, "Import image folder…", self.import_folder_dialog,
                                                 "Ctrl+I", "Train on your own images (sub-folders become labels)")
        self.import_file_action = self._action(file_menu, "Import dataset file…", self.import_file_dialog,
                                               tip="MNIST-format IDX files or .npz/.npy arrays")
        self.download_menu = file_menu.addMenu("Download dataset")
        for key, (title, _url, _files) in SOURCES.items():
            self._action(self.download_menu, title, lambda _c=False, k=key: self.download_dataset(k),
                         tip="Downloaded once, verified against its published checksums, then cached")
        file_menu.addSeparator()
        self._action(file_menu, "Export current grid as PNG…", self.export_current_grid, "Ctrl+E",
                     "Save the grid of the visible panel")
        self._action(file_menu, "Export plots as PNG…", self._export_plots_dialog, "Ctrl+Shift+E")
        self._action(file_menu, "Export metrics as CSV…", self._export_csv_dialog, "Ctrl+Shift+C")
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        train_menu = bar.addMenu("&Training")
        self.train_action = self._action(train_menu, "Train", self.start_training, "Ctrl+Return")
        self.continue_action = self._action(train_menu, "Continue", self.continue_training, "Ctrl+Shift+Return")
        self.pause_action = self._action(train_menu, "Pause / Resume", self.toggle_pause, "Ctrl+P")
        self.stop_action = self._action(train_menu, "Stop", self.stop_training, "Ctrl+.")
        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.form_dock.toggleViewAction())
        view_menu.addAction(self.plots_dock.toggleViewAction())
        for i in range(self.tabs.count()):
            show = lambda _checked=False, i=i: self.tabs.setCurrentIndex(i)  # noqa: E731
            self._action(view_menu, self.tabs.tabText(i), show, f"Ctrl+{i + 1}")
        self._action(view_menu, "New samples", lambda: self.samples.new_button.click(), "Ctrl+R")
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "About vaegui", self._about)

    def _about(self) -> None:
        show_message(
            self, QMessageBox.Icon.Information, "About vaegui",
            f"vaegui {__version__}: a latent-space explorer for Variational Autoencoders.\n"
            "ELBO terms are reported per image, in nats.",
        )

    # -- data ------------------------------------------------------------------------------
    def _list_data_folder(self) -> None:
        """Folders and dataset files placed in ``<data_dir>/datasets`` join the drop-down;
        they are imported (in the background) when chosen."""
        if not self.data_dir:
            return
        folder = Path(self.data_dir) / "datasets"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            entries = sorted(folder.iterdir())
        except OSError:  # an unusable data folder: no entries, the built-in datasets still work
            return
        for entry in entries:
            if entry.is_dir() or entry.suffix.lower() in (".npz", ".npy", ".gz") or "ubyte" in entry.name:
                if "labels" in entry.name:
                    continue  # found beside its images file
                self.form.dataset_combo.addItem(f"Data folder: {entry.name}", f"auto:{entry}")

    def select_dataset(self, key: str) -> None:
        """Load a dataset; the current model stays until Train is pressed."""
        if key.startswith("auto:"):
            self.import_data(key.split(":", 1)[1])
            return
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            data = self._imported[key] if key in self._imported else resolve_dataset(key)[0]
        except Exception as exc:  # an import or file error: keep what we have
            self.form.show_error(f"Could not load {DATASETS.get(key, key)}: {exc}")
            return
        finally:
            QApplication.restoreOverrideCursor()
        self.handle.set_dataset(data)
        c, h, w = data.image_shape
        self.form.set_data_info(
            f"{len(data.train_x):,} training and {len(data.test_x):,} test images, "
            f"{h}×{w} pixels, {len(data.class_names)} classes.",
            data.image_shape, len(data.class_names),
        )
        self.setWindowTitle(f"vaegui — {data.title}")

    # -- training --------------------------------------------------------------------------
    def start_training(self) -> None:
        """Train a new model with the form's settings (the Train button)."""
        if self.controller.running:
            return
        data = self.handle.dataset
        if data is None:
            return
        self.form.show_error("")
        self.run.last_error = ""
        try:
            model_config = self.form.model_config(data.image_shape)
            train_config = self.form.train_config()
        except ValueError as exc:
            self._show_failure(f"Cannot start training: {exc}")
            return
        if not self._resources_ok(model_config, train_config):
            return
        self.form.save_settings()
        self.handle.new_model(model_config)
        self.run.begin(model_config, train_config, data.name)
        self.controller.start(model_config, train_config, data, autosave=self._autosave_job())
        self.statusBar().showMessage(
            f"Training {model_config.input_dim}-{model_config.hidden_dim}-{model_config.latent_dim} VAE on "
            f"{data.title} for {train_config.epochs} epochs…"
        )

    def _resources_ok(self, model_config, train_config) -> bool:
        """The resource guard (:func:`models.resources.check_memory`): False, with the
        figures in the error banner and a dialog, when the run would not fit in memory."""
        try:
            check_memory(model_config, train_config, dataset_bytes(self.handle.dataset),
                         resolve_device(train_config.device))
        except ResourceError as exc:
            self._show_failure(f"Cannot start training: {exc}.")
            return False
        return True

    def _on_autosaved(self, path: str) -> None:
        self.autosave_label.setText(f"autosaved {time.strftime('%H:%M:%S')}")
        self.autosave_label.setToolTip(f"Newest autosave: {path}")

    def toggle_pause(self) -> None:
        if not self.controller.running:
            return
        if self.controller.paused:
            self.controller.resume()
            self.statusBar().showMessage("Training resumed.")
        else:
            self.controller.pause()
            self.statusBar().showMessage("Training paused: the panels keep the latest weights.")
        self._refresh_actions()

    def stop_training(self) -> None:
        if self.controller.running:
            self.controller.stop()
            self.statusBar().showMessage("Stopping after the current step…")

    def _on_snapshot(self, version: int, state: dict) -> None:
        self.handle.load_snapshot(version, arrays_to_tensors(state))

    def _on_epoch_end(self, end: EpochEnd) -> None:
        if end.kl_per_dim:
            self.handle.set_activity(end.kl_per_dim)
        self.form.speed_label.setText(
            f"Epoch {end.epoch}: test −ELBO {end.test_neg_elbo:.2f} nats per image "
            f"(reconstruction {end.test_recon:.2f} + KL {end.test_kl:.2f}); {end.samples_per_s:,.0f} samples/s"
        )

    def _on_finished(self, done: TrainingDone) -> None:
        last = done.history[-1] if done.history else None
        score = f"; test −ELBO {last.test_neg_elbo:.2f} nats per image" if last else ""
        if done.stopped:
            self.statusBar().showMessage(f"Stopped at step {done.step} after {done.epochs_completed} epochs{score}.")
        else:
            self.statusBar().showMessage(f"Finished {done.epochs_completed} epochs{score}.")

    def _on_failed(self, message: str, details: str) -> None:
        self.form.show_error(message + " The last good weights are still shown.")
        self.statusBar().showMessage(message)
        show_message(self, QMessageBox.Icon.Warning, "vaegui", message, details)

    def _show_failure(self, message: str, details: str = "") -> None:
        self.run.fail(message, details)

    def _on_state(self, state) -> None:
        if state.position.version < self.handle.version:  # training went back to a known-good state
            self.handle.load_snapshot(state.position.version, state.weights(), force=True)
        self._refresh_actions()

    def _running_changed(self, running: bool) -> None:
        self._refresh_actions()
        self.pause_action.setEnabled(running)
        self.stop_action.setEnabled(running)
        self.train_action.setEnabled(not running)

    # -- the browser's picks -----------------------------------------------------------------
    def _use_as_start(self, index: int) -> None:
        panel = self.traversal
        panel.start_combo.setCurrentIndex(panel.start_combo.findData("image"))
        panel.start_index.setValue(index)
        panel.apply_start()
        self.tabs.setCurrentWidget(panel)

    def _use_as_endpoint(self, spin, index: int) -> None:
        spin.setValue(index)
        self.interpolation.clear_external()
        self.statusBar().showMessage(f"Interpolation endpoint set to test image #{index}.", 5000)

    # -- export ----------------------------------------------------------------------------
    def current_grid_panel(self) -> GridPanel | None:
        panel = self.tabs.currentWidget()
        return panel if isinstance(panel, GridPanel) else None

    def export_current_grid(self) -> None:
        panel = self.current_grid_panel()
        if panel is None or panel.export_dialog() is None:
            self.statusBar().showMessage("Nothing to export yet on this panel.", 5000)

    def _ask_path(self, title: str, name: str, filt: str) -> str:
        folder = self.settings.value("export/folder", str(Path.home()))
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path(folder) / name), filt)
        if path:
            self.settings.setValue("export/folder", str(Path(path).parent))
        return path

    def _export_plots_dialog(self) -> None:
        path = self._ask_path("Export plots as PNG", "training-curves.png", "PNG images (*.png)")
        if path:
            self.export_plots_png(path)

    def _export_csv_dialog(self) -> None:
        path = self._ask_path("Export metrics as CSV", "metrics.csv", "CSV files (*.csv)")
        if path:
            self.export_metrics_csv(path)

    def export_plots_png(self, path: str) -> bool:
        try:
            self.plots.export_png(path)
        except Exception as exc:  # pyqtgraph's exporter raises several kinds
            show_message(self, QMessageBox.Icon.Critical, "Export failed", f"Could not write {path}: {exc}")
            return False
        self.statusBar().showMessage(f"Saved {path}", 8000)
        return True

    def export_metrics_csv(self, path: str) -> bool:
        header, rows = self.run.history.rows()
        try:
            n = save_metrics_csv(path, header, rows)
        except OSError as exc:
            show_message(self, QMessageBox.Icon.Critical, "Export failed", f"Could not write {path}: {exc}")
            return False
        self.statusBar().showMessage(f"Saved {n} rows to {path}", 8000)
        return True

    # -- closing ---------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask about running training or unsaved work (when ``ask_on_close``), stop the
        training process (it ends within one step), remember the layout, close."""
        if self.ask_on_close and not self.confirm_close():
            event.ignore()
            return
        if self.controller.running:
            self.statusBar().showMessage("Stopping training…")
        self.controller.shutdown()
        if self.session is not None:
            self.session.close()
            self.session = None
        self.form.save_settings()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/tab", self.tabs.currentIndex())
        self.settings.sync()
        self.plots.timer.stop()
        event.accept()
