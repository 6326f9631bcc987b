"""Importing data through the window's menus and dialogs."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QLineEdit

from vaegui.dataimport import ImportOptionsDialog

from .test_data_import import mixed_folder  # noqa: F401  (the fixture)
from .test_downloads import server  # noqa: F401  (the fixture)
from .test_gui import train_to_end
from .test_gui_files import close_messages, message_texts, pick_file, when_modal
from .ui import UI


def test_import_a_folder_through_the_dialogs_train_and_interpolate(qtbot, window, mixed_folder):  # noqa: F811
    def choose_folder(dialog: QFileDialog):
        dialog.findChild(QLineEdit, "fileNameEdit").setText(str(mixed_folder))
        dialog.accept()

    def options(dialog: ImportOptionsDialog):
        dialog.size_combo.setCurrentIndex(dialog.size_combo.findData(32))
        dialog.channels_combo.setCurrentIndex(dialog.channels_combo.findData(3))
        dialog.accept()

    keep = (when_modal(QFileDialog, choose_folder), when_modal(ImportOptionsDialog, options))
    qtbot.keyClick(window, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.handle.dataset.name.startswith("folder:"), timeout=20000)
    del keep
    assert window.handle.dataset.image_shape == (3, 32, 32)
    assert "Skipped 4 files" in window.data.last_import_report and "truncated.png" in window.data.last_import_report
    assert "Imported 11 images" in message_texts()
    close_messages()
    assert window.form.dataset_combo.currentText() == "Imported: pictures"
    UI(qtbot, window).set(hidden_dim=32)
    train_to_end(qtbot, window, epochs=2)
    # pick two images in the browser, then interpolate
    UI(qtbot, window).show("Browse")
    window.browser.go_to(1)
    qtbot.mouseClick(window.browser.a_button, Qt.MouseButton.LeftButton)
    window.browser.go_to(0)
    qtbot.mouseClick(window.browser.b_button, Qt.MouseButton.LeftButton)
    UI(qtbot, window).show("Interpolation")
    qtbot.mouseClick(window.interpolation.run_button, Qt.MouseButton.LeftButton)
    images, rows, cols = UI(qtbot, window).grid("Interpolation")
    assert images.shape[1:] == (3, 32, 32) and cols == 12
    assert np.array_equal(images[0], window.handle.dataset.test_x[1].numpy())
    assert np.array_equal(images[-1], window.handle.dataset.test_x[0].numpy())


def test_a_failed_import_changes_nothing(qtbot, window, tmp_path):
    before = window.handle.dataset
    bad = tmp_path / "bad-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x03" + bytes(64))
    keep = pick_file(bad)
    window.import_file_action.trigger()
    del keep
    qtbot.waitUntil(lambda: "wrong magic number" in window.data.last_import_report, timeout=10000)
    assert window.handle.dataset is before
    assert "Nothing was imported" in message_texts()
    close_messages()


def test_a_model_and_a_dataset_of_another_size_say_so_instead_of_failing(qtbot, window):
    train_to_end(qtbot, window, epochs=1)
    window.form.dataset_combo.setCurrentIndex(window.form.dataset_combo.findData("mnist5k"))
    UI(qtbot, window).show("Manifold")
    assert "takes 1×8×8 images but this dataset has 1×28×28" in UI(qtbot, window).caption("Manifold")
    assert QApplication.activeModalWidget() is None or not isinstance(QApplication.activeModalWidget(), QDialog)


def test_download_from_the_menu_against_a_loopback_server(qtbot, settings, tmp_path, monkeypatch, server):  # noqa: F811
    from models import downloads
    from vaegui.mainwindow import MainWindow

    url, registry, _ = server
    monkeypatch.setitem(downloads.SOURCES, "mnist", ("MNIST (test server)", url, registry))
    w = MainWindow(settings=settings, dataset="digits", data_dir=str(tmp_path / "data"))
    qtbot.addWidget(w)
    w.show()
    action = next(a for a in w.download_menu.actions() if a.text().startswith("MNIST"))
    action.trigger()
    qtbot.waitUntil(lambda: w.handle.dataset.name == "download:mnist", timeout=20000)
    assert len(w.handle.dataset.train_x) == 20 and "verified" in w.data.last_import_report
    assert (tmp_path / "data" / "downloads" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    close_messages()
    w.close()


def test_browser_filters_searches_and_hands_images_to_the_panels(qtbot, window):
    from PySide6.QtCore import Qt as QtCore_Qt

    train_to_end(qtbot, window, epochs=1)
    browser = window.browser
    window.tabs.setCurrentWidget(browser)
    assert browser.model.rowCount() == 360
    browser.label_filter.setCurrentIndex(browser.label_filter.findData(3))
    labels = window.handle.dataset.test_y.numpy()
    assert browser.model.rowCount() == int((labels == 3).sum())
    assert all(labels[browser.model.index(r).data(QtCore_Qt.ItemDataRole.UserRole)] == 3
               for r in range(browser.model.rowCount()))
    target = int(np.flatnonzero(labels != 3)[5])
    browser.search.setValue(target)
    qtbot.mouseClick(browser.go_button, QtCore_Qt.MouseButton.LeftButton)
    assert browser.selected_index() == target and browser.label_filter.currentData() is None
    qtbot.mouseClick(browser.b_button, QtCore_Qt.MouseButton.LeftButton)
    assert window.interpolation.index_b.value() == target
    qtbot.mouseClick(browser.start_button, QtCore_Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.traversal
    assert window.traversal.start_combo.currentData() == "image"
    assert window.traversal.start_index.value() == target


def test_browser_is_virtualised_for_60000_images(qtbot, window):
    import torch

    from models.data import ImageDataset

    n = 60_000
    big = ImageDataset("big", torch.rand(10, 1, 8, 8), torch.zeros(10, dtype=torch.int64),
                       torch.rand(n, 1, 8, 8), torch.arange(n) % 10, tuple("0123456789"))
    window.handle.set_dataset(big)
    UI(qtbot, window).show("Browse")
    qtbot.waitUntil(lambda: window.browser.model.thumbnails_made > 0, timeout=5000)
    assert window.browser.model.rowCount() == n
    window.browser.go_to(45_000)
    qtbot.wait(100)
    assert window.browser.selected_index() == 45_000
    assert window.browser.model.thumbnails_made < 2_000  # only what was on screen was ever drawn


def _drop(widget, path, x_fraction):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPointF(widget.width() * x_fraction, widget.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop


def test_drop_image_files_on_interpolation_and_traversal(qtbot, window, tmp_path):
    from PIL import Image

    train_to_end(qtbot, window, epochs=1)
    picture = tmp_path / "mine.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 40).astype(np.uint8), (30, 1))).save(picture)
    UI(qtbot, window).show("Interpolation")
    panel = window.interpolation
    _drop(panel, picture, 0.9)  # right half: endpoint B
    assert panel.external["b"] is not None and panel.external["b"].shape == (1, 1, 8, 8)
    assert panel.label_b.text() == "dropped image"
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    images, _, _ = panel.current_grid
    assert np.allclose(images[-1], panel.external["b"][0].numpy())
    UI(qtbot, window).show("Traversal")
    before = window.traversal.z().clone()
    _drop(window.traversal, picture, 0.5)
    assert window.traversal.dropped_name == "mine.png"
    assert not np.allclose(before.numpy(), window.traversal.z().numpy())
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    _drop(window.traversal, broken, 0.5)
    assert "not an image" in message_texts()
    close_messages()


def test_shapes_with_a_chosen_count_train_with_the_conv_net(qtbot, window):
    form = window.form
    form.dataset_combo.setCurrentIndex(form.dataset_combo.findData("shapes"))
    assert form.shapes_spin.isVisible()
    form.shapes_spin.setValue(600)
    form.shapes_spin.editingFinished.emit()
    qtbot.waitUntil(lambda: window.handle.dataset.name == "shapes:600", timeout=10000)
    assert len(window.handle.dataset.train_x) + len(window.handle.dataset.test_x) == 600
    form.arch_combo.setCurrentIndex(form.arch_combo.findData("conv"))
    form.hidden_spin.setValue(32)
    train_to_end(qtbot, window, epochs=1)
    assert window.handle.model.config.input_shape == (1, 64, 64)
    UI(qtbot, window).show("Manifold")
    qtbot.waitUntil(lambda: UI(qtbot, window).grid("Manifold") is not None, timeout=5000)


def test_files_placed_in_the_data_folder_are_offered_and_imported(qtbot, settings, tmp_path):
    from vaegui.mainwindow import MainWindow

    datasets = tmp_path / "data" / "datasets"
    datasets.mkdir(parents=True)
    np.savez(datasets / "mine.npz", x=np.random.default_rng(0).random((30, 28, 28)).astype(np.float32),
             y=np.arange(30) % 3)
    w = MainWindow(settings=settings, dataset="digits", data_dir=str(tmp_path / "data"))
    qtbot.addWidget(w)
    w.show()
    combo = w.form.dataset_combo
    index = combo.findText("Data folder: mine.npz")
    assert index >= 0
    combo.setCurrentIndex(index)
    qtbot.waitUntil(lambda: w.handle.dataset.name.endswith("mine.npz"), timeout=10000)
    assert w.handle.dataset.image_shape == (1, 28, 28)
    close_messages()
    w.close()
