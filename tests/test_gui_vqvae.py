"""The VQ-VAE trained from the form, its samples, and the Codebook tab as a person uses it."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt

from vaegui.figrender import FigureStyle

from .test_gui import train_to_end
from .test_gui_models import choose, visit
from .ui import UI


def click_cell(qtbot, panel, row: int, col: int) -> None:
    """Click the middle of cell (row, col) of the code map, as a person does."""
    h = panel.handle.dataset.image_shape[1]
    step = h / panel.handle.model.side
    scene = panel.edited_box.mapViewToScene(QPointF((col + 0.5) * step, (row + 0.5) * step))
    qtbot.mouseClick(panel.edited_view.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.edited_view.mapFromScene(scene))


def test_the_vqvae_trains_from_the_form_and_its_panels_say_what_applies(qtbot, window, tmp_path):
    form, ui = window.form, UI(qtbot, window)
    vq_item = form.model_combo.model().item(form.model_combo.findData("vqvae"))
    assert not vq_item.isEnabled()  # the 8×8 digits: no VQ-VAE
    choose(form.dataset_combo, "mnist5k")
    qtbot.waitUntil(lambda: vq_item.isEnabled(), timeout=10000)
    assert not form.model_form.isRowVisible(form._own_rows["codebook_size"])
    form.beta_spin.setValue(4.0)
    choose(form.model_combo, "vqvae")
    for name in ("codebook_size", "codebook", "code_prior"):
        assert form.model_form.isRowVisible(form._own_rows[name])
    assert form.train_form.isRowVisible(form.fields["commitment"])
    assert form.beta_spin.value() == 1.0 and not form.beta_spin.isEnabled()
    assert not form.latent_spin.isEnabled() and not form.eval_iw_spin.isEnabled()
    ui.set(codebook_size=16, code_dim=8)
    assert "7×7 codes of K=16 × D=8, learned prior" in form.model_card.text()
    train_to_end(qtbot, window, epochs=1)
    end = window.plots.epochs[-1]
    assert set(end.test_terms) == {"perplexity", "codes_used"}
    assert f"codebook perplexity {end.test_terms['perplexity']:.1f}" in form.speed_label.text()

    for panel in (window.manifold, window.traversal):
        visit(qtbot, window, panel)
        assert panel.current_grid is None and "does not apply" in panel.caption.text()
    assert window.traversal.sliders == []
    visit(qtbot, window, window.samples)
    samples = window.samples
    assert samples.form.isRowVisible(samples.temperature_spin)
    images, rows, cols = ui.grid("Samples")
    assert images.shape == (64, 1, 28, 28) and "learned prior at temperature 1" in ui.caption("Samples")
    samples.temperature_spin.setValue(0.3)
    assert not np.array_equal(ui.grid("Samples")[0], images)
    ui.show("Interpolation")
    qtbot.mouseClick(window.interpolation.run_button, Qt.MouseButton.LeftButton)
    assert ui.grid("Interpolation")[2] == 12
    assert "encoder outputs z_e of A and B, each point quantised" in ui.caption("Interpolation")
    ui.show("Latent activity")
    assert "VQ-VAE's codes have no KL per dimension" in ui.caption("Latent activity")
    visit(qtbot, window, window.layers)
    assert ui.grid("Layers") is None


def test_the_codebook_tab_edits_an_image_code_by_code(qtbot, window, tmp_path):
    form, ui = window.form, UI(qtbot, window)
    codebook = window.codebook
    choose(form.dataset_combo, "mnist5k")
    choose(form.model_combo, "vqvae")
    ui.set(codebook_size=16, code_dim=8)
    train_to_end(qtbot, window, epochs=1)
    visit(qtbot, window, codebook)
    images, rows, cols = ui.grid("Codebook")
    assert images.shape == (16, 1, 28, 28) and (rows, cols) == (1, 16)
    assert codebook.counts.sum() == 1000 * 49  # every test cell has one code
    assert str(int((codebook.counts > 0).sum())) in codebook.usage_label.text()
    assert len(codebook.pca_points.data) == 16

    click_cell(qtbot, codebook, 2, 5)
    assert (codebook.row_spin.value(), codebook.col_spin.value()) == (2, 5)
    before = codebook.edited_image.copy()
    own = codebook.code_spin.value()
    assert own == int(codebook.codes[2, 5])
    codebook.code_spin.setValue((own + 3) % 16)
    after = codebook.edited_image
    changed = np.abs(after - before)[0] > 1e-6
    assert changed.any() and int(codebook.edited[2, 5]) == (own + 3) % 16
    rows_changed, cols_changed = np.nonzero(changed)
    # cell (2, 5) covers rows 8..11 and columns 20..23; the decoder's reach adds 3 cells and 6 pixels
    assert rows_changed.max() <= 4 * 5 + 6 and cols_changed.min() >= 4 * 2 - 3
    # the meanings grid's tile of the cell's own code is the edited image
    np.testing.assert_allclose(ui.grid("Codebook")[0][(own + 3) % 16], after, atol=1e-6)

    # a click on a code's point in the codebook's PCA plot puts that code in the cell
    pca = codebook._pca
    gaps = np.linalg.norm(pca[:, None] - pca[None], axis=2) + np.eye(16) * 1e9
    k = int(np.argmax(gaps.min(1)))  # the point farthest from the others: alone under the cursor
    box = codebook.pca_plot.getPlotItem().getViewBox()

    def shown(x, y):  # the plot has ranged over its points, as it has by the time a person looks
        (x0, x1), (y0, y1) = box.viewRange()
        return x0 < x < x1 and y0 < y < y1

    qtbot.waitUntil(lambda: shown(*pca[k]), timeout=3000)
    ui.click_plot(codebook.pca_plot, *pca[k])
    assert codebook.code_spin.value() == k and int(codebook.edited[2, 5]) == k
    codebook.code_spin.setValue((own + 3) % 16)

    path = str(tmp_path / "codebook.png")
    codebook.save_png(path, FigureStyle())
    codebook.reset_edits()
    assert int(codebook.edited[2, 5]) == own
    assert window.figures.open_figure(path)
    assert int(codebook.edited[2, 5]) == (own + 3) % 16 and (codebook.row_spin.value(), codebook.col_spin.value()) \
        == (2, 5)
