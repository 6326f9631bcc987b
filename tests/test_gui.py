"""The window, driven as a person would: click, move the slider, pick the file."""

from __future__ import annotations

import csv
import gc
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QWidget

from models.run import Progress
from models.state import shm_free_bytes
from vaegui.app import collect_garbage_on_gui_thread
from vaegui.figdialog import FigureExportDialog
from vaegui.mainwindow import MainWindow

from .ui import UI


def train(qtbot, window, epochs: int = 2):
    """Set Epochs, click Train, wait until the run has started."""
    UI(qtbot, window).start(epochs)
    return window


def wait_finished(qtbot, window):
    """Wait until the run has ended and said how."""
    UI(qtbot, window).wait()


def train_to_end(qtbot, window, epochs: int = 2):
    """Train for ``epochs`` and wait; no error may show."""
    UI(qtbot, window).train(epochs)
    return window


def test_window_opens_on_real_digits(qtbot, window):
    assert window.tabs.currentWidget() is window.data_panel
    pixels = window.data_panel.grid_view.pixels
    assert pixels is not None and pixels.max() == 1.0 and pixels.min() == 0.0
    assert "1,437 training" in window.form.data_label.text()
    assert not window.form.stop_button.isEnabled()
    assert "No model yet" in UI(qtbot, window).caption("Manifold")


class Finalised:
    """Records the thread it is destroyed in."""

    threads: list[str] = []

    def __del__(self):
        Finalised.threads.append(threading.current_thread().name)


def test_the_app_collects_garbage_cycles_with_qt_objects_on_the_gui_thread_only(qtbot):
    gc.enable()  # as in a fresh process (the test session collects between tests)
    collector = collect_garbage_on_gui_thread(interval_s=0.05)
    try:
        assert not gc.isenabled()
        widget = QWidget()  # a closed panel in a reference cycle
        widget.keep, widget.marker = widget, Finalised()
        del widget
        # another thread allocates, and keeps, more objects than the collector's threshold (as the thread
        # reading the training messages does): an automatic collection would destroy the widget there
        kept: list = []
        worker = threading.Thread(target=lambda: kept.append([[] for _ in range(20 * gc.get_threshold()[0])]),
                                  name="worker")
        worker.start()
        worker.join()
        assert Finalised.threads == []
        qtbot.waitUntil(lambda: Finalised.threads == ["MainThread"], timeout=2000)
    finally:
        collector.timer.stop()
        gc.disable()


class PaintCounter(QObject):
    def __init__(self, widget):
        super().__init__(widget)
        self.paints = 0
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
        self.paints += event.type() == QEvent.Type.Paint
        return False


def test_the_progress_bar_paints_a_few_times_a_second_and_ends_on_the_newest_value(qtbot, window):
    form = window.form
    counter = PaintCounter(form.progress)
    # 100 steps of a run arriving at once, training and evaluating alternating as short epochs do
    for done in range(1, 101):
        form.show_progress(Progress("evaluating" if done % 10 == 0 else "training", 1 + (done - 1) // 10, 10,
                                    done, 100, 20_000.0, 128))
    assert counter.paints <= 2  # the first value at once (one paint); the rest wait for the interval
    assert form.progress.value() == 1
    qtbot.waitUntil(lambda: form.progress.value() == 100, timeout=1000)  # the newest, within the interval
    assert form.progress.text().startswith("Epoch 10/10") and "step 100" in form.progress.text()
    assert "ETA" in form.speed_label.text() or "samples/s" in form.speed_label.text()
    # an epoch's figures stay below the bar when the steps before them are shown after them
    for done in (101, 102):
        form.show_progress(Progress("training", 10, 10, done, 102, 20_000.0, 128))
    form.run_progress.show_text("Epoch 10: test −ELBO 30.00 nats per image")
    qtbot.waitUntil(lambda: form.progress.value() == 102, timeout=1000)
    assert form.speed_label.text() == "Epoch 10: test −ELBO 30.00 nats per image"
    # a run's end shows at once
    form.show_progress(Progress("finished", 10, 10, 102, 102, 20_000.0, 128))
    assert form.progress.text() == "Finished 10 epochs"


