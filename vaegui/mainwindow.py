"""The main window: a composition of the training form, the live plots and the
latent-space panels, with helpers for training, model files, datasets and exports
that share one declared :class:`~vaegui.context.WindowContext`."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QSettings, QSize, Qt
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFrame,
    QMainWindow,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from models.run import Run
from vaegui.context import WindowContext
from vaegui.dataimport import Datasets
from vaegui.exportactions import ExportActions
from vaegui.figureactions import FigureActions
from vaegui.menus import build_menus
from vaegui.modelfiles import ModelFiles
from vaegui.panels.activity import ActivityPanel
from vaegui.panels.analogies import AnalogiesPanel
from vaegui.panels.browser import BrowserPanel
from vaegui.panels.codebook import CodebookPanel
from vaegui.panels.disentangle import DisentanglementPanel
from vaegui.panels.interpolation import InterpolationPanel
from vaegui.panels.latentmap import LatentMapPanel
from vaegui.panels.layers import LayersPanel
from vaegui.panels.manifold import ManifoldPanel
from vaegui.panels.plots import PlotsPanel
from vaegui.panels.runs import RunsPanel
from vaegui.panels.samples import DataPanel, SamplesPanel
from vaegui.panels.training import TrainingPanel
from vaegui.panels.traversal import TraversalPanel
from vaegui.runfolders import RunFolders
from vaegui.session import ModelHandle
from vaegui.trainactions import TrainingActions
from vaegui.widgets import GridPanel, figure_paths
from vaegui.worker import TrainingController

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def app_icon() -> QIcon:
    """The app's icon (``assets/vaegui.svg``)."""
    return QIcon(str(ASSETS / "vaegui.svg"))


class TabsScroll(QScrollArea):
    """The tabs, scrolling when the window is smaller than their largest panel (large fonts on a
    laptop's 1280×720): the panels' minimum size would otherwise be the window's, and push it
    past the screen's edge. Up to ``MAX_MIN_HEIGHT`` the panels keep their minimum height (the
    training curves below give way first, as without the scroll area)."""

    MIN_WIDTH = 320
    MAX_MIN_HEIGHT = 520

    def __init__(self, tabs: QTabWidget):
        super().__init__()
        self.setObjectName("tabs-scroll")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidget(tabs)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        inner = self.widget().minimumSizeHint()
        return QSize(min(inner.width(), self.MIN_WIDTH), min(inner.height(), self.MAX_MIN_HEIGHT))


