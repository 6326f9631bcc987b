"""The VQ-VAE's codebook explorer (van den Oord et al. 2017): the code map of an image, edited cell
by cell; what each code means at a cell; the codebook's vectors in 2-D coloured by use (their
Fig. 1, right); and the codes' use over the test split."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.data import as_float
from models.vqvae import perplexity
from vaegui.figures import GridFigure
from vaegui.widgets import GridPanel

#: tiles per row of the code meanings grid
MEANING_COLS = 16
#: test images whose codes make the usage histogram
USAGE_IMAGES = 2000


def code_colours(k: int) -> np.ndarray:
    """``(K, 3)`` float RGB in [0, 1]: K distinguishable hues (golden-angle steps), for the code map."""
    hues = (np.arange(k) * 0.618033988749895) % 1.0
    return np.array([QColor.fromHsvF(float(h), 0.75, 1.0).getRgbF()[:3] for h in hues], dtype=np.float32)


@torch.inference_mode()
def code_meanings_figure(model, codes: torch.Tensor, cell: tuple[int, int], counts: np.ndarray | None,
                         params: dict) -> GridFigure:
    """The image of code grid ``codes`` ``(h, w)`` decoded with cell ``(row, col)`` set to each of the K
    codes in turn, tiled in rows of 16: what each code means there. ``counts`` ``(K,)`` (the test
    split's use) label the tiles; ``latents`` are the K edited grids ``(K, h·w)``."""
    k = model.config.codebook_size
    grids = codes.expand(k, *codes.shape).clone()
    grids[:, cell[0], cell[1]] = torch.arange(k)
    cols = min(MEANING_COLS, k)
    return GridFigure(
        kind="codebook", images=model.decode_codes(grids).numpy(), rows=math.ceil(k / cols), cols=cols,
        tile_labels=[f"{i}" if counts is None else f"{i} · {int(counts[i])}" for i in range(k)],
        latents=grids.flatten(1).numpy().astype(np.float32),
        params={**params, "cell": [int(cell[0]), int(cell[1])]},
        caption=f"The image's code grid decoded with cell ({cell[0]}, {cell[1]}) set to each of the {k} codes "
                f"(tile label: code · its use on the test split).",
    )


class CodebookPanel(GridPanel):
    """The explorer; its grid (exported and reopened like the others) is the code meanings grid."""

    title = "codebook"

    def __init__(self, handle, settings=None, parent: QWidget | None = None):
        super().__init__(handle, settings, parent)
        self.image_spin = QSpinBox()
        self.image_spin.setPrefix("test image ")
        self.row_spin, self.col_spin, self.code_spin = QSpinBox(), QSpinBox(), QSpinBox()
        for spin, tip in ((self.row_spin, "The cell's row in the code grid (or click the map)"),
                          (self.col_spin, "The cell's column in the code grid (or click the map)"),
                          (self.code_spin, "The cell's code: change it and the image is decoded again at once")):
            spin.setToolTip(tip)
        self.show_codes = QCheckBox("show the code map")
        self.show_codes.setChecked(True)
        self.reset_button = QPushButton("Reset edits")
        self.reset_button.setToolTip("Back to the image's own codes")
        self.original_view, self.edited_view = pg.GraphicsView(background="w"), pg.GraphicsView(background="w")
        self.original_box, self.edited_box = (pg.ViewBox(lockAspect=True, enableMouse=False, invertY=True,
                                                         enableMenu=False) for _ in range(2))
        self.original_item, self.edited_item, self.map_item = pg.ImageItem(), pg.ImageItem(), pg.ImageItem()
        for view, box, items in ((self.original_view, self.original_box, (self.original_item,)),
                                 (self.edited_view, self.edited_box, (self.edited_item, self.map_item))):
            view.setCentralItem(box)
            view.setMinimumSize(120, 120)
            for item in items:
                item.setOpts(axisOrder="row-major")
                box.addItem(item)
        self.map_item.setOpacity(0.45)
        self.cell_rect = QGraphicsRectItem()
        self.cell_rect.setPen(QPen(QColor(255, 255, 255), 0))
        self.edited_box.addItem(self.cell_rect)
        self.edited_item.mouseClickEvent = self.map_item.mouseClickEvent = self._map_clicked
        self.pca_plot, self.usage_plot = pg.PlotWidget(background="w"), pg.PlotWidget(background="w")
        self.pca_plot.setTitle("Codebook (PCA)")
        self.pca_plot.setToolTip("The code vectors in 2-D by PCA, coloured by their use on the test split "
                                 "(light: much used); click one to put it in the cell")
        self.usage_plot.setTitle("Use (test split)")
        self.usage_plot.setLabel("bottom", "code")
        self.usage_plot.setLabel("left", "cells")
        self.pca_points = pg.ScatterPlotItem(size=8, pen=pg.mkPen(80, 80, 80))
        self.pca_points.sigClicked.connect(self._point_clicked)
        self.pca_current = pg.ScatterPlotItem(size=16, brush=None, pen=pg.mkPen(200, 0, 0, width=2))
        for item in (self.pca_points, self.pca_current):
            self.pca_plot.addItem(item)
        self.usage_bars: pg.BarGraphItem | None = None
        self.usage_label = QLabel()
        self.usage_label.setWordWrap(True)
        self._build_layout()
        #: the shown image's code grid ``(h, w)`` as encoded, and as edited
        self.codes: torch.Tensor | None = None
        self.edited: torch.Tensor | None = None
        self.counts: np.ndarray | None = None
        #: the edited grid's decode on screen ``(C, H, W)``, pixels in [0, 1]
        self.edited_image: np.ndarray | None = None
        self._pca: np.ndarray | None = None
        #: the model and dataset the usage and the PCA were computed for, and whether an epoch ended since
        self._cache_key = None
        self._usage_stale = True
        self.image_spin.valueChanged.connect(self._image_changed)
        for spin in (self.row_spin, self.col_spin):
            spin.valueChanged.connect(self._cell_changed)
        self.code_spin.valueChanged.connect(self._code_changed)
        self.reset_button.clicked.connect(self.reset_edits)
        self.show_codes.toggled.connect(lambda on: self.map_item.setVisible(on))
        handle.dataset_changed.connect(self._dataset_changed)
        handle.activity_changed.connect(self._epoch_ended)
        self._dataset_changed()

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Image:", self.image_spin)
        cell = QHBoxLayout()
        for w in (self.row_spin, QLabel(","), self.col_spin):
            cell.addWidget(w)
        form.addRow("Cell (row, col):", cell)
        form.addRow("Its code:", self.code_spin)
        form.addRow(self.show_codes)
        buttons = QHBoxLayout()
        for b in (self.reset_button, self.export_button):
            buttons.addWidget(b)
        form.addRow(buttons)
        views = QHBoxLayout()
        for title, view in (("the image", self.original_view), ("decoded from its codes (edited)", self.edited_view)):
            column = QVBoxLayout()
            column.addWidget(QLabel(title))
            column.addWidget(view, 1)
            views.addLayout(column)
        left = QVBoxLayout()
        left.addLayout(views, 2)
        left.addLayout(form)
        left.addWidget(self.caption)
        plots = QHBoxLayout()
        plots.addWidget(self.pca_plot, 1)
        plots.addWidget(self.usage_plot, 1)
        right = QVBoxLayout()
        right.addWidget(QLabel("What each code means at the cell:"))
        right.addWidget(self.grid_view, 3)
        right.addLayout(plots, 2)
        right.addWidget(self.usage_label)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 2)
        layout.addLayout(right, 3)

    # -- state ---------------------------------------------------------------------------------
    def _dataset_changed(self) -> None:
        n = len(self.handle.dataset.test_x) if self.handle.dataset is not None else 1
        self.image_spin.setRange(0, max(0, n - 1))
        self._cache_key = None

    def _epoch_ended(self) -> None:
        self._usage_stale = True
        self._on_model_changed()  # in the next turn if shown, else when shown

    def _image_changed(self) -> None:
        self.codes = None
        self.refresh()

    def _cell_changed(self) -> None:
        self.refresh()  # the code spin box follows the cell in compute_grid

    def _code_changed(self, code: int) -> None:
        if self.edited is not None:
            self.edited[self.row_spin.value(), self.col_spin.value()] = code
            self.refresh()  # the edited image and, with the edit, what every code means at the cell

    def reset_edits(self) -> None:
        """Back to the shown image's own codes."""
        self.codes = None
        self.refresh()

    def select_cell(self, row: int, col: int) -> None:
        """Select cell ``(row, col)`` of the code grid (as a click on the map does)."""
        for spin, v in ((self.row_spin, row), (self.col_spin, col)):
            spin.blockSignals(True)
            spin.setValue(v)
            spin.blockSignals(False)
        self._cell_changed()

    def _map_clicked(self, event) -> None:
        if self.edited is None or event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.pos()  # in image pixels
        side = self.handle.model.side
        h = self.handle.dataset.image_shape[1]
        row, col = int(pos.y() * side // h), int(pos.x() * side // h)
        if 0 <= row < side and 0 <= col < side:
            self.select_cell(row, col)
        event.accept()

    def _point_clicked(self, _item, points, _event=None) -> None:
        if len(points):
            self.code_spin.setValue(int(points[0].data()))

    # -- drawing -------------------------------------------------------------------------------
    def compute_grid(self):
        model = self.handle.model
        if not self.handle.discrete:
            self._why = ("The codebook explorer is for the VQ-VAE: choose Model: VQ-VAE (van den Oord 2017) in the "
                         "form and train, or open such a model.")
            self._clear_views()
            return None
        side, k = model.side, model.config.codebook_size
        for spin in (self.row_spin, self.col_spin):
            spin.setRange(0, side - 1)
        self.code_spin.setRange(0, k - 1)
        self._update_usage()
        if self.codes is None or self.codes.shape != (side, side):
            with torch.inference_mode():
                image = as_float(self.handle.test_image(self.image_spin.value())).float()
                self.codes = model.nearest(model.encode_grid(image))[0]
            self.edited = self.codes.clone()
            self.original_item.setImage(image[0].permute(1, 2, 0).squeeze(-1).numpy(), levels=(0.0, 1.0))
            self.original_box.autoRange(padding=0.0)
        self._cell_changed_quietly()
        self._show_edited()
        self._show_current_code()
        edits = {f"{r},{c}": int(self.edited[r, c]) for r, c in (self.edited != self.codes).nonzero().tolist()}
        return code_meanings_figure(model, self.edited, (self.row_spin.value(), self.col_spin.value()), self.counts,
                                    {"image": self.image_spin.value(), "edits": edits})

    def _cell_changed_quietly(self) -> None:
        self.code_spin.blockSignals(True)
        self.code_spin.setValue(int(self.edited[self.row_spin.value(), self.col_spin.value()]))
        self.code_spin.blockSignals(False)

    def _clear_views(self) -> None:
        self.codes = self.edited = None
        for item in (self.original_item, self.edited_item, self.map_item):
            item.clear()
        self.pca_points.clear()
        self.pca_current.clear()
        if self.usage_bars is not None:
            self.usage_plot.removeItem(self.usage_bars)
            self.usage_bars = None
        self.usage_label.setText("")

    @torch.inference_mode()
    def _show_edited(self) -> None:
        model = self.handle.model
        image = model.decode_codes(self.edited[None])[0]
        self.edited_item.setImage(image.permute(1, 2, 0).squeeze(-1).numpy(), levels=(0.0, 1.0))
        h = image.shape[-1]
        side = model.side
        colours = code_colours(model.config.codebook_size)[self.edited.numpy()]  # (side, side, 3)
        self.map_item.setImage(np.kron(colours, np.ones((h // side, h // side, 1), dtype=np.float32)),
                               levels=(0.0, 1.0))
        step = h / side
        self.cell_rect.setRect(QRectF(self.col_spin.value() * step, self.row_spin.value() * step, step, step))
        self.edited_box.autoRange(padding=0.0)
        self.edited_image = image.numpy()

    def _show_current_code(self) -> None:
        if self._pca is not None:
            self.pca_current.setData(pos=self._pca[[self.code_spin.value()]])

    @torch.inference_mode()
    def _update_usage(self) -> None:
        """The codes' use over the first test images and the codebook's PCA: for a new model or dataset and
        after each epoch's end, not for every snapshot of a running training (encoding the test images
        took 170 ms of the GUI thread for a 28-pixel VQ-VAE here, four times a second)."""
        model = self.handle.model
        key = (id(model), id(self.handle.dataset))
        if key == self._cache_key and not self._usage_stale:
            return
        self._cache_key, self._usage_stale = key, False
        k = model.config.codebook_size
        counts = torch.zeros(k)
        x = self.handle.dataset.test_x[:USAGE_IMAGES]
        for start in range(0, len(x), 500):
            codes = model.nearest(model.encode_grid(as_float(x[start:start + 500]).float()))
            counts += torch.bincount(codes.flatten(), minlength=k).float()
        self.counts = counts.numpy()
        if self.usage_bars is not None:
            self.usage_plot.removeItem(self.usage_bars)
        self.usage_bars = pg.BarGraphItem(x=np.arange(k), height=self.counts, width=0.8, brush=(31, 119, 180))
        self.usage_plot.addItem(self.usage_bars)
        used = int((counts > 0).sum())
        self.usage_label.setText(f"{used} of {k} codes used by {len(x):,} test images ({len(x) * model.cells:,} "
                                 f"cells); perplexity {perplexity(counts):.1f} (K = {k} if all were used equally).")
        from sklearn.decomposition import PCA

        vectors = model.codebook.detach().float().numpy()
        self._pca = (PCA(n_components=2).fit_transform(vectors) if vectors.shape[1] >= 2
                     else np.column_stack([vectors[:, 0], np.zeros(k)])).astype(np.float32)
        use = np.log1p(self.counts) / max(np.log1p(self.counts).max(), 1e-9)
        brushes = [pg.mkBrush(pg.colormap.get("viridis").map(float(u), mode="qcolor")) for u in use]
        self.pca_points.setData(pos=self._pca, brush=brushes, data=np.arange(k))

    def grid_caption(self) -> str:
        f = self.figure
        return "" if f is None else f"{f.caption} Weights: snapshot {self.handle.version}."

    def restore(self, record) -> str:
        """The image, the cell and the edited codes of a reopened codebook figure."""
        p = record.params
        self.image_spin.blockSignals(True)
        self.image_spin.setValue(int(p["image"]))
        self.image_spin.blockSignals(False)
        self.codes = None
        self.refresh()  # the image's own codes
        for key, code in p.get("edits", {}).items():
            r, c = (int(v) for v in key.split(","))
            self.edited[r, c] = int(code)
        self.select_cell(*p["cell"])
        return f"test image {p['image']}, {len(p.get('edits', {}))} edited cells, cell {tuple(p['cell'])}"
