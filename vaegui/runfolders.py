"""Run folders in the window: where the window's own runs are written (one folder per
run under the app's data folder, unless the form's *Run folder* box is cleared), and
File ▸ Open run folder, which follows a run another process writes
(:class:`vaegui.follow.RunFolderFeed`)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox

from models.config import ModelConfig
from models.run import epochs_text
from models.runfolder import RunFolderError, read_status
from vaegui.context import WindowContext
from vaegui.dialogs import choose_folder
from vaegui.follow import RunFolderFeed
from vaegui.modelfiles import dataset_spec
from vaegui.protocol import RunFolderSettings
from vaegui.widgets import show_message


def run_folder_name(model_config: ModelConfig, dataset: str, now: float | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<model>-<size>-<dataset>`` (size: ``z20``, ``z100-50`` for two layers,
    ``K128x32`` for a VQ-VAE's codebook), safe as a folder name."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    data = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(dataset.split(":", 1)[-1]).name or dataset)[:40]
    c = model_config
    size = (f"K{c.codebook_size}x{c.code_dim}" if c.discrete else
            f"z{c.layer1_dim}-{c.latent_dim}" if c.hierarchical else f"z{c.latent_dim}")
    return f"{stamp}-{c.model}-{size}-{data}"


class RunFolders(QObject):
    """The window's run folders: ``feed`` follows one (None when not following);
    ``imported`` is the window's registry of imported datasets."""

    def __init__(self, ctx: WindowContext, imported: dict):
        super().__init__(ctx.window)
        self.ctx, self.imported = ctx, imported
        self.feed: RunFolderFeed | None = None
        self._attaching = False
        ctx.run.events.reset.connect(self._on_reset)
        ctx.controller.running_changed.connect(lambda running: running and self.stop())

    @property
    def root(self) -> Path | None:
        """Where the window's runs go (``<data folder>/runs``), None without a data folder."""
        return Path(self.ctx.data_dir) / "runs" if self.ctx.data_dir else None

    # -- the window's own runs --------------------------------------------------------------------
    def settings_for(self, model_config: ModelConfig, dataset: str, resume: bool) -> RunFolderSettings | None:
        """The run folder of a run about to start: a continued run goes on in its folder,
        a new one gets a new folder; None when the form says no or there is no data folder."""
        keep, tensorboard = self.ctx.form.outputs.run_folder_settings()
        if not keep:
            return None
        folder = self.ctx.run.folder if resume else None
        if folder is not None and read_status(folder).get("state") == "running":
            folder = None  # another process still writes there (a followed run): continue in a new folder
        if folder is None:
            if self.root is None:
                return None
            folder = str(self.root / run_folder_name(model_config, dataset))
        self.ctx.run.folder = folder
        return RunFolderSettings(folder, tensorboard=tensorboard)

    # -- following ---------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        """File ▸ Open run folder (Ctrl+Shift+F)."""
        if self.ctx.busy("follow a run folder"):
            return
        start = self.root if self.root is not None and self.root.is_dir() else None
        if start is not None and not self.ctx.settings.value("runs/folder"):
            self.ctx.settings.setValue("runs/folder", str(start))
        path = choose_folder(self.ctx.window, self.ctx.settings, "Open run folder")
        if path:
            self.follow(path)

    def follow(self, folder: str | Path) -> bool:
        """Show the run of ``folder`` and follow it while it is written. On a problem a
        dialog says what is wrong and the window stays as it was."""
        ctx = self.ctx
        if ctx.busy("follow a run folder"):
            return False
        try:
            feed = RunFolderFeed(folder, self._load_weights, parent=self)
            name = feed.dataset_name
            spec = dataset_spec(name)
            if (spec is None or not spec.builtin) and name not in self.imported:
                raise RunFolderError(f"the run trains on {name or 'an unnamed dataset'!r}: import that data first "
                                     "(File ▸ Import image folder / dataset file), then open the run folder again")
        except RunFolderError as exc:
            show_message(ctx.window, QMessageBox.Icon.Critical, "Open run folder", f"Could not open {folder}:\n{exc}")
            ctx.status(f"Could not open {folder}", 8000)
            return False
        ctx.form.show_dataset(name)
        data = ctx.handle.dataset
        if data is None or tuple(data.image_shape) != tuple(feed.model_config.input_shape):
            show_message(ctx.window, QMessageBox.Icon.Critical, "Open run folder",
                         f"Could not open {folder}: its images are {feed.model_config.input_shape}, the dataset's "
                         f"{None if data is None else data.image_shape}")
            return False
        self.stop()
        ctx.form.show_configs(feed.model_config, feed.train_config)
        ctx.handle.new_model(feed.model_config)
        self.feed = feed
        feed.ended.connect(self._ended)
        self._attaching = True
        try:
            feed.attach(ctx.run)
        finally:
            self._attaching = False
        ctx.run.folder = str(feed.folder)
        ctx.refresh()
        ctx.form.show_error("")
        state = feed.state or "running"
        ctx.status(f"Following {feed.folder.name} ({state}): {epochs_text(len(ctx.run.history.epochs))} so far.")
        ctx.window.setWindowTitle(f"vaegui — run {feed.folder.name} — {data.title}")
        return True

    def stop(self) -> None:
        """Stop following (what was read stays shown)."""
        if self.feed is not None:
            self.feed.stop()
            self.feed.deleteLater()
            self.feed = None

    def _on_reset(self) -> None:
        if not self._attaching:  # another run or model replaced the followed one
            self.stop()

    def _load_weights(self, version: int, weights, checkpoint) -> None:
        handle = self.ctx.handle
        handle.load_snapshot(version, weights, force=True)
        history = checkpoint.info.get("history") or []
        if history and history[-1].get("kl_per_dim"):
            handle.set_activity(history[-1]["kl_per_dim"])
        self.ctx.refresh()

    def _ended(self, state: str) -> None:
        epochs = self.ctx.run.history.epochs
        score = f"; test −ELBO {epochs[-1].test_neg_elbo:.2f} nats per image" if epochs else ""
        self.ctx.status(f"The followed run {state}: {epochs_text(len(epochs))}{score}.")
        self.ctx.refresh()
