"""The sweep dialog (Training ▸ Sweep…): a grid of β × seeds with the form's other settings,
run by ``vaegui sweep`` in a child process (the window stays free; Cancel stops it between two
steps and keeps the finished runs), its table filled run by run, the trade-off plot (test −ELBO
against MIG, one point per β, seed spread as error bars; Higgins et al. 2017, fig. 6), and each
finished run openable in the window. A sweep folder written by the command line opens here too.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QProcess, QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from models.metrics import SCORE_TITLES
from models.run import epochs_text
from models.sweep import COLUMNS, read_table, tradeoff
from vaegui.sweepcmd import sweep_arguments
from vaegui.tasks import eta_text


def parse_numbers(text: str, kind=float) -> list:
    """``"1 2, 4"`` → ``[1.0, 2.0, 4.0]``; raises ``ValueError`` naming the bad entry or an empty list."""
    parts = text.replace(",", " ").split()
    if not parts:
        raise ValueError("give at least one value")
    out = []
    for p in parts:
        try:
            out.append(kind(p))
        except ValueError:
            raise ValueError(f"{p!r} is not {'an integer' if kind is int else 'a number'}") from None
    return list(dict.fromkeys(out))


class TradeoffPlot(pg.PlotWidget):
    """Test −ELBO against MIG, one point per β labelled with it, ±1 sd over seeds as error bars."""

    def __init__(self):
        super().__init__(background="w")
        self.setLabel("bottom", "MIG (mean over seeds)")
        self.setLabel("left", "test −ELBO, nats per image")
        self.setTitle("−ELBO against MIG, ±1 sd over seeds")
        for axis in ("bottom", "left"):
            self.getAxis(axis).enableAutoSIPrefix(False)
        self.scatter = pg.ScatterPlotItem(size=9, brush=pg.mkBrush(31, 119, 180))
        self.errors = pg.ErrorBarItem(pen=pg.mkPen(31, 119, 180))
        self.addItem(self.errors)
        self.addItem(self.scatter)
        self._labels: list[pg.TextItem] = []

    def show_points(self, points: list[dict]) -> None:
        """Draw :func:`models.sweep.tradeoff`'s points (none: an empty plot)."""
        for item in self._labels:
            self.removeItem(item)
        self._labels = []
        if not points:
            self.scatter.setData([], [])
            empty = np.zeros(0)  # every array at once: pyqtgraph keeps the others and cannot draw the mix
            self.errors.setData(x=empty, y=empty, width=empty, height=empty)
            return
        x = np.array([p["score"] for p in points])
        y = np.array([p["neg_elbo"] for p in points])
        self.scatter.setData(x, y)
        self.errors.setData(x=x, y=y, width=2 * np.array([p["score_sd"] for p in points]),
                            height=2 * np.array([p["neg_elbo_sd"] for p in points]))
        for p, xi, yi in zip(points, x, y):
            label = pg.TextItem(f"β={p['beta']:g}", color="k", anchor=(0, 1))
            label.setPos(xi, yi)
            self.addItem(label)
            self._labels.append(label)

    def export_png(self, path: str) -> None:
        """Save the plot as a PNG at twice its size on screen."""
        from pyqtgraph.exporters import ImageExporter

        exporter = ImageExporter(self.plotItem)
        exporter.parameters()["width"] = 2 * max(200, self.width())
        exporter.export(path)


