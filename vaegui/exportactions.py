"""File ▸ Export current grid / plots / metrics: what the window exports, where the
user says, with a clear message when a file cannot be written."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox, QTabWidget

from vaegui.context import WindowContext
from vaegui.dialogs import ask_export_path
from vaegui.export import save_metrics_csv
from vaegui.panels.plots import PlotsPanel
from vaegui.widgets import GridPanel, show_message


class ExportActions(QObject):
    """Exports of the window described by ``ctx``: the grid of the visible tab of
    ``tabs``, the ``plots`` as PNG, the run's metrics as CSV (nats per image)."""

    def __init__(self, ctx: WindowContext, tabs: QTabWidget, plots: PlotsPanel):
        super().__init__(ctx.window)
        self.ctx, self.tabs, self.plots = ctx, tabs, plots

    def current_grid_panel(self) -> GridPanel | None:
        """The visible tab when it shows a grid, else None."""
        panel = self.tabs.currentWidget()
        return panel if isinstance(panel, GridPanel) else None

    def export_current_grid(self) -> None:
        """Ask for the file, scale and padding of the visible grid and write it (Ctrl+E)."""
        panel = self.current_grid_panel()
        if panel is None or panel.export_dialog() is None:
            self.ctx.status("Nothing to export yet on this panel.", 5000)

    def export_plots_dialog(self) -> None:
        """File ▸ Export plots as PNG (Ctrl+Shift+E): ask for the file, then write it."""
        path = ask_export_path(self.ctx.window, self.ctx.settings, "Export plots as PNG", "training-curves.png",
                               "PNG images (*.png)")
        if path:
            self.export_plots_png(path)

    def export_csv_dialog(self) -> None:
        """File ▸ Export metrics as CSV (Ctrl+Shift+C): ask for the file, then write it."""
        path = ask_export_path(self.ctx.window, self.ctx.settings, "Export metrics as CSV", "metrics.csv",
                               "CSV files (*.csv)")
        if path:
            self.export_metrics_csv(path)

    def export_plots_png(self, path: str) -> bool:
        """The three plots as one PNG; False (and a dialog) when it cannot be written."""
        try:
            self.plots.export_png(path)
        except Exception as exc:  # pyqtgraph's exporter raises several kinds
            show_message(self.ctx.window, QMessageBox.Icon.Critical, "Export failed", f"Could not write {path}: {exc}")
            return False
        self.ctx.status(f"Saved {path}", 8000)
        return True

    def export_metrics_csv(self, path: str) -> bool:
        """Every step and epoch of the run as CSV rows (nats per image); False (and a
        dialog) when the file cannot be written."""
        header, rows = self.ctx.run.history.rows()
        try:
            n = save_metrics_csv(path, header, rows)
        except OSError as exc:
            show_message(self.ctx.window, QMessageBox.Icon.Critical, "Export failed", f"Could not write {path}: {exc}")
            return False
        self.ctx.status(f"Saved {n} rows to {path}", 8000)
        return True
