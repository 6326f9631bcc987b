"""The Runs panel: the run folders under a folder (the window's own runs by default),
a table of their status and final figures sortable by any column, a tick per run
to overlay its curves on the training plots (a colour per run, TensorBoard-style),
and buttons to open a run's model in the latent panels or to follow it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from models.run import MetricHistory
from models.runfolder import (
    KEY_SETTINGS,
    METRICS_FILE,
    STATUS_FILE,
    RunFolderError,
    RunSummary,
    checkpoints,
    find_runs,
    read_metrics,
    read_status,
    summarize,
)

#: a colour per overlaid run (matplotlib's tab10 without the live run's blue and red)
COLOURS = ((255, 127, 14), (44, 160, 44), (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
           (188, 189, 34), (23, 190, 207))
SETTING_TITLES = {"model": "Model", "latent_dim": "z dims", "likelihood": "Likelihood", "objective": "Objective",
                  "beta": "β", "lr": "Learning rate", "batch_size": "Batch", "seed": "Seed"}
COLUMNS = ("Show", "Run", "Status", "Epochs", "Best test −ELBO", "Final test −ELBO",
           *(SETTING_TITLES.get(k, k) for k in KEY_SETTINGS))


class NumberItem(QTableWidgetItem):
    """A cell that sorts by its number (NaN last) rather than its text."""

    def __init__(self, value: float, text: str):
        super().__init__(text)
        self.number = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other) -> bool:
        if isinstance(other, NumberItem):
            a, b = self.number, other.number
            return (not math.isnan(a) and (math.isnan(b) or a < b))
        return super().__lt__(other)


def history_of(folder: Path) -> MetricHistory:
    """A run folder's metrics as a :class:`~models.run.MetricHistory` (for the overlay)."""
    history = MetricHistory()
    steps, epochs = read_metrics(folder)
    for batch in steps:
        history.add_steps(batch)
    for end in epochs:
        history.add_epoch(end)
    return history