def test_train_two_epochs_plots_fill_and_test_elbo_falls(qtbot, window):
    data = window.handle.dataset
    pixels = data.train_x.clone(), data.test_x.clone()
    train_to_end(qtbot, window, epochs=2)
    # the training process read the window's images, in shared memory where there was room: unchanged
    assert data.train_x.equal(pixels[0]) and data.test_x.equal(pixels[1])
    assert data.train_x.is_shared() or shm_free_bytes() < 2 * (pixels[0].nbytes + pixels[1].nbytes)
    steps = 2 * window.controller.steps_per_epoch
    # the plots redraw on a 10 Hz timer: wait for what a person would see
    qtbot.waitUntil(lambda: window.plots.point_counts() == {"train": steps, "test": 2}, timeout=2000)
    epochs = window.plots.epochs
    assert epochs[1].test_neg_elbo < epochs[0].test_neg_elbo
    assert window.form.progress.value() == steps
    assert "Finished 2 epochs" in UI(qtbot, window).status_text()
    assert window.form.train_button.isEnabled() and not window.form.stop_button.isEnabled()
    # the manifold panel shows the newest weights
    UI(qtbot, window).show("Manifold")
    assert window.manifold.grid_view.pixels.shape == (20 * 8, 20 * 8)
    assert f"snapshot {window.handle.version}" in UI(qtbot, window).caption("Manifold")


def test_a_minimised_window_leaves_the_cores_to_training_then_catches_up(qtbot, window):
    ui = UI(qtbot, window)
    ui.show("Manifold")
    window.showMinimized()
    qtbot.waitUntil(window.isMinimized)
    ui.train(epochs=2)
    qtbot.wait(300)  # three ticks of the plots' timer
    # nothing was drawn or decoded for a window nobody can see
    assert window.plots.point_counts() == {"train": 0, "test": 0}
    assert "No model yet" in ui.caption("Manifold")
    assert "Finished" not in ui.progress_text()
    window.showNormal()
    steps = 2 * window.controller.steps_per_epoch
    qtbot.waitUntil(lambda: window.plots.point_counts() == {"train": steps, "test": 2}, timeout=2000)
    qtbot.waitUntil(lambda: f"snapshot {window.handle.version}" in ui.caption("Manifold"), timeout=2000)
    assert window.form.progress.value() == steps and "Finished" in ui.progress_text()
    ui.show("Latent activity")
    assert "dimensions active" in ui.caption("Latent activity")


def test_traversal_slider_changes_the_image(qtbot, window):
    train_to_end(qtbot, window)
    UI(qtbot, window).show("Traversal")
    panel = window.traversal
    assert len(panel.sliders) == 2
    qtbot.waitUntil(lambda: panel.image_view.pixels is not None)
    before = panel.image_view.pixels.copy()
    slider = panel.sliders[0]
    slider.setFocus()
    for _ in range(4):
        qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    assert slider.value() == 200 and panel.value_labels[0].text() == "+2.00"
    qtbot.waitUntil(lambda: not np.array_equal(panel.image_view.pixels, before))
    qtbot.waitUntil(lambda: len(panel.latencies_ms) > 0)
    # the traversal grid: one row per dimension, 9 columns
    qtbot.waitUntil(lambda: panel.current_grid is not None)
    images, rows, cols = panel.current_grid
    assert (rows, cols) == (2, 9) and images.shape == (18, 1, 8, 8)


def test_traversal_start_from_an_image_posterior_mean(qtbot, window):
    UI(qtbot, window).set(latent_dim=4)
    train_to_end(qtbot, window)
    UI(qtbot, window).show("Traversal")
    panel = window.traversal
    panel.start_combo.setCurrentIndex(panel.start_combo.findData("image"))
    panel.start_index.setValue(5)
    mu = window.handle.posterior_mean(window.handle.test_image(5))[0].clamp(-3, 3)
    assert np.allclose(panel.z().numpy(), mu.numpy(), atol=0.006)


