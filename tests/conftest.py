"""Test set-up: Qt offscreen, pyqtgraph's row-major images, and a guard that fails
any test leaving a training process or a QThread running (napari's
``_dangling_qthreads`` idea)."""

from __future__ import annotations

import gc
import multiprocessing
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if "PYTEST_XDIST_WORKER_COUNT" in os.environ and "OMP_NUM_THREADS" not in os.environ:
    # with pytest -n N (pytest-xdist) the workers share the cores: each worker and the processes it starts
    # get 1/N of them (15 workers of 16 threads each on 16 cores ran two small CPU tests past 150 s)
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

import pytest  # noqa: E402
from PySide6.QtCore import QSettings, QThread  # noqa: E402

from vaegui.app import configure_pyqtgraph  # noqa: E402

configure_pyqtgraph()


@pytest.fixture(autouse=True, scope="session")
def no_automatic_garbage_collection():
    """The cyclic garbage collector runs only between tests, on the main thread (the app runs it on
    the GUI thread: vaegui.app.collect_garbage_on_gui_thread). Left automatic, it ran in a background
    task's thread, destroyed a closed window of an earlier test there, and deadlocked against the GUI
    thread."""
    gc.disable()
    yield
    gc.enable()


@pytest.fixture(autouse=True)
def collect_garbage_after_the_test():
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def no_dangling_training_process():
    """Fail any test that leaves a training process (or a QThread) running."""
    threads: list[QThread] = []
    original = QThread.start

    def start(self, *args):
        threads.append(self)
        return original(self, *args)

    QThread.start = start
    try:
        yield
    finally:
        QThread.start = original
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
        child.join(5)
    assert not children, f"training process(es) left running: {children}"
    running = []
    for thread in threads:
        try:
            if thread.isRunning():
                running.append(thread)
        except RuntimeError:  # the C++ object was already deleted: it ended
            continue
    assert not running, f"{len(running)} QThread(s) left running"


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    """The main window on the 8×8 digits, with a small network so tests run fast on a CPU."""
    from .ui import open_window

    w = open_window(qtbot, settings, "digits", hidden=64, latent=2, batch=128)
    yield w
    w.close()
