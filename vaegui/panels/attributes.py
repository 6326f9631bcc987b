"""Attribute vectors on the latent map: two groups of points, a = mean(mu | B) −
mean(mu | A) (White 2016, §2.3; Liu, Jun, Li & Heer 2019), applied to the chosen point
as z + t·a, and the map projected onto a."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSlider,
    QWidget,
)

from models.attributes import (
    AttributeVector,
    apply_attribute,
    attribute_vector,
    parse_condition,
    project_on,
    separation,
)
from vaegui.widgets import ImageGridView, show_message

STRIP = 9  # values of t in the strip, −2 … +2


class AttributePanel(QWidget):
    """The attribute-vector tab of :class:`~vaegui.panels.latentmap.LatentMapPanel`."""

    def __init__(self, owner):
        super().__init__()
        self.owner = owner
        self.vectors: list[AttributeVector] = []
        self.groups: dict[str, np.ndarray | None] = {"a": None, "b": None}
        self.edit_a, self.edit_b = QLineEdit(), QLineEdit()
        self.edit_a.setPlaceholderText("e.g. pos_x < 0.3, label == 1, or a selection")
        self.edit_b.setPlaceholderText("e.g. pos_x > 0.7, label == 7, or a selection")
        self.sel_a, self.sel_b = QPushButton("selection"), QPushButton("selection")
        for b in (self.sel_a, self.sel_b):
            b.setToolTip("Use the points selected on the map (drag with Shift, or turn on 'select by dragging')")
            b.setEnabled(False)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name (default: B − A)")
        self.compute_button = QPushButton("Compute a = mean(mu|B) − mean(mu|A)")
        self.vector_combo = QComboBox()
        self.t_slider = QSlider(Qt.Orientation.Horizontal)
        self.t_slider.setRange(-200, 200)
        self.t_label = QLabel("t = +0.00")
        self.strip_view = ImageGridView()
        self.strip_view.setMinimumSize(160, 40)
        self.strip_view.setMaximumHeight(70)
        self.project_check = QCheckBox("project the map onto a")
        self.project_check.setToolTip("x: each point's coordinate along a; y: a random jitter, to show the density")
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.save_button, self.load_button = QPushButton("Save vectors…"), QPushButton("Load…")
        self.save_button.setEnabled(False)
        form = QFormLayout(self)
        for edit, button, name in ((self.edit_a, self.sel_a, "Group A:"), (self.edit_b, self.sel_b, "Group B:")):
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(button)
            form.addRow(name, row)
        form.addRow("Name:", self.name_edit)
        form.addRow(self.compute_button)
        form.addRow("Vector:", self.vector_combo)
        t_row = QHBoxLayout()
        t_row.addWidget(self.t_slider, 1)
        t_row.addWidget(self.t_label)
        form.addRow("z + t·a:", t_row)
        form.addRow(self.strip_view)
        form.addRow(self.project_check)
        form.addRow(self.result_label)
        files = QHBoxLayout()
        files.addWidget(self.save_button)
        files.addWidget(self.load_button)
        form.addRow(files)
        self.sel_a.clicked.connect(lambda: self.use_selection("a"))
        self.sel_b.clicked.connect(lambda: self.use_selection("b"))
        self.edit_a.textEdited.connect(lambda _t: self.groups.__setitem__("a", None))
        self.edit_b.textEdited.connect(lambda _t: self.groups.__setitem__("b", None))
        self.compute_button.clicked.connect(self.compute)
        self.vector_combo.currentIndexChanged.connect(self._vector_changed)
        self.t_slider.valueChanged.connect(self.apply)
        self.project_check.toggled.connect(lambda _on: self.owner.redraw())
        self.save_button.clicked.connect(self.save_dialog)
        self.load_button.clicked.connect(self.load_dialog)

    # -- groups -----------------------------------------------------------------------------------
    def selection_changed(self, count: int) -> None:
        for b in (self.sel_a, self.sel_b):
            b.setEnabled(count > 0)
            b.setText(f"selection ({count})" if count else "selection")

    def use_selection(self, group: str) -> None:
        """Make the map's selection group ``"a"`` or ``"b"``."""
        sel = self.owner.selection
        if sel is None or not sel.any():
            return
        self.groups[group] = sel.copy()
        (self.edit_a if group == "a" else self.edit_b).setText(f"selection of {int(sel.sum())} points")

    def mask(self, group: str) -> np.ndarray:
        """Group ``"a"`` or ``"b"`` as a mask over the map's points; raises ValueError on a bad condition."""
        m = self.owner.map
        chosen = self.groups[group]
        if chosen is not None and len(chosen) == len(m.encoded):
            return chosen
        text = (self.edit_a if group == "a" else self.edit_b).text()
        return parse_condition(text, m.encoded.columns())

    def compute(self) -> AttributeVector | None:
        """Compute the attribute vector of the two groups on the current map and add it to the list."""
        m = self.owner.map
        if m is None:
            self.result_label.setText("Make a map first (Update map).")
            return None
        try:
            in_a, in_b = self.mask("a"), self.mask("b")
            vec = attribute_vector(m.encoded.mu, in_a, in_b)
        except ValueError as exc:
            self.result_label.setText(str(exc))
            return None
        name = self.name_edit.text().strip() or f"{self.edit_b.text()} − {self.edit_a.text()}"
        attr = AttributeVector(name, vec, self.edit_a.text(), self.edit_b.text(), int(in_a.sum()), int(in_b.sum()))
        self.vectors.append(attr)
        self.vector_combo.addItem(name)
        self.vector_combo.setCurrentIndex(len(self.vectors) - 1)
        self.save_button.setEnabled(True)
        self._in = (in_a, in_b)
        self._report(attr, in_a, in_b)
        return attr

    def _report(self, attr: AttributeVector, in_a, in_b) -> None:
        m = self.owner.map
        auc = separation(project_on(m.encoded.mu, attr.vector), in_a, in_b)
        self.result_label.setText(
            f"‖a‖ = {np.linalg.norm(attr.vector):.2f} from {attr.n_a:,} (A) and {attr.n_b:,} (B) points; along a the "
            f"groups separate with ROC AUC {auc:.3f} (0.5: chance, 1: perfect).")

    def current(self) -> AttributeVector | None:
        i = self.vector_combo.currentIndex()
        return self.vectors[i] if 0 <= i < len(self.vectors) else None

    def _vector_changed(self) -> None:
        self.apply()
        if self.projecting():
            self.owner.redraw()

    # -- applying ---------------------------------------------------------------------------------
    def t(self) -> float:
        return self.t_slider.value() / 100.0

    def start_z(self) -> torch.Tensor | None:
        """The latent the vector is applied to: the map's chosen point, else group A's mean."""
        if self.owner.chosen_z is not None:
            return self.owner.chosen_z
        m, attr = self.owner.map, self.current()
        if m is None or attr is None:
            return None
        try:
            return torch.from_numpy(m.encoded.mu[self.mask("a")].mean(axis=0))
        except ValueError:
            return None

    def apply(self) -> None:
        """Decode z + t·a for the slider's t (into the map's decoded view) and the strip t ∈ [−2, 2]."""
        self.t_label.setText(f"t = {self.t():+.2f}")
        attr, z = self.current(), self.start_z()
        handle = self.owner.handle
        if attr is None or z is None or not handle.ready or len(attr.vector) != handle.latent_dim:
            return
        ts = np.linspace(-2.0, 2.0, STRIP)
        strip = handle.decode(apply_attribute(z, attr.vector, ts))
        self.strip_view.show_grid(strip, 1, STRIP, padding=1)
        one = handle.decode(apply_attribute(z, attr.vector, [self.t()]))
        self.owner.inspector.decoded_view.show_grid(one, 1, 1)

    def point_chosen(self) -> None:
        if self.current() is not None:
            self.apply()

    # -- the map along a --------------------------------------------------------------------------
    def projecting(self) -> bool:
        return self.project_check.isChecked() and self.current() is not None

    def points_for(self, m) -> np.ndarray:
        """The points of map ``m`` to draw: the projection, or (along a, jitter) when projecting onto a."""
        attr = self.current()
        if not self.projecting() or len(attr.vector) != m.encoded.mu.shape[1]:
            return m.projection.points
        x = project_on(m.encoded.mu, attr.vector)
        y = np.random.default_rng(0).uniform(-1, 1, len(x)).astype(np.float32)
        return np.stack([x, y], axis=1)

    def axis_caption(self) -> str:
        attr = self.current()
        return f"x: each point's coordinate along '{attr.name}' (‖a‖ = {np.linalg.norm(attr.vector):.2f}); y: jitter."

    def map_changed(self) -> None:
        """A new map arrived: re-apply the chosen vector (the groups are re-read from their text)."""
        self.groups = {k: v if v is not None and self.owner.map is not None and len(v) == len(self.owner.map.encoded)
                       else None for k, v in self.groups.items()}
        self.apply()

    # -- files ------------------------------------------------------------------------------------
    def to_info(self) -> dict:
        """What a saved model keeps of this tab: ``{"attribute_vectors": [...]}``."""
        return {"attribute_vectors": [v.to_json() for v in self.vectors]} if self.vectors else {}

    def from_info(self, info: dict) -> None:
        """Replace the vectors by those of an opened model's description (entries that
        are malformed or of another latent size are skipped)."""
        self.vectors = []
        self.vector_combo.clear()
        for entry in info.get("attribute_vectors", []) if isinstance(info.get("attribute_vectors"), list) else []:
            try:
                attr = AttributeVector.from_json(entry)
            except ValueError:
                continue
            if len(attr.vector) == self.owner.handle.latent_dim:
                self.vectors.append(attr)
                self.vector_combo.addItem(attr.name)
        self.save_button.setEnabled(bool(self.vectors))

    def save(self, path: str) -> None:
        """Write the vectors as JSON (a list of {name, vector, groups}); raises OSError."""
        from models.checkpoint import atomic_write, check_writable

        target = check_writable(path)
        atomic_write(target, json.dumps([v.to_json() for v in self.vectors], indent=1).encode())

    def load(self, path: str) -> int:
        """Add the vectors of a JSON file written by :meth:`save`; raises OSError or ValueError."""
        data = json.loads(Path(path).read_text())
        if not isinstance(data, list):
            raise ValueError("expected a list of attribute vectors")
        loaded = [AttributeVector.from_json(d) for d in data]
        for attr in loaded:
            self.vectors.append(attr)
            self.vector_combo.addItem(attr.name)
        self.save_button.setEnabled(bool(self.vectors))
        return len(loaded)

    def save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save attribute vectors", "attribute-vectors.json", "JSON (*.json)")
        if path:
            try:
                self.save(path)
            except OSError as exc:
                show_message(self, QMessageBox.Icon.Critical, "Save failed", f"Could not write {path}:\n{exc}")

    def load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load attribute vectors", "", "JSON (*.json)")
        if path:
            try:
                self.load(path)
            except (OSError, ValueError) as exc:
                show_message(self, QMessageBox.Icon.Warning, "Load failed", f"{Path(path).name}: {exc}")
