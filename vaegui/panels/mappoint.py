"""The Latent map panel's two images: the data point under the cursor and what a click decoded,
with the buttons that hand the chosen latent on (to the traversal's sliders, to an end of the
interpolation)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from vaegui.widgets import ImageGridView


class PointInspector(QWidget):
    """The hovered image and the decoded one, each with its caption, and the hand-off buttons.

    Signals: ``traverse()`` (→ Traversal pressed), ``hand_end(end "a"/"b")`` (→ A or → B pressed).
    """

    traverse = Signal()
    hand_end = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.hover_view, self.decoded_view = ImageGridView(), ImageGridView()
        for view in (self.hover_view, self.decoded_view):
            view.setMinimumSize(72, 72)
            view.setMaximumHeight(110)
        self.hover_label, self.decoded_label = QLabel("Hover a point"), QLabel("Click the map to decode")
        for label in (self.hover_label, self.decoded_label):
            label.setWordWrap(True)
        self.to_traversal = QPushButton("→ Traversal")
        self.to_traversal.setToolTip("Start the traversal's sliders at the decoded latent")
        self.to_a, self.to_b = QPushButton("→ A"), QPushButton("→ B")
        self.to_a.setToolTip("Make the chosen data point the interpolation's end A")
        self.to_b.setToolTip("Make the chosen data point the interpolation's end B")
        views = QHBoxLayout()
        for view, label in ((self.hover_view, self.hover_label), (self.decoded_view, self.decoded_label)):
            col = QVBoxLayout()
            col.addWidget(view)
            col.addWidget(label)
            views.addLayout(col)
        hands = QHBoxLayout()
        for b in (self.to_traversal, self.to_a, self.to_b):
            b.setEnabled(False)
            hands.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(views)
        layout.addLayout(hands)
        self.to_traversal.clicked.connect(self.traverse)
        self.to_a.clicked.connect(lambda: self.hand_end.emit("a"))
        self.to_b.clicked.connect(lambda: self.hand_end.emit("b"))

    def show_hovered(self, image: np.ndarray, text: str) -> None:
        """The image under the cursor, ``(C, H, W)`` or ``(H, W)`` pixels in [0, 1], and its caption."""
        self.hover_view.show_grid(image, 1, 1)
        self.hover_label.setText(text)

    def show_decoded(self, image: np.ndarray, text: str, traversable: bool, a_data_point: bool) -> None:
        """A decoded click, ``(1, C, H, W)`` pixels in [0, 1], and its caption; → Traversal enabled
        when ``traversable`` (the sliders' latent), → A and → B when it came from ``a_data_point``."""
        self.decoded_view.show_grid(image, 1, 1)
        self.decoded_label.setText(text)
        self.to_traversal.setEnabled(traversable)
        for b in (self.to_a, self.to_b):
            b.setEnabled(a_data_point)

    def forget(self) -> None:
        """No chosen latent any more (a new map): nothing to hand on."""
        for b in (self.to_traversal, self.to_a, self.to_b):
            b.setEnabled(False)

    def decoded_pixels(self) -> np.ndarray | None:
        """The decoded image on screen ``(H, W)`` or ``(H, W, C)``, or None."""
        return self.decoded_view.pixels