class SweepDialog(QDialog):
    """Run a β × seed grid and show its table and trade-off plot.

    Args:
        form: the window's :class:`~vaegui.panels.training.TrainingPanel` (the other settings).
        open_model: ``open_model(path) -> bool``, the window's way to open a checkpoint.
        settings: where the grid and the folder are remembered.
        show_runs: ``show_runs(folder)``, the window's Runs tab on the sweep's run folders (its
            *Compare runs* button), or None.
    """

    def __init__(self, form, open_model, settings: QSettings | None = None, parent: QWidget | None = None,
                 show_runs=None):
        super().__init__(parent)
        self.setWindowTitle("Sweep: β × seeds")
        self.form, self.open_model, self.settings, self.show_runs = form, open_model, settings, show_runs
        self.process: QProcess | None = None
        self.rows: list[dict] = []
        self.folder = ""
        self._buffer = b""
        self._started = 0.0
        self._total = 0
        self._epochs = 1
        s = settings

        def remembered(key, default):
            return str(s.value(f"sweep/{key}", default)) if s is not None else default

        self.beta_edit = QLineEdit(remembered("betas", "1 2 4 8"))
        self.beta_edit.setToolTip("Values of β, the weight of the objective's penalty, separated by spaces")
        self.seed_edit = QLineEdit(remembered("seeds", "0 1 2"))
        self.seed_edit.setToolTip("Seeds of each β: the spread over seeds becomes the error bars")
        self.folder_edit = QLineEdit(remembered("folder", str(Path.home() / "vaegui-sweep")))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        self.scores_combo = QComboBox()
        self.scores_combo.addItem("MIG + SAP (seconds)", "fast")
        self.scores_combo.addItem("+ DCI (minutes per run)", "all")
        self.scores_combo.setToolTip("Scores of each finished run on the dataset's ground-truth factors")
        form_layout = QFormLayout()
        form_layout.addRow("β values:", self.beta_edit)
        form_layout.addRow("Seeds:", self.seed_edit)
        form_layout.addRow("Folder:", folder_row)
        form_layout.addRow("Scores:", self.scores_combo)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        form_layout.addRow(self.summary)

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train every run of the grid, one after another, in a separate process")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the sweep between two steps; the finished runs stay in the table")
        self.cancel_button.setEnabled(False)
        self.load_button = QPushButton("Open folder…")
        self.load_button.setToolTip("Show the table and trade-off of a sweep folder (also one from 'vaegui sweep')")
        self.open_button = QPushButton("Open run")
        self.open_button.setToolTip("Open the selected run's model in the window (or double-click its row)")
        self.export_button = QPushButton("Export plot…")
        self.runs_button = QPushButton("Compare runs")
        self.runs_button.setToolTip("Show the sweep's run folders in the window's Runs tab, to overlay their curves")
        self.runs_button.setVisible(show_runs is not None)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("")
        buttons = QHBoxLayout()
        for b in (self.start_button, self.cancel_button, self.load_button, self.open_button, self.export_button,
                  self.runs_button):
            buttons.addWidget(b)
        self.message = QLabel()
        self.message.setWordWrap(True)

        self.table = QTableWidget(0, 0)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.plot = TradeoffPlot()
        self.scatter = self.plot.scatter
        lower = QHBoxLayout()
        lower.addWidget(self.table, 3)
        lower.addWidget(self.plot, 2)

        layout = QVBoxLayout(self)
        layout.addLayout(form_layout)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addLayout(lower, 1)

        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.load_button.clicked.connect(self._load_dialog)
        self.open_button.clicked.connect(self.open_selected)
        self.export_button.clicked.connect(self._export_dialog)
        self.runs_button.clicked.connect(self.compare_runs)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.open_selected(row))
        for edit in (self.beta_edit, self.seed_edit):
            edit.textChanged.connect(self._update_summary)
        self._update_summary()
        self._sync()
        self.resize(980, 640)

    # -- the grid ---------------------------------------------------------------------------------
    def grid(self) -> tuple[list[float], list[int]]:
        """The β values and seeds typed in (raises ``ValueError`` with the reason)."""
        try:
            betas = parse_numbers(self.beta_edit.text(), float)
        except ValueError as exc:
            raise ValueError(f"β values: {exc}") from exc
        try:
            seeds = parse_numbers(self.seed_edit.text(), int)
        except ValueError as exc:
            raise ValueError(f"Seeds: {exc}") from exc
        return betas, seeds

    def _update_summary(self) -> None:
        try:
            betas, seeds = self.grid()
            train = self.form.train_config()
        except ValueError as exc:
            self.summary.setText(f"<span style='color:#8b0000'>{exc}</span>")
            self.start_button.setEnabled(False)
            return
        n = len(betas) * len(seeds)
        self.summary.setText(f"{n} runs of {epochs_text(train.epochs)} each, one after another, with the training "
                             "form's other settings and dataset; each run is saved in the folder with sweep.csv.")
        self._sync()

    def _sync(self) -> None:
        running = self.process is not None
        try:
            self.grid()
            valid = True
        except ValueError:
            valid = False
        self.start_button.setEnabled(valid and not running)
        self.cancel_button.setEnabled(running)
        self.load_button.setEnabled(not running)
        for w in (self.beta_edit, self.seed_edit, self.folder_edit, self.scores_combo):
            w.setEnabled(not running)
        self.open_button.setEnabled(bool(self.rows))
        self.export_button.setEnabled(bool(self.rows))

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Sweep folder", self.folder_edit.text())
        if path:
            self.folder_edit.setText(path)

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start the sweep in a child process; False (with the reason shown) when it cannot start."""
        if self.process is not None:
            return False
        try:
            betas, seeds = self.grid()
            model, train = self.form.model_config(), self.form.train_config()
            folder = self.folder_edit.text().strip()
            if not folder:
                raise ValueError("choose a folder for the runs")
            Path(folder).mkdir(parents=True, exist_ok=True)
            settings = sweep_arguments(model, train, self.form.dataset_key())
        except (ValueError, OSError) as exc:
            self.message.setText(f"The sweep cannot start: {exc}")
            return False
        if self.settings is not None:
            for key, edit in (("betas", self.beta_edit), ("seeds", self.seed_edit), ("folder", self.folder_edit)):
                self.settings.setValue(f"sweep/{key}", edit.text())
        self.folder, self.rows, self._buffer = folder, [], b""
        self._total, self._epochs = len(betas) * len(seeds), train.epochs
        args = ["-m", "vaegui", "sweep", "--json", "--out", folder, "--beta", *map(str, betas),
                "--seeds", *map(str, seeds), "--scores", self.scores_combo.currentData(),
                *settings]
        process = QProcess(self)
        process.readyReadStandardOutput.connect(self._read)
        process.finished.connect(self._finished)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        self.process = process
        self._started = time.perf_counter()
        self.message.setText("")
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self._show_rows()
        process.start(sys.executable, args)
        self._sync()
        return True

    def cancel(self, wait: bool = False) -> None:
        """Stop the sweep between two steps (SIGTERM; killed if it has not ended in 10 s). The
        dialog keeps reading its output meanwhile (a full pipe would hold the process); with
        ``wait`` (closing), return only once it has ended."""
        process = self.process
        if process is None:
            return
        self.progress.setFormat("stopping…")
        process.terminate()
        QTimer.singleShot(10_000, lambda: self.process is process and process.kill())
        if wait:
            deadline = time.perf_counter() + 10
            while process.state() != QProcess.ProcessState.NotRunning and time.perf_counter() < deadline:
                process.waitForFinished(100)
                process.readAllStandardOutput()
            if process.state() != QProcess.ProcessState.NotRunning:
                process.kill()
                process.waitForFinished(2_000)

    def _read(self) -> None:
        if self.process is None:
            return
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            self._event(event)

    def _event(self, event: dict) -> None:
        kind, i = event.get("event"), int(event.get("index", 0))
        if kind == "run":
            self._current = f"run {i + 1}/{self._total}: β={event['beta']:g}, seed {event['seed']}"
            done = i / self._total
        elif kind == "epoch":
            done = (i + event["epoch"] / max(1, self._epochs)) / self._total
            self._current = (f"run {i + 1}/{self._total}, epoch {event['epoch']}/{self._epochs}: test −ELBO "
                             f"{event['test_neg_elbo']:.2f}")
        elif kind == "row":
            self.rows.append({k: v for k, v in event.items() if k not in ("event", "index")})
            self._show_rows()
            done = (i + 1) / self._total
        else:
            return
        self.progress.setValue(int(1000 * done))
        self.progress.setFormat(self._current + eta_text(done, time.perf_counter() - self._started))

    def _finished(self, code: int, _status) -> None:
        process, self.process = self.process, None
        if process is not None:
            self._read_rest(process)
            error = bytes(process.readAllStandardError()).decode(errors="replace").strip()
            process.deleteLater()
        else:
            error = ""
        n = len(self.rows)
        if code == 0:
            self.progress.setValue(1000)
            self.progress.setFormat(f"finished: {n} runs")
            self.message.setText(f"{n} runs in {self.folder}; the table is {Path(self.folder) / 'sweep.csv'}.")
        else:
            self.progress.setFormat(f"stopped: {n} of {self._total} runs finished")
            last = [line for line in error.splitlines() if line.startswith("vaegui sweep:")]
            self.message.setText(last[-1][len("vaegui sweep: "):].capitalize() if last else
                                 f"The sweep ended with status {code}; the finished runs are in {self.folder}.")
        self._sync()

    def _read_rest(self, process: QProcess) -> None:
        self._buffer += bytes(process.readAllStandardOutput())
        lines, self._buffer = self._buffer.split(b"\n"), b""
        for line in lines:
            try:
                self._event(json.loads(line))
            except json.JSONDecodeError:
                continue

    # -- results ----------------------------------------------------------------------------------
    def load_folder(self, folder: str) -> bool:
        """Show a sweep folder's table (False with the reason shown when it has none)."""
        try:
            rows = read_table(Path(folder) / "sweep.csv")
        except ValueError as exc:
            self.message.setText(f"{exc}")
            return False
        self.folder, self.rows = folder, rows
        self.folder_edit.setText(folder)
        self.message.setText(f"{len(rows)} runs from {Path(folder) / 'sweep.csv'}.")
        self._show_rows()
        self._sync()
        return True

    def _load_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a sweep folder", self.folder_edit.text())
        if path:
            self.load_folder(path)

    def _show_rows(self) -> None:
        keys = [k for k in COLUMNS if any(k in r for r in self.rows)]
        self.table.clear()
        self.table.setColumnCount(len(keys))
        self.table.setRowCount(len(self.rows))
        self.table.setHorizontalHeaderLabels([COLUMNS[k] for k in keys])
        for i, r in enumerate(self.rows):
            for j, k in enumerate(keys):
                v = r.get(k, "")
                text = f"{v:g}" if k == "beta" else f"{v:.3f}" if isinstance(v, float) and k in SCORE_TITLES \
                    else f"{v:.2f}" if isinstance(v, float) else str(v)
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self._draw_tradeoff()

    def tradeoff_points(self) -> list[dict]:
        """The plotted points (:func:`models.sweep.tradeoff` over MIG)."""
        return [p for p in tradeoff(self.rows, "mig") if p["score"] == p["score"]] if self.rows else []

    def _draw_tradeoff(self) -> None:
        self.plot.show_points(self.tradeoff_points())

    def open_selected(self, row: int | None = None) -> bool:
        """Open the selected (or given) run's checkpoint in the window."""
        if row is None or isinstance(row, bool):
            rows = self.table.selectionModel().selectedRows()
            row = rows[0].row() if rows else -1
        if not 0 <= row < len(self.rows) or "file" not in self.rows[row]:
            self.message.setText("Select a finished run in the table first.")
            return False
        return bool(self.open_model(str(Path(self.folder) / self.rows[row]["file"])))

    def compare_runs(self) -> None:
        """The window's Runs tab on this sweep's folder (each run is a run folder under ``runs/``)."""
        folder = self.folder or self.folder_edit.text().strip()
        if self.show_runs is None or not folder:
            return
        if not (Path(folder) / "runs").is_dir():
            self.message.setText(f"{folder} has no run folders yet (sweeps write them under runs/ since this version).")
            return
        self.show_runs(folder)

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the trade-off plot",
                                              str(Path(self.folder or ".") / "tradeoff.png"), "PNG (*.png)")
        if path:
            self.export_plot(path)

    def export_plot(self, path: str) -> None:
        """Save the trade-off plot as a PNG at twice its size on screen."""
        self.plot.export_png(path)
        self.message.setText(f"Saved {path}.")

    def closeEvent(self, event) -> None:
        """Closing the dialog (or the window) stops a running sweep; the finished runs stay."""
        self.cancel(wait=True)
        super().closeEvent(event)
