"""Image-to-image interpolation between posterior means (linear or spherical)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from vaegui.figures import interpolation_figure
from vaegui.widgets import (
    GridPanel,
    ImageGridView,
    dropped_image_paths,
    load_dropped_image,
    restore_label,
    show_message,
)


class InterpolationPanel(GridPanel):
    """Pick test images A and B (index pickers with thumbnails), the number of steps
    and the path; the strip shows A, the decoded path from mu_A to mu_B, then B."""

    title = "interpolation"
    animatable = True

    def __init__(self, handle, settings=None, parent: QWidget | None = None):
        super().__init__(handle, settings, parent)
        self.index_a = QSpinBox()
        self.index_b = QSpinBox()
        for spin in (self.index_a, self.index_b):
            spin.setPrefix("#")
        self.index_b.setValue(1)
        self.thumb_a = ImageGridView()
        self.thumb_b = ImageGridView()
        for thumb in (self.thumb_a, self.thumb_b):
            thumb.setFixedSize(80, 80)
        self.label_a = QLabel()
        self.label_b = QLabel()
        self.random_button = QPushButton("Random pair")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(2, 30)
        self.steps_spin.setValue(10)
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("linear", "linear")
        self.mode_combo.addItem("spherical (slerp)", "slerp")
        self.run_button = QPushButton("Interpolate")
        self.run_button.setToolTip("Decode the path from A to B")
        pick = QHBoxLayout()
        for name, spin, thumb, label in (
            ("A:", self.index_a, self.thumb_a, self.label_a),
            ("B:", self.index_b, self.thumb_b, self.label_b),
        ):
            column = QVBoxLayout()
            row = QHBoxLayout()
            row.addWidget(QLabel(name))
            row.addWidget(spin)
            column.addLayout(row)
            column.addWidget(thumb)
            column.addWidget(label)
            pick.addLayout(column)
        pick.addWidget(self.random_button)
        form = QFormLayout()
        form.addRow("Steps:", self.steps_spin)
        form.addRow("Path:", self.mode_combo)
        form.addRow(self.label_title, self.label_combo)
        buttons = QVBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.animate_button)
        controls = QHBoxLayout()
        controls.addLayout(pick)
        controls.addLayout(form)
        controls.addLayout(buttons)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.grid_view, 1)
        layout.addWidget(self.caption)
        self.requested = False
        self._rng = np.random.default_rng()
        #: images dropped from the desktop, used instead of a test image at that end
        self.external: dict[str, torch.Tensor | None] = {"a": None, "b": None}
        self.external_names = {"a": "dropped image", "b": "dropped image"}
        self.setAcceptDrops(True)
        self.setToolTip("Drop image files here: on the left half for A, on the right half for B")
        self.index_a.valueChanged.connect(lambda: self._index_changed("a"))
        self.index_b.valueChanged.connect(lambda: self._index_changed("b"))
        self.random_button.clicked.connect(self._random_pair)
        self.run_button.clicked.connect(self.run)
        self.steps_spin.valueChanged.connect(self._rerun)
        self.mode_combo.currentIndexChanged.connect(self._rerun)
        handle.dataset_changed.connect(self._dataset_changed)

    def _dataset_changed(self) -> None:
        n = len(self.handle.dataset.test_x)
        for spin in (self.index_a, self.index_b):
            spin.setRange(0, n - 1)
        self.requested = False
        self._thumbs()
        self.refresh()

    def _index_changed(self, end: str) -> None:
        self.external[end] = None
        self._thumbs()

    def clear_external(self) -> None:
        """Forget dropped images: both ends are test images again."""
        self.external = {"a": None, "b": None}
        self._thumbs()

    def set_endpoint(self, end: str, index: int) -> None:
        """Make test image ``index`` end ``"a"`` or ``"b"`` (a dropped image there is dropped)."""
        (self.index_a if end == "a" else self.index_b).setValue(index)
        self.clear_external()

    def set_endpoint_image(self, end: str, image: torch.Tensor, name: str) -> None:
        """Make ``image`` ``(1, C, H, W)`` (a training image, say, called ``name`` under
        its thumbnail) end ``"a"`` or ``"b"``."""
        self.external[end] = image
        self.external_names[end] = name
        self._thumbs()

    def endpoint(self, end: str) -> torch.Tensor:
        """Image ``(1, C, H, W)`` at end ``"a"`` or ``"b"``: a dropped one, else the picked test image."""
        if self.external[end] is not None:
            return self.external[end]
        return self.handle.test_image((self.index_a if end == "a" else self.index_b).value())

    def _thumbs(self) -> None:
        data = self.handle.dataset
        if data is None:
            return
        if any(x is not None and tuple(x.shape[1:]) != tuple(data.image_shape) for x in self.external.values()):
            self.external = {"a": None, "b": None}
        pickers = (("a", self.index_a, self.thumb_a, self.label_a), ("b", self.index_b, self.thumb_b, self.label_b))
        for end, spin, thumb, label in pickers:
            thumb.show_grid(self.endpoint(end).numpy(), 1, 1)
            dropped = self.external[end] is not None
            name = data.class_names[int(data.test_y[spin.value()])]
            label.setText(self.external_names[end] if dropped else f"label {name}")
        self._rerun()

    # -- drag and drop of image files ------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if dropped_image_paths(event.mimeData()) and self.handle.dataset is not None:
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        paths = dropped_image_paths(event.mimeData())
        if not paths:
            return
        end = "a" if event.position().x() < self.width() / 2 else "b"
        try:
            self.external[end] = load_dropped_image(paths[0], self.handle)
            self.external_names[end] = "dropped image"
        except ValueError as exc:
            show_message(self, QMessageBox.Icon.Warning, "Drop", f"{Path(paths[0]).name}: {exc}")
            return
        event.acceptProposedAction()
        self._thumbs()

    def _random_pair(self) -> None:
        n = self.index_a.maximum() + 1
        a, b = self._rng.choice(n, size=2, replace=False)
        self.index_a.setValue(int(a))
        self.index_b.setValue(int(b))

    def _rerun(self) -> None:
        if self.requested:
            self.refresh()

    def run(self) -> None:
        """Interpolate the chosen pair (the Interpolate button)."""
        self.requested = True
        self.refresh()

    def compute_grid(self):
        if not self.requested:
            self._why = "Pick images A and B, then press Interpolate."
            return None
        a, b = self.endpoint("a"), self.endpoint("b")
        labels = torch.tensor([
            self.label() or 0 if self.external[end] is not None else self.handle.test_label(spin.value())
            for end, spin in (("a", self.index_a), ("b", self.index_b))
        ])
        mu = self.handle.posterior_mean(torch.cat([a, b]), labels)
        label = self.label()
        ends = {end: None if self.external[end] is not None else spin.value()
                for end, spin in (("a", self.index_a), ("b", self.index_b))}
        return interpolation_figure(lambda z: self.handle.decode(z, label), a.numpy(), b.numpy(), mu[0], mu[1],
                                    self.steps_spin.value(), self.mode_combo.currentData(),
                                    {"index_a": ends["a"], "index_b": ends["b"], "label": label})

    def restore(self, record) -> str:
        """The test images, steps, path and label of a reopened interpolation figure; an end
        that was a dropped or training image is not in the PNG (the message says so)."""
        p = record.params
        for w, v in ((self.steps_spin, int(p["steps"])), (self.mode_combo, self.mode_combo.findData(p["mode"]))):
            w.blockSignals(True)
            w.setCurrentIndex(v) if w is self.mode_combo else w.setValue(v)
            w.blockSignals(False)
        restore_label(self, p.get("label"))
        missing = []
        for end, spin in (("a", self.index_a), ("b", self.index_b)):
            index = p.get(f"index_{end}")
            if index is None:
                missing.append(end.upper())
            else:
                spin.blockSignals(True)
                spin.setValue(int(index))
                spin.blockSignals(False)
                self.external[end] = None
        self._thumbs()
        self.run()
        if missing:
            return (f"steps and path restored; end {' and '.join(missing)} was not a test image, so it is not in the "
                    "PNG: the picked test image stands in")
        return f"test images #{self.index_a.value()} and #{self.index_b.value()}, {self.steps_spin.value()} steps"

    def empty_caption(self) -> str:
        if not self.handle.ready:
            return super().empty_caption()
        return getattr(self, "_why", "")

    def grid_caption(self) -> str:
        mode = "linear" if self.mode_combo.currentData() == "linear" else "spherical (slerp)"
        ends = ("the encoder outputs z_e of A and B, each point quantised to its nearest codes" if self.handle.discrete
                else "the posterior means mu_A and mu_B")
        return (
            f"Test image #{self.index_a.value()} (left), {self.steps_spin.value()} decoded points on the {mode} "
            f"path between {ends} (ends included), test image "
            f"#{self.index_b.value()} (right). Weights: snapshot {self.handle.version}."
        )
