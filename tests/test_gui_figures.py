"""Exports people put in papers: labelled grids with exact sizes, vector plots, the
clipboard, metrics with their provenance, and PNGs that give their latents back."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication

from vaegui.figdialog import FigureExportDialog, PlotExportDialog
from vaegui.figrender import FigureStyle, read_figure

from .ui import UI


def export_with_dialog(qtbot, panel, path, **choices) -> FigureExportDialog:
    """Click the panel's Export button, fill the dialog as a person would, click Save."""
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    dialog = panel.findChild(FigureExportDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.path_edit.setText(str(path))
    for name, value in choices.items():
        widget = getattr(dialog, name)
        widget.setChecked(value) if isinstance(value, bool) else (
            widget.setText(value) if isinstance(value, str) else widget.setValue(value))
    dialog.update_preview()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    return dialog


def test_labelled_traversal_export_has_the_size_it_states_and_labels_drawn(qtbot, window, tmp_path):
    ui = UI(qtbot, window)
    ui.set(latent_dim=3).train(2)
    panel = ui.show("Traversal")
    panel.cols_spin.setValue(5)
    qtbot.waitUntil(lambda: panel.current_grid is not None and panel.current_grid[2] == 5)
    path = tmp_path / "traversal.png"
    dialog = export_with_dialog(qtbot, panel, path, scale_spin=3, padding_spin=2, labels_check=True,
                                title_edit="z traversal", caption_check=True, font_spin=9.0, dpi_spin=150)
    stated = re.match(r"(\d+) × (\d+) pixels", dialog.size_label.text())
    with Image.open(path) as img:
        assert img.size == (int(stated[1]), int(stated[2]))
        pixels = np.asarray(img.convert("L"))
        assert abs(img.info["dpi"][0] - 150) < 0.1
    grid_w = 5 * 8 * 3 + 6 * 2
    assert pixels.shape[1] > grid_w and pixels.shape[0] > 3 * 8 * 3 + 4 * 2  # room for the labels
    left = pixels[:, : pixels.shape[1] - grid_w - 2]  # the row labels' margin ("z1 · KL 0.42")
    assert (left < 128).sum() > 50, "the row labels are not drawn"
    assert (pixels[:12] < 128).sum() > 20, "the title is not drawn"
    # the caption names the model, the dataset and the epoch
    doc = read_figure(path)
    assert "epoch 2" in dialog.caption_edit.text() and "MLP VAE" in dialog.caption_edit.text()
    assert doc.kind == "traversal" and doc.latents.shape == (15, 3)
    assert doc.model["weights_sha256"] and doc.model["epoch"] == 2
    assert window.settings.value("export/labels") in (True, "true")


def test_reopened_traversal_png_restores_sliders_and_decodes_identically(qtbot, window, tmp_path):
    ui = UI(qtbot, window)
    ui.set(latent_dim=3).train(1)
    panel = ui.show("Traversal")
    panel.sliders[0].setValue(137)
    panel.sliders[2].setValue(-52)
    qtbot.waitUntil(lambda: panel.current_grid is not None and np.isclose(panel.figure.params["z"][0], 1.37))
    panel.decode_image()
    exported_image = panel.image_view.pixels.copy()
    exported_grid = panel.current_grid[0].copy()
    path = tmp_path / "walk.png"
    export_with_dialog(qtbot, panel, path, labels_check=False, caption_check=False)
    assert path.exists()

    for slider in panel.sliders:  # the person moves on
        slider.setValue(250)
    panel.cols_spin.setValue(3)
    qtbot.waitUntil(lambda: panel.current_grid[2] == 3)
    ui.show("Samples")

    mime = QMimeData()  # drop the PNG on the window, as from a file manager
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.tabs.currentWidget() is panel
    assert [s.value() for s in panel.sliders] == [137, 0, -52]
    assert panel.cols_spin.value() == 9
    assert np.array_equal(panel.current_grid[0], exported_grid)  # pixel-identical decode
    panel.decode_image()
    assert np.array_equal(panel.image_view.pixels, exported_image)
    assert "Opened walk.png" in ui.status_text()


def test_a_png_from_another_model_says_which_model_made_it(qtbot, window, tmp_path):
    ui = UI(qtbot, window)
    ui.train(1)
    panel = ui.show("Samples")
    panel.seed_spin.setValue(7)
    path = tmp_path / "samples.png"
    export_with_dialog(qtbot, panel, path)
    ui.set(seed=1).train(1)  # a new model: other weights (the same seed would give the same ones)
    panel.seed_spin.setValue(3)
    assert not window.figures.open_figure(str(path))
    assert "made by another model" in ui.messages() and "digits" in ui.messages()
    assert panel.seed_spin.value() == 3  # nothing changed
    ui.close_messages()
    other = tmp_path / "plain.png"
    Image.new("L", (8, 8)).save(other)
    assert not window.figures.open_figure(str(other))
    assert "not exported by vaegui" in ui.messages()
    ui.close_messages()


def test_plots_export_as_svg_with_a_path_per_curve_and_as_one_page_pdf(qtbot, window, tmp_path):
    ui = UI(qtbot, window)
    ui.train(2)
    qtbot.waitUntil(lambda: window.plots.point_counts()["test"] == 2)
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    dialog = window.findChild(PlotExportDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.path_edit.setText(str(tmp_path / "curves.svg"))
    dialog.width_spin.setValue(1000)
    dialog.height_spin.setValue(320)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    root = ET.parse(tmp_path / "curves.svg").getroot()
    assert root.get("width", "").startswith("1000") or "1000" in root.get("viewBox", "")
    svg = "{http://www.w3.org/2000/svg}"
    # each plot shows three curves: the raw train steps (blue, translucent), the smoothed train
    # curve (blue) and the test points (red): one path each
    strokes = [(g.get("stroke"), float(g.get("stroke-opacity", 1)) == 1.0)
               for g in root.iter(svg + "g") for child in g if child.tag == svg + "path"]
    assert strokes.count(("#1f77b4", True)) == 3 and strokes.count(("#1f77b4", False)) == 3
    assert strokes.count(("#d62728", True)) == 3
    assert not list(root.iter(svg + "text"))  # text became glyph paths, its words kept as titles
    assert "−ELBO" in [t.text for t in root.iter(svg + "title")]
    assert window.exports.export_plots(str(tmp_path / "curves.pdf"), 1000, 320)
    data = (tmp_path / "curves.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and len(re.findall(rb"/Type\s*/Page\b", data)) == 1
    assert b"/FontFile" in data  # fonts embedded
    assert window.exports.export_plots(str(tmp_path / "curves.png"), 640, 200)
    with Image.open(tmp_path / "curves.png") as img:
        assert img.size == (640, 200) and "vaegui" in img.text["Software"]
    assert not window.exports.export_plots(str(tmp_path / "curves.gif"))
    assert "choose a .png, .svg or .pdf" in ui.messages()
    ui.close_messages()


def test_copy_to_clipboard_and_metrics_csv_say_what_made_them(qtbot, window, tmp_path):
    ui = UI(qtbot, window)
    ui.train(1)
    panel = ui.show("Manifold")
    panel.grid_spin.setValue(4)
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(window, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    image = QApplication.clipboard().image()
    assert (image.width(), image.height()) == (4 * 8 * 4 + 5 * 2,) * 2  # as the export draws it: 4×, 2 px
    assert "Copied the grid" in ui.status_text()
    assert window.exports.export_metrics_csv(str(tmp_path / "m.csv"))
    lines = (tmp_path / "m.csv").read_text().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    assert any("weights sha256" in line for line in comments) and any("digits" in line for line in comments)
    assert lines[len(comments)].startswith("split,step,")  # the header follows the comments


@pytest.mark.parametrize("kind", ["manifold", "samples", "interpolation"])
def test_other_panels_reopen_their_exports(qtbot, window, tmp_path, kind):
    ui = UI(qtbot, window)
    ui.train(1)
    panel = ui.show(kind.capitalize())
    if kind == "manifold":
        panel.grid_spin.setValue(6)
    elif kind == "samples":
        panel.seed_spin.setValue(11)
        panel.rows_spin.setValue(2)
    else:
        panel.index_a.setValue(5)
        panel.index_b.setValue(9)
        panel.steps_spin.setValue(4)
        panel.run()
    qtbot.waitUntil(lambda: panel.current_grid is not None)
    exported = panel.current_grid[0].copy()
    path = tmp_path / f"{kind}.png"
    panel.save_png(str(path), FigureStyle(labels=True))
    if kind == "manifold":
        panel.grid_spin.setValue(3)
    elif kind == "samples":
        panel.seed_spin.setValue(1)
    else:
        panel.index_a.setValue(0)
        panel.steps_spin.setValue(8)
    assert not np.array_equal(panel.current_grid[0][: len(exported)], exported) or \
        panel.current_grid[0].shape != exported.shape
    assert window.figures.open_figure(str(path))
    assert np.array_equal(panel.current_grid[0], exported)


def test_animate_a_traversal_and_samples_over_training_from_the_window(qtbot, window, tmp_path):
    from vaegui.animdialog import AnimationDialog

    ui = UI(qtbot, window)
    ui.set(latent_dim=3).train(1)
    folder = tmp_path / "run"
    folder.mkdir()
    assert window.files.save_model(str(folder / "epoch1.vae"))
    ui.continue_to(2)
    assert window.files.save_model(str(folder / "epoch2.vae"))

    panel = ui.show("Traversal")
    qtbot.waitUntil(lambda: panel.animate_button.isEnabled())
    qtbot.mouseClick(panel.animate_button, Qt.MouseButton.LeftButton)
    dialog = panel.findChild(AnimationDialog)
    assert dialog is not None and dialog.isVisible()
    dialog.path_edit.setText(str(tmp_path / "walk.gif"))
    dialog.values_spin.setValue(9)
    dialog.bounce_check.setChecked(False)
    assert dialog.info_label.text().startswith("9 frames of")
    qtbot.waitUntil(lambda: dialog.preview.pixmap() is not None and not dialog.preview.pixmap().isNull())
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 9
    assert "walk.gif (9 frames" in ui.status_text()

    panel = ui.show("Samples")
    panel.rows_spin.setValue(2)
    qtbot.keyClick(window, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    dialog = panel.findChild(AnimationDialog)
    assert dialog is not None and not dialog.save_button.isEnabled()  # nothing decoded yet
    dialog.source_edit.setText(str(folder))
    dialog.path_edit.setText(str(tmp_path / "training.png"))
    with qtbot.waitSignal(dialog.load_button.clicked, timeout=1000):
        qtbot.mouseClick(dialog.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.save_button.isEnabled(), timeout=20_000)
    assert dialog.info_label.text().startswith("2 frames of")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    with Image.open(tmp_path / "training.png") as apng:
        assert apng.n_frames == 2
    # a folder without checkpoints says so and the dialog stays usable
    qtbot.mouseClick(panel.animate_button, Qt.MouseButton.LeftButton)
    dialog = [d for d in panel.findChildren(AnimationDialog) if d.isVisible()][0]
    dialog.source_edit.setText(str(tmp_path / "empty"))
    qtbot.mouseClick(dialog.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Could not decode" in dialog.info_label.text(), timeout=10_000)
    assert dialog.load_button.isEnabled()
    dialog.reject()
