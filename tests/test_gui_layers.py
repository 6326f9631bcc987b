"""The two-layer and ladder VAEs trained from the form, and the Layers tab as a person uses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaegui.figrender import FigureStyle

from .test_gui import train_to_end
from .test_gui_latent_map import make_map
from .test_gui_models import choose, visit
from .ui import UI


def test_the_layers_tab_explains_itself_for_a_one_layer_model(qtbot, window):
    train_to_end(qtbot, window, epochs=1)
    ui = UI(qtbot, window)
    visit(qtbot, window, window.layers)
    assert ui.grid("Layers") is None and "two-layer or ladder VAE" in ui.caption("Layers")


@pytest.mark.parametrize("model", ["hvae", "ladder"])
def test_a_hierarchical_vae_trains_from_the_form_and_each_layer_shows(qtbot, window, model, tmp_path):
    form, ui = window.form, UI(qtbot, window)
    assert not form.model_form.isRowVisible(form.fields["layer1_dim"])
    choose(form.model_combo, model)
    assert form.model_form.isRowVisible(form.fields["layer1_dim"])  # z1's size is asked for
    assert not form.fields["objective"].isEnabled() and not form.free_bits_spin.isEnabled()
    assert form.iw_k_spin.isEnabled() and form.eval_iw_spin.isEnabled()  # ELBO or IWAE, and the IS estimate
    form.hidden_spin.setValue(64)
    form.latent_spin.setValue(3)
    ui.set(layer1_dim=6, kl_warmup=100, lr=3e-3, eval_iw=10, eval_iw_images=50)
    assert "64-64-64-6-32-32-3" in form.model_card.text()
    train_to_end(qtbot, window, epochs=6)
    end = window.plots.epochs[-1]
    assert set(end.test_terms) == {"kl_z1", "kl_z2", "active_z1", "active_z2"}
    assert f"test KL z1 {end.test_terms['kl_z1']:.2f} + z2 {end.test_terms['kl_z2']:.2f} nats, active units z1" in \
        form.speed_label.text()
    assert end.test_nll_iw is not None and end.test_iw_gap is not None  # the IS estimate was asked for
    # the KL plot has a curve per layer beside the total
    curves = window.plots.term_curves
    qtbot.waitUntil(lambda: {"kl_z1", "kl_z2"} <= set(curves) and len(curves["kl_z2"].xData) == 6, timeout=3000)
    assert list(curves["kl_z1"].yData) == pytest.approx([e.train_terms["kl_z1"] for e in window.plots.epochs])
    # the one-layer panels see the top layer
    visit(qtbot, window, window.samples)
    assert ui.grid("Samples") is not None

    layers = window.layers
    visit(qtbot, window, layers)
    images, rows, cols = ui.grid("Layers")
    assert (rows, cols) == (6, 8) and images.shape == (48, 1, 8, 8)
    assert 0 <= images.min() and images.max() <= 1
    assert ui.panel("Layers").figure.col_labels[0] == "z1 mean"
    tiles = images.reshape(rows, cols, -1)
    assert np.abs(tiles[:, 1:] - tiles[:, :1]).max() > 0  # z1 drawn per column changes the image

    choose(layers.mode_combo, "z1")
    qtbot.waitUntil(lambda: ui.panel("Layers").figure.params["mode"] == "z1", timeout=3000)
    images, rows, cols = ui.grid("Layers")
    assert rows == 6 and cols == 8 and layers.figure.row_labels[0].startswith("z1[")
    first_image = images.copy()
    layers.image_spin.setValue(7)  # another test image to start from
    assert not np.array_equal(ui.grid("Layers")[0], first_image)

    choose(layers.mode_combo, "z2")
    layers.rows_spin.setValue(3)
    mean_z1 = ui.grid("Layers")[0].copy()
    assert ui.grid("Layers")[1] == 3 and "z1 at the mean of p(z1|z2)" in ui.caption("Layers")
    layers.draw_check.setChecked(True)
    assert not np.array_equal(ui.grid("Layers")[0], mean_z1) and "fixed draw" in ui.caption("Layers")

    # export and reopen the figure: the panel comes back to the same settings
    path = str(tmp_path / "layers.png")
    layers.save_png(path, FigureStyle())
    choose(layers.mode_combo, "samples")
    assert window.figures.open_figure(path)
    assert layers.mode() == "z2" and layers.rows_spin.value() == 3 and layers.draw_check.isChecked()
    np.testing.assert_array_equal(ui.grid("Layers")[0], layers.figure.images)


def test_the_latent_map_shows_either_layer_of_a_two_layer_vae(qtbot, window):
    form, ui = window.form, UI(qtbot, window)
    panel = window.latent_map
    assert not panel.controls.map_form.isRowVisible(panel.controls.layer_combo)
    choose(form.model_combo, "ladder")
    form.hidden_spin.setValue(32)
    form.latent_spin.setValue(3)
    ui.set(layer1_dim=6)
    train_to_end(qtbot, window, epochs=1)
    assert panel.controls.map_form.isRowVisible(panel.controls.layer_combo)
    top = make_map(ui)
    assert top.map.encoded.codes.shape == (360, 3)
    choose(panel.controls.layer_combo, 1)
    lower = make_map(ui, "dims")
    m = lower.map
    assert m.encoded.codes.shape == (360, 6) and "of the lower layer z1" in lower.caption.text()
    with torch.inference_mode():
        mu1 = window.handle.model.encode_layers(window.handle.dataset.test_x)[0][0].numpy()
    np.testing.assert_allclose(m.encoded.codes, mu1, rtol=1e-4, atol=1e-5)
    i = int(np.argmax(np.linalg.norm(mu1[:, :2] - mu1[:, :2].mean(0), axis=1)))  # alone under the cursor
    ui.click_plot(lower.plot, *mu1[i, :2])
    with torch.inference_mode():
        expected = window.handle.model.decode_layers(None, z1=torch.from_numpy(mu1[i])[None]).numpy()
    np.testing.assert_allclose(lower.inspector.decoded_pixels(), expected[0, 0], atol=1e-6)  # decoded through p(x|z1)
    assert not lower.inspector.to_traversal.isEnabled()  # the sliders hold z2
