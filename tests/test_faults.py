"""Faults and hostile settings, without Qt: the resource guard, Stop during the
evaluation, a non-finite gradient, outputs checked before any work, saved files'
permissions, an image over Pillow's decompression-bomb limit, and a training process
that outlives its window."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from PIL import Image

from models import ModelConfig, NonFiniteLossError, StepBatch, TrainConfig, Trainer, TrainingDone, load_dataset
from models.checkpoint import CheckpointError, check_writable, read_checkpoint, save_checkpoint
from models.importers import load_image
from models.resources import GB, ResourceError, check_memory, estimate_memory

MNIST = ModelConfig()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# -- the resource guard ----------------------------------------------------------------------
def test_absurd_settings_are_refused_with_the_figures_and_what_to_lower():
    absurd = TrainConfig(batch_size=8192, iw_k=5000, eval_iw=5000)
    with pytest.raises(ResourceError) as info:
        check_memory(ModelConfig(hidden_dim=4096), absurd, data_bytes=5000 * 784, free=16 * GB)
    message = str(info.value)
    assert "batch 8,192 × hidden 4,096 × K 5,000" in message
    assert "16.0 GB free" in message and "lower the IWAE samples K or the batch size" in message
    needed = float(message.split("needs ~")[1].split(" GB")[0].replace(",", ""))
    assert needed > 1000  # terabytes: 41 million decoded images kept for one backward pass


def test_the_default_run_fits_in_a_small_machine():
    estimate = check_memory(MNIST, TrainConfig(), data_bytes=5000 * 784, free=1 * GB)
    assert estimate.peak < 0.2 * GB


def test_the_estimate_follows_the_batch_the_samples_and_the_width():
    def step(**kw):
        model = ModelConfig(hidden_dim=kw.pop("hidden", 400))
        return estimate_memory(model, TrainConfig(**kw), 0).step

    assert step(batch_size=256) == pytest.approx(2 * step(batch_size=128), rel=0.01)
    assert step(iw_k=20) > 10 * step(iw_k=1)
    assert step(iw_k=40) == pytest.approx(2 * step(iw_k=20), rel=0.1)
    assert step(hidden=4000) > 3 * step(hidden=400)
    # the MLP's activations per image: at least input + hidden + logits, float32
    assert step(batch_size=1) >= 4 * (784 + 400 + 784)


def test_a_too_wide_network_on_the_data_is_blamed_on_the_right_part():
    with pytest.raises(ResourceError, match="the dataset"):
        check_memory(MNIST, TrainConfig(), data_bytes=10 * GB, free=16 * GB)
    with pytest.raises(ResourceError, match="lower the batch size or the hidden width"):
        check_memory(ModelConfig(hidden_dim=4096), TrainConfig(batch_size=8192), data_bytes=0, free=1 * GB)


# -- Stop during the evaluation ----------------------------------------------------------------
def _small(data, **train):
    return Trainer(ModelConfig(input_shape=data.image_shape, latent_dim=4, hidden_dim=64), TrainConfig(**train), data)


def test_stop_during_the_evaluation_ends_it_and_continue_evaluates_that_epoch_again(digits):
    kw = dict(epochs=2, batch_size=128, seed=3, eval_iw=50, eval_iw_images=100)
    reference = _small(digits, **kw)
    ref_events = list(reference.run())
    trainer = _small(digits, **kw)
    events = []
    for event in trainer.run():
        events.append(event)
        if isinstance(event, StepBatch) and event.step_in_epoch == event.steps_per_epoch and event.epoch == 1:
            trainer.request_stop()  # the evaluation of epoch 1 comes next
    assert isinstance(events[-1], TrainingDone) and events[-1].stopped
    assert events[-1].epochs_completed == 0 and trainer.step == trainer.steps_per_epoch
    assert trainer.model.training
    rest = list(trainer.run())
    ends = [e for e in rest if not isinstance(e, (StepBatch, TrainingDone))]
    assert [e.epoch for e in ends] == [1, 2]
    ref_ends = [e for e in ref_events if not isinstance(e, (StepBatch, TrainingDone))]
    for mine, ref in zip(ends, ref_ends):
        assert mine.test_neg_elbo == ref.test_neg_elbo and mine.test_nll_iw == ref.test_nll_iw
    for (name, a), b in zip(trainer.model.state_dict().items(), reference.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_stop_is_seen_within_one_chunk_of_a_long_importance_sampled_evaluation(digits, monkeypatch):
    """Stop asked while the third of 90 chunks of the epoch's importance sampling runs: the evaluation
    ends before the fourth (counted in chunks, not seconds, so a fast GPU and a slow CPU test the same)."""
    from models import evaluation

    trainer = Trainer(ModelConfig(input_shape=digits.image_shape, latent_dim=4, hidden_dim=64),
                      TrainConfig(epochs=1, eval_iw=5000, eval_iw_images=360), digits)
    chunks = []
    real = evaluation.iw_log_marginal

    def one_chunk(model, x, *args, **kw):
        chunks.append(len(x))
        if len(chunks) == 3:
            trainer.request_stop()
        return real(model, x, *args, **kw)

    monkeypatch.setattr(evaluation, "iw_log_marginal", one_chunk)
    events = list(trainer.run())
    assert isinstance(events[-1], TrainingDone) and events[-1].stopped and not trainer.history
    assert trainer.step == trainer.steps_per_epoch  # the training steps of the epoch all ran
    assert chunks == [4, 4, 4], "the evaluation went on after Stop"  # 20,000 decoded images a chunk: 4 of 360


# -- a non-finite gradient with a finite loss --------------------------------------------------
def test_a_non_finite_gradient_is_caught_before_the_update(digits):
    model = ModelConfig(input_shape=digits.image_shape, latent_dim=4, hidden_dim=64)
    trainer = Trainer(model, TrainConfig(epochs=1), digits, written_backward=False)  # the hook is autograd's
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.model.dec.weight.register_hook(lambda g: g * float("inf"))
    with pytest.raises(NonFiniteLossError, match="gradient \\(with a finite loss\\) became non-finite at step 1"):
        list(trainer.run())
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert trainer.step == 0


# -- outputs checked before any work -----------------------------------------------------------
def test_check_writable_names_the_path(tmp_path):
    assert check_writable(tmp_path / "ok.vae") == tmp_path / "ok.vae"
    with pytest.raises(CheckpointError, match="the folder .*no-such does not exist"):
        check_writable(tmp_path / "no-such" / "x.vae")
    with pytest.raises(CheckpointError, match="it is a folder"):
        check_writable(tmp_path)
    assert not list(tmp_path.iterdir())  # the probe leaves nothing behind


def vaegui(*args, **kw):
    return subprocess.run([sys.executable, "-m", "vaegui", *args], capture_output=True, text=True, timeout=120, **kw)


def test_train_save_to_a_missing_folder_exits_2_before_the_first_epoch():
    start = time.perf_counter()
    result = vaegui("train", "--dataset", "mnist5k", "--epochs", "50", "--save", "/no/such/dir/x.vae")
    assert result.returncode == 2 and result.stdout == ""
    assert "cannot save to /no/such/dir/x.vae: the folder /no/such/dir does not exist" in result.stderr
    assert time.perf_counter() - start < 30  # 50 epochs would take minutes


def test_train_with_absurd_settings_exits_2_with_the_figures():
    result = vaegui("train", "--dataset", "digits", "--batch-size", "8192", "--hidden-dim", "4096", "--iw-k", "5000")
    assert result.returncode == 2 and result.stdout == ""
    assert "batch 8,192 × hidden 4,096 × K 5,000 needs ~" in result.stderr and "free" in result.stderr


# -- saved files follow the umask --------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "m.vae", {"model.w": torch.zeros(2)}, {})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
    path.chmod(0o640)  # an existing file keeps its own mode when saved again
    save_checkpoint(path, {"model.w": torch.ones(2)}, {})
    assert path.stat().st_mode & 0o777 == 0o640


# -- Pillow's decompression-bomb limit ----------------------------------------------------------
def test_an_image_over_the_decompression_bomb_limit_is_reported_as_too_large(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((60, 60), dtype=np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 3,600 pixels > 2 × the limit
    with pytest.raises(ValueError, match="too large to open safely") as info:
        load_image(path, 28)
    assert "damaged" not in str(info.value)


# -- the training process dies with its window --------------------------------------------------
def test_a_killed_window_takes_its_training_process_with_it_and_leaves_an_openable_autosave(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    app = subprocess.Popen(
        [sys.executable, "-m", "vaegui", "--dataset", "mnist5k", "--train", "--settings", str(tmp_path / "s.ini")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    sessions = tmp_path / "vaegui-data" / "sessions"
    try:
        deadline = time.monotonic() + 90
        while not list(sessions.glob("*/autosave-*.vae")):
            assert time.monotonic() < deadline, "no autosave within 90 s"
            try:  # wait on the app itself: it must not end
                app.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"the app ended: {app.stderr.read().decode()}")
        children = psutil.Process(app.pid).children(recursive=True)
        assert children
        os.kill(app.pid, signal.SIGKILL)
        app.wait(10)
        killed = time.monotonic()
        gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"alive {time.monotonic() - killed:.1f} s after the window was killed: {alive}"
    finally:
        if app.poll() is None:
            app.kill()
        for child in psutil.Process().children(recursive=True):
            if child.pid != os.getpid() and "vaegui" in " ".join(child.cmdline()):
                child.kill()
    saves = sorted(sessions.glob("*/autosave-*.vae"))
    assert saves and not list(sessions.glob("*/.*.tmp"))
    for path in saves:
        checkpoint = read_checkpoint(path)
        assert checkpoint.has_training_state and checkpoint.epochs_done >= 1
    assert Path(saves[-1]).stat().st_size > 1_000_000
