"""The Latent map panel, driven as a person would: train, open the tab, update the
map, hover, click, select, hand a point to the other panels, compare and export."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from tests.ui import UI


def make_map(ui: UI, projection: str | None = None):
    panel = ui.show("Latent map")
    if projection is not None:
        panel.controls.projection_combo.setCurrentIndex(panel.controls.projection_combo.findData(projection))
    ui.click(panel.controls.update_button)
    ui.qtbot.waitUntil(lambda: panel.map is not None and not panel.busy, timeout=60_000)
    return panel


def test_map_of_a_2d_vae_click_decodes_the_point(qtbot, window):
    ui = UI(qtbot, window).train(2)
    panel = make_map(ui)
    data = window.handle.dataset
    m = panel.map
    assert m.projection.kind == "latent"  # D = 2: the latent itself
    assert len(panel.plot.points) == len(data.test_x)  # one point per test image
    assert np.array_equal(m.encoded.labels, data.test_y.numpy())
    with torch.inference_mode():
        mu = window.handle.model.encode(data.test_x)[0].numpy()
    np.testing.assert_allclose(panel.plot.points, mu, rtol=1e-4, atol=1e-5)
    assert "360 images of the test split" in panel.caption.text()
    # a click at the position of point i decodes mu_i
    i = int(np.argmax(np.linalg.norm(mu - mu.mean(0), axis=1)))  # an outlying point, alone under the cursor
    ui.click_plot(panel.plot, *mu[i])
    expected = window.handle.decode(torch.from_numpy(mu[i])[None])
    np.testing.assert_allclose(panel.inspector.decoded_pixels(), expected[0, 0], atol=1e-6)
    assert f"test #{i}" in panel.inspector.decoded_label.text()
    # ... and hands it to the Traversal as its start
    ui.click(panel.inspector.to_traversal)
    assert window.tabs.currentWidget() is window.traversal
    np.testing.assert_allclose(window.traversal.z().numpy(), np.clip(mu[i], -3, 3), atol=0.01)
    # ... or to the interpolation's end B
    ui.show("Latent map")
    ui.click(panel.inspector.to_b)
    assert window.interpolation.index_b.value() == i


def test_click_between_points_decodes_the_latent_under_the_cursor(qtbot, window):
    ui = UI(qtbot, window).train(2)
    panel = make_map(ui)
    pts = panel.plot.points
    # an empty place: far from every point
    x, y = float(pts[:, 0].max() + 0.0), float(pts[:, 1].max() + 0.0)
    panel.plot.box.setRange(xRange=(pts[:, 0].min(), x + 1), yRange=(pts[:, 1].min(), y + 1), padding=0)
    qtbot.wait(10)
    ui.click_plot(panel.plot, x + 0.5, y + 0.5)
    z = panel.chosen_z.numpy()
    np.testing.assert_allclose(z, [x + 0.5, y + 0.5], atol=0.05)  # within a pixel or two
    assert "latent under the cursor" in panel.inspector.decoded_label.text()
    np.testing.assert_allclose(panel.inspector.decoded_pixels(), window.handle.decode(panel.chosen_z[None])[0, 0],
                               atol=1e-6)


def test_pca_map_selection_attribute_vector_and_exports(qtbot, window, tmp_path):
    ui = UI(qtbot, window).set(latent_dim=4).train(2)
    panel = make_map(ui, "pca")
    assert panel.map.projection.kind == "pca" and "PCA: PC 1" in panel.caption.text()
    pts = panel.plot.points
    qtbot.wait(50)  # the tab laid out
    # a lasso (Shift+drag) around the left half selects those points
    (vx0, vx1), (vy0, vy1) = panel.plot.getPlotItem().getViewBox().viewRange()
    x0 = vx0 + 0.02 * (vx1 - vx0)
    y0, y1 = vy0 + 0.02 * (vy1 - vy0), vy1 - 0.02 * (vy1 - vy0)
    mid = float(np.median(pts[:, 0]))
    ui.drag_plot(panel.plot, [(x0, y0), (mid, y0), (mid, y1), (x0, y1)])
    left = pts[:, 0] < mid
    assert panel.selection is not None and abs(int(panel.selection.sum()) - int(left.sum())) <= 3
    # PCA's inverse: a click decodes the inverse-projected latent
    cx, cy = pts.mean(axis=0)
    ui.click_plot(panel.plot, cx + 1e-3, cy + 1e-3)
    if panel.chosen_index is None:  # not on a point: the exact latent under the cursor
        p = panel.map.projection
        back = (panel.chosen_z.numpy() - p.pca_mean) @ p.pca_components.T
        np.testing.assert_allclose(back, [cx, cy], atol=0.05)
    # the selection as group A, a label as group B: an attribute vector
    attrs = panel.attributes
    ui.click(attrs.sel_a)
    attrs.edit_b.setText("label == 7")
    ui.click(attrs.compute_button)
    assert attrs.vector_combo.count() == 1 and "ROC AUC" in attrs.result_label.text()
    assert attrs.strip_view.pixels is not None  # the decoded strip z + t·a
    attrs.edit_a.setText("colour < 3")
    attrs.groups["a"] = None
    ui.click(attrs.compute_button)
    assert "No column 'colour'" in attrs.result_label.text() and attrs.vector_combo.count() == 1
    attrs.project_check.setChecked(True)
    assert "along" in panel.caption.text()
    # exports
    assert panel.exports.export("csv", str(tmp_path / "map.csv"))
    with open(tmp_path / "map.csv", newline="") as fh:
        assert len(list(csv.reader(fh))) == len(pts) + 1
    assert panel.exports.export("projector", str(tmp_path / "tb"))
    assert len((tmp_path / "tb" / "metadata.tsv").read_text().splitlines()) == len(pts) + 1
    dialog = panel.exports.export_png_dialog()  # File, width and height, as a person fills them in
    _, path_edit, width, height = panel.exports.png_dialog
    path_edit.setText(str(tmp_path / "map.png"))
    width.setValue(640)
    height.setValue(480)
    dialog.accept()
    from PIL import Image

    with Image.open(tmp_path / "map.png") as im:
        assert im.size == (640, 480) and len(np.unique(np.asarray(im.convert("L")))) > 10  # drawn, not blank
        assert "weights_sha256" in im.text["Description"] and im.text["Software"].startswith("vaegui")
    attrs.save(str(tmp_path / "vectors.json"))
    assert attrs.load(str(tmp_path / "vectors.json")) == 1 and attrs.vector_combo.count() == 2
    # the vectors are kept with the model: saved, then back when it is opened
    assert window.files.save_model(str(tmp_path / "m.vae"))
    ui.set(latent_dim=4).train(1)  # a new model: no vectors
    assert attrs.vector_combo.count() == 0
    assert window.files.open_model(str(tmp_path / "m.vae"))
    assert attrs.vector_combo.count() == 2 and attrs.vectors[0].name == "label == 7 − " + attrs.vectors[0].group_a


def test_cancel_during_tsne_keeps_the_previous_map(qtbot, window):
    pytest.importorskip("openTSNE")
    ui = UI(qtbot, window).set(latent_dim=4).train(2)
    panel = make_map(ui, "pca")
    before = panel.map
    panel.controls.split_combo.setCurrentIndex(panel.controls.split_combo.findData("both"))
    panel.controls.projection_combo.setCurrentIndex(panel.controls.projection_combo.findData("tsne"))
    ui.click(panel.controls.update_button)
    qtbot.waitUntil(lambda: "t-SNE" in panel.controls.progress.text(), timeout=30_000)
    ui.click(panel.controls.cancel_button)
    assert not panel.busy and panel.map is before
    assert "cancelled" in panel.controls.progress.text()
    from vaegui.tasks import BackgroundTask

    for task in panel.findChildren(BackgroundTask):  # the thread itself stops within a second
        assert task.wait(1500)
    assert panel.map is before


def test_map_refreshes_at_each_epoch_and_compares_two_models(qtbot, window, tmp_path):
    ui = UI(qtbot, window).train(1)
    panel = make_map(ui)
    first = panel.map
    ui.continue_to(2)
    qtbot.waitUntil(lambda: panel.map is not first and not panel.busy, timeout=30_000)
    assert not np.array_equal(panel.map.encoded.mu, first.encoded.mu)  # new weights, same points moved
    qtbot.waitUntil(lambda: not panel.plot.drawing)  # the points are drawn in chunks between events
    (vx0, vx1), (vy0, vy1) = panel.plot.getPlotItem().getViewBox().viewRange()
    pts = panel.plot.points
    assert vx0 <= pts[:, 0].min() and pts[:, 0].max() <= vx1 and vy0 <= pts[:, 1].min() and pts[:, 1].max() <= vy1
    # a second model beside: saved, then opened for comparison
    path = tmp_path / "other.vae"
    assert window.files.save_model(str(path))
    assert panel.compare_with(str(path))
    qtbot.waitUntil(lambda: panel.other is not None and not panel.busy, timeout=30_000)
    assert panel.plot2.isVisible() and len(panel.plot2.points) == len(panel.plot.points)
    assert "Right: other.vae" in panel.caption.text()
    ui.click(panel.close_compare)
    assert not panel.plot2.isVisible()
