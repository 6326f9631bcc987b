"""Starting and closing the Qt application."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QSettings, QStandardPaths, QTimer


def configure_pyqtgraph() -> None:
    """Row-major images (otherwise they come out transposed) and a light theme."""
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground="k")


def run_gui(
    dataset: str | None = None,
    train: bool = False,
    quit_after: float | None = None,
    screenshot: str | None = None,
    settings_path: str | None = None,
) -> int:
    """Open the window; returns the process exit status.

    Args:
        dataset: dataset key to open on.
        train: press Train once the window is up.
        quit_after: close the window after this many seconds (scripted runs, tests).
        screenshot: before closing, save the window as this PNG (``QWidget.grab``).
        settings_path: an INI file to remember settings in, instead of the user's; the
            autosave sessions then go beside it, in ``vaegui-data/``.
    """
    import torch
    from PySide6.QtWidgets import QApplication

    # The GUI process only decodes small batches; training runs in its own process
    # with every core. One thread here keeps the two from oversubscribing the CPU.
    torch.set_num_threads(1)
    configure_pyqtgraph()
    from vaegui.mainwindow import MainWindow, app_icon

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("vaegui")
    app.setOrganizationName("vaegui")
    app.setWindowIcon(app_icon())
    collector = collect_garbage_on_gui_thread()  # noqa: F841 (its timer runs while it lives)
    if settings_path:
        settings = QSettings(settings_path, QSettings.Format.IniFormat)
        data_dir = str(Path(settings_path).resolve().parent / "vaegui-data")
    else:
        settings = None
        data_dir = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    scripted = quit_after is not None
    window = MainWindow(settings=settings, dataset=dataset, data_dir=data_dir, ask_on_close=not scripted)
    window.controller.prewarm()
    window.fit_to_screen()
    freeze_startup_objects()
    window.show()
    if not scripted:
        QTimer.singleShot(0, window.files.offer_recovery)
    if train:
        QTimer.singleShot(0, window.training.start_training)
    if quit_after is not None:

        def finish() -> None:
            if screenshot:
                window.grab().save(screenshot, "PNG")
            window.close()

        QTimer.singleShot(int(quit_after * 1000), finish)
    status = app.exec()
    # Delete every widget before the interpreter exits: PySide6 6.12 + pyqtgraph 0.14
    # segfault at shutdown when a pyqtgraph widget is still alive (shared/DESIGN.md).
    window.deleteLater()
    app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()
    return status


def collect_garbage_on_gui_thread(interval_s: float = 1.0):
    """Run Python's cyclic garbage collector only on the GUI thread, every ``interval_s`` seconds
    when its thresholds are passed (pyqtgraph's ``GarbageCollector``); keep the returned object
    alive as long as the application runs.

    Left to itself the collector runs in whichever thread allocates past its threshold: the
    thread that reads the training messages, a background task's. A closed dialog or panel held
    in a reference cycle is then destroyed there, and Qt objects destroyed outside the GUI
    thread deadlock against it (seen: a background task's thread deleting a widget while the
    GUI thread deleted a menu, each waiting on a lock the other held)."""
    from pyqtgraph.util.garbage_collector import GarbageCollector

    return GarbageCollector(interval=interval_s)


def freeze_startup_objects() -> None:
    """Move every object alive after start-up (torch, Qt, pyqtgraph, the window: a few
    hundred thousand) out of the garbage collector's view (``gc.freeze``), so that a
    full collection while training scans only what was made since. Measured: a full
    collection over ~340,000 objects stalled the window for 170 ms in the middle of a run."""
    import gc

    gc.collect()
    gc.freeze()


def offscreen_default() -> None:
    """Use Qt's offscreen platform where there is no display (CI, ssh sessions)."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
