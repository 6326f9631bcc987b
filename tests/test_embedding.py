"""The encoder's view, Qt-free: encoding a split, projections and their inverses,
selections, attribute vectors, the exports and ``vaegui embed``."""

from __future__ import annotations

import csv
import threading
import time

import numpy as np
import pytest
import torch

from models.attributes import apply_attribute, attribute_vector, parse_condition, project_on, separation
from models.config import ModelConfig
from models.data import load_dataset
from models.embedding import (
    MapRequest,
    MapStopped,
    build_map,
    build_maps,
    encode_split,
    nearest,
    points_in_polygon,
    project,
)
from models.embedexport import sprite_layout, write_csv, write_npz, write_projector
from models.vae import VAE


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def model(digits):
    torch.manual_seed(0)
    return VAE(ModelConfig(input_shape=digits.image_shape, latent_dim=4, hidden_dim=32)).eval()


def test_encode_split_gives_the_models_means_and_elbo_terms(model, digits):
    enc = encode_split(model, digits, "test", batch_size=100)
    assert enc.codes.shape == (len(digits.test_x), 4) and enc.codes is enc.mu
    with torch.inference_mode():
        mu, _ = model.encode(digits.test_x[:5])
    np.testing.assert_allclose(enc.mu[:5], mu.numpy(), rtol=1e-5, atol=1e-6)
    assert np.array_equal(enc.labels, digits.test_y.numpy())
    assert (enc.kl >= 0).all() and (enc.neg_elbo > enc.kl).all()  # −ELBO = recon + KL, recon > 0
    both = encode_split(model, digits, "both", points="sample", seed=3)
    assert len(both) == len(digits.test_x) + len(digits.train_x)
    assert (both.source[: len(digits.test_x)] == 0).all() and (both.source[len(digits.test_x):] == 1).all()
    assert not np.allclose(both.codes, both.mu)  # a sample, not the mean
    with pytest.raises(ValueError, match="split"):
        encode_split(model, digits, "validation")


def test_encoding_stops_between_chunks(model, digits):
    calls = []
    with pytest.raises(MapStopped):
        encode_split(model, digits, "train", batch_size=100, stopped=lambda: len(calls) >= 2,
                     progress=lambda f, t: calls.append(f))
    assert len(calls) == 2


def test_pca_click_decodes_the_inverse_projected_latent(model, digits):
    m = build_map(model, digits, MapRequest(projection="pca"))
    p = m.projection
    assert p.exact and p.points.shape == (len(digits.test_x), 2)
    xy = (0.7, -0.3)
    z, index, how = p.latent_at(xy, m.encoded.codes)
    assert how == "exact" and index is None
    # the latent lies on the PCA plane and projects back onto the clicked position
    np.testing.assert_allclose((z - p.pca_mean) @ p.pca_components.T, xy, atol=1e-5)
    # and projecting a data point then inverting it lands at its mu's part in the plane
    from sklearn.decomposition import PCA

    ref = PCA(2).fit(m.encoded.codes)
    np.testing.assert_allclose(np.abs(p.points), np.abs(ref.transform(m.encoded.codes)), rtol=1e-3, atol=1e-4)


def test_pca_keeps_its_orientation_when_recomputed(model, digits):
    first = build_map(model, digits, MapRequest(projection="pca"))
    flipped = first.projection.points * np.array([-1, 1], dtype=np.float32)
    again = project(first.encoded.codes, "pca", previous=flipped)
    assert np.corrcoef(again.points[:, 0], flipped[:, 0])[0, 1] > 0.99


def test_two_models_map_the_same_images_and_share_the_progress(model, digits):
    torch.manual_seed(1)
    second = VAE(ModelConfig(input_shape=digits.image_shape, latent_dim=3, hidden_dim=16)).eval()
    seen: list[tuple[float, str]] = []
    first, other = build_maps(model, second, digits, MapRequest(projection="pca"),
                              progress=lambda f, text: seen.append((f, text)))
    assert first.encoded.codes.shape[1] == 4 and other.encoded.codes.shape[1] == 3
    np.testing.assert_array_equal(first.encoded.index, other.encoded.index)  # the same images, in the same order
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and max(f for f, t in seen if not t.startswith("second")) <= 0.5
    assert fractions[-1] == pytest.approx(1.0) and seen[-1][1].startswith("second model: ")
    alone, none = build_maps(model, None, digits, MapRequest(projection="pca"))
    assert none is None
    np.testing.assert_allclose(alone.projection.points, first.projection.points)


