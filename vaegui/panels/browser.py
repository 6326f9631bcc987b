"""The dataset browser: a virtualised thumbnail grid of the test split (only the
visible thumbnails are ever drawn, so 60,000 images scroll smoothly), filtered by
label, searchable by index; the selected image becomes the traversal start or an
interpolation endpoint."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

THUMB = 56


def to_qimage(image: np.ndarray) -> QImage:
    """``(C, H, W)`` pixels in [0, 1] → a QImage (a copy that owns its bytes)."""
    arr = np.clip(np.rint(np.asarray(image) * 255), 0, 255).astype(np.uint8)
    c, h, w = arr.shape
    if c == 1:
        data = np.ascontiguousarray(arr[0])
        return QImage(data.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    data = np.ascontiguousarray(arr.transpose(1, 2, 0))
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ThumbnailModel(QAbstractListModel):
    """One row per shown test image; thumbnails are made on demand and cached (LRU)."""

    CACHE = 3000

    def __init__(self, parent=None):
        super().__init__(parent)
        self.images = None
        self.labels = None
        self.names: tuple[str, ...] = ()
        self.rows = np.zeros(0, dtype=np.int64)
        self.thumbnails_made = 0
        self._cache: OrderedDict[int, QPixmap] = OrderedDict()

    def set_data(self, images, labels, names) -> None:
        self.beginResetModel()
        self.images, self.labels, self.names = images, labels, tuple(names)
        self.rows = np.arange(0 if images is None else len(images))
        self._cache.clear()
        self.endResetModel()

    def set_filter(self, label: int | None) -> None:
        self.beginResetModel()
        n = 0 if self.images is None else len(self.images)
        self.rows = np.arange(n) if label is None else np.flatnonzero(np.asarray(self.labels) == label)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt's name)
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        i = int(self.rows[index.row()])
        if role == Qt.ItemDataRole.DisplayRole:
            return f"#{i}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"test image #{i}, label {self.names[int(self.labels[i])]}"
        if role == Qt.ItemDataRole.UserRole:
            return i
        if role == Qt.ItemDataRole.DecorationRole:
            pix = self._cache.get(i)
            if pix is None:
                pix = QPixmap.fromImage(to_qimage(self.images[i].numpy())).scaled(
                    THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
                )
                self.thumbnails_made += 1
                self._cache[i] = pix
                if len(self._cache) > self.CACHE:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(i)
            return pix
        return None

    def row_of(self, image_index: int) -> int:
        hits = np.flatnonzero(self.rows == image_index)
        return int(hits[0]) if len(hits) else -1


class BrowserPanel(QWidget):
    """Signals ``use_as_start(int)``, ``use_as_a(int)``, ``use_as_b(int)`` carry a test index."""

    use_as_start = Signal(int)
    use_as_a = Signal(int)
    use_as_b = Signal(int)

    def __init__(self, handle, parent: QWidget | None = None):
        super().__init__(parent)
        self.handle = handle
        self.model = ThumbnailModel(self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(256)
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.setGridSize(QSize(THUMB + 16, THUMB + 22))
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.label_filter = QComboBox()
        self.search = QSpinBox()
        self.search.setPrefix("#")
        self.go_button = QPushButton("Go to")
        self.start_button = QPushButton("Start traversal here")
        self.a_button = QPushButton("Use as A")
        self.b_button = QPushButton("Use as B")
        self.info = QLabel()
        top = QHBoxLayout()
        top.addWidget(QLabel("Label:"))
        top.addWidget(self.label_filter)
        top.addWidget(QLabel("Index:"))
        top.addWidget(self.search)
        top.addWidget(self.go_button)
        top.addStretch(1)
        top.addWidget(self.start_button)
        top.addWidget(self.a_button)
        top.addWidget(self.b_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.info)
        self.label_filter.currentIndexChanged.connect(self._filter_changed)
        self.go_button.clicked.connect(lambda: self.go_to(self.search.value()))
        self.search.editingFinished.connect(lambda: self.go_to(self.search.value()))
        self.start_button.clicked.connect(lambda: self._emit(self.use_as_start))
        self.a_button.clicked.connect(lambda: self._emit(self.use_as_a))
        self.b_button.clicked.connect(lambda: self._emit(self.use_as_b))
        self.view.doubleClicked.connect(lambda _i: self._emit(self.use_as_start))
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        handle.dataset_changed.connect(self._dataset_changed)
        self._dataset_changed()

    def _dataset_changed(self) -> None:
        data = self.handle.dataset
        if data is None:
            return
        self.model.set_data(data.test_x, data.test_y.numpy(), data.class_names)
        self.label_filter.blockSignals(True)
        self.label_filter.clear()
        self.label_filter.addItem("all labels", None)
        for i, name in enumerate(data.class_names):
            self.label_filter.addItem(name, i)
        self.label_filter.blockSignals(False)
        self.search.setRange(0, len(data.test_x) - 1)
        self._selection_changed()

    def _filter_changed(self) -> None:
        self.model.set_filter(self.label_filter.currentData())
        self._selection_changed()

    def selected_index(self) -> int | None:
        rows = self.view.selectionModel().selectedIndexes()
        return int(rows[0].data(Qt.ItemDataRole.UserRole)) if rows else None

    def go_to(self, image_index: int) -> None:
        """Select and show test image ``image_index`` (clearing a filter that hides it)."""
        row = self.model.row_of(image_index)
        if row < 0:
            self.label_filter.setCurrentIndex(0)
            row = self.model.row_of(image_index)
        if row < 0:
            return
        index = self.model.index(row)
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)

    def _emit(self, signal) -> None:
        i = self.selected_index()
        if i is not None:
            signal.emit(i)

    def _selection_changed(self, *_args) -> None:
        i = self.selected_index()
        has = i is not None
        for b in (self.start_button, self.a_button, self.b_button):
            b.setEnabled(has)
        data = self.handle.dataset
        shown = self.model.rowCount()
        total = 0 if data is None else len(data.test_x)
        picked = f"; selected #{i}, label {data.class_names[int(data.test_y[i])]}" if has and data else ""
        self.info.setText(f"{shown:,} of {total:,} test images shown{picked}. Double-click: start the traversal there.")
