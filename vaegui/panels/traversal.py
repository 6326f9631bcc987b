"""Latent traversal: one slider per latent dimension and the traversal grid of the
β-VAE papers (rows = dimensions, columns = values)."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.latent import prior_samples
from models.trainer import ACTIVE_KL
from vaegui.figures import traversal_figure
from vaegui.widgets import (
    GridPanel,
    ImageGridView,
    dropped_image_paths,
    load_dropped_image,
    on_screen,
    restore_label,
    show_message,
)

SLIDER_STEPS = 100  # slider ticks per unit of z
SLIDER_RANGE = 3.0


class TraversalPanel(GridPanel):
    """Sliders set z; the decoded mean image follows as a slider moves.

    Slider input is coalesced: a move schedules one decode for the next pass of the
    event loop, and moves that arrive before it runs are served by that one decode
    (only the latest request is decoded). The traversal grid is redrawn shortly after
    the sliders settle; new weights that arrive while they move update the image at
    once and the grid when they rest (a grid is D rows of decoded images, 10 ms for
    20 rows of 64×64 on one core, and a move landing behind it would wait).
    """

    title = "traversal"
    discrete_ok = False
    animatable = True

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
        self.sort_check = QCheckBox("Sort by KL")
        self.sort_check.setChecked(True)  # the manifold's default axes are the first two rows
        self.sort_check.setToolTip(
            "Order sliders and grid rows by each dimension's KL on the test split, most active first "
            "(inactive dimensions, KL < 0.01 nats, are marked)"
        )

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
        form.addRow(self.label_title, self.label_combo)
        grid_row = QHBoxLayout()
        grid_row.addWidget(QLabel("columns"))
        grid_row.addWidget(self.cols_spin)
        grid_row.addWidget(QLabel("values"))
        grid_row.addWidget(self.range_spin)
        grid_row.addWidget(self.sort_check)
        grid_row.addStretch(1)
        form.addRow("Traversal grid:", grid_row)
        export_row = QHBoxLayout()
        export_row.addWidget(self.export_button)
        export_row.addWidget(self.animate_button)
        export_row.addStretch(1)
        form.addRow("Export:", export_row)

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
        self.dropped_name = ""
        self.setAcceptDrops(True)
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
        self.sort_check.toggled.connect(self._order_changed)
        handle.activity_changed.connect(self._order_changed)
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
        self.sliders, self.value_labels, self._name_labels = [], [], []
        for k in range(d):
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(int(-SLIDER_RANGE * SLIDER_STEPS), int(SLIDER_RANGE * SLIDER_STEPS))
            slider.setPageStep(SLIDER_STEPS // 2)
            slider.setToolTip(f"z{k}, from −3 to +3")
            value = QLabel("+0.00")
            value.setMinimumWidth(44)
            slider.valueChanged.connect(lambda v, k=k: self._slider_moved(k, v))
            name = QLabel(f"z{k}")
            # wide enough for any "z63 · KL 99.99 nats": a label that grows would re-lay out
            # the whole panel (and repaint both image views) in the middle of training
            name.setMinimumWidth(name.fontMetrics().horizontalAdvance("z63 · KL 199.99 nats") + 4)
            self._name_labels.append(name)
            self.slider_grid.addWidget(name, k, 0)
            self.slider_grid.addWidget(slider, k, 1)
            self.slider_grid.addWidget(value, k, 2)
            self.sliders.append(slider)
            self.value_labels.append(value)

    def dim_order(self) -> list[int]:
        """Latent dimensions in display order: by test KL, largest first, when sorting."""
        d = self.handle.latent_dim
        kl = self.handle.kl_per_dim
        if self.sort_check.isChecked() and len(kl) == d:
            return sorted(range(d), key=lambda k: -kl[k])
        return list(range(d))

    def _order_changed(self) -> None:
        kl = self.handle.kl_per_dim
        self._name_labels = getattr(self, "_name_labels", [])
        for row, k in enumerate(self.dim_order()):
            if k >= len(self.sliders):
                return
            name = self._name_labels[k]
            known = len(kl) == len(self.sliders)
            name.setText(f"z{k} · KL {kl[k]:.2f} nats" if known else f"z{k}")
            inactive = known and kl[k] < ACTIVE_KL
            if name.property("inactive") != inactive:  # restyling is costly: only on a change
                name.setProperty("inactive", inactive)
                name.setStyleSheet("color: #999;" if inactive else "")
            name.setToolTip(
                f"Activity of z{k}: its KL(q(z{k}|x) ‖ p(z{k})) averaged over the test split, {kl[k]:.3f} nats. "
                "A dimension the encoder uses carries information about the image and costs KL; one below "
                f"{ACTIVE_KL} nats is inactive (collapsed to the prior): moving its slider changes little."
                if known else f"z{k}: its activity (KL, nats) is shown after the first epoch"
            )
            item = self.slider_grid.itemAtPosition(row, 1)
            if item is None or item.widget() is not self.sliders[k]:  # move rows only when the order changed
                for col, w in enumerate((name, self.sliders[k], self.value_labels[k])):
                    self.slider_grid.addWidget(w, row, col)
        self._on_model_changed()  # redrawn in the next turn if visible, else when shown

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
        image = self.handle.decode(self.z()[None], self.label())
        self.image_view.show_grid(image, 1, 1)
        self._painted_since, self._pending_since = self._pending_since, None

    def _image_painted(self) -> None:
        if self._painted_since is not None:
            self.latencies_ms.append((time.perf_counter() - self._painted_since) * 1000.0)
            self._painted_since = None

    # -- drag and drop of an image file: start from its posterior mean ----------------------
    def dragEnterEvent(self, event) -> None:
        if dropped_image_paths(event.mimeData()) and self.handle.ready and not self.handle.mismatch():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        paths = dropped_image_paths(event.mimeData())
        if not paths or not self.handle.ready:
            return
        try:
            image = load_dropped_image(paths[0], self.handle)
        except ValueError as exc:
            show_message(self, QMessageBox.Icon.Warning, "Drop", f"{Path(paths[0]).name}: {exc}")
            return
        event.acceptProposedAction()
        self.dropped_name = Path(paths[0]).name
        self.set_z(self.handle.posterior_mean(image, self.label() or 0)[0])

    # -- start -----------------------------------------------------------------------------
    def _start_changed(self) -> None:
        mode = self.start_combo.currentData()
        self.start_index.setVisible(mode == "image")
        self.start_seed.setVisible(mode == "random")
        self.apply_start()

    def start_z(self) -> torch.Tensor | None:
        """The chosen start ``(D,)``: 0, a prior sample, or an image's posterior mean; None without a model."""
        d = self.handle.latent_dim
        if not self.handle.ready:
            return None
        mode = self.start_combo.currentData()
        if mode == "random":
            return prior_samples(1, d, self.start_seed.value())[0]
        if mode == "image" and self.handle.dataset is not None and not self.handle.mismatch():
            index = self.start_index.value()
            return self.handle.posterior_mean(self.handle.test_image(index), self.handle.test_label(index))[0]
        return torch.zeros(d)

    def apply_start(self) -> None:
        """Move every slider to the chosen start and decode."""
        z = self.start_z()
        if z is not None:
            self.set_z(z)

    def start_from_image(self, index: int) -> None:
        """Start the sliders at the posterior mean of test image ``index``."""
        self.start_combo.setCurrentIndex(self.start_combo.findData("image"))
        self.start_index.setValue(index)
        self.apply_start()

    def _dataset_changed(self) -> None:
        self.start_index.setRange(0, len(self.handle.dataset.test_x) - 1)

    def _model_changed(self) -> None:
        d = 0 if self.handle.discrete else self.handle.latent_dim  # no sliders over a VQ-VAE's code grid
        if d != len(self.sliders):
            self._rebuild_sliders(d)
            self.image_view.clear()
            self._needs_start = True
        if self.handle.discrete:
            self.refresh()
        elif self.handle.ready and getattr(self, "_needs_start", False):
            self._needs_start = False
            self.apply_start()
        elif self.handle.ready and on_screen(self):
            self._schedule_decode()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.handle.ready:
            self._schedule_decode()

    def window_restored(self) -> None:
        super().window_restored()
        if self.handle.ready and on_screen(self):
            self._schedule_decode()

    def _on_model_changed(self) -> None:
        if self._grid_timer.isActive():  # a slider moved in the last 120 ms: its timer redraws the grid
            self._stale = True
            return
        super()._on_model_changed()

    # -- traversal grid --------------------------------------------------------------------
    def compute_grid(self):
        d = self.handle.latent_dim
        if len(self.sliders) != d:
            return None
        r = self.range_spin.value()
        values = torch.linspace(-r, r, self.cols_spin.value())
        fig = traversal_figure(lambda z: self.handle.decode(z, self.label()), self.z(), self.dim_order(), values,
                               self.handle.kl_per_dim)
        fig.params.update(range=r, sort=self.sort_check.isChecked(), label=self.label())
        return fig

    def restore(self, record) -> str:
        """The sliders, columns, range, order and label of a reopened traversal figure."""
        p = record.params
        z = torch.tensor(p["z"], dtype=torch.float32)
        if len(z) != len(self.sliders):
            raise ValueError(f"the figure has {len(z)} latent dimensions, the model {len(self.sliders)}")
        values = p["values"]
        for w, v in ((self.cols_spin, len(values)), (self.range_spin, float(p.get("range", abs(values[0]))))):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)
        self.sort_check.setChecked(bool(p.get("sort", True)))  # re-orders the slider rows when it changes
        restore_label(self, p.get("label"))
        self.set_z(z)
        self._grid_timer.stop()
        self.decode_image()
        self.refresh()
        return f"sliders at the figure's z ({len(z)} dimensions), {len(values)} columns"

    def grid_caption(self) -> str:
        r = self.range_spin.value()
        order = self.dim_order()
        rows = "rows in order of test KL: " + ", ".join(f"z{k}" for k in order[:8]) + ("…" if len(order) > 8 else "")
        return (
            f"Each row varies one z_k from −{r:g} to +{r:g} in {self.cols_spin.value()} steps ("
            f"{rows if self.sort_check.isChecked() else 'rows z0, z1, …'}); the other dimensions stay at the "
            f"sliders' values. Weights: snapshot {self.handle.version}."
        )
