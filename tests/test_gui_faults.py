"""What a new user and a hostile setting hit first, in the window: settings that
would exhaust memory, Stop during a long evaluation, the controls at a laptop's
size, the first manifold and the traversal's labels, and autosave notices."""

from __future__ import annotations

import time

from PySide6.QtCore import QPoint, QRect, Qt

from vaegui.mainwindow import MainWindow

from .test_gui import train, train_to_end, wait_finished
from .test_gui_files import close_messages, message_texts


def test_absurd_settings_are_refused_with_the_figures_and_nothing_starts(qtbot, window):
    form = window.form
    form.batch_spin.setValue(8192)
    form.hidden_spin.setValue(4096)
    form.iw_k_spin.setValue(5000)
    qtbot.mouseClick(form.train_button, Qt.MouseButton.LeftButton)
    assert not window.controller.running
    shown = form.error_label.text()
    assert form.error_label.isVisible() and "batch 8,192 × hidden 4,096 × K 5,000 needs ~" in shown
    assert "GB free" in shown and "lower the IWAE samples K or the batch size" in shown
    assert "needs ~" in message_texts()
    close_messages()
    assert form.train_button.isEnabled()
    # lowering K makes it fit: the same window trains
    form.iw_k_spin.setValue(1)
    form.batch_spin.setValue(128)
    form.hidden_spin.setValue(32)
    train_to_end(qtbot, window, epochs=1)


def test_stop_during_a_long_evaluation_takes_effect_within_2_s(qtbot, window):
    form = window.form
    form.hidden_spin.setValue(2048)
    form.eval_iw_spin.setValue(5000)  # 360 test images × 5,000 samples: seconds of evaluation
    form.eval_images_spin.setValue(360)
    train(qtbot, window, epochs=1)
    qtbot.waitUntil(lambda: form.progress.maximum() > 0 and form.progress.value() == form.progress.maximum(),
                    timeout=60_000)  # every step of the epoch is done: the evaluation runs
    time.sleep(0.3)
    start = time.perf_counter()
    qtbot.mouseClick(form.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=10_000)
    took = time.perf_counter() - start
    assert took < 2.0, f"Stop took {took:.1f} s"
    wait_finished(qtbot, window)
    assert window.run.last_done.stopped and "Stopped at step" in window.statusBar().currentMessage()
    assert form.continue_button.isEnabled()


def _inside_window(widget, window) -> bool:
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    return widget.isVisible() and window.rect().contains(rect) and not widget.visibleRegion().isEmpty()


def test_the_controls_are_in_view_at_1280x720_and_at_the_default_size(qtbot, window):
    form = window.form
    for size in ((1280, 720), (1440, 920)):
        window.resize(*size)
        qtbot.waitUntil(lambda: window.size().width() == size[0])
        for widget in (form.train_button, form.continue_button, form.pause_button, form.stop_button, form.progress):
            assert _inside_window(widget, window), (size, widget.text() if hasattr(widget, "text") else widget)
        # the form scrolls, the controls do not
        scroll = form.parentWidget().parentWidget()
        scroll.verticalScrollBar().setValue(scroll.verticalScrollBar().maximum())
        assert _inside_window(form.train_button, window)


def test_the_first_manifold_spans_the_two_most_active_dimensions(qtbot, window):
    window.form.latent_spin.setValue(20)
    train_to_end(qtbot, window, epochs=2)
    kl = window.handle.kl_per_dim
    assert len(kl) == 20
    top = sorted(range(20), key=lambda k: -kl[k])[:2]
    manifold = window.manifold
    window.tabs.setCurrentWidget(manifold)
    assert manifold.dims() == (top[0], top[1]) and manifold.active_check.isChecked()
    qtbot.waitUntil(lambda: "two most active dimensions" in manifold.caption.text())
    assert f"z{top[0]} grows left → right, z{top[1]} bottom → top" in manifold.caption.text()
    # the traversal shows the same order, its labels say what the number is
    traversal = window.traversal
    assert traversal.dim_order()[:2] == top
    label = traversal._name_labels[top[0]]
    assert label.text() == f"z{top[0]} · KL {kl[top[0]]:.2f} nats"
    assert "averaged over the test split" in label.toolTip() and "inactive" in label.toolTip()
    # a dimension picked by hand stays picked
    other = next(k for k in range(20) if k not in top)
    manifold.dim_x.setValue(other)
    assert not manifold.active_check.isChecked() and manifold.dims()[0] == other


def test_autosave_notices_do_not_take_over_the_status_bar(qtbot, settings, tmp_path):
    w = MainWindow(settings=settings, dataset="digits", data_dir=str(tmp_path / "data"))
    qtbot.addWidget(w)
    w.form.hidden_spin.setValue(32)
    w.show()
    train_to_end(qtbot, w, epochs=2)
    qtbot.waitUntil(lambda: w.training.autosave_label.text().startswith("autosaved "), timeout=5000)
    assert str(w.training.session.path) in w.training.autosave_label.toolTip()
    assert "Finished 2 epochs" in w.statusBar().currentMessage()
    w.close()


def test_an_unwritable_autosave_folder_is_named_before_the_run_and_training_goes_on(qtbot, settings, tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    w = MainWindow(settings=settings, dataset="digits", data_dir=str(blocker))
    qtbot.addWidget(w)
    w.form.hidden_spin.setValue(32)
    w.show()
    assert w.training.session is None
    train_to_end(qtbot, w, epochs=1)
    assert w.training.autosave_label.text() == "autosave off"
    assert str(blocker / "sessions") in w.training.autosave_label.toolTip()
    w.close()
