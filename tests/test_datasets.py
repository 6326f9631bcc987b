"""The one dataset resolver: names and paths in, datasets and reports out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.datasets import DatasetSpec, parse_dataset, resolve_dataset


def test_names_parse_to_one_spec_each(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    npz = tmp_path / "x.npz"
    np.savez(npz, x=np.zeros((4, 8, 8), np.uint8))
    assert parse_dataset("mnist5k") == DatasetSpec("builtin", "mnist5k")
    assert parse_dataset("shapes") == DatasetSpec("shapes", "shapes", 5000)
    assert parse_dataset("shapes:300").name == "shapes:300"
    assert parse_dataset("download:cifar10") == DatasetSpec("download", "cifar10")
    assert parse_dataset(str(folder)) == DatasetSpec("folder", str(folder))
    assert parse_dataset(f"auto:{npz}") == DatasetSpec("file", str(npz))
    assert parse_dataset(f"folder:{folder}").name == f"folder:{folder}"
    assert parse_dataset("shapes").builtin and not parse_dataset(str(npz)).builtin
    for bad, why in (("shapes:x", "whole number"), ("shapes:5", "between 10"), ("download:imagenet", "downloads are"),
                     ("imagenet", "neither a built-in dataset"), (str(tmp_path / "gone"), "neither")):
        with pytest.raises(ValueError, match=why):
            parse_dataset(bad)


def test_resolve_loads_builtin_data_and_imports_files_with_a_report(tmp_path):
    data, report = resolve_dataset("digits")
    assert report is None and data.name == "digits" and data.image_shape == (1, 8, 8)
    shapes, _ = resolve_dataset("shapes:50")
    assert shapes.name == "shapes:50" and len(shapes.train_x) + len(shapes.test_x) == 50
    npz = tmp_path / "x.npz"
    np.savez(npz, x=np.full((12, 28, 28), 7, np.uint8), y=np.arange(12) % 2)
    imported, report = resolve_dataset(str(npz))
    assert imported.name == f"file:{npz}" and report.loaded == 12
    assert resolve_dataset(imported.name)[0].name == imported.name  # its own name resolves again


def test_shapes_rendered_in_the_split_order_are_the_rendered_images_split():
    """Shapes renders straight into the split's order (no permuted copy of the store): the
    same images, labels, factors and split as rendering in index order and splitting after."""
    from models import shapes
    from models.data import load_dataset, split_images

    for seed in (0, 3):
        data = load_dataset("shapes:120", seed)
        indices = shapes.sample_indices(120, seed)
        factors = shapes.factor_values(shapes.factors_of(indices))
        old = split_images("shapes:120", shapes.render_many(indices) * np.uint8(255), factors[:, 0].astype(np.int64),
                           n_test=24, seed=seed, factors=factors)
        assert data.train_x.dtype == old.train_x.dtype == torch.uint8
        for key in ("train_x", "train_y", "test_x", "test_y", "train_factors", "test_factors"):
            assert getattr(data, key).equal(getattr(old, key)), key
        assert int(data.train_x.max()) == 255 and set(data.train_x.unique().tolist()) == {0, 255}