def test_interpolation_between_two_picked_images(qtbot, window):
    train_to_end(qtbot, window)
    UI(qtbot, window).show("Interpolation")
    panel = window.interpolation
    panel.index_a.setValue(3)
    panel.index_b.setValue(10)
    panel.steps_spin.setValue(6)
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("slerp"))
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    images, rows, cols = panel.current_grid
    assert (rows, cols) == (1, 8)
    data = window.handle.dataset
    assert np.array_equal(images[0], data.test_x[3].numpy())
    assert np.array_equal(images[-1], data.test_x[10].numpy())
    assert not np.array_equal(images[1], images[6])  # the path moves
    assert "spherical" in panel.caption.text()
    assert panel.grid_view.pixels.shape == (8 + 2, 8 * 8 + 9)


def test_export_manifold_grid_to_png_with_exact_size(qtbot, window, tmp_path):
    train_to_end(qtbot, window)
    UI(qtbot, window).show("Manifold")
    window.manifold.grid_spin.setValue(7)
    qtbot.mouseClick(window.manifold.export_button, Qt.MouseButton.LeftButton)
    dialog = window.manifold.findChild(FigureExportDialog)
    assert dialog is not None and dialog.isVisible()
    path = tmp_path / "manifold.png"
    dialog.path_edit.setText(str(path))
    dialog.scale_spin.setValue(3)
    dialog.padding_spin.setValue(2)
    qtbot.waitUntil(lambda: dialog.size_label.text().startswith("184 × 184 pixels"))  # 7 * 8 * 3 + 8 * 2
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    with Image.open(path) as img:
        assert img.size == (184, 184)
        pixels = np.asarray(img)
    assert pixels[0, 0] == 255  # the padding is white
    assert pixels[2:26, 2:26].std() > 0  # a decoded digit, not a blank tile
    assert "Saved" in UI(qtbot, window).status_text()
    # the chosen scale is remembered for the next export
    assert int(window.settings.value("export/scale")) == 3


def test_export_samples_via_menu_shortcut_and_plots_and_csv(qtbot, window, tmp_path):
    train_to_end(qtbot, window)
    UI(qtbot, window).show("Samples")
    window.samples.rows_spin.setValue(3)
    window.samples.cols_spin.setValue(5)
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    dialog = window.samples.findChild(FigureExportDialog)
    dialog.path_edit.setText(str(tmp_path / "samples"))  # no extension: .png is added
    dialog.scale_spin.setValue(1)
    dialog.padding_spin.setValue(0)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    with Image.open(tmp_path / "samples.png") as img:
        assert img.size == (5 * 8, 3 * 8)

    assert window.exports.export_plots_png(str(tmp_path / "plots.png"))
    with Image.open(tmp_path / "plots.png") as img:
        assert img.size[0] > 300 and img.size[1] > 100
    assert window.exports.export_metrics_csv(str(tmp_path / "metrics.csv"))
    with open(tmp_path / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))  # provenance comments
    steps = 2 * window.controller.steps_per_epoch
    assert len(rows) == steps + 2
    assert [r["split"] for r in rows].count("test") == 2
    assert float(rows[-1]["neg_elbo_nats"]) == pytest.approx(window.plots.epochs[-1].test_neg_elbo)


def test_new_samples_button_changes_the_grid(qtbot, window):
    train_to_end(qtbot, window)
    UI(qtbot, window).show("Samples")
    before = window.samples.grid_view.pixels.copy()
    qtbot.mouseClick(window.samples.new_button, Qt.MouseButton.LeftButton)
    assert window.samples.seed_spin.value() == 1
    assert not np.array_equal(window.samples.grid_view.pixels, before)


