"""What a new user and a hostile setting hit first, in the window: settings that
would exhaust memory, Stop during a long evaluation, the controls at a laptop's
size, the first manifold and the traversal's labels, and autosave notices."""

from __future__ import annotations

import time

import pytest

from vaegui.mainwindow import MainWindow

from .ui import UI


def test_absurd_settings_are_refused_with_the_figures_and_nothing_starts(qtbot, window):
    ui = UI(qtbot, window)
    ui.set(batch_size=8192, hidden_dim=4096, iw_k=5000)
    ui.click(window.form.train_button)
    assert not window.controller.running
    shown = ui.error_text()
    assert "batch 8,192 × hidden 4,096 × K 5,000 needs ~" in shown
    assert "GB free" in shown and "lower the IWAE samples K or the batch size" in shown
    assert "needs ~" in ui.messages()
    ui.close_messages()
    assert window.form.train_button.isEnabled()
    # lowering K makes it fit: the same window trains
    ui.set(iw_k=1, batch_size=128, hidden_dim=32).train(epochs=1)


def test_stop_during_a_long_evaluation_takes_effect_within_2_s(qtbot, window):
    ui = UI(qtbot, window)
    ui.set(hidden_dim=2048, eval_iw=5000, eval_iw_images=360)  # 360 test images × 5,000 samples
    ui.start(epochs=1)
    # the epoch's last steps reach the window only once the evaluation is under way
    qtbot.waitUntil(lambda: "evaluating on the test split" in ui.progress_text(), timeout=60_000)
    start = time.perf_counter()
    ui.stop()
    qtbot.waitUntil(lambda: not window.controller.running, timeout=10_000)
    took = time.perf_counter() - start
    assert took < 2.0, f"Stop took {took:.1f} s"
    ui.wait()
    assert window.run.last_done.stopped and "Stopped at step" in ui.status_text()
    assert window.form.continue_button.isEnabled()


def test_the_controls_are_in_view_at_1280x720_and_at_the_default_size(qtbot, window):
    ui, form = UI(qtbot, window), window.form
    for size in ((1280, 720), (1440, 920)):
        window.resize(*size)
        qtbot.waitUntil(lambda: window.size().width() == size[0])
        for widget in (form.train_button, form.continue_button, form.pause_button, form.stop_button, form.progress):
            assert ui.visible(widget), (size, widget.text() if hasattr(widget, "text") else widget)
        # the form scrolls, the controls do not
        scroll = form.parentWidget().parentWidget()
        scroll.verticalScrollBar().setValue(scroll.verticalScrollBar().maximum())
        assert ui.visible(form.train_button)


@pytest.mark.parametrize("points", [11.0, 13.0])
def test_with_a_large_font_the_window_still_fits_a_1280x720_screen(qtbot, settings, points):
    """A desktop's 11-pt font (GNOME's default) made the window at least 1382×738 before: wider and
    taller than a laptop's 1280×720, so fit_to_screen could not bring it inside. The tabs scroll now."""
    from PySide6.QtWidgets import QApplication

    from .ui import open_window

    app = QApplication.instance()
    normal = app.font()
    large = app.font()
    large.setPointSizeF(points)
    app.setFont(large)
    try:
        window = open_window(qtbot, settings, "digits", hidden=64, latent=2, batch=128)
        ui, form = UI(qtbot, window), window.form
        hint = window.minimumSizeHint()
        assert hint.width() <= 1280 and hint.height() <= 720, hint
        window.resize(1280, 720)
        qtbot.waitUntil(lambda: (window.width(), window.height()) == (1280, 720))
        for widget in (form.train_button, form.stop_button, form.progress):
            assert ui.visible(widget), widget
        ui.show("Traversal")  # wider than the room it has: it scrolls, and its controls stay reachable
        scroll = window.centralWidget()
        bar = scroll.horizontalScrollBar()
        assert bar.maximum() > 0
        scroll.ensureWidgetVisible(window.traversal.reset_button)
        assert ui.visible(window.traversal.reset_button)
        window.close()
    finally:
        app.setFont(normal)


def test_the_first_manifold_spans_the_two_most_active_dimensions(qtbot, window):
    ui = UI(qtbot, window)
    ui.set(latent_dim=20).train(epochs=2)
    kl = window.handle.kl_per_dim
    assert len(kl) == 20
    top = sorted(range(20), key=lambda k: -kl[k])[:2]
    manifold = ui.show("Manifold")
    assert manifold.dims() == (top[0], top[1]) and manifold.active_check.isChecked()
    qtbot.waitUntil(lambda: "two most active dimensions" in ui.caption("Manifold"))
    assert f"z{top[0]} grows left → right, z{top[1]} bottom → top" in ui.caption("Manifold")
    # the traversal shows the same order, its labels say what the number is
    traversal = ui.panel("Traversal")
    assert traversal.dim_order()[:2] == top
    label = traversal.slider_grid.itemAtPosition(0, 0).widget()
    assert label.text() == f"z{top[0]} · KL {kl[top[0]]:.2f} nats"
    assert "averaged over the test split" in label.toolTip() and "inactive" in label.toolTip()
    # a dimension picked by hand stays picked
    other = next(k for k in range(20) if k not in top)
    manifold.dim_x.setValue(other)
    assert not manifold.active_check.isChecked() and manifold.dims()[0] == other


def test_autosave_notices_do_not_take_over_the_status_bar(qtbot, settings, tmp_path):
    w = MainWindow(settings=settings, dataset="digits", data_dir=str(tmp_path / "data"))
    qtbot.addWidget(w)
    w.show()
    ui = UI(qtbot, w)
    ui.set(hidden_dim=32).train(epochs=2)
    qtbot.waitUntil(lambda: w.training.autosave_label.text().startswith("autosaved "), timeout=5000)
    assert str(w.training.session.path) in w.training.autosave_label.toolTip()
    assert "Finished 2 epochs" in ui.status_text()
    w.close()


def test_an_unwritable_autosave_folder_is_named_before_the_run_and_training_goes_on(qtbot, settings, tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    w = MainWindow(settings=settings, dataset="digits", data_dir=str(blocker))
    qtbot.addWidget(w)
    w.show()
    assert w.training.session is None
    UI(qtbot, w).set(hidden_dim=32).train(epochs=1)
    assert w.training.autosave_label.text() == "autosave off"
    assert str(blocker / "sessions") in w.training.autosave_label.toolTip()
    w.close()
