"""Every model variant trained from the form, and its panels as a person sees them."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from .test_gui import train_to_end
from .ui import UI


def choose(combo, key):
    index = combo.findData(key)
    assert index >= 0, key
    combo.setCurrentIndex(index)


def visit(qtbot, window, panel):
    window.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: not panel._stale, timeout=3000)


@pytest.mark.parametrize(
    "model,arch,likelihood,dataset",
    [
        ("vae", "mlp", "cbernoulli", "digits"),
        ("vae", "mlp", "gaussian", "digits"),
        ("vae", "mlp", "gaussian-learned", "digits"),
        ("vae", "conv", "bernoulli", "mnist5k"),
        ("ae", "mlp", "bernoulli", "digits"),
        ("cvae", "mlp", "bernoulli", "digits"),
    ],
)
def test_each_variant_trains_from_the_form_and_its_panels_render(qtbot, window, model, arch, likelihood, dataset):
    form = window.form
    choose(form.dataset_combo, dataset)
    choose(form.model_combo, model)
    choose(form.arch_combo, arch)
    choose(form.likelihood_combo, likelihood)
    form.hidden_spin.setValue(32)
    form.latent_spin.setValue(3)
    assert "parameters" in form.model_card.text()
    train_to_end(qtbot, window, epochs=1)
    assert window.handle.model.config.describe().startswith(("64-32-3", "784-32-3", "conv"))

    visit(qtbot, window, window.manifold)
    visit(qtbot, window, window.samples)
    if model == "ae":
        assert "no prior" in UI(qtbot, window).caption("Manifold") and UI(qtbot, window).grid("Manifold") is None
        assert "no prior" in UI(qtbot, window).caption("Samples") and UI(qtbot, window).grid("Samples") is None
    else:
        assert UI(qtbot, window).grid("Manifold") is not None and window.samples.grid_view.pixels is not None
        assert 0 <= window.samples.grid_view.pixels.min() and window.samples.grid_view.pixels.max() <= 1
    visit(qtbot, window, window.traversal)
    qtbot.waitUntil(lambda: window.traversal.image_view.pixels is not None, timeout=3000)
    UI(qtbot, window).show("Interpolation")
    qtbot.mouseClick(window.interpolation.run_button, Qt.MouseButton.LeftButton)
    assert UI(qtbot, window).grid("Interpolation")[2] == 12
    visit(qtbot, window, window.analogies)
    if model == "cvae":
        images, rows, cols = UI(qtbot, window).grid("Analogies")
        assert (rows, cols) == (6, 11)
    else:
        assert "need a model that decodes with a label" in UI(qtbot, window).caption("Analogies")
    UI(qtbot, window).show("Latent activity")
    if model == "ae":
        assert "no KL per dimension" in UI(qtbot, window).caption("Latent activity")
    else:
        assert window.activity.bars is not None and "dimensions active" in UI(qtbot, window).caption("Latent activity")


def test_conv_is_offered_only_for_sizes_it_supports(window):
    item = window.form.arch_combo.model().item(window.form.arch_combo.findData("conv"))
    assert not item.isEnabled()  # digits are 8×8
    choose(window.form.dataset_combo, "mnist5k")
    assert item.isEnabled()


def test_cvae_label_selector_changes_what_is_decoded(qtbot, window):
    choose(window.form.model_combo, "cvae")
    train_to_end(qtbot, window, epochs=2)
    visit(qtbot, window, window.samples)
    assert window.samples.label_combo.isVisible() and window.samples.label_combo.count() == 10
    before = window.samples.grid_view.pixels.copy()
    window.samples.label_combo.setCurrentIndex(7)
    assert not np.array_equal(before, window.samples.grid_view.pixels)
    assert not window.manifold.label_combo.isHidden()


def test_beta_vae_with_warmup_and_is_estimate_shows_loss_and_gap_curves(qtbot, window):
    form = window.form
    form.beta_spin.setValue(4.0)
    form.warmup_spin.setValue(10)
    form.eval_iw_spin.setValue(20)
    form.eval_images_spin.setValue(50)
    train_to_end(qtbot, window, epochs=2)
    plots = window.plots
    def points(curve):  # every point given to the curve, not only those clipped to the view
        return 0 if curve.xData is None else len(curve.xData)

    qtbot.waitUntil(lambda: points(plots.iw_curve) == 2, timeout=3000)
    assert points(plots.loss_curve) == plots.steps.size  # the weighted loss differs from −ELBO
    assert points(plots.gap_curve) == 2 and (plots.gap_curve.yData >= 0).all()
    assert plots.epochs[-1].kl_weight == 4.0


def test_beta_tcvae_from_the_form_plots_its_three_terms_and_resumes(qtbot, window):
    form = window.form
    ui = UI(qtbot, window)
    capacity_field = form.fields["capacity_max"]
    choose(form.fields["objective"], "capacity")
    assert capacity_field.isVisibleTo(window) and not form.fields["dip_lambda"].isVisibleTo(window)
    choose(form.fields["objective"], "tcvae")
    assert not capacity_field.isVisibleTo(window)
    assert not form.iw_k_spin.isEnabled() and "total correlation" in form.beta_spin.toolTip()
    form.beta_spin.setValue(6.0)
    ui.train(epochs=2)
    plots = window.plots
    qtbot.waitUntil(lambda: len(plots.term_curves) == 3
                    and all(len(c.xData) == 2 for c in plots.term_curves.values()), timeout=3000)
    legend = [label.text for _sample, label in plots.plots["kl"].legend.items]
    for title in ("index-code MI", "total correlation", "dimension-wise KL"):
        assert any(text.startswith(title) for text in legend), legend
        curve = plots.term_curves[{"index-code MI": "mi", "total correlation": "tc",
                                   "dimension-wise KL": "dim_kl"}[title]]
        assert len(curve.xData) == 2 and np.isfinite(curve.yData).all()
    end = plots.epochs[-1]
    assert end.kl_weight == 1.0 and set(end.train_terms) == {"mi", "tc", "dim_kl"}
    ui.continue_to(3)  # the objective is kept when training continues
    assert window.run.last_done is not None and len(plots.epochs) == 3 and "tc" in plots.epochs[-1].train_terms


def test_traversal_sorted_by_kl(qtbot, window):
    UI(qtbot, window).set(latent_dim=6)
    train_to_end(qtbot, window, epochs=2)
    visit(qtbot, window, window.traversal)
    panel = window.traversal
    assert panel.sort_check.isChecked()  # by default, as the manifold's axes
    kl = window.handle.kl_per_dim
    order = panel.dim_order()
    assert order == sorted(range(6), key=lambda k: -kl[k])
    first_row_name = panel.slider_grid.itemAtPosition(0, 0).widget().text()
    assert first_row_name == f"z{order[0]} · KL {kl[order[0]]:.2f} nats"
    assert "rows in order of test KL" in panel.caption.text()
    panel.sort_check.setChecked(False)
    assert panel.dim_order() == list(range(6))
    assert panel.slider_grid.itemAtPosition(0, 0).widget().text().startswith("z0 · KL")
