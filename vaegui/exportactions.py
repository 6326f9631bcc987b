"""File ▸ Export current grid / plots / metrics, and Copy to clipboard: what the window
exports, where the user says, with a clear message when a file cannot be written."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QTabWidget

from vaegui import __version__
from vaegui.context import WindowContext
from vaegui.dialogs import ask_export_path
from vaegui.export import save_metrics_csv
from vaegui.figdialog import PlotExportDialog, pil_to_qimage
from vaegui.figureactions import FigureActions
from vaegui.panels.plots import PlotsPanel
from vaegui.widgets import GridPanel, show_message


class ExportActions(QObject):
    """Exports of the window described by ``ctx``: the grid of the visible tab of
    ``tabs``, the ``plots`` as PNG, SVG or PDF, the run's metrics as CSV (nats per image),
    each with what made it (``figures``: model fingerprint, dataset, epoch, seed)."""

    def __init__(self, ctx: WindowContext, tabs: QTabWidget, plots: PlotsPanel, figures: FigureActions):
        super().__init__(ctx.window)
        self.ctx, self.tabs, self.plots, self.figures = ctx, tabs, plots, figures

    def current_grid_panel(self) -> GridPanel | None:
        """The visible tab when it shows a grid, else None."""
        panel = self.tabs.currentWidget()
        return panel if isinstance(panel, GridPanel) else None

    def export_current_grid(self) -> None:
        """Ask for the file, scale, padding and labels of the visible grid and write it (Ctrl+E)."""
        panel = self.current_grid_panel()
        if panel is None or panel.export_dialog() is None:
            self.ctx.status("Nothing to export yet on this panel.", 5000)

    def animate_current(self) -> None:
        """File ▸ Export animation (Ctrl+Shift+A): the animation dialog of the visible panel."""
        panel = self.current_grid_panel()
        if panel is None or panel.animate_dialog() is None:
            self.ctx.status("The traversal, interpolation, samples and manifold panels animate (once they show a "
                            "grid).", 6000)

    # -- plots -----------------------------------------------------------------------------------
    def export_plots_dialog(self) -> PlotExportDialog:
        """File ▸ Export plots (Ctrl+Shift+E): ask for the file (PNG, SVG, PDF) and size, then write it."""
        folder = self.ctx.settings.value("export/folder", str(Path.home()))
        size = self.plots.layout_widget.size()
        dialog = PlotExportDialog(self.ctx.window, str(Path(folder) / "training-curves.pdf"),
                                  (size.width(), size.height()), self.ctx.settings)

        def write() -> None:
            if self.export_plots(dialog.path(), dialog.width_spin.value(), dialog.height_spin.value(),
                                 dialog.dpi_spin.value()):
                dialog.remember()

        dialog.accepted.connect(write)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def plot_text(self) -> dict:
        """The provenance written into a plot export."""
        lines = self.figures.csv_comments()
        return {"Software": f"vaegui {__version__}", "Description": " | ".join(lines)}

    def export_plots(self, path: str, width: int | None = None, height: int | None = None, dpi: int = 96) -> bool:
        """The three plots as on screen, as PNG, SVG or PDF (by suffix) at ``width × height``
        pixels (default: as on screen); False (and a dialog) when it cannot be written."""
        size = self.plots.layout_widget.size()
        try:
            self.plots.export_figure(path, width or size.width(), height or size.height(), dpi, self.plot_text())
        except (OSError, ValueError) as exc:  # CheckpointError (unwritable place) is a ValueError
            show_message(self.ctx.window, QMessageBox.Icon.Critical, "Export failed", f"Could not write {path}: {exc}")
            return False
        self.ctx.status(f"Saved {path}", 8000)
        return True

    def export_plots_png(self, path: str) -> bool:
        """The three plots as one PNG at their size on screen."""
        return self.export_plots(path)

    # -- metrics ---------------------------------------------------------------------------------
    def export_csv_dialog(self) -> None:
        """File ▸ Export metrics as CSV (Ctrl+Shift+M): ask for the file, then write it."""
        path = ask_export_path(self.ctx.window, self.ctx.settings, "Export metrics as CSV", "metrics.csv",
                               "CSV files (*.csv)")
        if path:
            self.export_metrics_csv(path)

    def export_metrics_csv(self, path: str) -> bool:
        """Every step and epoch of the run as CSV rows (nats per image), after ``#`` lines that
        say what made them; False (and a dialog) when the file cannot be written."""
        header, rows = self.ctx.run.history.rows()
        try:
            n = save_metrics_csv(path, header, rows, self.figures.csv_comments())
        except OSError as exc:
            show_message(self.ctx.window, QMessageBox.Icon.Critical, "Export failed", f"Could not write {path}: {exc}")
            return False
        self.ctx.status(f"Saved {n} rows to {path}", 8000)
        return True

    # -- clipboard -------------------------------------------------------------------------------
    def copy_plots(self) -> None:
        """Edit ▸ Copy plots (Ctrl+Alt+C): the three plots as on screen."""
        QGuiApplication.clipboard().setImage(self.plots.layout_widget.grab().toImage())
        self.ctx.status("Copied the plots to the clipboard.", 5000)

    def copy_to_clipboard(self) -> str:
        """Edit ▸ Copy (Ctrl+Shift+C): the plots when they have the keyboard focus (a click on them), else the
        visible tab's grid (as the export draws it, 4× and 2 px padding) or its view.
        Returns what was copied ("plots", "grid", "view" or "")."""
        focus = QGuiApplication.focusObject()
        clipboard = QGuiApplication.clipboard()
        panel = self.tabs.currentWidget()
        view = self.plots.layout_widget
        on_plots = focus is view or (getattr(focus, "isWidgetType", lambda: False)() and view.isAncestorOf(focus))
        if on_plots:
            clipboard.setImage(self.plots.layout_widget.grab().toImage())
            what = "plots"
        elif isinstance(panel, GridPanel) and panel.figure is not None:
            clipboard.setImage(pil_to_qimage(panel.rendered()))
            what = "grid"
        elif panel is not None:
            clipboard.setImage(panel.grab().toImage())
            what = "view"
        else:
            return ""
        self.ctx.status(f"Copied the {what} to the clipboard.", 5000)
        return what
