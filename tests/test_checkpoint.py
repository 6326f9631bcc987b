"""Checkpoints: safe format, atomic saves, exact resume, clear errors on bad files."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

import models.checkpoint as ckpt
from models import ModelConfig, TrainConfig, Trainer, load_dataset
from models.checkpoint import (
    CheckpointError,
    autosave,
    import_state_dict,
    list_autosaves,
    read_checkpoint,
    save_checkpoint,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def config(data, latent=4):
    return ModelConfig(input_shape=data.image_shape, latent_dim=latent, hidden_dim=32)


def trained(data, epochs=1, **kw):
    trainer = Trainer(config(data), TrainConfig(epochs=epochs, precision="fp32", **kw), data)
    list(trainer.run())
    return trainer


def assert_same_weights(a: Trainer, b: Trainer):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=1e-7, msg=key)


def test_round_trip_keeps_weights_configs_and_metadata(tmp_path, digits):
    trainer = trained(digits)
    path = save_checkpoint(tmp_path / "m.vae", *trainer.export_state())
    c = read_checkpoint(path)
    assert c.model_config == trainer.model_config and c.train_config == trainer.config
    assert c.has_training_state and c.epochs_done == 1 and c.dataset_name == "digits"
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(c.weights[key], value.cpu())  # a checkpoint reads onto the CPU
    for key in ("app_version", "torch_version", "created", "history"):
        assert key in c.info
    assert c.info["history"][0]["test_neg_elbo"] == trainer.history[0].test_neg_elbo
    assert c.info["torch_version"] == torch.__version__


def test_resume_one_plus_one_epochs_equals_two(tmp_path, digits):
    straight = trained(digits, epochs=2, seed=5)
    first = trained(digits, epochs=1, seed=5)
    save_checkpoint(tmp_path / "e1.vae", *first.export_state())
    c = read_checkpoint(tmp_path / "e1.vae")
    resumed = Trainer(c.model_config, TrainConfig(**{**c.train_config.to_dict(), "epochs": 2}), digits)
    resumed.load_state(c.tensors, c.info)
    list(resumed.run())
    assert resumed.step == straight.step and resumed.epoch == 2
    assert_same_weights(resumed, straight)
    assert [e.epoch for e in resumed.history] == [1, 2]


def test_resume_from_the_middle_of_an_epoch(tmp_path, digits):
    straight = trained(digits, epochs=1, seed=2)
    stopped = Trainer(config(digits), TrainConfig(epochs=1, precision="fp32", seed=2), digits, sync_every=1)
    run = stopped.run()
    for _ in range(5):
        next(run)
    stopped.request_stop()
    assert next(run).stopped and stopped.step == 5
    save_checkpoint(tmp_path / "mid.vae", *stopped.export_state())
    c = read_checkpoint(tmp_path / "mid.vae")
    resumed = Trainer(c.model_config, c.train_config, digits)
    resumed.load_state(c.tensors, c.info)
    list(resumed.run())
    assert_same_weights(resumed, straight)
    assert resumed.history[0].train_neg_elbo == pytest.approx(straight.history[0].train_neg_elbo, rel=1e-6)


def test_a_failure_part_way_through_a_save_leaves_the_previous_file(tmp_path, digits, monkeypatch):
    path = tmp_path / "m.vae"
    save_checkpoint(path, *trained(digits).export_state())
    before = path.read_bytes()

    def half_then_disk_full(fh, data):
        fh.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt, "_write_all", half_then_disk_full)
    with pytest.raises(CheckpointError, match="No space left on device"):
        save_checkpoint(path, *trained(digits, epochs=2).export_state())
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.vae"]  # no temporary file left behind


def test_unwritable_destination_is_a_clear_error(tmp_path, digits):
    with pytest.raises(CheckpointError, match="could not save"):
        save_checkpoint(tmp_path / "missing-folder" / "m.vae", *trained(digits).export_state())


def test_bad_files_are_clear_errors(tmp_path, digits):
    good = tmp_path / "good.vae"
    tensors, info = trained(digits).export_state()
    save_checkpoint(good, tensors, info)
    truncated = tmp_path / "truncated.vae"
    truncated.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        read_checkpoint(truncated)
    png = tmp_path / "picture.vae"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(CheckpointError, match="not a vaegui checkpoint"):
        read_checkpoint(png)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a vaegui checkpoint"):
        read_checkpoint(foreign)
    newer = tmp_path / "newer.vae"
    document = dict(info, format="vaegui-checkpoint", format_version=99)
    save_file(tensors, str(newer), metadata={"format": "vaegui-checkpoint", "format_version": "99",
                                             "vaegui": json.dumps(document)})
    with pytest.raises(CheckpointError, match="newer vaegui"):
        read_checkpoint(newer)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "nothing.vae")


def test_shape_mismatch_and_missing_optimizer_state(tmp_path, digits):
    tensors, info = trained(digits).export_state()
    other = dict(info, model_config=config(digits, latent=6).to_dict())
    save_checkpoint(tmp_path / "mismatch.vae", tensors, other)
    with pytest.raises(CheckpointError, match="needs"):
        read_checkpoint(tmp_path / "mismatch.vae")
    weights_only = {k: v for k, v in tensors.items() if k.startswith("model.")}
    save_checkpoint(tmp_path / "weights.vae", weights_only, info)
    c = read_checkpoint(tmp_path / "weights.vae")
    assert not c.has_training_state
    fresh = Trainer(c.model_config, c.train_config, digits)
    with pytest.raises(ValueError, match="optimizer state is missing"):
        fresh.load_state(c.tensors, c.info)


class _CreatesAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path, digits):
    marker = tmp_path / "created-by-the-pickle"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        pickle.dump({"enc.weight": _CreatesAFile(str(marker))}, fh)
    with pytest.raises(CheckpointError, match="refused"):
        import_state_dict(evil, config(digits))
    assert not marker.exists()
    # the same bytes really would create the file if unpickled without protection
    with open(evil, "rb") as fh:
        pickle.load(fh).popitem()[1].close()
    assert marker.exists()


def test_a_plain_state_dict_imports_when_shapes_match(tmp_path, digits):
    trainer = trained(digits)
    torch.save(trainer.model.state_dict(), tmp_path / "weights.pt")
    weights = import_state_dict(tmp_path / "weights.pt", config(digits))
    assert torch.equal(weights["enc.weight"], trainer.model.enc.weight.cpu())
    with pytest.raises(CheckpointError, match="another latent size"):
        import_state_dict(tmp_path / "weights.pt", config(digits, latent=7))


def test_autosave_keeps_the_newest_k(tmp_path, digits):
    trainer = Trainer(config(digits), TrainConfig(epochs=4, precision="fp32"), digits)
    for event in trainer.run():
        if type(event).__name__ == "EpochEnd":
            autosave(tmp_path / "session", *trainer.export_state(), keep=2)
    names = [p.name for p in list_autosaves(tmp_path / "session")]
    assert names == ["autosave-e0003-s00000036.vae", "autosave-e0004-s00000048.vae"]  # 12 steps per epoch
    assert read_checkpoint(tmp_path / "session" / names[-1]).epochs_done == 4


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "vaegui", "train", *args], capture_output=True, text=True, timeout=300)


def test_cli_save_then_resume_equals_an_uninterrupted_run(tmp_path):
    common = ["--dataset", "digits", "--hidden-dim", "32", "--latent-dim", "3", "--precision", "fp32"]
    one = run_cli(*common, "--epochs", "1", "--save", str(tmp_path / "e1.vae"))
    assert one.returncode == 0, one.stderr
    two = run_cli("--resume", str(tmp_path / "e1.vae"), "--epochs", "2", "--json", "--save", str(tmp_path / "e2.vae"))
    assert two.returncode == 0, two.stderr
    assert [json.loads(line)["epoch"] for line in two.stdout.splitlines()] == [2]
    straight = run_cli(*common, "--epochs", "2", "--save", str(tmp_path / "s2.vae"))
    assert straight.returncode == 0, straight.stderr
    a, b = read_checkpoint(tmp_path / "e2.vae"), read_checkpoint(tmp_path / "s2.vae")
    for key in a.weights:
        torch.testing.assert_close(a.weights[key], b.weights[key], rtol=0, atol=1e-7)
    mismatch = run_cli("--resume", str(tmp_path / "e1.vae"), "--epochs", "2", "--latent-dim", "9")
    assert mismatch.returncode == 2 and "must match" in mismatch.stderr
    damaged = tmp_path / "damaged.vae"
    damaged.write_bytes((tmp_path / "e1.vae").read_bytes()[:100])
    bad = run_cli("--resume", str(damaged))
    assert bad.returncode == 2 and "damaged or truncated" in bad.stderr
