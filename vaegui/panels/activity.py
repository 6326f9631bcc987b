"""Latent activity: each latent dimension's KL on the test split, as a bar chart
that updates at every epoch; inactive (collapsed) dimensions are marked."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from models.trainer import ACTIVE_KL
from vaegui.widgets import on_screen


class ActivityPanel(QWidget):
    """Bars of KL_d = E_x[KL(q(z_d|x) ‖ N(0, 1))] in nats; grey bars are below
    ``ACTIVE_KL`` (0.01 nats): the posterior equals the prior there, the dimension is unused."""

    def __init__(self, handle, parent: QWidget | None = None):
        super().__init__(parent)
        self.handle = handle
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("left", "KL on the test split (nats)")
        self.plot.setLabel("bottom", "latent dimension")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # plain nats, no "(x0.001)"
        self.bars: pg.BarGraphItem | None = None
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.caption)
        handle.activity_changed.connect(self._activity_changed)
        handle.changed.connect(self._model_changed)
        self._stale = False
        self.refresh()

    def _model_changed(self) -> None:
        if not self.handle.kl_per_dim:
            self._activity_changed()

    def _activity_changed(self) -> None:
        """New KL per dimension (an epoch ended): drawn now if it can be seen, else when it can."""
        self._stale = True
        self.window_restored()

    def window_restored(self) -> None:
        if self._stale and on_screen(self):
            self.refresh()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self.window_restored()

    def refresh(self) -> None:
        """Draw the bars of the model's KL per dimension now."""
        self._stale = False
        kl = np.asarray(self.handle.kl_per_dim, dtype=float)
        if self.bars is not None:
            self.plot.removeItem(self.bars)
            self.bars = None
        if self.handle.discrete:
            self.caption.setText("The VQ-VAE's codes have no KL per dimension: its KL is −log p(codes) under the code "
                                 "prior, and the codebook's use is in the Codebook tab.")
            return
        if self.handle.model is not None and not self.handle.has_prior:
            self.caption.setText("A plain autoencoder has no posterior variance and no prior: no KL per dimension.")
            return
        if not len(kl):
            self.caption.setText("Per-dimension KL appears after the first epoch.")
            return
        active = kl >= ACTIVE_KL
        brushes = [pg.mkBrush(31, 119, 180) if a else pg.mkBrush(180, 180, 180) for a in active]
        self.bars = pg.BarGraphItem(x=np.arange(len(kl)), height=kl, width=0.8, brushes=brushes)
        self.plot.addItem(self.bars)
        self.plot.getAxis("bottom").setTicks([[(i, f"z{i}") for i in range(len(kl))]])
        inactive = ", ".join(f"z{i}" for i in np.flatnonzero(~active))
        self.caption.setText(
            f"{int(active.sum())} of {len(kl)} dimensions active (KL ≥ {ACTIVE_KL} nats); total KL "
            f"{kl.sum():.2f} nats. " + (f"Inactive (collapsed to the prior): {inactive}." if inactive else "")
        )

    def active_count(self) -> int:
        """Latent dimensions with at least 0.01 nats of KL on the test split."""
        return int((np.asarray(self.handle.kl_per_dim) >= ACTIVE_KL).sum())