def test_latent_and_dims_projections(model, digits):
    enc = encode_split(model, digits)
    dims = project(enc.codes, "dims", dims=(2, 0))
    assert np.array_equal(dims.points, enc.codes[:, [2, 0]]) and not dims.exact
    z, i, how = dims.latent_at(tuple(dims.points[7]), enc.codes)
    assert how == "nearest" and i == 7 and np.array_equal(z, enc.codes[7])
    with pytest.raises(ValueError, match="D = 2"):
        project(enc.codes, "latent")
    with pytest.raises(ValueError, match="different"):
        project(enc.codes, "dims", dims=(1, 1))


def test_tsne_is_cancelled_within_a_second(model, digits):
    pytest.importorskip("openTSNE")
    codes = np.random.default_rng(0).normal(size=(3000, 8)).astype(np.float32)
    stop = threading.Event()
    seen = []

    def progress(fraction, text):
        seen.append(text)
        if "iteration" in text and not stop.is_set():
            threading.Timer(0.2, stop.set).start()

    t0 = time.perf_counter()
    with pytest.raises(MapStopped):
        project(codes, "tsne", progress=progress, stopped=stop.is_set)
    assert any("iteration" in s for s in seen)
    waited = time.perf_counter() - t0
    assert waited < 60  # the whole run; the stop itself is timed below
    # the stop took effect within a second of being asked
    stop2 = threading.Event()
    asked = []

    def progress2(fraction, text):
        if "iteration" in text and not asked:
            asked.append(time.perf_counter())
            stop2.set()

    with pytest.raises(MapStopped):
        project(codes, "tsne", progress=progress2, stopped=stop2.is_set)
    assert time.perf_counter() - asked[0] < 1.0


def test_tsne_map_of_separated_clusters(model, digits):
    pytest.importorskip("openTSNE")
    rng = np.random.default_rng(1)
    codes = np.concatenate([rng.normal(0, 0.1, (100, 5)), rng.normal(5, 0.1, (100, 5))]).astype(np.float32)
    p = project(codes, "tsne")
    a, b = p.points[:100].mean(axis=0), p.points[100:].mean(axis=0)
    spread = max(p.points[:100].std(axis=0).max(), p.points[100:].std(axis=0).max())
    assert np.linalg.norm(a - b) > 3 * spread and not p.exact


def test_missing_extra_says_how_to_install(monkeypatch):
    import sys

    from models.embedding import MissingExtra, require

    monkeypatch.setitem(sys.modules, "umap", None)  # an import of umap now fails, as where it is missing
    with pytest.raises(MissingExtra, match="pip install umap-learn"):
        require("umap")


def test_points_in_polygon_and_nearest():
    pts = np.array([[0.5, 0.5], [2, 2], [0.1, 0.9], [-1, 0]])
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
    assert points_in_polygon(pts, square).tolist() == [True, False, True, False]
    triangle = np.array([[0, 0], [1, 0], [0, 1]])
    assert points_in_polygon(pts, triangle).tolist() == [False, False, False, False]
    assert points_in_polygon(pts, square[:2]).tolist() == [False] * 4
    assert nearest(pts, (1.9, 2.1)) == 1
    assert nearest(pts, (1.0, 1.0), within=0.2) is None


def test_conditions_and_attribute_vectors():
    cols = {"label": np.array([0, 1, 1, 2]), "pos_x": np.array([0.1, 0.5, 0.9, 0.2])}
    assert parse_condition("pos_x < 0.3", cols).tolist() == [True, False, False, True]
    assert parse_condition("label == 1 and pos_x >= 0.9", cols).tolist() == [False, False, True, False]
    for bad, why in (("pos_x <", "NAME OP NUMBER"), ("colour == 1", "No column 'colour'"), ("", "condition")):
        with pytest.raises(ValueError, match=why):
            parse_condition(bad, cols)
    mu = np.array([[0, 0], [2, 0], [0, 1], [2, 1]], dtype=np.float32)
    a = attribute_vector(mu, np.array([1, 0, 1, 0], bool), np.array([0, 1, 0, 1], bool))
    np.testing.assert_allclose(a, [2, 0])
    along = project_on(mu, a)
    assert separation(along, np.array([1, 0, 1, 0], bool), np.array([0, 1, 0, 1], bool)) == 1.0
    z = apply_attribute(torch.zeros(2), a, [-1, 0, 2])
    np.testing.assert_allclose(z.numpy(), [[-2, 0], [0, 0], [4, 0]])
    with pytest.raises(ValueError, match="both groups"):
        attribute_vector(mu, np.zeros(4, bool), np.ones(4, bool))


