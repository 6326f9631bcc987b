"""Run folders in the window: File ▸ Open run folder follows a `vaegui train --run-dir`
subprocess while it trains; a run whose writer is gone says so; the window's own runs
are written to run folders (and continued in them); the Runs panel lists, sorts,
overlays and opens runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QLineEdit

from models.runfolder import read_metrics, read_status
from vaegui.mainwindow import MainWindow

from .test_gui_files import when_modal
from .ui import UI


def pick_folder(path):
    def act(dialog: QFileDialog):
        dialog.findChild(QLineEdit, "fileNameEdit").setText(str(path))
        dialog.accept()

    return when_modal(QFileDialog, act)


def train_cli(folder, *args):
    return subprocess.run([sys.executable, "-m", "vaegui", "train", "--dataset", "digits", "--hidden-dim", "32",
                           "--run-dir", str(folder), *args], capture_output=True, text=True, timeout=300)


def test_the_window_follows_a_run_folder_while_another_process_trains(qtbot, window, tmp_path):
    folder = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "vaegui", "train", "--dataset", "digits", "--hidden-dim", "32",
                          "--latent-dim", "2", "--epochs", "8", "--run-dir", str(folder), "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        qtbot.waitUntil(lambda: (folder / "config.json").exists(), timeout=60_000)
        timer = pick_folder(folder)
        window.follow_action.trigger()  # File ▸ Open run folder…
        timer.stop()
        assert window.runs.feed is not None
        seen = []
        deadline = time.time() + 120
        while window.runs.feed is not None and window.runs.feed.state in ("", "running") and time.time() < deadline:
            qtbot.wait(50)
            seen.append(window.plots.point_counts()["test"])
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 0, err
    qtbot.wait(300)  # the 10 Hz plot timer
    last = json.loads(out.splitlines()[-1])
    assert window.plots.point_counts()["test"] == 8
    assert len(set(seen)) > 2 and min(seen) < 8  # the curves grew while the other process trained
    assert f"Epoch 8: test −ELBO {last['test_neg_elbo']:.2f} nats per image" in window.form.speed_label.text()
    assert window.form.progress.text() == "Finished 8 epochs"
    assert "finished" in UI(qtbot, window).status_text()
    assert window.handle.version > 0  # the latent panels decode the run's newest checkpoint
    assert window.manifold.isEnabled()


def test_a_run_whose_writer_is_gone_says_stopped_unexpectedly(qtbot, window, tmp_path):
    folder = tmp_path / "run"
    assert train_cli(folder, "--epochs", "2").returncode == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    status = json.loads((folder / "status.json").read_text())
    (folder / "status.json").write_text(json.dumps(dict(status, state="running", pid=int(dead.stdout))))
    ui = UI(qtbot, window)
    assert window.runs.follow(folder)
    qtbot.waitUntil(lambda: "stopped unexpectedly" in ui.messages(), timeout=5000)
    assert "process is gone" in ui.messages()
    ui.close_messages()
    assert len(window.run.history.epochs) == 2


def test_a_folder_that_is_not_a_run_is_a_message(qtbot, window, tmp_path):
    ui = UI(qtbot, window)
    assert not window.runs.follow(tmp_path)
    assert "is not a run folder: it has no config.json" in ui.messages()
    ui.close_messages()
    assert window.runs.feed is None
    assert "Could not open" in ui.status_text()


def test_the_windows_own_runs_go_to_run_folders_and_continue_there(qtbot, settings, tmp_path):
    w = MainWindow(settings=settings, dataset="digits", data_dir=str(tmp_path / "data"))
    qtbot.addWidget(w)
    ui = UI(qtbot, w).set(hidden_dim=32)
    w.show()
    ui.train(epochs=2)
    runs = list((tmp_path / "data" / "runs").iterdir())
    assert len(runs) == 1 and w.run.folder == str(runs[0])
    qtbot.waitUntil(lambda: read_status(runs[0])["state"] == "finished", timeout=10_000)
    _, epochs = read_metrics(runs[0])
    assert [e.epoch for e in epochs] == [1, 2]
    assert (runs[0] / "checkpoints" / "latest.vae").exists() and (runs[0] / "samples" / "epoch-0002.png").exists()
    ui.continue_to(3)
    qtbot.waitUntil(lambda: read_status(runs[0])["state"] == "finished", timeout=10_000)
    _, epochs = read_metrics(runs[0])
    assert [e.epoch for e in epochs] == [1, 2, 3]
    w.form.run_folder_check.setChecked(False)  # the user says no
    ui.train(epochs=1)
    assert len(list((tmp_path / "data" / "runs").iterdir())) == 1 and w.run.folder is None
    w.close()


def test_the_runs_panel_lists_sorts_overlays_and_opens_runs(qtbot, window, tmp_path):
    for beta in ("1", "8"):
        assert train_cli(tmp_path / "runs" / f"beta-{beta}", "--epochs", "2", "--beta", beta).returncode == 0
    ui = UI(qtbot, window)
    panel = ui.show("Runs")
    panel.folder_edit.setText(str(tmp_path / "runs"))
    ui.click(panel.refresh_button)
    table = panel.table
    assert table.rowCount() == 2
    column = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())].index("Best test −ELBO")
    table.sortItems(column, Qt.SortOrder.DescendingOrder)  # as a click on the header does
    values = [float(table.item(r, column).text()) for r in range(2)]
    assert values == sorted(values, reverse=True)
    names = [table.item(r, 1).text() for r in range(2)]
    for row in range(2):
        table.item(row, 0).setCheckState(Qt.CheckState.Checked)  # the tick a click sets
    assert sorted(window.plots.overlays) == ["beta-1", "beta-8"]
    curve = window.plots.overlays["beta-8"][0][1]
    assert curve.opts["pen"].color().getRgb()[:3] == panel.colour_of("beta-8")
    assert len(curve.xData) == 24
    ui.click(panel.clear_button)
    assert window.plots.overlays == {}
    panel.select(names[0])
    ui.click(panel.open_button)
    assert window.run.path.endswith("best.vae") and names[0] in window.run.path
    panel.select("beta-1")
    ui.click(panel.follow_button)
    assert window.runs.feed is not None and window.runs.feed.state == "finished"


def test_continue_from_a_followed_run_that_is_still_written_goes_to_a_new_folder(qtbot, settings, tmp_path):
    import os

    folder = tmp_path / "elsewhere"
    assert train_cli(folder, "--epochs", "1").returncode == 0
    status = json.loads((folder / "status.json").read_text())  # as if its writer were still at work
    (folder / "status.json").write_text(json.dumps(dict(status, state="running", pid=os.getpid(),
                                                        heartbeat=time.time() + 3600)))
    w = MainWindow(settings=settings, dataset="digits", data_dir=str(tmp_path / "data"))
    qtbot.addWidget(w)
    w.show()
    assert w.runs.follow(folder)
    qtbot.waitUntil(lambda: w.run.state is not None, timeout=5000)
    UI(qtbot, w).continue_to(2)
    runs = list((tmp_path / "data" / "runs").iterdir())
    assert len(runs) == 1 and w.run.folder == str(runs[0])
    assert [e.epoch for e in read_metrics(folder)[1]] == [1]  # the other writer's folder is left alone
    qtbot.waitUntil(lambda: read_status(runs[0])["state"] == "finished", timeout=10_000)
    assert [e.epoch for e in read_metrics(runs[0])[1]] == [2]
    w.close()
