"""What made a figure, and figures reopened: the provenance every export carries
(app, model fingerprint and file, configs, dataset, epoch, seed), and File ▸ Open
figure / a PNG dropped on the window, which puts the panel back to the exported
latents when the model that made it is open, and says which model made it otherwise."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox, QTabWidget

from vaegui import __version__
from vaegui.context import WindowContext
from vaegui.dialogs import choose_open_path
from vaegui.figrender import FigureInfoError, FigureRecord, read_figure
from vaegui.figures import file_sha256, weights_sha256
from vaegui.widgets import GridPanel, show_message


class FigureActions(QObject):
    """Provenance of the window's figures and reopening them into ``tabs``' grid panels."""

    def __init__(self, ctx: WindowContext, tabs: QTabWidget):
        super().__init__(ctx.window)
        self.ctx, self.tabs = ctx, tabs
        self._file_sha: tuple[str, float, str] | None = None
        for i in range(tabs.count()):
            panel = tabs.widget(i)
            if isinstance(panel, GridPanel):
                panel.caption_line = self.caption_line
            if hasattr(panel, "model_info"):  # the grids and the latent map
                panel.model_info = self.model_info

    def panel_for(self, kind: str) -> GridPanel | None:
        """The grid panel that shows figures of ``kind``."""
        for i in range(self.tabs.count()):
            panel = self.tabs.widget(i)
            if isinstance(panel, GridPanel) and panel.title == kind:
                return panel
        return None

    # -- provenance --------------------------------------------------------------------------
    def _saved_file_sha(self) -> tuple[str, str] | None:
        run = self.ctx.run
        if not run.path or run.dirty or not os.path.exists(run.path):
            return None
        mtime = os.path.getmtime(run.path)
        if self._file_sha is None or self._file_sha[:2] != (run.path, mtime):
            self._file_sha = (run.path, mtime, file_sha256(run.path))
        return Path(run.path).name, self._file_sha[2]

    def model_info(self) -> dict:
        """What made the figures now on screen: ``weights_sha256`` (what a reopened figure is
        matched by), the model file and its SHA-256 when the open model is saved unchanged,
        the configs, the dataset, the epochs done, the training seed and the snapshot."""
        h, run = self.ctx.handle, self.ctx.run
        if h.model is None:
            return {}
        info = {"weights_sha256": weights_sha256(h.model.state_dict()), "describe": h.model.config.describe(),
                "model_config": h.model.config.to_dict(), "snapshot": h.version,
                "dataset": run.dataset_name or (h.dataset.name if h.dataset is not None else ""),
                "epoch": len(run.history.epochs)}
        if run.train_config is not None:
            info["seed"] = run.train_config.seed
            info["train_config"] = run.train_config.to_dict()
        saved = self._saved_file_sha()
        if saved is not None:
            info["file"], info["file_sha256"] = saved
        return info

    def caption_line(self) -> str:
        """The caption offered for an export: model, dataset, epoch, seed."""
        h, run = self.ctx.handle, self.ctx.run
        if h.model is None:
            return ""
        data = h.dataset.title if h.dataset is not None else run.dataset_name
        seed = f"; training seed {run.train_config.seed}" if run.train_config is not None else ""
        return f"{h.model.config.describe()}; {data}; epoch {len(run.history.epochs)}{seed}; vaegui {__version__}"

    def csv_comments(self) -> list[str]:
        """The provenance lines of a metrics CSV."""
        info = self.model_info()
        lines = [f"vaegui {__version__}; ELBO terms in nats per image"]
        if info:
            lines.append(f"model: {info['describe']}; weights sha256 {info['weights_sha256']}"
                         + (f"; file {info['file']} sha256 {info['file_sha256']}" if "file" in info else ""))
            lines.append(f"dataset: {info['dataset']}; epochs {info['epoch']}"
                         + (f"; seed {info['seed']}" if "seed" in info else ""))
        return lines

    # -- reopening ---------------------------------------------------------------------------
    def open_figure_dialog(self) -> None:
        """File ▸ Open figure: pick a PNG exported by vaegui and restore its latents."""
        path = choose_open_path(self.ctx.window, self.ctx.settings, "Open figure", "PNG images (*.png)")
        if path:
            self.open_figure(path)

    def open_figure(self, path: str) -> bool:
        """Restore the panel of the figure in ``path`` to its exported latents and settings.

        With another model open (its weights' SHA-256 differs), or none, nothing changes and
        a dialog says which model made the figure. A PNG without a vaegui description or a
        damaged one gets a dialog too.
        """
        name = Path(path).name
        try:
            record = read_figure(path)
        except FigureInfoError as exc:
            show_message(self.ctx.window, QMessageBox.Icon.Warning, "Open figure", str(exc))
            return False
        made_by = record.model
        h = self.ctx.handle
        current = weights_sha256(h.model.state_dict()) if h.ready else None
        if made_by.get("weights_sha256") != current:
            which = "another model than the one open" if current is not None else "a model, and none is open"
            show_message(self.ctx.window, QMessageBox.Icon.Information, "Open figure",
                         f"{name} was made by {which}:\n\n{self.who(record)}\n\n"
                         "Open that model (File ▸ Open model), then open the figure again to get its latents back.")
            return False
        panel = self.panel_for(record.kind)
        if panel is None or h.mismatch():
            show_message(self.ctx.window, QMessageBox.Icon.Warning, "Open figure",
                         f"{name}: a {record.kind} figure cannot be restored here"
                         + (f" ({h.mismatch()})" if h.mismatch() else ""))
            return False
        self.tabs.setCurrentWidget(panel)
        try:
            what = panel.restore(record)
        except (ValueError, KeyError, TypeError) as exc:
            show_message(self.ctx.window, QMessageBox.Icon.Warning, "Open figure", f"{name}: {exc}")
            return False
        self.ctx.status(f"Opened {name}: {what}.", 10000)
        return True

    @staticmethod
    def who(record: FigureRecord) -> str:
        """The model that made a figure, in words."""
        m = record.model
        if not m:
            return "(the PNG does not say: it was exported before a model was trained)"
        parts = [m.get("describe", "a model"), f"trained on {m.get('dataset') or 'an unnamed dataset'}",
                 f"epoch {m.get('epoch', '?')}"]
        if "seed" in m:
            parts.append(f"seed {m['seed']}")
        if "file" in m:
            parts.append(f"file {m['file']} (SHA-256 {m['file_sha256'][:12]}…)")
        parts.append(f"weights SHA-256 {str(m.get('weights_sha256', ''))[:12]}…; {record.doc.get('app', '')}")
        return ", ".join(parts)