def test_manifold_of_a_higher_dimensional_latent(qtbot, window):
    UI(qtbot, window).set(latent_dim=5)
    train_to_end(qtbot, window)
    UI(qtbot, window).show("Manifold")
    panel = window.manifold
    assert panel.dim_x.isEnabled()
    panel.dim_x.setValue(3)
    panel.dim_y.setValue(4)
    at_zero = panel.grid_view.pixels.copy()
    panel.hold_combo.setCurrentIndex(panel.hold_combo.findData("image"))
    panel.hold_index.setValue(7)
    assert "z3 grows left" in panel.caption.text() and "#7" in panel.caption.text()
    assert not np.array_equal(panel.grid_view.pixels, at_zero)
    panel.dim_y.setValue(3)
    assert "different dimensions" in panel.caption.text()
    assert not panel.export_button.isEnabled()


def test_stop_mid_training(qtbot, window):
    train(qtbot, window, epochs=1000)
    qtbot.waitUntil(lambda: window.plots.steps.size > 0, timeout=30000)
    assert window.form.stop_button.isEnabled() and not window.form.train_button.isEnabled()
    qtbot.waitUntil(lambda: "ETA" in window.form.speed_label.text(), timeout=5000)
    assert "samples/s" in window.form.speed_label.text()
    assert window.form.progress.text().startswith("Epoch ") and "/1000 · step " in window.form.progress.text()
    qtbot.mouseClick(window.form.stop_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, window)
    assert window.run.last_done.stopped
    assert window.run.last_done.step < 1000 * window.controller.steps_per_epoch
    assert "Stopped at step" in UI(qtbot, window).status_text()
    assert window.form.train_button.isEnabled()


def test_pause_and_resume(qtbot, window):
    train(qtbot, window, epochs=1000)
    qtbot.waitUntil(lambda: window.plots.steps.size > 0, timeout=30000)
    qtbot.mouseClick(window.form.pause_button, Qt.MouseButton.LeftButton)
    assert window.form.pause_button.text() == "Resume" and window.controller.paused
    qtbot.wait(300)  # the step in flight, if any, arrives
    step = window.controller.last_step
    qtbot.wait(500)  # the event loop keeps running while paused; no step is taken
    assert window.controller.last_step == step
    qtbot.mouseClick(window.form.pause_button, Qt.MouseButton.LeftButton)
    assert window.form.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: window.controller.last_step > step + 5, timeout=30000)
    qtbot.mouseClick(window.form.stop_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, window)


def test_close_window_mid_training_stops_the_worker(qtbot, settings):
    w = MainWindow(settings=settings, dataset="digits")
    qtbot.addWidget(w)
    UI(qtbot, w).set(hidden_dim=64)
    UI(qtbot, w).set(epochs=1000)
    w.show()
    w.training.start_training()
    qtbot.waitUntil(lambda: w.plots.steps.size > 0, timeout=30000)
    process = w.controller._process
    assert process.is_alive()
    w.close()
    assert not w.controller.running
    assert not w.isVisible()
    assert not process.is_alive() and process.exitcode == 0


def test_non_finite_loss_shows_a_clear_message_and_app_stays_usable(qtbot, window):
    UI(qtbot, window).set(lr=10.0)
    train(qtbot, window, epochs=5)
    wait_finished(qtbot, window)
    assert window.form.error_label.isVisible()
    assert "non-finite" in window.form.error_label.text() and "lower learning rate" in window.form.error_label.text()
    assert window.form.train_button.isEnabled()
    # the user lowers the learning rate and trains again: the error clears
    UI(qtbot, window).set(lr=0.001)
    train_to_end(qtbot, window, epochs=1)
    assert not window.form.error_label.isVisible()


def test_new_weights_and_an_epochs_activity_together_decode_the_traversal_once(qtbot, window, monkeypatch):
    train_to_end(qtbot, window)
    UI(qtbot, window).show("Traversal")
    panel = window.traversal
    qtbot.waitUntil(lambda: panel.current_grid is not None)
    qtbot.wait(300)  # the grid the sliders' start asked for (decoded 120 ms after they moved)
    calls = []
    original = panel.compute_grid
    monkeypatch.setattr(panel, "compute_grid", lambda: calls.append(1) or original())
    # what an epoch's end brings in one turn of the event loop: new weights, then the KL per dimension
    window.handle.changed.emit()
    window.handle.set_activity(list(reversed(window.handle.kl_per_dim)))
    assert calls == []  # nothing decoded in the same stretch
    qtbot.waitUntil(lambda: len(calls) == 1)
    qtbot.wait(300)
    assert len(calls) == 1 and panel.current_grid is not None


