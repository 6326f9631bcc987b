"""Saving, opening, importing, continuing, closing with unsaved work and crash
recovery, driven through the window's menus and dialogs."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest
import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit, QMessageBox

from models.checkpoint import read_checkpoint
from vaegui.mainwindow import MainWindow

from .test_gui import train_to_end, wait_finished
from .ui import UI


def when_modal(kind, act, timeout_ms=10000):
    """Act on the next modal dialog of ``kind`` as soon as it shows (it may block in exec())."""
    timer = QTimer()
    timer.setInterval(50)
    waited = {"ms": 0}

    def poll():
        waited["ms"] += 50
        widget = QApplication.activeModalWidget()
        if isinstance(widget, kind) and widget.isVisible():
            timer.stop()
            act(widget)
        elif waited["ms"] > timeout_ms:
            timer.stop()

    timer.timeout.connect(poll)
    timer.start()
    return timer


def pick_file(path):
    """Type the path into the file dialog's name box and press its accept button."""

    def act(dialog: QFileDialog):
        dialog.findChild(QLineEdit, "fileNameEdit").setText(str(path))
        dialog.accept()

    return when_modal(QFileDialog, act)


def click_button(text):
    def act(box: QMessageBox):
        for button in box.buttons():
            if button.text().replace("&", "") == text:
                button.click()
                return
        raise AssertionError(f"no button {text!r} in {[b.text() for b in box.buttons()]}")

    return when_modal(QMessageBox, act)


def visible_messages():
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


def message_texts():
    return " | ".join(box.text() for box in visible_messages())


def close_messages():
    for box in visible_messages():
        box.close()


@pytest.fixture
def fp32_window(window):
    window.form.precision_combo.setCurrentIndex(window.form.precision_combo.findData("fp32"))
    return window


def test_save_with_ctrl_s_then_open_in_a_new_window_and_continue(qtbot, fp32_window, settings, tmp_path):
    window = fp32_window
    train_to_end(qtbot, window, epochs=1)
    assert window.run.dirty and window.save_action.isEnabled() and window.form.continue_button.isEnabled()
    path = tmp_path / "one-epoch.vae"
    keep = pick_file(path)
    qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    del keep
    assert path.is_file() and not window.run.dirty
    c = read_checkpoint(path)
    assert c.epochs_done == 1 and c.has_training_state
    assert len(c.info["step_metrics"]["step"]) == window.controller.steps_per_epoch
    assert window.files.recent_files()[0] == str(path.resolve())

    other = MainWindow(settings=settings, dataset="mnist5k")
    qtbot.addWidget(other)
    other.show()
    keep = pick_file(path)
    other.open_action.trigger()
    del keep
    assert other.handle.dataset.name == "digits" and other.handle.ready
    assert other.form.latent_spin.value() == 2 and other.form.hidden_spin.value() == 64
    qtbot.waitUntil(lambda: other.plots.point_counts()["test"] == 1, timeout=2000)
    for key, value in c.weights.items():
        assert torch.equal(other.handle.model.state_dict()[key], value)
    # continue to 2 epochs in total, then compare with an uninterrupted 2-epoch run in the first window
    UI(qtbot, other).set(epochs=2)
    other.form.precision_combo.setCurrentIndex(other.form.precision_combo.findData("fp32"))
    qtbot.mouseClick(other.form.continue_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, other)
    assert other.run.last_done.step == 2 * other.controller.steps_per_epoch
    assert other.files.save_model(str(tmp_path / "resumed.vae"))
    train_to_end(qtbot, window, epochs=2)
    assert window.files.save_model(str(tmp_path / "straight.vae"))
    a, b = read_checkpoint(tmp_path / "resumed.vae"), read_checkpoint(tmp_path / "straight.vae")
    for key in a.weights:
        torch.testing.assert_close(a.weights[key], b.weights[key], rtol=0, atol=1e-6)
    other.close()