class MainWindow(QMainWindow):
    """vaegui's window.

    Its parts: ``run`` (the Qt-free training run), ``handle`` (the decoding model and
    the dataset), ``controller`` (the training process), ``form`` and ``plots``, the
    latent panels in ``tabs``, and the helpers ``training``, ``files``, ``data`` and
    ``exports``, which see the window only through ``ctx``.

    Args:
        settings: where the form, the window layout, recent files and export choices
            are remembered; the user's ``QSettings("vaegui", "vaegui")`` by default.
        dataset: the dataset name to open on (overrides the remembered one).
        data_dir: where this session's autosaves go (``<data_dir>/sessions/...``) and
            where crashed sessions are looked for; None disables autosave.
        ask_on_close: ask what to do with running training or unsaved work on close.
    """

    def __init__(self, settings: QSettings | None = None, dataset: str | None = None,
                 data_dir: str | None = None, ask_on_close: bool = False):
        super().__init__()
        self.settings = settings if settings is not None else QSettings("vaegui", "vaegui")
        self.ask_on_close = ask_on_close
        self.setWindowIcon(app_icon())
        self.resize(1440, 920)
        self.run = Run()
        self.handle = ModelHandle(self)
        self.controller = TrainingController(self)
        self.controller.attach(self.run)
        self.form = TrainingPanel(self.settings)
        self.plots = PlotsPanel(self.run.history, planned_steps=lambda: self.run.progress.total)
        self.ctx = WindowContext(self, self.settings, self.run, self.handle, self.controller, self.form, data_dir,
                                 self.refresh_actions)
        self._build_panels()
        self._build_docks()
        self.training = TrainingActions(self.ctx)
        self.data = Datasets(self.ctx)
        self.files = ModelFiles(self.ctx, self.data.imported)
        self.runs = RunFolders(self.ctx, self.data.imported)
        self.training.run_folders = self.runs
        self.files.extra_info = self.latent_map.attributes.to_info  # attribute vectors are kept with the model
        self.files.opened = self.latent_map.attributes.from_info
        self.figures = FigureActions(self.ctx, self.tabs)
        for panel in (self.traversal, self.interpolation, self.samples, self.manifold):
            panel.checkpoint_folder = self._checkpoint_folder
        self.exports = ExportActions(self.ctx, self.tabs, self.plots, self.figures)
        self.sweep_dialog = None
        self.setAcceptDrops(True)  # a PNG exported by vaegui, dropped anywhere, restores its latents
        self.statusBar().addPermanentWidget(self.training.autosave_label)
        self.statusBar().addPermanentWidget(self.training.device_label)
        build_menus(self)
        self._connect()
        self._restore_layout()
        self.data.list_data_folder()
        if dataset is not None:
            self.form.show_dataset(dataset, load=False)
        if self.form.dataset_key().startswith("auto:"):  # a data-folder entry is imported only on request
            self.form.set_dataset_key("mnist5k")
        self.data.select_dataset(self.form.dataset_key())
        self.statusBar().showMessage("Ready: press Train (Ctrl+Return) to train a VAE on these images.")
        self.refresh_actions()

    # -- building ----------------------------------------------------------------------------------
    def _build_panels(self) -> None:
        h, s = self.handle, self.settings
        self.data_panel, self.browser = DataPanel(h, s), BrowserPanel(h)
        self.manifold, self.traversal = ManifoldPanel(h, s), TraversalPanel(h, s)
        self.interpolation, self.samples = InterpolationPanel(h, s), SamplesPanel(h, s)
        self.analogies, self.activity = AnalogiesPanel(h, s), ActivityPanel(h)
        self.layers, self.codebook = LayersPanel(h, s), CodebookPanel(h, s)
        self.latent_map = LatentMapPanel(h, s, lambda: (self.manifold.dims() if h.latent_dim > 2 else (0, 1),
                                                        self.manifold.grid_spin.value()))
        self.disentanglement = DisentanglementPanel(h, self.run.history, s)
        self.runs_panel = RunsPanel(s, str(Path(self.ctx.data_dir) / "runs") if self.ctx.data_dir else None)
        self.tabs = QTabWidget()
        for panel, name in ((self.data_panel, "Data"), (self.browser, "Browse"), (self.latent_map, "Latent map"),
                            (self.manifold, "Manifold"),
                            (self.traversal, "Traversal"), (self.interpolation, "Interpolation"),
                            (self.samples, "Samples"), (self.analogies, "Analogies"),
                            (self.activity, "Latent activity"), (self.disentanglement, "Disentanglement"),
                            (self.layers, "Layers"), (self.codebook, "Codebook"), (self.runs_panel, "Runs")):
            self.tabs.addTab(panel, name)
            if hasattr(panel, "exported"):
                panel.exported.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        self.setCentralWidget(TabsScroll(self.tabs))

    def _build_docks(self) -> None:
        form_scroll = QScrollArea()
        form_scroll.setWidgetResizable(True)
        form_scroll.setWidget(self.form)
        form_width = self.form.sizeHint().width() + 24
        form_scroll.setMinimumWidth(min(form_width, 300))  # scrolls sideways below
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(form_scroll, 1)
        layout.addWidget(self.form.controls)  # pinned: the form scrolls, the controls do not
        self.form_dock = QDockWidget("Training", self)
        self.form_dock.setObjectName("training-dock")
        self.form_dock.setWidget(body)
        # the training dock runs the full height, so its controls never sit under the plots
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.form_dock)
        self.plots_dock = QDockWidget("Training curves (nats per image)", self)
        self.plots_dock.setObjectName("plots-dock")
        self.plots_dock.setWidget(self.plots)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.plots_dock)
        self.resizeDocks([self.plots_dock], [300], Qt.Orientation.Vertical)
        self.resizeDocks([self.form_dock], [form_width], Qt.Orientation.Horizontal)

    def _connect(self) -> None:
        form, training = self.form, self.training
        form.train_requested.connect(training.start_training)
        form.continue_requested.connect(training.continue_training)
        form.pause_requested.connect(training.toggle_pause)
        form.stop_requested.connect(training.stop_training)
        form.dataset_selected.connect(self.data.select_dataset)
        self.controller.running_changed.connect(lambda _running: self.refresh_actions())
        self.run.events.reset.connect(self.plots.invalidate)
        self.run.events.truncated.connect(lambda _step: self.plots.invalidate())
        self.browser.use_as_start.connect(self._use_as_start)
        self.browser.use_as_a.connect(lambda i: self._use_as_endpoint("a", i))
        self.browser.use_as_b.connect(lambda i: self._use_as_endpoint("b", i))
        self.latent_map.traverse_from.connect(self._traverse_from)
        self.latent_map.interpolation_end.connect(self._map_endpoint)
        self.run.events.epoch.connect(lambda _end: self.latent_map.refresh_live())
        self.run.events.epoch.connect(self.disentanglement.epoch_ended)
        self.run.events.reset.connect(self.disentanglement.reset)
        self.run.events.truncated.connect(lambda _step: self.disentanglement.refresh())
        self.runs_panel.overlays_changed.connect(self.plots.set_overlays)
        self.runs_panel.open_model.connect(self.files.open_model)
        self.runs_panel.follow.connect(self.runs.follow)

    def _restore_layout(self) -> None:
        geometry, state = self.settings.value("window/geometry"), self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        try:
            self.tabs.setCurrentIndex(int(self.settings.value("window/tab", 0)))
        except (TypeError, ValueError):
            pass

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

    # -- state of the actions ----------------------------------------------------------------------
    def refresh_actions(self) -> None:
        """Enable what can be done now: nothing that replaces the model while training runs."""
        running, has_state = self.controller.running, self.run.state is not None
        self.form.set_running(running, paused=self.controller.paused, can_continue=has_state)
        for action in (self.save_action, self.save_as_action):
            action.setEnabled(has_state and not running)
        for action in (self.open_action, self.follow_action, self.import_action, self.files.recent_menu.menuAction(),
                       self.import_folder_action, self.import_file_action, self.download_menu.menuAction()):
            action.setEnabled(not running)
        self.continue_action.setEnabled(has_state and not running)
        self.pause_action.setEnabled(running)
        self.stop_action.setEnabled(running)
        self.train_action.setEnabled(not running)

    # -- the browser's picks -----------------------------------------------------------------------
    def _use_as_start(self, index: int) -> None:
        self.traversal.start_from_image(index)
        self.tabs.setCurrentWidget(self.traversal)

    def _use_as_endpoint(self, end: str, index: int) -> None:
        self.interpolation.set_endpoint(end, index)
        self.statusBar().showMessage(f"Interpolation endpoint set to test image #{index}.", 5000)

    def _traverse_from(self, z) -> None:
        self.traversal.set_z(z)
        self.tabs.setCurrentWidget(self.traversal)
        self.statusBar().showMessage("Traversal starts at the latent chosen on the map.", 5000)

    def _map_endpoint(self, end: str, source: int, index: int) -> None:
        if source == 0:
            self._use_as_endpoint(end, index)
            return
        from models.embedding import split_image

        self.interpolation.set_endpoint_image(end, split_image(self.handle.dataset, source, index),
                                              f"training image #{index}")
        self.statusBar().showMessage(f"Interpolation endpoint set to training image #{index}.", 5000)

    def _checkpoint_folder(self) -> str:
        """Where an animation over training finds checkpoints: this session's autosaves, else
        the open model's folder."""
        from models.checkpoint import list_autosaves

        session = self.training.session
        if session is not None and list_autosaves(session.path):
            return str(session.path)
        if self.run.path:
            return str(Path(self.run.path).parent)
        return str(session.path) if session is not None else str(Path.home())

    # -- a figure dropped on the window -----------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if figure_paths(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        paths = figure_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.figures.open_figure(paths[0])

    def open_sweep(self):
        """Training ▸ Sweep…: the β × seeds dialog (one per window, kept while it runs)."""
        from vaegui.sweepdialog import SweepDialog

        if self.sweep_dialog is None:
            self.sweep_dialog = SweepDialog(self.form, self.files.open_model, self.settings, self,
                                            show_runs=self.show_runs)
        self.sweep_dialog.show()
        self.sweep_dialog.raise_()
        return self.sweep_dialog

    def show_runs(self, folder: str) -> None:
        """The Runs tab on ``folder`` (a sweep's, say)."""
        self.runs_panel.set_root(folder)
        self.tabs.setCurrentWidget(self.runs_panel)
        self.raise_()
        self.activateWindow()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        """Back from being minimised: the panels that skipped their live work meanwhile catch up (the
        plots at their next tick)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.WindowStateChange and not self.isMinimized() and hasattr(self, "latent_map"):
            for panel in (*self.findChildren(GridPanel), self.latent_map, self.activity, self.form):
                panel.window_restored()

    # -- closing -----------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask about running training or unsaved work (when ``ask_on_close``), stop the
        training process (it ends within one step), remember the layout, close."""
        if self.ask_on_close and not self.files.confirm_close():
            event.ignore()
            return
        if self.controller.running:
            self.statusBar().showMessage("Stopping training…")
        self.controller.shutdown()
        self.runs.stop()
        self.latent_map.wait()
        self.disentanglement.wait()
        if self.sweep_dialog is not None:
            self.sweep_dialog.cancel(wait=True)
        self.disentanglement.save_settings()
        self.training.close()
        self.form.save_settings()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/tab", self.tabs.currentIndex())
        self.settings.sync()
        self.plots.timer.stop()
        event.accept()
