"""Latent traversal: one slider per latent dimension and the traversal grid of the
β-VAE papers (rows = dimensions, columns = values)."""

from __future__ import annotations

import time

import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.latent import prior_samples, traversal_latents
from vaegui.widgets import GridPanel, ImageGridView

SLIDER_STEPS = 100  # slider ticks per unit of z
SLIDER_RANGE = 3.0


class TraversalPanel(GridPanel):
    """Sliders set z; the decoded mean image follows as a slider moves.

    Slider input is coalesced: a move schedules one decode for the next pass of the
    event loop, and moves that arrive before it runs are served by that one decode
    (only the latest request is decoded). The traversal grid is redrawn shortly after
    the sliders settle.
    """

    title = "traversal"

    def __init__(self, handle, settings=None, parent: QWidget | None = None):
        super().__init__(handle, settings, parent)
        self.image_view = ImageGridView()
        self.image_view.setMinimumSize(220, 220)
        self.start_combo = QComboBox()
        self.start_combo.addItem("prior mean (z = 0)", "zero")
        self.start_combo.addItem("random prior sample", "random")
        self.start_combo.addItem("posterior mean of test image", "image")
        self.start_index = QSpinBox()
        self.start_index.setPrefix("#")
        self.start_seed = QSpinBox()
        self.start_seed.setRange(0, 2**31 - 1)
        self.start_seed.setPrefix("seed ")
        self.reset_button = QPushButton("Set sliders")
        self.reset_button.setToolTip("Move every slider to the chosen start")
        self.cols_spin = QSpinBox()
        self.cols_spin.setRange(3, 21)
        self.cols_spin.setValue(9)
        self.range_spin = QDoubleSpinBox()
        self.range_spin.setRange(0.5, 6.0)
        self.range_spin.setSingleStep(0.5)
        self.range_spin.setValue(3.0)
        self.range_spin.setPrefix("±")

        self.sliders: list[QSlider] = []
        self.value_labels: list[QLabel] = []
        self.slider_box = QWidget()
        self.slider_grid = QGridLayout(self.slider_box)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.slider_box)
        scroll.setMinimumWidth(260)

        start_row = QHBoxLayout()
        start_row.addWidget(self.start_combo, 1)
        start_row.addWidget(self.start_index)
        start_row.addWidget(self.start_seed)
        start_row.addWidget(self.reset_button)
        form = QFormLayout()
        form.addRow("Start from:", start_row)
        grid_row = QHBoxLayout()
        grid_row.addWidget(QLabel("columns"))
        grid_row.addWidget(self.cols_spin)
        grid_row.addWidget(QLabel("values"))
        grid_row.addWidget(self.range_spin)
        grid_row.addStretch(1)
        grid_row.addWidget(self.export_button)
        form.addRow("Traversal grid:", grid_row)

        left = QVBoxLayout()
        left.addWidget(QLabel("Decoded image E[x|z]:"))
        left.addWidget(self.image_view, 2)
        left.addWidget(scroll, 3)
        right = QVBoxLayout()
        right.addLayout(form)
        right.addWidget(self.grid_view, 1)
        right.addWidget(self.caption)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 2)
        layout.addLayout(right, 3)

        self.latencies_ms: list[float] = []
        self._pending_since: float | None = None
        self._decode_scheduled = False
        self._painted_since: float | None = None
        self.image_view.item.on_paint = self._image_painted
        self._grid_timer = QTimer(self)
        self._grid_timer.setSingleShot(True)
        self._grid_timer.setInterval(120)
        self._grid_timer.timeout.connect(self.refresh)

        self.reset_button.clicked.connect(self.apply_start)
        self.start_combo.currentIndexChanged.connect(self._start_changed)
        self.start_index.valueChanged.connect(self.apply_start)
        self.start_seed.valueChanged.connect(self.apply_start)
        self.cols_spin.valueChanged.connect(self.refresh)
        self.range_spin.valueChanged.connect(self.refresh)
        handle.changed.connect(self._model_changed)
        handle.dataset_changed.connect(self._dataset_changed)
        self._start_changed()

    # -- sliders ---------------------------------------------------------------------------
    def _rebuild_sliders(self, d: int) -> None:
        for w in self.sliders + self.value_labels:
            w.deleteLater()
        while self.slider_grid.count():
            item = self.slider_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.sliders, self.value_labels = [], []
        for k in range(d):
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(int(-SLIDER_RANGE * SLIDER_STEPS), int(SLIDER_RANGE * SLIDER_STEPS))
            slider.setPageStep(SLIDER_STEPS // 2)
            slider.setToolTip(f"z{k}, from −3 to +3")
            value = QLabel("+0.00")
            value.setMinimumWidth(44)
            slider.valueChanged.connect(lambda v, k=k: self._slider_moved(k, v))
            self.slider_grid.addWidget(QLabel(f"z{k}"), k, 0)
            self.slider_grid.addWidget(slider, k, 1)
            self.slider_grid.addWidget(value, k, 2)
            self.sliders.append(slider)
            self.value_labels.append(value)

    def z(self) -> torch.Tensor:
        """The sliders' latent vector ``(D,)``."""
        return torch.tensor([s.value() / SLIDER_STEPS for s in self.sliders], dtype=torch.float32)

    def set_z(self, z: torch.Tensor) -> None:
        """Move the sliders to ``z`` ``(D,)`` (clipped to ±3) and decode once."""
        for k, slider in enumerate(self.sliders):
            slider.blockSignals(True)
            value = min(max(float(z[k]), -SLIDER_RANGE), SLIDER_RANGE)
            slider.setValue(int(round(value * SLIDER_STEPS)))
            slider.blockSignals(False)
            self.value_labels[k].setText(f"{slider.value() / SLIDER_STEPS:+.2f}")
        self._schedule_decode()
        self._grid_timer.start()

    def _slider_moved(self, k: int, value: int) -> None:
        self.value_labels[k].setText(f"{value / SLIDER_STEPS:+.2f}")
        self._schedule_decode()
        self._grid_timer.start()

    def _schedule_decode(self) -> None:
        if self._pending_since is None:
            self._pending_since = time.perf_counter()
        if not self._decode_scheduled:
            self._decode_scheduled = True
            QTimer.singleShot(0, self.decode_image)

    def decode_image(self) -> None:
        """Decode the sliders' z now (the latest request) and show it."""
        self._decode_scheduled = False
        if not self.handle.ready or not self.sliders:
            self._pending_since = None
            return
        image = self.handle.decode(self.z()[None])
        self.image_view.show_grid(image, 1, 1)
        self._painted_since, self._pending_since = self._pending_since, None

    def _image_painted(self) -> None:
        if self._painted_since is not None:
            self.latencies_ms.append((time.perf_counter() - self._painted_since) * 1000.0)
            self._painted_since = None

    # -- start -----------------------------------------------------------------------------
    def _start_changed(self) -> None:
        mode = self.start_combo.currentData()
        self.start_index.setVisible(mode == "image")
        self.start_seed.setVisible(mode == "random")
        self.apply_start()

    def start_z(self) -> torch.Tensor | None:
        d = self.handle.latent_dim
        if not self.handle.ready:
            return None
        mode = self.start_combo.currentData()
        if mode == "random":
            return prior_samples(1, d, self.start_seed.value())[0]
        if mode == "image" and self.handle.dataset is not None:
            return self.handle.posterior_mean(self.handle.test_image(self.start_index.value()))[0]
        return torch.zeros(d)

    def apply_start(self) -> None:
        z = self.start_z()
        if z is not None:
            self.set_z(z)

    def _dataset_changed(self) -> None:
        self.start_index.setRange(0, len(self.handle.dataset.test_x) - 1)

    def _model_changed(self) -> None:
        d = self.handle.latent_dim
        if d != len(self.sliders):
            self._rebuild_sliders(d)
            self.image_view.clear()
            self._needs_start = True
        if self.handle.ready and getattr(self, "_needs_start", False):
            self._needs_start = False
            self.apply_start()
        elif self.handle.ready and self.isVisible():
            self._schedule_decode()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.handle.ready:
            self._schedule_decode()

    # -- traversal grid --------------------------------------------------------------------
    def compute_grid(self):
        d = self.handle.latent_dim
        if len(self.sliders) != d:
            return None
        cols = self.cols_spin.value()
        r = self.range_spin.value()
        values = torch.linspace(-r, r, cols)
        z = traversal_latents(self.z(), list(range(d)), values)
        return self.handle.decode(z), d, cols

    def grid_caption(self) -> str:
        r = self.range_spin.value()
        return (
            f"Row k varies z_k from −{r:g} to +{r:g} in {self.cols_spin.value()} steps; the other "
            f"dimensions stay at the sliders' values. Weights: snapshot {self.handle.version}."
        )
