"""The Disentanglement panel: scores against ground-truth factors and the matrices behind them.

MIG, SAP, DCI and (on Shapes) the FactorVAE and β-VAE scores (:mod:`models.metrics`), on
demand off the GUI thread with progress and Cancel, or at each epoch end when the form asks
for them (``TrainConfig.metrics``). Two heat maps show why a score is what it is: the
latent × factor mutual information normalised by each factor's entropy (MIG's matrix) and
DCI's importance matrix; rows may be sorted by each latent's KL, as in the traversal.
"""

from __future__ import annotations

import copy

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.metrics import SCORE_TITLES, MetricsStopped, epoch_scores
from models.run import MetricHistory
from vaegui.tasks import BackgroundTask, TaskSlot

#: score → what it measures (the tooltips)
DEFINITIONS = {
    "mig": "Mutual Information Gap (Chen et al. 2018): for each factor, the gap between the two latents with the "
           "most mutual information with it (20-bin histograms of mu), divided by the factor's entropy; the mean "
           "over factors. 1: each factor is captured by exactly one latent.",
    "sap": "Separated Attribute Predictability (Kumar et al. 2018): for each factor, the gap in test accuracy "
           "between the two latents that predict it best, each alone, with a linear SVM; the mean over factors. "
           "Its ceiling is below 1 (the second latent still scores chance).",
    "dci_disentanglement": "DCI disentanglement (Eastwood & Williams 2018): 1 − the entropy of each latent's "
                           "importance over the factors (gradient-boosted trees), weighted by the latent's share "
                           "of all importance. 1: each latent matters for one factor only.",
    "dci_completeness": "DCI completeness: 1 − the entropy of each factor's importance over the latents, the mean "
                        "over factors. 1: each factor is captured by a single latent.",
    "dci_informativeness": "DCI informativeness: the trees' test accuracy predicting each factor from all "
                           "latents, the mean over factors.",
    "factorvae": "FactorVAE score (Kim & Mnih 2018): accuracy of a majority-vote classifier that names the factor "
                 "held fixed in a batch of rendered images from the latent of least variance (latents scaled by "
                 "their spread; those with variance below 0.05 pruned).",
    "betavae": "β-VAE score (Higgins et al. 2017): accuracy of a logistic regression that names the factor shared "
               "by pairs of rendered images from the mean absolute difference of their latents.",
}

#: the panel's choices of what to compute on demand
CHOICES = {"fast": "MIG + SAP (seconds)", "all": "+ DCI (minutes)", "controlled": "+ FactorVAE, β-VAE (Shapes)"}
SCORE_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
                 (227, 119, 194))


def _heat_plot(title: str) -> tuple[pg.PlotItem, pg.ImageItem]:
    plot = pg.PlotItem(title=title)
    image = pg.ImageItem(axisOrder="row-major")  # rows = latents, columns = factors
    image.setColorMap(pg.colormap.get("viridis"))
    plot.addItem(image)
    plot.invertY(True)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    plot.getAxis("left").setLabel("latent")
    return plot, image