def test_new_weights_while_a_slider_moves_redraw_the_image_now_and_the_grid_once_it_rests(qtbot, window):
    from PySide6.QtWidgets import QApplication

    train_to_end(qtbot, window)
    UI(qtbot, window).show("Traversal")
    panel, handle = window.traversal, window.handle
    qtbot.waitUntil(lambda: panel.current_grid is not None)
    qtbot.wait(300)
    panel._grid_timer.setInterval(1500)  # "resting" after 1.5 s instead of 120 ms: room for a slow machine
    state = {k: v + 0.05 * torch.randn_like(v) for k, v in handle.model.state_dict().items()}
    slider = panel.sliders[0]
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    QApplication.processEvents()
    before, shown = panel.image_view.pixels.copy(), panel.caption.text()
    # new weights arrive while the slider moves (the training process sends them four times a second)
    handle.load_snapshot(handle.version + 1, state)
    QApplication.processEvents()
    assert not np.array_equal(panel.image_view.pixels, before)  # the image follows at once
    assert panel.caption.text() == shown and f"snapshot {handle.version}." not in shown  # the grid waits
    qtbot.waitUntil(lambda: f"snapshot {handle.version}." in panel.caption.text(), timeout=5000)
    grid, rows, _ = panel.current_grid
    assert grid.shape[0] == rows * 9


def test_plot_controls_smoothing_log_y_and_readout(qtbot, window):
    train_to_end(qtbot, window)
    plots = window.plots
    raw = window.run.history.terms["neg_elbo"].data.copy()
    plots.smoothing.setValue(0)
    plots.redraw()
    y = plots.train_smooth["neg_elbo"].yData
    assert np.allclose(y, raw)
    plots.smoothing.setValue(90)
    plots.redraw()
    y = plots.train_smooth["neg_elbo"].yData
    assert np.diff(y).std() < np.diff(raw).std()
    qtbot.mouseClick(plots.log_check, Qt.MouseButton.LeftButton)
    assert plots.plots["kl"].ctrl.logYCheck.isChecked()
    # cursor readout: move over the middle of the −ELBO plot
    rect = plots.plots["neg_elbo"].vb.sceneBoundingRect()
    plots._mouse_moved(rect.center())
    assert plots.readout.text().startswith("step ")


def test_form_settings_are_remembered(qtbot, settings):
    first = MainWindow(settings=settings, dataset="digits")
    qtbot.addWidget(first)
    UI(qtbot, first).set(latent_dim=7)
    UI(qtbot, first).set(beta=4.0)
    first.close()
    second = MainWindow(settings=settings)
    qtbot.addWidget(second)
    assert second.form.latent_spin.value() == 7
    assert second.form.beta_spin.value() == 4.0
    assert second.form.dataset_key() == "digits"


def test_switching_dataset_updates_the_form(qtbot, window):
    window.form.dataset_combo.setCurrentIndex(window.form.dataset_combo.findData("mnist5k"))
    assert window.handle.dataset.name == "mnist5k"
    assert "784-64-2" in window.form.model_card.text()
    assert "MNIST" in window.windowTitle()
    # the grid is decoded again in the event loop's next turn
    qtbot.waitUntil(lambda: window.data_panel.grid_view.pixels.shape == (10 * 28 + 11, 10 * 28 + 11), timeout=2000)


def test_training_process_killed_mid_run_is_reported_and_train_works_again(qtbot, window):
    import os
    import signal

    train(qtbot, window, epochs=1000)
    qtbot.waitUntil(lambda: window.plots.steps.size > 0, timeout=30000)
    os.kill(window.controller._process.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=10000)
    assert "ended unexpectedly" in window.form.error_label.text()
    assert window.handle.ready  # the last weights received are still shown
    train_to_end(qtbot, window, epochs=1)
    assert window.run.last_done is not None and not window.run.last_done.stopped
