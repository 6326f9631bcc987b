"""Property-based fuzzing (Hypothesis) of every reader of outside files: random bytes
and mutations of valid files (bytes changed, cut short, headers rewritten) fed to the
checkpoint reader, the IDX and npz readers, the image importer and the ``.pt``
importer. Each case must end normally or in the reader's documented error type with
a message: never another exception, a hang (a per-case deadline) or a file written.

The runs are derandomised, so CI sees the same cases every time; set
``VAEGUI_FUZZ_SEEDED=0`` to draw new ones (and ``VAEGUI_FUZZ_SCALE`` to run more).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from models.checkpoint import CheckpointError, checkpoint_bytes, import_state_dict, read_checkpoint
from models.config import ModelConfig, TrainConfig
from models.importers import DatasetError, import_idx, import_npz, load_image, read_idx
from models.trainer import EpochEnd, Trainer

SCALE = float(os.environ.get("VAEGUI_FUZZ_SCALE", "1"))
FUZZ = dict(
    deadline=3000,  # ms per case: a reader that hangs fails
    derandomize=os.environ.get("VAEGUI_FUZZ_SEEDED", "1") != "0",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TINY = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden_dim=8)


def cases(n: int) -> int:
    return max(10, int(n * SCALE))


def _apply(data: bytes, edits, cut) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        if out:
            out[pos % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


def mutations(valid: bytes, head: int = 256):
    """Random bytes, or ``valid`` with a few bytes changed (mostly in its first ``head``
    bytes, where the headers are) and perhaps cut short."""
    position = st.one_of(st.integers(0, max(0, min(head, len(valid)) - 1)), st.integers(0, max(0, len(valid) - 1)))
    edits = st.lists(st.tuples(position, st.integers(0, 255)), max_size=6)
    cut = st.one_of(st.none(), st.integers(0, len(valid)))
    return st.one_of(
        st.binary(max_size=1024),
        st.builds(_apply, st.just(valid), edits, cut),
    )


class Folder:
    """A fresh folder per case; asserts the reader wrote nothing into it."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="vaegui-fuzz-"))
        return self.path

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                names = sorted(p.name for p in self.path.iterdir())
                assert names == sorted(self.expected), f"the reader wrote files: {names}"
        finally:
            shutil.rmtree(self.path, ignore_errors=True)


def folder(*names: str) -> Folder:
    f = Folder()
    f.expected = names
    return f


def documented(fn, error: type[Exception]):
    """Call ``fn``; a documented error must carry a message. Anything else fails the case."""
    try:
        return fn()
    except error as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return None