def test_attribute_vector_moves_the_shape_right(tmp_path):
    """On Shapes: the vector from "pos_x low" to "pos_x high", applied with t > 0, moves
    the decoded shape's centroid to the right."""
    from vaegui.cli import main

    path = tmp_path / "shapes.vae"
    assert main(["train", "--dataset", "shapes:3000", "--epochs", "4", "--latent-dim", "4", "--hidden-dim", "256",
                 "--lr", "0.003", "--save", str(path)]) == 0
    from models.checkpoint import read_checkpoint

    ckpt = read_checkpoint(path)
    model = VAE(ckpt.model_config).eval()
    model.load_state_dict(ckpt.weights)
    data = load_dataset("shapes:3000")
    m = build_map(model, data, MapRequest(projection="pca"))
    cols = m.encoded.columns()
    a = attribute_vector(m.encoded.mu, parse_condition("pos_x < 0.3", cols), parse_condition("pos_x > 0.7", cols))
    start = torch.from_numpy(m.encoded.mu[parse_condition("pos_x > 0.4 and pos_x < 0.6", cols)].mean(axis=0))
    with torch.inference_mode():
        images = model.decode(apply_attribute(start, a, [-1.0, 0.0, 1.0])).numpy()[:, 0]

    def centroid_x(img):
        w = img / img.sum()
        return float((w * np.arange(img.shape[1])[None, :]).sum())

    xs = [centroid_x(img) for img in images]
    assert xs[0] < xs[1] < xs[2] and xs[2] - xs[0] > 10, xs


def test_exports_parse(model, digits, tmp_path):
    m = build_map(model, digits, MapRequest(projection="pca"))
    n = len(m.encoded)
    with open(write_csv(tmp_path / "map.csv", m), newline="") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) == n + 1 and rows[0][:3] == ["index", "split", "label"]
    assert float(rows[1][rows[0].index("mu_0")]) == pytest.approx(float(m.encoded.mu[0, 0]), rel=1e-6)
    with np.load(write_npz(tmp_path / "map.npz", m)) as z:
        assert z["mu"].shape == (n, 4) and z["projection"].shape == (n, 2) and str(z["projection_kind"]) == "pca"
    out = write_projector(tmp_path / "projector", m, digits)
    tensors = (out / "tensors.tsv").read_text().splitlines()
    meta = (out / "metadata.tsv").read_text().splitlines()
    assert len(tensors) == n and len(meta) == n + 1 and len(tensors[0].split("\t")) == 4
    from PIL import Image

    side, thumb = sprite_layout(n, 8)
    assert Image.open(out / "sprite.png").size == (side * thumb, side * thumb)
    assert 'tensor_path: "tensors.tsv"' in (out / "projector_config.pbtxt").read_text()
    assert sprite_layout(60000, 28) == (245, 28) and sprite_layout(100000, 64)[1] * 317 <= 8192


def test_embed_command(tmp_path, capsys):
    from vaegui.cli import main

    ckpt = tmp_path / "d.vae"
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--latent-dim", "2", "--hidden-dim", "32",
                 "--save", str(ckpt)]) == 0
    out = tmp_path / "map.csv"
    assert main(["embed", str(ckpt), "--projection", "latent", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 361
    assert main(["embed", str(ckpt), "--split", "both", "--out", str(tmp_path / "tb")]) == 0
    assert len((tmp_path / "tb" / "tensors.tsv").read_text().splitlines()) == 1797
    bad = tmp_path / "bad.vae"
    bad.write_bytes(b"not a checkpoint")
    assert main(["embed", str(bad), "--out", str(out)]) == 2
    assert "vaegui embed:" in capsys.readouterr().err
