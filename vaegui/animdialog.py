"""The animation dialog: what to animate (from the panel it was opened on), frames, fps,
loop, the drawing options, a preview that plays, and the file (GIF, animated PNG, MP4).
Frames over training are decoded from checkpoints off the GUI thread, with progress
and Cancel."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from vaegui.animation import (
    MissingVideo,
    interpolation_frames,
    render_frames,
    save_animation,
    training_frames,
    traversal_frames,
)
from vaegui.figdialog import checked_path, file_row, pil_to_qimage
from vaegui.figrender import FigureStyle
from vaegui.tasks import BackgroundTask, eta_text

PREVIEW = 320
FILTER = "GIF animations (*.gif);;Animated PNG (*.png);;MP4 video (*.mp4)"


class AnimationDialog(QDialog):
    """Animate the grid of ``panel`` (a traversal, interpolation, samples or manifold panel).

    Traversal: every dimension tiled, or one after another, over ``frames`` values in
    ±range. Interpolation: the panel's path A → B (→ A). Samples and manifold: the panel's
    z decoded by every checkpoint in a folder (the session's autosaves by default), one
    frame per checkpoint in training order.
    """

    def __init__(self, panel, default_folder: str, settings: QSettings | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent or panel)
        self.setWindowTitle(f"Export {panel.title} animation")
        self.panel, self.settings, self.kind = panel, settings, panel.title
        self.frames: list = []
        self.images: list = []
        self.pixmaps: list = []
        self._loaded: list = []  # frames decoded from checkpoints, in training order
        self.task: BackgroundTask | None = None
        self._shown = 0
        self.path_edit = QLineEdit(str(Path(self._get("folder", str(Path.home()))) / f"{self.kind}.gif"))
        path_row = file_row(self, self.path_edit, "Export animation", FILTER)
        self.layout_combo = QComboBox()
        self.layout_combo.addItem("every dimension at once (tiled)", "tiled")
        self.layout_combo.addItem("one dimension after another", "sequence")
        self.values_spin = QSpinBox()
        self.values_spin.setRange(2, 200)
        self.values_spin.setValue(int(self._get("frames", 16)))
        self.values_spin.setToolTip("Traversal: values per dimension; interpolation: points on the path")
        self.source_edit = QLineEdit(default_folder)
        self.source_edit.setToolTip("A folder of .vae checkpoints (autosaves, saved models): one frame each")
        source_browse = QPushButton("Folder…")
        source_browse.clicked.connect(self._browse_source)
        self.load_button = QPushButton("Decode checkpoints")
        self.load_button.clicked.connect(self.load_checkpoints)
        source_row = QHBoxLayout()
        source_row.addWidget(self.source_edit, 1)
        source_row.addWidget(source_browse)
        source_row.addWidget(self.load_button)
        self.fps_spin = QDoubleSpinBox()
        self.fps_spin.setRange(0.5, 60.0)
        self.fps_spin.setValue(float(self._get("fps", 10.0)))
        self.fps_spin.setSuffix(" fps")
        self.loop_spin = QSpinBox()
        self.loop_spin.setRange(0, 1000)
        self.loop_spin.setSpecialValueText("forever")
        self.loop_spin.setSuffix(" times")
        self.bounce_check = QCheckBox("Play back to the start (A → B → A)")
        self.bounce_check.setChecked(self._get("bounce", "true") in (True, "true"))
        self.scale_spin = QSpinBox()
        self.scale_spin.setRange(1, 32)
        self.scale_spin.setValue(int(self._get("anim_scale", 4)))
        self.scale_spin.setSuffix("×")
        self.padding_spin = QSpinBox()
        self.padding_spin.setRange(0, 64)
        self.padding_spin.setValue(2)
        self.padding_spin.setSuffix(" px")
        self.labels_check = QCheckBox("Labels (z value, t, epoch)")
        self.labels_check.setChecked(self._get("anim_labels", "true") in (True, "true"))
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel decoding")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(PREVIEW, PREVIEW)
        self.preview.setStyleSheet("background: #e8e8e8;")
        form = QFormLayout()
        form.addRow("File:", path_row)
        if self.kind == "traversal":
            form.addRow("Layout:", self.layout_combo)
        if self.kind in ("traversal", "interpolation"):
            form.addRow("Frames:", self.values_spin)
        else:
            form.addRow("Checkpoints:", source_row)
        form.addRow("Speed:", self.fps_spin)
        form.addRow("Loop:", self.loop_spin)
        form.addRow("", self.bounce_check)
        form.addRow("Upscale:", self.scale_spin)
        form.addRow("Padding:", self.padding_spin)
        form.addRow("", self.labels_check)
        form.addRow(self.info_label)
        form.addRow(self.progress)
        form.addRow(self.cancel_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        body = QHBoxLayout()
        body.addLayout(form, 1)
        body.addWidget(self.preview)
        layout = QVBoxLayout(self)
        layout.addLayout(body)
        layout.addWidget(buttons)
        self.player = QTimer(self)
        self.player.timeout.connect(self._next_frame)
        self.finished.connect(lambda _r: (self.player.stop(), self.cancel()))
        for w in (self.values_spin, self.scale_spin, self.padding_spin):
            w.valueChanged.connect(self.rebuild)
        for w in (self.bounce_check, self.labels_check):
            w.toggled.connect(self.rebuild)
        self.layout_combo.currentIndexChanged.connect(self.rebuild)
        self.fps_spin.valueChanged.connect(self._restart_player)
        if self.kind in ("traversal", "interpolation"):
            self.rebuild()
        else:
            self.save_button.setEnabled(False)
            self.info_label.setText("Press Decode checkpoints: each one becomes a frame (the same z, decoded by "
                                    "the weights of that epoch).")
            self.bounce_check.setChecked(False)

    # -- settings --------------------------------------------------------------------------
    def _get(self, key: str, default):
        return self.settings.value(f"export/{key}", default) if self.settings is not None else default

    def remember(self) -> None:
        if self.settings is None:
            return
        for key, value in (("frames", self.values_spin.value()), ("fps", self.fps_spin.value()),
                           ("bounce", self.bounce_check.isChecked()), ("anim_scale", self.scale_spin.value()),
                           ("anim_labels", self.labels_check.isChecked()),
                           ("folder", str(Path(self.path()).parent))):
            self.settings.setValue(f"export/{key}", value)

    def path(self) -> str:
        return self.path_edit.text().strip()

    def style(self) -> FigureStyle:
        return FigureStyle(scale=self.scale_spin.value(), padding=self.padding_spin.value(),
                           labels=self.labels_check.isChecked(), font_pt=7.0, dpi=96)

    # -- frames ----------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Decode the frames of a traversal or interpolation (cheap: on the GUI thread) and
        redraw all frames with the current options."""
        p = self.panel
        if self.kind == "traversal":
            r = p.range_spin.value()
            self.frames = traversal_frames(lambda z: p.handle.decode(z, p.label()), p.z(), p.dim_order(),
                                           torch.linspace(-r, r, self.values_spin.value()),
                                           self.layout_combo.currentData(), self.bounce_check.isChecked())
        elif self.kind == "interpolation":
            fig = p.figure
            if fig is None:
                self.info_label.setText("Press Interpolate on the panel first.")
                self.save_button.setEnabled(False)
                return
            mu_a, mu_b = (torch.tensor(fig.params[k]) for k in ("mu_a", "mu_b"))
            self.frames = interpolation_frames(lambda z: p.handle.decode(z, p.label()), mu_a, mu_b,
                                               self.values_spin.value(), fig.params["mode"],
                                               self.bounce_check.isChecked())
        elif self._loaded:
            self.frames = list(self._loaded) + (self._loaded[-2:0:-1] if self.bounce_check.isChecked() else [])
        self._draw()

    def _draw(self) -> None:
        if not self.frames:
            return
        self.images = render_frames(self.frames, self.style())
        self.pixmaps = [QPixmap.fromImage(pil_to_qimage(im)).scaled(
            PREVIEW, PREVIEW, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
            for im in self.images]
        w, h = self.images[0].size
        fps = self.fps_spin.value()
        self.info_label.setText(f"{len(self.images)} frames of {w} × {h} pixels, {len(self.images) / fps:.1f} s "
                                f"at {fps:g} fps.")
        self.save_button.setEnabled(True)
        self._shown = 0
        self._restart_player()

    def _restart_player(self) -> None:
        if self.images:
            self.player.start(max(10, int(1000 / self.fps_spin.value())))
            self._next_frame()

    def _next_frame(self) -> None:
        if self.pixmaps:
            self.preview.setPixmap(self.pixmaps[self._shown % len(self.pixmaps)])
            self._shown += 1

    def load_checkpoints(self) -> BackgroundTask:
        """Decode the panel's z with every checkpoint of the folder, off the GUI thread."""
        p, folder = self.panel, self.source_edit.text().strip()
        if self.kind == "samples":
            kwargs = {"rows": p.rows_spin.value(), "cols": p.cols_spin.value(), "seed": p.seed_spin.value()}
        else:
            kwargs = {"grid": p.grid_spin.value(), "dims": p.dims()}

        def work(progress, stopped):
            return training_frames([folder], self.kind, progress=progress, stopped=stopped, **kwargs)

        self.cancel()
        task = BackgroundTask(work, parent=self)
        self.task = task
        task.progressed.connect(self._progressed)
        task.succeeded.connect(self._loaded_frames)
        task.failed.connect(lambda msg, _details: self._ended(f"Could not decode the checkpoints: {msg}"))
        task.cancelled.connect(lambda: self._ended("Cancelled."))
        task.finished.connect(task.deleteLater)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.load_button.setEnabled(False)
        task.start()
        return task

    def _progressed(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(100 * fraction))
        elapsed = 0.0 if self.task is None else time.perf_counter() - self.task.started_at
        self.progress.setFormat(f"{text}{eta_text(fraction, elapsed)}")

    def _ended(self, message: str) -> None:
        self.task = None
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.load_button.setEnabled(True)
        if message:
            self.info_label.setText(message)

    def _loaded_frames(self, frames: list) -> None:
        self._ended("")
        self._loaded = frames
        self.rebuild()

    def cancel(self) -> None:
        """Stop decoding checkpoints (the thread ends at its next checkpoint)."""
        if self.task is not None:
            self.task.cancel()
            self.task.wait(5000)

    # -- files -----------------------------------------------------------------------------
    def _browse_source(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of checkpoints", self.source_edit.text())
        if folder:
            self.source_edit.setText(folder)

    def save(self) -> bool:
        """Write the animation; the dialog stays open with a message when it cannot be."""
        path = checked_path(self, self.path_edit, (".gif", ".png", ".mp4"))
        if not path:
            return False
        try:
            n, w, h = save_animation(path, self.images, self.fps_spin.value(), self.loop_spin.value())
        except (OSError, ValueError, MissingVideo) as exc:
            QMessageBox.warning(self, "Export animation", f"Could not write {path}:\n{exc}")
            return False
        self.remember()
        self.panel.exported.emit(f"Saved {path} ({n} frames, {w} × {h} pixels)")
        self.accept()
        return True