# -- the checkpoint reader ----------------------------------------------------------------------
class Valid(tuple):
    """A valid file and its description, with a short repr in Hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<valid checkpoint, {len(self[0]):,} bytes>"


@pytest.fixture(scope="module")
def checkpoint_file() -> tuple[bytes, dict]:
    from models.data import load_dataset

    trainer = Trainer(TINY, TrainConfig(epochs=1, batch_size=512), load_dataset("digits"))
    list(trainer.run())
    tensors, info = trainer.export_state()
    return Valid((checkpoint_bytes(tensors, info), info))


def _touch_checkpoint(path: Path) -> None:
    c = read_checkpoint(path)
    # what the window and the CLI read next must not fail either
    assert isinstance(c.has_training_state, bool)
    assert c.epochs_done >= 0 and isinstance(c.dataset_name, str)
    for e in c.info.get("history", []):
        assert isinstance(EpochEnd(**e), EpochEnd)


@settings(max_examples=cases(700), **FUZZ)
@given(data=st.data())
def test_checkpoint_reader_fuzzed_bytes(checkpoint_file, data):
    valid, _ = checkpoint_file
    blob = data.draw(mutations(valid, head=1024))
    with folder("c.vae") as f:
        path = f / "c.vae"
        path.write_bytes(blob)
        documented(lambda: _touch_checkpoint(path), CheckpointError)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=cases(500), **FUZZ)
@given(data=st.data())
def test_checkpoint_reader_fuzzed_descriptions(checkpoint_file, data):
    """A well-formed safetensors file whose JSON description is rewritten part by part."""
    valid, info = checkpoint_file
    from safetensors.torch import load

    tensors = load(valid)
    doc = json.loads(json.dumps(info))
    for _ in range(data.draw(st.integers(1, 3))):
        section = data.draw(st.sampled_from(sorted(doc) + ["model_config", "train_config", "position"]))
        if isinstance(doc.get(section), dict) and doc[section] and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(doc[section])))
            doc[section][key] = data.draw(JSON)
        else:
            doc[section] = data.draw(JSON)
    if data.draw(st.booleans()):
        victim = data.draw(st.sampled_from(sorted(tensors)))
        tensors[victim] = torch.zeros(data.draw(st.lists(st.integers(0, 5), max_size=3)))
    with folder("c.vae") as f:
        path = f / "c.vae"
        path.write_bytes(checkpoint_bytes(tensors, doc))
        documented(lambda: _touch_checkpoint(path), CheckpointError)


# -- the IDX reader ------------------------------------------------------------------------------
def _idx(images: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, images.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in images.shape)
    return header + images.astype(np.uint8).tobytes()


VALID_IDX = _idx(np.random.default_rng(0).integers(0, 256, (6, 8, 8)))


@settings(max_examples=cases(600), **FUZZ)
@given(blob=mutations(VALID_IDX, head=16), gz=st.booleans(), labels=st.one_of(st.none(), st.binary(max_size=40)))
def test_idx_reader_fuzzed(blob, gz, labels):
    name = "x-images-idx3-ubyte" + (".gz" if gz else "")
    with folder(name, *(["x-labels-idx1-ubyte"] if labels is not None else [])) as f:
        path = f / name
        path.write_bytes(gzip.compress(blob) if gz and blob[:1] != b"\x1f" else blob)
        if labels is not None:
            (f / "x-labels-idx1-ubyte").write_bytes(labels)
        documented(lambda: read_idx(path), DatasetError)
        documented(lambda: import_idx(path), DatasetError)


# -- the npz / npy reader -----------------------------------------------------------------------
def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


VALID_NPZ = _npz(x=np.zeros((4, 8, 8), np.uint8), y=np.arange(4))
VALID_NPY = _npy(np.full((4, 8, 8), 0.5, np.float32))
ARRAYS = st.builds(
    lambda shape, kind: np.zeros(shape, dtype=kind),
    st.lists(st.integers(0, 4), max_size=5),
    st.sampled_from([np.uint8, np.float32, np.float64, np.int64, np.bool_, "U3", np.complex64]),
)


@settings(max_examples=cases(600), **FUZZ)
@given(data=st.data())
def test_npz_reader_fuzzed(data):
    kind = data.draw(st.sampled_from(["npz-bytes", "npy-bytes", "npz-arrays", "npy-array"]))
    if kind == "npz-bytes":
        name, blob = "d.npz", data.draw(mutations(VALID_NPZ, head=128))
    elif kind == "npy-bytes":
        name, blob = "d.npy", data.draw(mutations(VALID_NPY, head=128))
    elif kind == "npz-arrays":
        keys = data.draw(st.lists(st.sampled_from(["x", "images", "y", "labels", "data", "other"]), max_size=3,
                                  unique=True))
        name, blob = "d.npz", _npz(**{k: data.draw(ARRAYS) for k in keys})
    else:
        value = data.draw(ARRAYS)
        if value.size and value.dtype.kind in "fiub" and data.draw(st.booleans()):
            with np.errstate(invalid="ignore"):
                value = value.astype(np.float32) * data.draw(st.sampled_from([np.nan, np.inf, -1.0, 2.0, 0.5]))
        name, blob = "d.npy", _npy(value)
    with folder(name) as f:
        path = f / name
        path.write_bytes(blob)
        documented(lambda: import_npz(path), DatasetError)


# -- the image importer -------------------------------------------------------------------------
def _image(fmt: str, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (12, 9), 128).save(buffer, format=fmt)
    return buffer.getvalue()


IMAGES = {fmt: _image(fmt) for fmt in ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")}


@settings(max_examples=cases(600), **FUZZ)
@given(data=st.data())
def test_image_importer_fuzzed(data):
    fmt = data.draw(st.sampled_from(sorted(IMAGES)))
    blob = data.draw(mutations(IMAGES[fmt], head=64))
    size, channels = data.draw(st.sampled_from([28, 32, 64])), data.draw(st.sampled_from([1, 3]))
    name = f"i.{fmt.lower()}"
    with folder(name) as f:
        path = f / name
        path.write_bytes(blob)
        image = documented(lambda: load_image(path, size, channels, data.draw(st.sampled_from(["crop", "pad"]))),
                           ValueError)
        if image is not None:
            assert image.shape == (channels, size, size) and image.dtype == np.uint8


# -- the .pt importer ---------------------------------------------------------------------------
def _pt(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pt_file() -> bytes:
    from models.vae import VAE

    return _pt(VAE(TINY).state_dict())


@settings(max_examples=cases(400), **FUZZ)
@given(data=st.data())
def test_pt_importer_fuzzed(pt_file, data):
    if data.draw(st.booleans()):
        blob = data.draw(mutations(pt_file, head=512))
    else:
        blob = _pt(data.draw(st.one_of(
            JSON,
            st.dictionaries(st.text(max_size=12), st.builds(torch.zeros, st.lists(st.integers(0, 4), max_size=3)),
                            max_size=4),
            st.builds(lambda d: {"state_dict": d}, JSON),
        )))
    with folder("w.pt") as f:
        path = f / "w.pt"
        path.write_bytes(blob)
        weights = documented(lambda: import_state_dict(path, TINY), CheckpointError)
        if weights is not None:
            assert set(weights) == set(torch.load(io.BytesIO(pt_file), weights_only=True))