class RunsPanel(QWidget):
    """Runs under a folder, with overlay ticks and open / follow buttons.

    Signals:
        overlays_changed(list): ``[(name, colour, MetricHistory)]`` of the ticked runs.
        open_model(str): open this checkpoint (the run's best, else its newest).
        follow(str): follow this run folder.
    """

    overlays_changed = Signal(list)
    open_model = Signal(str)
    follow = Signal(str)

    def __init__(self, settings: QSettings | None = None, default_root: str | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.default_root = default_root
        self.runs: list[RunSummary] = []
        self.shown: set[str] = set()
        self._histories: dict[str, tuple[tuple, MetricHistory]] = {}
        self._keys: dict[str, tuple] = {}
        #: (root, folder) → (files' key, summary): a run is read again only when its files changed
        self._summaries: dict[tuple[Path, Path], tuple[tuple, RunSummary]] = {}
        self.folder_edit = QLineEdit(self._stored_root())
        self.folder_edit.setPlaceholderText("a folder of run folders")
        self.folder_edit.returnPressed.connect(self.refresh)
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_root)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the folder again; it is also re-read every few seconds while shown")
        self.refresh_button.clicked.connect(self.refresh)
        top = QHBoxLayout()
        top.addWidget(QLabel("Runs in:"))
        top.addWidget(self.folder_edit, 1)
        top.addWidget(browse)
        top.addWidget(self.refresh_button)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSortingEnabled(True)
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.cellDoubleClicked.connect(lambda _r, _c: self._open_selected())
        self.open_button = QPushButton("Open model")
        self.open_button.setToolTip("Open the selected run's best checkpoint (else its newest) in the latent panels")
        self.open_button.clicked.connect(self._open_selected)
        self.follow_button = QPushButton("Follow")
        self.follow_button.setToolTip("Show the selected run in the window and follow it while it trains")
        self.follow_button.clicked.connect(self._follow_selected)
        self.clear_button = QPushButton("Clear overlays")
        self.clear_button.clicked.connect(self.clear_overlays)
        self.info = QLabel()
        self.info.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.open_button, self.follow_button, self.clear_button):
            buttons.addWidget(b)
        buttons.addWidget(self.info, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.timer = QTimer(self)
        self.timer.setInterval(3000)
        self.timer.timeout.connect(self._auto_refresh)
        self._update_buttons()

    # -- the folder --------------------------------------------------------------------------------
    def _stored_root(self) -> str:
        stored = self.settings.value("runs/root") if self.settings is not None else None
        return str(stored or self.default_root or "")

    @property
    def root(self) -> Path | None:
        text = self.folder_edit.text().strip()
        return Path(text).expanduser() if text else None

    def set_root(self, folder: str) -> None:
        self.folder_edit.setText(str(folder))
        if self.settings is not None:
            self.settings.setValue("runs/root", str(folder))
        self.refresh()

    def _choose_root(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of run folders", self.folder_edit.text())
        if folder:
            self.set_root(folder)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()
        self.timer.start()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.timer.stop()

    # -- the table ---------------------------------------------------------------------------------
    def _folder_key(self, folder: Path) -> tuple:
        def stamp(p: Path):
            try:
                st = p.stat()
                return st.st_size, st.st_mtime_ns
            except OSError:
                return None
        return stamp(folder / METRICS_FILE), stamp(folder / STATUS_FILE)

    def _auto_refresh(self) -> None:
        """The timer's look at the folder: the table and overlays change only when runs came or
        went or a run's files changed; unchanged runs are not read again."""
        root = self.root
        if root is not None and root.is_dir():
            self.refresh(only_changes=True)

    def _summaries_of(self, root: Path) -> list[RunSummary]:
        runs = []
        for folder in find_runs(root):
            key = self._folder_key(folder)
            cached = self._summaries.get((root, folder))
            if cached is None or cached[0] != key:
                try:
                    cached = (key, summarize(folder, root))
                except RunFolderError:
                    continue
                self._summaries[(root, folder)] = cached
            elif cached[1].state == "running":  # a writer that died changes no file: ask its status
                status = read_status(folder)
                if status.get("state") != "running":
                    cached = (key, dataclasses.replace(cached[1], state=str(status.get("state", "")),
                                                       message=str(status.get("message", ""))))
                    self._summaries[(root, folder)] = cached
            runs.append(cached[1])
        return sorted(runs, key=lambda r: r.name)

    def refresh(self, only_changes: bool = False) -> None:
        """Read the folder tree again: the table, then the overlays of the ticked runs."""
        root = self.root
        if root is None or not root.is_dir():
            self.runs = []
            self.info.setText("Choose a folder that holds run folders (vaegui train --run-dir, or the window's "
                              "own runs)." if root is None else f"{root} does not exist (yet).")
            self._fill()
            return
        if self.settings is not None:
            self.settings.setValue("runs/root", str(root))
        runs = self._summaries_of(root)
        keys = {r.name: self._folder_key(r.folder) for r in runs}
        if only_changes and keys == self._keys and [(r.name, r.state) for r in runs] == [
                (r.name, r.state) for r in self.runs]:
            return
        self.runs, self._keys = runs, keys
        self.shown &= {r.name for r in self.runs}
        self.info.setText(f"{len(self.runs)} runs in {root}. Tick runs to overlay their curves on the plots."
                          if self.runs else f"No run folders in {root} yet.")
        self._fill()
        self._emit_overlays()

    def _fill(self) -> None:
        table = self.table
        table.blockSignals(True)
        table.setSortingEnabled(False)
        table.setRowCount(len(self.runs))
        for row, run in enumerate(self.runs):
            show = QTableWidgetItem()
            show.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            show.setCheckState(Qt.CheckState.Checked if run.name in self.shown else Qt.CheckState.Unchecked)
            show.setData(Qt.ItemDataRole.UserRole, run.name)
            table.setItem(row, 0, show)
            name = QTableWidgetItem(run.name)
            name.setData(Qt.ItemDataRole.UserRole, run.name)
            name.setToolTip(str(run.folder))
            table.setItem(row, 1, name)
            status = QTableWidgetItem(run.state)
            status.setToolTip(run.message)
            table.setItem(row, 2, status)
            table.setItem(row, 3, NumberItem(run.epochs_done, f"{run.epochs_done}/{run.epochs}"))
            for col, value in ((4, run.best_test_neg_elbo), (5, run.final_test_neg_elbo)):
                table.setItem(row, col, NumberItem(value, "" if math.isnan(value) else f"{value:.2f}"))
            for i, key in enumerate(KEY_SETTINGS):
                v = run.settings.get(key, "")
                table.setItem(row, 6 + i, NumberItem(float(v), f"{v:g}") if isinstance(v, (int, float))
                              and not isinstance(v, bool) else QTableWidgetItem(str(v)))
            colour = self.colour_of(run.name)
            if colour is not None:
                name.setForeground(QColor(*colour))
        table.setSortingEnabled(True)
        table.blockSignals(False)
        self._update_buttons()

    def row_of(self, name: str) -> int:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 1).data(Qt.ItemDataRole.UserRole) == name:
                return row
        return -1

    def colour_of(self, name: str):
        if name not in self.shown:
            return None
        order = sorted(self.shown)
        return COLOURS[order.index(name) % len(COLOURS)]

    def set_shown(self, name: str, shown: bool) -> None:
        """Tick or untick a run's overlay (as a click on its box does)."""
        row = self.row_of(name)
        if row < 0:
            raise KeyError(name)
        self.table.item(row, 0).setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 0:
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        if item.checkState() == Qt.CheckState.Checked:
            self.shown.add(name)
        else:
            self.shown.discard(name)
        self._fill()
        self._emit_overlays()

    def clear_overlays(self) -> None:
        self.shown.clear()
        self._fill()
        self._emit_overlays()

    def _emit_overlays(self) -> None:
        out = []
        for run in self.runs:
            if run.name not in self.shown:
                continue
            key = self._keys.get(run.name)
            cached = self._histories.get(run.name)
            if cached is None or cached[0] != key:
                cached = (key, history_of(run.folder))
                self._histories[run.name] = cached
            out.append((run.name, self.colour_of(run.name), cached[1]))
        self.overlays_changed.emit(out)

    # -- the buttons -------------------------------------------------------------------------------
    def selected(self) -> RunSummary | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        name = self.table.item(rows[0].row(), 1).data(Qt.ItemDataRole.UserRole)
        return next((r for r in self.runs if r.name == name), None)

    def select(self, name: str) -> None:
        self.table.selectRow(self.row_of(name))

    def _update_buttons(self) -> None:
        run = self.selected()
        self.open_button.setEnabled(run is not None and bool(checkpoints(run.folder)))
        self.follow_button.setEnabled(run is not None)

    def _open_selected(self) -> None:
        run = self.selected()
        if run is None:
            return
        files = checkpoints(run.folder)
        best = [p for p in files if p.name == "best.vae"]
        if best or files:
            self.open_model.emit(str((best or files)[0]))

    def _follow_selected(self) -> None:
        run = self.selected()
        if run is not None:
            self.follow.emit(str(run.folder))
