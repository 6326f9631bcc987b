"""Sweeps: 'vaegui sweep' on Shapes writes a table and reopenable runs; the window's dialog runs
one in a child process, fills the table and the trade-off plot, opens a run, and cancels."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import Qt

from models.checkpoint import read_checkpoint
from models.runfolder import scan_runs
from models.sweep import tradeoff
from vaegui.cli import main

SMALL = ["--dataset", "shapes:300", "--epochs", "1", "--latent-dim", "2", "--hidden-dim", "16", "--batch-size", "100",
         "--score-points", "200"]


def test_cli_sweep_of_two_runs_writes_the_table_and_each_run_reopens(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--beta", "1", "4", "--seeds", "0", "--out", str(out), *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "run 2/2  beta 4  seed 0" in printed and "# per beta" in printed
    lines = (out / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("beta,seed,epochs,test_neg_elbo") and "mig" in lines[0] and len(lines) == 3
    for beta, line in zip((1.0, 4.0), lines[1:]):
        name = line.split(",")[-1]
        c = read_checkpoint(out / name)
        assert c.train_config.beta == beta and c.train_config.seed == 0 and c.info["position"]["epoch"] == 1
    runs = scan_runs(out)  # each run is a run folder too, for the Runs panel
    assert [(r.name, r.state, r.epochs_done, r.settings["beta"]) for r in runs] == [
        ("runs/beta-1_seed-0", "finished", 1, 1.0), ("runs/beta-4_seed-0", "finished", 1, 4.0)]
    assert (out / "runs" / "beta-4_seed-0" / "samples" / "epoch-0001.png").exists()
    assert main(["sweep", "--beta", "-1", "--out", str(tmp_path / "bad"), *SMALL]) == 2
    assert "beta must be" in capsys.readouterr().err


def test_tradeoff_is_the_mean_and_sd_over_seeds():
    rows = [{"beta": 1.0, "test_neg_elbo": 100.0, "mig": 0.1}, {"beta": 1.0, "test_neg_elbo": 104.0, "mig": 0.3},
            {"beta": 4.0, "test_neg_elbo": 120.0}]
    one, four = tradeoff(rows)
    assert (one["beta"], one["n"], one["neg_elbo"], one["score"]) == (1.0, 2, 102.0, pytest.approx(0.2))
    assert one["neg_elbo_sd"] == pytest.approx(math.sqrt(8)) and one["score_sd"] == pytest.approx(math.sqrt(0.02))
    assert four["neg_elbo_sd"] == 0.0 and math.isnan(four["score"])


def test_the_sweep_dialog_runs_fills_the_plot_opens_a_run_and_cancels(qtbot, window, tmp_path):
    window.form.show_dataset("shapes:300")
    qtbot.waitUntil(lambda: window.handle.dataset is not None and window.handle.dataset.name.startswith("shapes"),
                    timeout=30_000)
    window.form.latent_spin.setValue(2)
    window.form.epochs_spin.setValue(1)
    action = next(a for a in window.menuBar().actions() if a.text() == "&Training").menu().actions()
    next(a for a in action if a.text().startswith("Sweep")).trigger()
    dialog = window.sweep_dialog
    assert dialog.isVisible()
    dialog.beta_edit.setText("1 x")
    assert not dialog.start_button.isEnabled() and "'x' is not a number" in dialog.summary.text()
    dialog.beta_edit.setText("1 4")
    dialog.seed_edit.setText("0")
    dialog.folder_edit.setText(str(tmp_path / "runs"))
    assert "2 runs of 1 epoch each" in dialog.summary.text()
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert dialog.process is not None and not dialog.start_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.process is None, timeout=120_000)
    assert dialog.progress.text() == "finished: 2 runs", dialog.message.text()
    assert dialog.table.rowCount() == 2 and dialog.table.horizontalHeaderItem(0).text() == "β"
    x, _y = dialog.scatter.getData()
    assert len(x) == 2  # one point per β
    dialog.export_plot(str(tmp_path / "tradeoff.png"))
    assert (tmp_path / "tradeoff.png").stat().st_size > 1000
    assert dialog.open_selected(1)
    assert window.handle.ready and window.handle.model.config.latent_dim == 2
    qtbot.mouseClick(dialog.runs_button, Qt.MouseButton.LeftButton)  # Compare runs: the Runs tab on the sweep
    assert window.tabs.currentWidget() is window.runs_panel
    assert [window.runs_panel.table.item(r, 1).text() for r in range(2)] == ["runs/beta-1_seed-0",
                                                                           "runs/beta-4_seed-0"]
    # a folder written by the dialog (or the command line) opens again
    dialog.rows = []
    assert dialog.load_folder(str(tmp_path / "runs")) and dialog.table.rowCount() == 2
    # Cancel: the process stops between two steps, the finished runs stay
    window.form.epochs_spin.setValue(100_000)
    dialog.seed_edit.setText("0 1")
    dialog.folder_edit.setText(str(tmp_path / "long"))
    assert dialog.start()
    qtbot.waitUntil(lambda: "run 1/4" in dialog.progress.text(), timeout=60_000)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.process is None, timeout=20_000)
    assert dialog.progress.text() == "stopped: 0 of 4 runs finished"
    assert dialog.message.text() == "Interrupted; no run had finished"
    dialog.close()
