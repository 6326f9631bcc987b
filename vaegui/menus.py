"""The window's menu bar: File, Training, View and Help, with their shortcuts."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox

from models.downloads import SOURCES
from vaegui import __version__
from vaegui.widgets import show_message


def _action(window, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
    action.triggered.connect(slot)
    menu.addAction(action)
    return action


def build_menus(window) -> None:
    """Build the menus of a :class:`~vaegui.mainwindow.MainWindow` from its helpers
    (``files``, ``data``, ``exports``, ``training``); the actions whose enabled state
    changes are kept on the window (``open_action``, ``save_action``, ...)."""
    w, files, data, exports, training = window, window.files, window.data, window.exports, window.training
    bar = w.menuBar()
    m = bar.addMenu("&File")
    w.open_action = _action(w, m, "Open model…", files.open_model_dialog, QKeySequence.StandardKey.Open)
    m.addMenu(files.recent_menu)
    w.follow_action = _action(w, m, "Open run folder…", w.runs.open_dialog, "Ctrl+Shift+F",
                              "Follow a run another process writes (vaegui train --run-dir, torchrun): curves, "
                              "newest checkpoint, status")
    w.save_action = _action(w, m, "Save model", lambda: files.save_model(), QKeySequence.StandardKey.Save)
    w.save_as_action = _action(w, m, "Save model as…", files.save_model_as, "Ctrl+Shift+S")
    w.import_action = _action(w, m, "Import PyTorch weights…", files.import_weights_dialog)
    m.addSeparator()
    w.import_folder_action = _action(w, m, "Import image folder…", data.import_folder_dialog, "Ctrl+I",
                                     "Train on your own images (sub-folders become labels)")
    w.import_file_action = _action(w, m, "Import dataset file…", data.import_file_dialog,
                                   tip="MNIST-format IDX files or .npz/.npy arrays")
    w.download_menu = m.addMenu("Download dataset")
    for key, (title, _url, _files) in SOURCES.items():
        _action(w, w.download_menu, title, lambda _c=False, k=key: data.download_dataset(k),
                tip="Downloaded once, verified against its published checksums, then cached")
    m.addSeparator()
    _action(w, m, "Open figure…", w.figures.open_figure_dialog, "Ctrl+Shift+O",
            "Open a PNG exported by vaegui: its panel returns to the exported latents")
    _action(w, m, "Export current grid as PNG…", exports.export_current_grid, "Ctrl+E",
            "Save the grid of the visible panel, with labels, title and caption if you like")
    _action(w, m, "Export animation…", exports.animate_current, "Ctrl+Shift+A",
            "A traversal, an interpolation, or samples or the manifold over training: GIF, animated PNG or MP4")
    _action(w, m, "Export plots (PNG, SVG, PDF)…", exports.export_plots_dialog, "Ctrl+Shift+E")
    _action(w, m, "Export metrics as CSV…", exports.export_csv_dialog, "Ctrl+Shift+M")
    m.addSeparator()
    _action(w, m, "Quit", w.close, QKeySequence.StandardKey.Quit)
    m = bar.addMenu("&Edit")
    _action(w, m, "Copy", exports.copy_to_clipboard, "Ctrl+Shift+C",
            "Copy the visible grid (or the plots, after a click on them) to the clipboard")
    _action(w, m, "Copy plots", exports.copy_plots, "Ctrl+Alt+C")
    m = bar.addMenu("&Training")
    w.train_action = _action(w, m, "Train", training.start_training, "Ctrl+Return")
    w.continue_action = _action(w, m, "Continue", training.continue_training, "Ctrl+Shift+Return")
    w.pause_action = _action(w, m, "Pause / Resume", training.toggle_pause, "Ctrl+P")
    w.stop_action = _action(w, m, "Stop", training.stop_training, "Ctrl+.")
    m.addSeparator()
    _action(w, m, "Sweep β × seeds…", w.open_sweep, "Ctrl+Shift+W",
            "Train a grid of β and seeds one after another: a table and the ELBO / MIG trade-off")
    m = bar.addMenu("&View")
    m.addAction(w.form_dock.toggleViewAction())
    m.addAction(w.plots_dock.toggleViewAction())
    later = {w.layers: "Ctrl+Shift+L", w.codebook: "Ctrl+Shift+K", w.runs_panel: "Ctrl+Shift+R"}
    for i in range(w.tabs.count()):  # the first ten tabs by number, the later ones by letter
        _action(w, m, w.tabs.tabText(i), lambda _checked=False, i=i: w.tabs.setCurrentIndex(i),
                f"Ctrl+{(i + 1) % 10}" if i < 10 else later.get(w.tabs.widget(i)))
    _action(w, m, "New samples", w.samples.new_samples, "Ctrl+R")
    m = bar.addMenu("&Help")
    _action(w, m, "About vaegui", lambda: show_message(
        w, QMessageBox.Icon.Information, "About vaegui",
        f"vaegui {__version__}: a latent-space explorer for Variational Autoencoders.\n"
        "ELBO terms are reported per image, in nats."))
