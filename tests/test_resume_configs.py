"""Every ModelConfig / TrainConfig field survives Continue in the window and
``vaegui train --resume`` unchanged, unless the user changed it. The values are made
from the fields' metadata, so a field added later is covered without editing this file."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from PySide6.QtCore import Qt

from models.checkpoint import read_checkpoint
from models.config import ModelConfig, TrainConfig, fields_of
from vaegui.fields import set_value

from .test_gui import wait_finished

#: values that keep the run small on the 8×8 digits, whatever the metadata allows
#: (an objective of the β family trains on the ELBO, so iw_k stays 1, and needs a posterior: not the plain
#: autoencoder; the digits have no factors to score)
CHEAP = {"epochs": 1, "batch_size": 300, "hidden_dim": 16, "latent_dim": 3, "eval_iw_images": 20,
         "device": "cpu", "arch": "mlp", "objective": "capacity", "iw_k": 1, "metrics": "off",
         "model": "cvae"}


def other_value(f, shape=(1, 8, 8)):
    """A valid value of field ``f`` other than its default (from its choices or range)."""
    meta, default = f.metadata, f.default
    if f.name in CHEAP:
        return CHEAP[f.name]
    if meta.get("choices"):
        return next(k for k in meta["choices"] if k != default)
    lo, hi = meta.get("range") or (None, None)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1 if hi is None or default + 1 <= hi else default - 1
    if isinstance(default, float):
        step = meta.get("step") or default / 2 or 0.01
        return round(default + step, 6) if hi is None or default + step <= hi else round(default - step, 6)
    return default


def changed_configs(shape=(1, 8, 8), n_classes=10, cli_only=False, form_only=False):
    def values(cls):
        kw = {}
        for f in fields_of(cls, cli=True if cli_only else None, form=True if form_only else None):
            kw[f.name] = other_value(f, shape)
        return kw

    model_kw = values(ModelConfig)
    model_kw["input_shape"] = shape
    model_kw["n_classes"] = n_classes if model_kw.get("model") == "cvae" else 0
    return ModelConfig(**model_kw), TrainConfig(**values(TrainConfig))


def test_continue_in_the_window_keeps_every_setting_it_was_not_told_to_change(qtbot, window, tmp_path):
    model, train = changed_configs(form_only=True)
    form = window.form
    for config in (model, train):
        for f in fields_of(type(config), form=True):
            assert set_value(form.fields[f.name], getattr(config, f.name)), f.name
    assert form.model_config() == model and form.train_config() == train
    with qtbot.waitSignal(window.controller.running_changed, timeout=5000):
        qtbot.mouseClick(form.train_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, window)
    assert window.run.last_error == ""
    # Continue to 2 epochs: only the epoch count differs
    form.epochs_spin.setValue(2)
    qtbot.mouseClick(form.continue_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, window)
    assert window.run.last_error == ""
    assert window.files.save_model(str(tmp_path / "two.vae"))
    saved = read_checkpoint(tmp_path / "two.vae")
    assert saved.model_config == model
    assert saved.train_config == dataclasses.replace(train, epochs=2)
    assert saved.epochs_done == 2
    # a change the user makes before Continue is taken, and only that one
    form.epochs_spin.setValue(3)
    form.lr_spin.setValue(train.lr / 2)
    qtbot.mouseClick(form.continue_button, Qt.MouseButton.LeftButton)
    wait_finished(qtbot, window)
    assert window.files.save_model(str(tmp_path / "three.vae"))
    assert read_checkpoint(tmp_path / "three.vae").train_config == dataclasses.replace(
        train, epochs=3, lr=train.lr / 2)


def _options(config, skip=()) -> list[str]:
    out = []
    for f in fields_of(type(config), cli=True):
        if f.name not in skip:
            out += ["--" + f.name.replace("_", "-"), str(getattr(config, f.name))]
    return out


def vaegui(*args):
    result = subprocess.run([sys.executable, "-m", "vaegui", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_cli_resume_keeps_every_setting_it_was_not_told_to_change(tmp_path):
    model, train = changed_configs(cli_only=True)
    first, second, third = (str(tmp_path / n) for n in ("one.vae", "two.vae", "three.vae"))
    vaegui("train", "--dataset", "digits", *_options(model), *_options(train), "--save", first)
    saved = read_checkpoint(first)
    assert saved.model_config == model and saved.train_config == train
    vaegui("train", "--resume", first, "--epochs", "2", "--save", second)
    resumed = read_checkpoint(second)
    assert resumed.model_config == model
    assert resumed.train_config == dataclasses.replace(train, epochs=2)
    vaegui("train", "--resume", second, "--epochs", "3", "--beta", str(train.beta * 2), "--save", third)
    assert read_checkpoint(third).train_config == dataclasses.replace(train, epochs=3, beta=train.beta * 2)
