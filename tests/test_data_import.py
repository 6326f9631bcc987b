"""Shapes with ground-truth factors, and importing folders and dataset files that mix
good, odd-but-valid and broken files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from models import shapes
from models.data import load_dataset
from models.importers import DatasetError, import_folder, import_path, read_idx
from models.trainer import available_devices


def test_shapes_are_deterministic_and_their_factors_are_right():
    assert shapes.TOTAL == 737_280
    assert np.array_equal(shapes.sample_indices(50, seed=3), shapes.sample_indices(50, seed=3))
    base = {"shape": 0, "scale": 5, "orientation": 0, "pos_x": 0, "pos_y": 16}

    def index(**changes):
        f = dict(base, **changes)
        return int(np.ravel_multi_index([f[n] for n in shapes.FACTOR_NAMES], shapes.FACTOR_SIZES))

    def centroid_x(img):
        ys, xs = np.nonzero(img)
        return xs.mean()

    xs = [centroid_x(shapes.render(index(pos_x=p))) for p in (0, 10, 20, 31)]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 30  # the centroid moves right as pos_x grows
    ys = [np.nonzero(shapes.render(index(pos_y=p)))[0].mean() for p in (0, 31)]
    assert ys[1] > ys[0] + 30
    for shape in range(3):
        areas = [shapes.render(index(shape=shape, scale=s)).sum() for s in range(6)]
        assert areas == sorted(areas) and areas[-1] > 2 * areas[0]  # the area grows with the scale
    assert np.array_equal(shapes.render(index(shape=2)), shapes.render(index(shape=2)))
    with pytest.raises(ValueError):
        shapes.factors_of(shapes.TOTAL)


def test_the_shapes_dataset_carries_its_factors():
    data = load_dataset("shapes")
    assert data.image_shape == (1, 64, 64) and data.class_names == shapes.SHAPES
    assert data.factor_names == shapes.FACTOR_NAMES and data.train_factors.shape == (len(data.train_x), 5)
    assert data.train_x.dtype == torch.uint8 and set(np.unique(data.train_x.numpy())) <= {0, 255}  # compact
    assert set(np.unique(data.test_x.numpy())) <= {0.0, 1.0}
    ranges = data.factor_ranges
    assert ranges["scale"] == (0.5, 1.0) and ranges["pos_x"] == (0.0, 1.0) and ranges["shape"] == (0.0, 2.0)
    # the label is the shape factor
    assert np.array_equal(data.train_y.numpy(), data.train_factors[:, 0].numpy().astype(int))


def _save(img, path, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)


@pytest.fixture
def mixed_folder(tmp_path):
    root = tmp_path / "pictures"
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8), "RGB")
    good = {
        "cats/a.png": {}, "cats/b.jpg": {}, "cats/c.bmp": {}, "dogs/d.gif": {}, "dogs/e.webp": {},
        "dogs/f.tiff": {},
    }
    for name, kw in good.items():
        _save(rgb, root / name, **kw)
    # odd but valid
    _save(Image.fromarray((rng.integers(0, 65535, (20, 50))).astype(np.uint16)), root / "odd" / "sixteen.png")
    _save(rgb.convert("CMYK"), root / "odd" / "cmyk.jpg")
    _save(rgb.convert("P"), root / "odd" / "palette.png")
    _save(rgb.convert("RGBA"), root / "odd" / "alpha.png")
    _save(Image.new("L", (3, 90), 128), root / "odd" / "thin.png")
    # broken
    whole = (root / "cats" / "a.png").read_bytes()
    (root / "broken").mkdir()
    (root / "broken" / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (root / "broken" / "empty.png").write_bytes(b"")
    (root / "broken" / "text.jpg").write_text("this is not an image")
    (root / "notes.txt").write_text("hello")
    return root


def test_folder_import_loads_good_and_odd_images_and_reports_every_broken_one(mixed_folder):
    data, report = import_folder(mixed_folder, size=32, channels=3, fit="pad")
    assert report.loaded == 11 and len(data.train_x) + len(data.test_x) == 11
    assert data.image_shape == (3, 32, 32)
    assert set(data.class_names) == {"cats", "dogs", "odd"}
    reasons = {path.split("/")[-1]: reason for path, reason in report.skipped}
    assert reasons["empty.png"] == "empty file"
    assert "damaged or truncated" in reasons["truncated.png"]
    assert "not an image" in reasons["text.jpg"]
    assert "not an image file type" in reasons["notes.txt"]
    assert "truncated.png" in report.text() and "Skipped 4 files" in report.text()
    gray, _ = import_folder(mixed_folder, size=28, channels=1, fit="crop")
    assert gray.image_shape == (1, 28, 28)


def test_a_folder_without_images_and_a_cancelled_import_are_clear_errors(tmp_path, mixed_folder):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures")
    with pytest.raises(DatasetError, match="0 readable image"):
        import_folder(tmp_path / "empty")
    with pytest.raises(DatasetError, match="cancelled"):
        import_folder(mixed_folder, cancelled=lambda: True)


def _idx(path, array, magic_type=0x08):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def test_idx_files_raw_and_gzipped_with_labels_and_corrupt_ones(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (12, 28, 28)).astype(np.uint8)
    labels = np.arange(12) % 3
    _idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    _idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    data, report = import_path(tmp_path / "train-images-idx3-ubyte.gz")
    assert report.loaded == 12 and data.image_shape == (1, 28, 28)
    assert sorted(np.concatenate([data.train_y, data.test_y]).tolist()) == sorted(labels.tolist())
    assert np.array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    bad_magic = tmp_path / "bad-images-idx3-ubyte"
    bad_magic.write_bytes(b"\x12\x34\x08\x03" + bytes(100))
    with pytest.raises(DatasetError, match="wrong magic number"):
        import_path(bad_magic)
    short = tmp_path / "short-images-idx3-ubyte"
    _idx(short, images)
    short.write_bytes(short.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="short"):
        import_path(short)


def test_numpy_files_and_refused_pickles(tmp_path):
    x = np.random.default_rng(0).random((10, 32, 32, 3)).astype(np.float32)
    np.savez(tmp_path / "set.npz", x=x, y=np.arange(10) % 2)
    data, report = import_path(tmp_path / "set.npz")
    assert data.image_shape == (3, 32, 32) and report.loaded == 10
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match="not a readable numpy file"):
        import_path(tmp_path / "objects.npy")
    (tmp_path / "data_batch_1").write_bytes(b"\x80\x04whatever")
    with pytest.raises(DatasetError, match="never unpickles"):
        import_path(tmp_path / "data_batch_1")
    np.savez(tmp_path / "bad.npz", x=x * 3)
    with pytest.raises(DatasetError, match=r"\[0, 1\]"):
        import_path(tmp_path / "bad.npz")


@pytest.mark.parametrize("device", available_devices())
def test_uint8_pixels_become_the_same_floats_on_every_device(device):
    """As NumPy divides float data: v / 255 correctly rounded (CUDA's division by a Python number is a
    multiplication by the reciprocal, off by one unit in the last place for about half the values)."""
    from models.data import as_float
    from models.trainer import training_device

    where = training_device(device)
    assert torch.empty(1, device=where).device == where  # "cuda" resolves to the GPU's index
    values = as_float(torch.arange(256, dtype=torch.uint8, device=where))
    assert torch.equal(values.cpu(), torch.from_numpy(np.arange(256, dtype=np.float32) / np.float32(255)))


def test_compact_uint8_training_data_trains_exactly_like_floats():
    from models import ModelConfig, TrainConfig, Trainer
    from models.data import split_images

    mnist = load_dataset("mnist5k")
    x8 = np.rint(np.concatenate([mnist.train_x, mnist.test_x]).astype(np.float64) * 255).astype(np.uint8)[:1200]
    y = np.concatenate([mnist.train_y, mnist.test_y])[:1200]
    compact = split_images("u8", x8, y, n_test=200)
    floats = split_images("f32", x8.astype(np.float32) / 255, y, n_test=200)
    assert compact.train_x.dtype == torch.uint8 and compact.train_x.nbytes * 4 == floats.train_x.nbytes
    assert torch.equal(compact.test_x, floats.test_x)
    weights = []
    for data in (compact, floats):
        trainer = Trainer(ModelConfig(latent_dim=4, hidden_dim=32), TrainConfig(epochs=1, precision="fp32"), data)
        list(trainer.run())
        weights.append(trainer.model.state_dict())
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key])


def test_npz_factors_are_kept_with_their_names_and_score_a_model(tmp_path):
    from models.config import ModelConfig
    from models.metrics import model_codes
    from models.vae import VAE

    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, 3, 60), rng.integers(0, 5, 60)], axis=1)
    x = (factors[:, :1, None] * 40 + factors[:, 1:, None] * 10 + np.zeros((60, 8, 8))).astype(np.uint8)
    np.savez(tmp_path / "f.npz", x=x, factors=factors, factor_names=np.array(["colour", "size"]))
    data, report = import_path(tmp_path / "f.npz")
    assert data.factor_names == ("colour", "size") and "2 ground-truth factors: colour, size" in report.text()
    both = torch.cat([data.test_factors, data.train_factors]).numpy()
    assert sorted(map(tuple, both.astype(int))) == sorted(map(tuple, factors))  # split with the images
    codes, classes = model_codes(VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=8)), data, 60)
    assert codes.shape == (60, 2) and classes.shape == (60, 2)
    # factors that do not fit are left out, with the reason; the images still load
    np.savez(tmp_path / "g.npz", x=x, factors=factors[:10], factor_names=np.array(["a"]))
    data, report = import_path(tmp_path / "g.npz")
    assert data.train_factors is None and "factors ignored" in report.text()
    np.savez(tmp_path / "h.npz", x=x, factors=factors, factor_names=np.array(["only one"]))
    data, report = import_path(tmp_path / "h.npz")
    assert data.factor_names == ("factor 0", "factor 1") and "1 factor_names for 2 factors" in report.text()