class DisentanglementPanel(QWidget):
    """Scores and their matrices for the open model on a dataset with ground-truth factors.

    Args:
        handle: the window's :class:`~vaegui.session.ModelHandle` (the newest weights, the dataset, the KL per latent).
        history: the run's :class:`~models.run.MetricHistory` (scores of each epoch end).
        settings: where the panel's choices are remembered.
    """

    def __init__(self, handle, history: MetricHistory, settings: QSettings | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.handle, self.history, self.settings = handle, history, settings
        #: the scores shown (``models.metrics.epoch_scores``' keys) and where they came from
        self.scores: dict = {}
        self.source = ""
        #: on-demand results: (epoch, scores)
        self.computed: list[tuple[int, dict]] = []

        self.which_combo = QComboBox()
        for key, title in CHOICES.items():
            self.which_combo.addItem(title, key)
        self.which_combo.setToolTip("DCI trains a gradient-boosted tree classifier per factor (minutes on a CPU); "
                                    "the FactorVAE and β-VAE scores render images from chosen factors (Shapes only)")
        self.points_spin = QSpinBox()
        self.points_spin.setRange(100, 1_000_000)
        self.points_spin.setSingleStep(1000)
        self.points_spin.setValue(5000)
        self.points_spin.setSuffix(" images")
        self.points_spin.setToolTip("Images encoded (the test split first); the classifiers train on 2/3 of them. "
                                    "disentanglement_lib uses 10,000 + 5,000")
        self.votes_spin = QSpinBox()
        self.votes_spin.setRange(50, 10_000)
        self.votes_spin.setSingleStep(250)
        self.votes_spin.setValue(1000)
        self.votes_spin.setSuffix(" votes")
        self.votes_spin.setToolTip("Training votes of the FactorVAE and β-VAE scores (64 rendered images each; "
                                   "half as many to evaluate). Published: 10,000 and 5,000 (about 10 minutes)")
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip("Score the newest weights now, off the window's thread (F5)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.progress.setTextVisible(True)
        self.sort_check = QCheckBox("Sort rows by KL")
        self.sort_check.setToolTip("Latents in order of their test KL, largest first, as in the traversal")
        top = QHBoxLayout()
        for w in (QLabel("Scores:"), self.which_combo, self.points_spin, self.votes_spin):
            top.addWidget(w)
        top.addStretch(1)
        top.addWidget(self.sort_check)
        run_row = QHBoxLayout()
        run_row.addWidget(self.compute_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress, 1)

        self.value_labels: dict[str, QLabel] = {}
        grid = QGridLayout()
        for i, (key, title) in enumerate(SCORE_TITLES.items()):
            name, value = QLabel(f"{title}:"), QLabel("—")
            for w in (name, value):
                w.setToolTip(DEFINITIONS[key])
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(name, i // 4, 2 * (i % 4))
            grid.addWidget(value, i // 4, 2 * (i % 4) + 1)
            self.value_labels[key] = value
        self.caption = QLabel()
        self.caption.setWordWrap(True)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.mi_plot, self.mi_image = _heat_plot("I(z_j; v_k) / H(v_k)")
        self.dci_plot, self.dci_image = _heat_plot("DCI importance R_jk")
        self.epochs_plot = pg.PlotItem(title="Scores over epochs")
        self.epochs_plot.setLabel("bottom", "epoch")
        self.epochs_plot.setYRange(0, 1)
        self.epochs_plot.addLegend(offset=(-10, 10)).setLabelTextColor("k")
        for col, plot in enumerate((self.mi_plot, self.dci_plot, self.epochs_plot)):
            self.graphics.addItem(plot, row=0, col=col)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"), interactive=False,
                                        width=12)
        self.colorbar.setImageItem([self.mi_image, self.dci_image])
        self.graphics.addItem(self.colorbar, row=0, col=3)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.computed_points: dict[str, pg.ScatterPlotItem] = {}
        self._cell_text: list[tuple[pg.PlotItem, pg.TextItem]] = []

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(run_row)
        layout.addLayout(grid)
        layout.addWidget(self.caption)
        layout.addWidget(self.graphics, 1)

        self.slot = TaskSlot(self, self.progress, self.cancel_button, (MetricsStopped,), self._done, self._failed,
                             self._sync_controls)
        self.compute_button.clicked.connect(self.compute)
        self.cancel_button.clicked.connect(self.cancel)
        self.sort_check.toggled.connect(lambda _on: self._draw_matrices())
        self.which_combo.currentIndexChanged.connect(self._sync_controls)
        shortcut = QShortcut(QKeySequence("F5"), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.compute)
        self._restore()
        handle.dataset_changed.connect(self.refresh)
        handle.changed.connect(self._sync_controls)
        self.refresh()

    # -- settings ---------------------------------------------------------------------------------
    def _restore(self) -> None:
        s = self.settings
        if s is None:
            return
        i = self.which_combo.findData(s.value("disentanglement/which", "fast"))
        self.which_combo.setCurrentIndex(max(i, 0))
        for spin, key in ((self.points_spin, "points"), (self.votes_spin, "votes")):
            try:
                spin.setValue(int(s.value(f"disentanglement/{key}", spin.value())))
            except (TypeError, ValueError):
                pass
        self.sort_check.setChecked(str(s.value("disentanglement/sort", "false")).lower() == "true")

    def save_settings(self) -> None:
        if self.settings is None:
            return
        self.settings.setValue("disentanglement/which", self.which_combo.currentData())
        self.settings.setValue("disentanglement/points", self.points_spin.value())
        self.settings.setValue("disentanglement/votes", self.votes_spin.value())
        self.settings.setValue("disentanglement/sort", self.sort_check.isChecked())

    # -- state ------------------------------------------------------------------------------------
    def _has_factors(self) -> bool:
        data = self.handle.dataset
        return data is not None and data.test_factors is not None

    def _is_shapes(self) -> bool:
        data = self.handle.dataset
        return data is not None and data.name.startswith("shapes")

    def _sync_controls(self) -> None:
        controlled = self.which_combo.currentData() == "controlled"
        self.votes_spin.setVisible(controlled)
        ok = self._has_factors() and self.handle.ready and self.task is None
        self.compute_button.setEnabled(ok and (self._is_shapes() or not controlled))
        if controlled and not self._is_shapes():
            self.compute_button.setToolTip("The FactorVAE and β-VAE scores render images from chosen factors: "
                                           "train on Shapes")
        else:
            self.compute_button.setToolTip("Score the newest weights now, off the window's thread (F5)")

    def refresh(self) -> None:
        """Show the newest scores: an epoch end's, or the last computed on demand (after a new
        run, a new dataset or a cut history, what no longer applies is dropped)."""
        self._sync_controls()
        ends = [e for e in self.history.epochs if e.disentanglement]
        last_epoch = self.history.epochs[-1].epoch if self.history.epochs else 0
        self.computed = [(ep, s) for ep, s in self.computed if ep <= last_epoch]
        if not self._has_factors():
            self.scores, self.source = {}, ""
            self.caption.setText("This dataset has no ground-truth factors. Train on Shapes, or import an npz with "
                                 "'factors' (N, K) and 'factor_names', to score how the latents line up with them.")
        elif not self.scores or self.scores not in [e.disentanglement for e in ends] + [s for _, s in self.computed]:
            if ends:
                self.scores, self.source = ends[-1].disentanglement, f"epoch {ends[-1].epoch}, at the epoch's end"
            elif self.computed:
                self.scores, self.source = self.computed[-1][1], f"computed after epoch {self.computed[-1][0]}"
            else:
                self.scores, self.source = {}, ""
        self._show()

    def reset(self) -> None:
        """A new run (or another model): scores computed on earlier weights no longer apply."""
        self.cancel()
        self.computed, self.scores, self.source = [], {}, ""
        self.refresh()

    def epoch_ended(self, end) -> None:
        """An epoch ended: show its scores, when the run computes them."""
        if end.disentanglement:
            self.scores, self.source = end.disentanglement, f"epoch {end.epoch}, at the epoch's end"
        self.refresh()

    # -- computing --------------------------------------------------------------------------------
    def compute(self) -> None:
        """Score the newest weights on the window's dataset, off the GUI thread (F5)."""
        if self.task is not None or not self.handle.ready or not self._has_factors():
            return
        why = self.handle.mismatch()
        if why:
            self.caption.setText(why)
            return
        self.save_settings()
        which, points, votes = self.which_combo.currentData(), self.points_spin.value(), self.votes_spin.value()
        model = copy.deepcopy(self.handle.model).cpu().eval()
        dataset = self.handle.dataset
        epoch = self.history.epochs[-1].epoch if self.history.epochs else 0

        def job(progress, stopped):
            share = 0.5 if which == "controlled" else 1.0
            scores = epoch_scores(model, dataset, "fast" if which == "fast" else "all", points, stopped=stopped,
                                  progress=lambda f, t: progress(share * f, t))
            if which == "controlled":
                from models.metrics import beta_vae_score, factor_vae_score, shapes_encoder

                encode, sizes = shapes_encoder(model)
                fv = factor_vae_score(encode, sizes, 64, votes, votes // 2, min(10_000, 20 * votes), stopped=stopped,
                                      progress=lambda f, t: progress(0.5 + 0.25 * f, "FactorVAE score: " + t))
                bv = beta_vae_score(encode, sizes, 64, votes, votes // 2, stopped=stopped,
                                    progress=lambda f, t: progress(0.75 + 0.25 * f, "β-VAE score: " + t))
                scores.update(factorvae=fv["eval_accuracy"], betavae=bv["eval_accuracy"])
            return epoch, scores

        self.slot.start(job, "encoding…")
        self._sync_controls()

    @property
    def task(self) -> BackgroundTask | None:
        """The computation running now, or None."""
        return self.slot.task

    def cancel(self) -> None:
        """Stop the computation; the scores shown stay (the thread stops at its next check)."""
        self.slot.cancel("cancelled")
        self._sync_controls()

    def wait(self, ms: int = 10_000) -> None:
        """Cancel and wait for a running computation (closing the window)."""
        self.slot.wait(ms)

    def _failed(self, message: str, _details: str) -> None:
        self.progress.setFormat("failed")
        self.caption.setText(f"The scores could not be computed: {message}")

    def _done(self, result) -> None:
        epoch, scores = result
        self.computed.append((epoch, scores))
        self.scores, self.source = scores, f"computed after epoch {epoch}" if epoch else "computed"
        self.progress.setValue(1000)
        self.progress.setFormat(f"done in {scores['seconds']:.1f} s")
        self._show()

    # -- drawing ----------------------------------------------------------------------------------
    def _show(self) -> None:
        s = self.scores
        for key, label in self.value_labels.items():
            label.setText(f"{s[key]:.3f}" if key in s else "—")
        if s:
            names = ", ".join(self.handle.dataset.factor_names) if self._has_factors() else ""
            self.caption.setText(f"{self.source}; posterior means of {s.get('points', 0):,} images; factors: {names}. "
                                 "Hover a score for its definition. Left: how much each latent tells about each "
                                 "factor; middle: how much each latent matters to the trees that predict each factor.")
        elif self._has_factors():
            self.caption.setText("No scores yet: press Compute (F5), or choose Disentanglement scores in the "
                                 "training form to score each epoch." if self.handle.ready else
                                 "No model yet: press Train (Ctrl+Return).")
        self._draw_matrices()
        self._draw_epochs()

    def row_order(self, d: int) -> list[int]:
        """The latents in display order: by test KL, largest first, when sorting is on and known."""
        kl = list(getattr(self.handle, "kl_per_dim", []) or [])
        if self.sort_check.isChecked() and len(kl) == d:
            return [int(i) for i in np.argsort(-np.asarray(kl), kind="stable")]
        return list(range(d))

    def _draw_matrices(self) -> None:
        for plot, item in self._cell_text:
            plot.removeItem(item)
        self._cell_text = []
        names = list(self.handle.dataset.factor_names) if self._has_factors() else []
        mi = np.asarray(self.scores.get("mi", []), dtype=np.float64)
        entropies = self.scores.get("factor_entropy")
        for plot, image, matrix in ((self.mi_plot, self.mi_image, self._normalised_mi(mi, entropies)),
                                    (self.dci_plot, self.dci_image,
                                     np.asarray(self.scores.get("dci_importance", []), dtype=np.float64))):
            if matrix.ndim != 2 or matrix.size == 0:
                image.clear()
                plot.getAxis("left").setTicks([[]])
                plot.getAxis("bottom").setTicks([[]])
                continue
            order = self.row_order(matrix.shape[0])
            shown = matrix[order]
            image.setImage(shown, levels=(0.0, 1.0))
            image.setRect(0, 0, shown.shape[1], shown.shape[0])
            plot.getAxis("left").setTicks([[(i + 0.5, f"z{j}") for i, j in enumerate(order)]])
            labels = names if len(names) == shown.shape[1] else [f"v{k}" for k in range(shown.shape[1])]
            labels = [n if len(n) <= 6 else n[:5] + "." for n in labels]  # full names: the caption
            plot.getAxis("bottom").setTicks([[(k + 0.5, n) for k, n in enumerate(labels)]])
            plot.setRange(xRange=(0, shown.shape[1]), yRange=(0, shown.shape[0]), padding=0)
            if shown.size <= 160:
                for i in range(shown.shape[0]):
                    for k in range(shown.shape[1]):
                        text = pg.TextItem(f"{shown[i, k]:.2f}", anchor=(0.5, 0.5),
                                           color="k" if shown[i, k] > 0.6 else "w")
                        text.setPos(k + 0.5, i + 0.5)
                        plot.addItem(text)
                        self._cell_text.append((plot, text))

    def _normalised_mi(self, mi: np.ndarray, entropies) -> np.ndarray:
        """MI (D, K) nats divided by each factor's entropy (MIG's normalisation), in [0, 1]."""
        if mi.ndim != 2 or mi.size == 0:
            return mi
        h = np.asarray(entropies, dtype=np.float64) if entropies is not None else mi.max(axis=0)
        return np.clip(mi / np.where(h > 0, h, 1.0), 0.0, 1.0)

    def _draw_epochs(self) -> None:
        ends = [e for e in self.history.epochs if e.disentanglement]
        legend = self.epochs_plot.legend
        for i, key in enumerate(SCORE_TITLES):
            xs = [e.epoch for e in ends if key in e.disentanglement]
            cx = [ep for ep, s in self.computed if key in s]
            if not xs and not cx:
                continue
            colour = SCORE_COLOURS[i % len(SCORE_COLOURS)]
            if key not in self.curves:
                self.curves[key] = self.epochs_plot.plot(pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5,
                                                         symbolBrush=colour)
                self.computed_points[key] = pg.ScatterPlotItem(symbol="x", size=10, pen=pg.mkPen(colour, width=2))
                self.epochs_plot.addItem(self.computed_points[key])
                legend.addItem(self.curves[key], SCORE_TITLES[key])
            self.curves[key].setData(xs, [e.disentanglement[key] for e in ends if key in e.disentanglement])
            self.computed_points[key].setData(cx, [s[key] for ep, s in self.computed if key in s])
        for key, curve in self.curves.items():
            if not any(key in e.disentanglement for e in ends):
                curve.setData([], [])
            if not any(key in s for _, s in self.computed):
                self.computed_points[key].setData([], [])
