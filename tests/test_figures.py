"""Figures and animations without the window: labelled grids of exact size, the
description a PNG carries, GIF / animated PNG / MP4 frames, and ``vaegui export`` /
``vaegui animate`` on real checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from models.checkpoint import save_checkpoint
from models.config import ModelConfig, TrainConfig
from models.data import load_dataset
from models.latent import grid_size
from models.trainer import Trainer
from vaegui.animation import interpolation_frames, render_frames, save_animation, traversal_frames
from vaegui.cli import main
from vaegui.figrender import (
    FigureInfoError,
    FigureStyle,
    figure_size,
    read_figure,
    render_figure,
    save_figure_png,
)
from vaegui.figures import samples_figure, traversal_figure, weights_sha256


def noise_decode(z: torch.Tensor) -> np.ndarray:
    """A stand-in decoder whose image depends on z (so frames differ)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(z.shape[1], 64, generator=g)
    return torch.sigmoid(z.float() @ w).reshape(len(z), 1, 8, 8).numpy()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two checkpoints of one real run on the 8×8 digits (after epochs 1 and 2), latent size 3."""
    folder = tmp_path_factory.mktemp("run")
    data = load_dataset("digits")
    trainer = Trainer(ModelConfig(input_shape=data.image_shape, latent_dim=3, hidden_dim=32),
                      TrainConfig(epochs=2, batch_size=128, seed=0), data)
    paths = []
    for event in trainer.run():
        if type(event).__name__ == "EpochEnd":
            with torch.no_grad():
                paths.append(save_checkpoint(folder / f"e{event.epoch}.vae", *trainer.export_state()))
    return paths


def test_plain_render_is_the_grid_and_labels_add_a_margin_with_ink():
    fig = traversal_figure(noise_decode, torch.zeros(3), [2, 0, 1], torch.linspace(-3, 3, 5), kl=[0.5, 0.1, 2.0])
    plain = render_figure(fig, FigureStyle(scale=3, padding=2))
    h, w = grid_size(3, 5, (8, 8), 3, 2)
    assert plain.size == (w, h)
    labelled = render_figure(fig, FigureStyle(scale=3, padding=2, labels=True, title="t", caption="c", dpi=200))
    lw, lh = labelled.size
    assert figure_size(fig, FigureStyle(scale=3, padding=2, labels=True, title="t", caption="c", dpi=200)) == (lw, lh)
    assert lw > w and lh > h
    pixels = np.asarray(labelled)
    assert (pixels[:, : lw - w - 4] < 128).sum() > 30  # the row labels "z2 · KL 2.00" are drawn
    assert fig.row_labels[0] == "z2 · KL 2.00" and fig.col_labels[0] == "−3.00"
    bigger = render_figure(fig, FigureStyle(scale=3, padding=2, labels=True, font_pt=9, dpi=300))
    assert bigger.size[0] > labelled.size[0] or bigger.size[1] > labelled.size[1]  # larger text, larger margins
    with pytest.raises(ValueError, match="scale"):
        render_figure(fig, FigureStyle(scale=0))


def test_png_description_round_trips_and_damage_is_reported(tmp_path):
    fig = samples_figure(noise_decode, 2, 3, 4, seed=5)
    path = tmp_path / "s.png"
    size = save_figure_png(path, fig, FigureStyle(dpi=300), {"weights_sha256": "ab" * 32, "epoch": 3})
    with Image.open(path) as im:
        assert im.size == size and abs(im.info["dpi"][0] - 300) < 0.1 and im.text["Software"].startswith("vaegui")
    record = read_figure(path)
    assert record.kind == "samples" and record.params == {"rows": 2, "cols": 3, "seed": 5}
    assert record.model["epoch"] == 3
    assert np.array_equal(record.latents, fig.latents)  # float32, exactly
    plain = tmp_path / "plain.png"
    Image.new("L", (4, 4)).save(plain)
    with pytest.raises(FigureInfoError, match="not exported by vaegui"):
        read_figure(plain)
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt("vaegui", '{"kind": "samples", "rows": 1, "cols": 1, "latents": {"shape": [5, 2], "base64": "AA=="}}')
    Image.new("L", (4, 4)).save(tmp_path / "bad.png", pnginfo=info)
    with pytest.raises(FigureInfoError, match="damaged"):
        read_figure(tmp_path / "bad.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(FigureInfoError, match="not a readable PNG"):
        read_figure(tmp_path / "junk.png")


def test_weights_fingerprint_follows_the_weights():
    a = {"w": torch.ones(3), "b": torch.zeros(2)}
    assert weights_sha256(a) == weights_sha256({"b": torch.zeros(2), "w": torch.ones(3)})
    assert weights_sha256(a) != weights_sha256({"w": torch.ones(3) * 1.0001, "b": torch.zeros(2)})


def test_gif_of_a_three_dimension_traversal_has_the_expected_frames(tmp_path):
    values = torch.linspace(-2, 2, 9)
    tiled = traversal_frames(noise_decode, torch.zeros(3), [0, 1, 2], values, "tiled", bounce=False)
    images = render_frames(tiled, FigureStyle(scale=2, padding=1))
    n, w, h = save_animation(tmp_path / "t.gif", images, fps=12)
    with Image.open(tmp_path / "t.gif") as gif:
        assert gif.n_frames == n == 9 and gif.size == (w, h) == grid_size(2, 2, (8, 8), 2, 1)[::-1]
        assert gif.info["loop"] == 0
    sequence = traversal_frames(noise_decode, torch.zeros(3), [0, 1, 2], values, "sequence", bounce=False)
    assert len(sequence) == 27
    bounce = traversal_frames(noise_decode, torch.zeros(3), [0, 1, 2], values, "tiled", bounce=True)
    assert len(bounce) == 9 + 7  # there and back, the ends not repeated
    save_animation(tmp_path / "t.png", render_frames(bounce, FigureStyle()), fps=5, loop=2)
    with Image.open(tmp_path / "t.png") as apng:
        assert apng.n_frames == 16 and apng.info["loop"] == 2
    path = interpolation_frames(noise_decode, torch.zeros(3), torch.ones(3), 6, bounce=True)
    assert len(path) == 10 and path[0].tile_labels == ["t = 0.00"]
    with pytest.raises(ValueError, match=".gif, .png"):
        save_animation(tmp_path / "t.avi", images)


def test_mp4_through_the_video_extra(tmp_path):
    ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="the optional [video] extra (imageio-ffmpeg) is missing")
    frames = traversal_frames(noise_decode, torch.zeros(2), [0, 1], torch.linspace(-2, 2, 7), bounce=False)
    n, w, h = save_animation(tmp_path / "t.mp4", render_frames(frames, FigureStyle(scale=3, padding=1)), fps=7)
    assert (w % 2, h % 2) == (0, 0)  # H.264 in yuv420p needs even sizes
    counted, _secs = ffmpeg.count_frames_and_secs(str(tmp_path / "t.mp4"))
    assert counted == n == 7


def test_cli_export_writes_a_labelled_grid_that_remembers_its_model(checkpoints, tmp_path, capsys):
    out = tmp_path / "trav.png"
    assert main(["export", str(checkpoints[-1]), "--what", "traversal", "--out", str(out), "--labels",
                 "--caption", "--values", "7", "--upscale", "2"]) == 0
    assert "3×7 tiles" in capsys.readouterr().out
    record = read_figure(out)
    assert record.kind == "traversal" and record.latents.shape == (21, 3)
    assert record.model["file"] == "e2.vae" and record.model["epoch"] == 2 and len(record.model["file_sha256"]) == 64
    for what in ("manifold", "samples", "interpolation"):
        assert main(["export", str(checkpoints[0]), "--what", what, "--out", str(tmp_path / f"{what}.png")]) == 0
    assert read_figure(tmp_path / "interpolation.png").params["index_b"] == 1
    assert main(["export", str(checkpoints[0]), "--what", "samples", "--out", str(tmp_path / "x.jpg")]) == 2
    assert main(["export", str(tmp_path / "missing.vae"), "--what", "samples", "--out", str(out)]) == 2
    assert main(["export", str(checkpoints[0]), "--what", "interpolation", "--a", "99999",
                 "--out", str(tmp_path / "i.png")]) == 2
    assert "--a must lie in" in capsys.readouterr().err


def test_cli_animate_traversal_and_samples_over_training(checkpoints, tmp_path, capsys):
    out = tmp_path / "walk.gif"
    assert main(["animate", str(checkpoints[-1]), "--what", "traversal", "--values", "9", "--no-bounce",
                 "--out", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 9
    folder = checkpoints[0].parent
    assert main(["animate", str(folder), "--what", "samples", "--rows", "2", "--cols", "2", "--labels",
                 "--out", str(tmp_path / "train.png")]) == 0
    with Image.open(tmp_path / "train.png") as apng:
        assert apng.n_frames == 2  # one frame per checkpoint, epoch 1 then epoch 2
        first = np.asarray(apng.convert("L"))
        apng.seek(1)
        assert not np.array_equal(first, np.asarray(apng.convert("L")))  # the weights moved
    assert main(["animate", str(checkpoints[0]), "--what", "samples", "--out", str(tmp_path / "s.gif")]) == 2
    assert "over training" in capsys.readouterr().err