def test_gui_checkpoint_resumes_headless_and_cli_checkpoint_opens_in_gui(qtbot, fp32_window, tmp_path):
    window = fp32_window
    train_to_end(qtbot, window, epochs=1)
    assert window.files.save_model(str(tmp_path / "gui.vae"))
    result = subprocess.run(
        [sys.executable, "-m", "vaegui", "train", "--resume", str(tmp_path / "gui.vae"), "--epochs", "2",
         "--json", "--save", str(tmp_path / "cli.vae")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["epoch"] == 2
    assert window.files.open_model(str(tmp_path / "cli.vae"))
    assert window.run.state.position.epoch == 2
    assert "Opened cli.vae: 2 epochs" in UI(qtbot, window).status_text()


def test_bad_files_show_a_dialog_and_keep_the_open_model(qtbot, window, tmp_path):
    train_to_end(qtbot, window, epochs=1)
    assert window.files.save_model(str(tmp_path / "good.vae"))
    version = window.handle.version
    weights = {k: v.clone() for k, v in window.handle.model.state_dict().items()}
    truncated = tmp_path / "truncated.vae"
    truncated.write_bytes((tmp_path / "good.vae").read_bytes()[:2000])
    assert not window.files.open_model(str(truncated))
    assert "damaged or truncated" in message_texts()
    close_messages()
    good = read_checkpoint(tmp_path / "good.vae")
    from models.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "weights-only.vae", {k: v for k, v in good.tensors.items() if k.startswith("model.")},
                    good.info)
    assert not window.files.open_model(str(tmp_path / "weights-only.vae"))
    assert "no optimizer state" in message_texts()
    close_messages()
    assert window.handle.version == version
    for key, value in window.handle.model.state_dict().items():
        assert torch.equal(value, weights[key])


class _CreatesAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_import_refuses_a_malicious_pickle_and_accepts_plain_weights(qtbot, window, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        pickle.dump({"enc.weight": _CreatesAFile(str(marker))}, fh)
    keep = pick_file(evil)
    window.import_action.trigger()
    del keep
    assert not marker.exists()
    assert "refused" in message_texts() and not window.handle.ready
    close_messages()
    train_to_end(qtbot, window, epochs=1)
    torch.save(window.handle.model.state_dict(), tmp_path / "plain.pt")
    assert window.files.import_weights(str(tmp_path / "plain.pt"))
    assert window.handle.ready and not window.form.continue_button.isEnabled()


def test_non_finite_loss_keeps_the_last_finite_weights_and_continue_with_lower_lr(qtbot, window):
    UI(qtbot, window).set(lr=10.0)
    UI(qtbot, window).set(epochs=3)
    qtbot.mouseClick(window.form.train_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, window)
    assert "non-finite" in window.form.error_label.text() and "lower learning rate" in window.form.error_label.text()
    close_messages()
    state = window.run.state
    assert state is not None and window.form.continue_button.isEnabled()
    assert all(torch.isfinite(v).all() for v in state.weights().values())
    assert window.handle.version == state.position.version  # the panels show the restored weights
    UI(qtbot, window).set(lr=0.001)
    qtbot.mouseClick(window.form.continue_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, window)
    assert window.run.last_done is not None, window.run.last_error
    assert window.run.last_done.epochs_completed == 3
    assert not window.form.error_label.isVisible()


def test_autosave_each_epoch_into_the_session_folder_removed_on_clean_exit(qtbot, settings, tmp_path):
    w = MainWindow(settings=settings, dataset="digits", data_dir=str(tmp_path / "data"))
    qtbot.addWidget(w)
    UI(qtbot, w).set(hidden_dim=32)
    w.form.keep_spin.setValue(2)
    w.show()
    train_to_end(qtbot, w, epochs=3)
    qtbot.waitUntil(lambda: len(list(w.training.session.path.glob("autosave-*.vae"))) == 2, timeout=5000)
    names = sorted(p.name for p in w.training.session.path.glob("autosave-*.vae"))
    assert names[0].startswith("autosave-e0002") and names[1].startswith("autosave-e0003")
    folder = w.training.session.path
    w.close()
    assert not folder.exists()


def test_crashed_session_is_offered_for_restore(qtbot, settings, tmp_path):
    data = tmp_path / "data"
    crashed = data / "sessions" / "20260101-000000-1"
    crashed.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (crashed / "lock").write_text(dead.stdout.strip())
    result = subprocess.run(
        [sys.executable, "-m", "vaegui", "train", "--dataset", "digits", "--epochs", "1", "--hidden-dim", "32",
         "--save", str(crashed / "autosave-e0001-s00000012.vae")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    w = MainWindow(settings=settings, data_dir=str(data))
    qtbot.addWidget(w)
    w.show()
    box = w.files.offer_recovery()
    assert box is not None and "did not close normally" in box.text()
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: w.handle.ready, timeout=5000)
    assert w.run.state.position.epoch == 1
    assert w.files.offer_recovery() is None  # offered once only
    w.close()


def test_close_with_unsaved_model_asks_cancel_keeps_open_discard_closes(qtbot, window):
    train_to_end(qtbot, window, epochs=1)
    window.ask_on_close = True
    keep = click_button("Cancel")
    window.close()
    del keep
    assert window.isVisible()
    keep = click_button("Discard")
    window.close()
    del keep
    assert not window.isVisible()


def test_close_during_training_stop_and_save(qtbot, window, tmp_path):
    UI(qtbot, window).set(epochs=1000)
    qtbot.mouseClick(window.form.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.plots.steps.size > 0, timeout=30000)
    window.ask_on_close = True
    process = window.controller._process
    path = tmp_path / "closing.vae"
    keep_box = click_button("Stop and save…")
    keep_file = pick_file(path)
    window.close()
    del keep_box, keep_file
    assert not window.isVisible() and not process.is_alive()
    c = read_checkpoint(path)
    assert c.info["position"]["step"] > 0 and c.has_training_state


def test_open_recent_lists_saved_files_and_forgets_missing_ones(qtbot, window, tmp_path):
    train_to_end(qtbot, window, epochs=1)
    assert window.files.save_model(str(tmp_path / "a.vae"))
    actions = [a for a in window.files.recent_menu.actions() if "a.vae" in a.text()]
    assert len(actions) == 1
    (tmp_path / "a.vae").unlink()
    actions[0].trigger()
    assert "no longer exists" in message_texts()
    close_messages()
    assert window.files.recent_files() == []


def test_saving_to_an_unwritable_place_says_so_and_keeps_the_model_unsaved(qtbot, window, tmp_path):
    train_to_end(qtbot, window, epochs=1)
    assert not window.files.save_model(str(tmp_path / "no-such-folder" / "m.vae"))
    assert "could not save" in message_texts() and "Nothing was overwritten" in message_texts()
    close_messages()
    assert window.run.dirty and window.save_action.isEnabled()


def test_an_exception_in_the_training_process_shows_the_error_with_its_traceback(qtbot, window):
    from models.config import TrainConfig

    data = window.handle.dataset
    window.controller.start(window.form.model_config(data.image_shape), TrainConfig(device="cuda:7"), data)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=30000)
    assert "not usable here" in window.form.error_label.text()
    boxes = visible_messages()
    assert boxes and "Traceback" in boxes[-1].detailedText()
    close_messages()
    train_to_end(qtbot, window, epochs=1)  # the app stays usable


def test_a_saved_conditional_vae_opens_with_its_form_and_analogies(qtbot, window, settings, tmp_path):
    window.form.model_combo.setCurrentIndex(window.form.model_combo.findData("cvae"))
    window.form.likelihood_combo.setCurrentIndex(window.form.likelihood_combo.findData("cbernoulli"))
    train_to_end(qtbot, window, epochs=1)
    assert window.files.save_model(str(tmp_path / "cvae.vae"))
    other = MainWindow(settings=settings, dataset="digits")
    qtbot.addWidget(other)
    other.form.model_combo.setCurrentIndex(other.form.model_combo.findData("vae"))
    other.show()
    assert other.files.open_model(str(tmp_path / "cvae.vae"))
    assert other.form.model_combo.currentData() == "cvae"
    assert other.form.likelihood_combo.currentData() == "cbernoulli"
    UI(qtbot, other).show("Analogies")
    qtbot.waitUntil(lambda: UI(qtbot, other).grid("Analogies") is not None, timeout=3000)
    assert UI(qtbot, other).grid("Analogies")[2] == 11
    other.close()
