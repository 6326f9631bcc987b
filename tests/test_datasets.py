"""The one dataset resolver: names and paths in, datasets and reports out."""

from __future__ import annotations

import numpy as np
import pytest

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
