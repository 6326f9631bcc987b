"""Run folders (models/runfolder.py) as `vaegui train --run-dir` writes them: the files,
a reader that takes only complete lines, a folder left by SIGKILL that still opens,
resume into the same folder, and TensorBoard events read back with TensorBoard's own
EventAccumulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from models.checkpoint import read_checkpoint
from models.runfolder import (
    MetricsTail,
    RunFolderError,
    newest_checkpoint,
    read_config,
    read_metrics,
    read_status,
    scan_runs,
)


def train(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "vaegui", "train", "--dataset", "digits", "--hidden-dim", "32",
                           *args], capture_output=True, text=True, timeout=timeout)


def test_train_run_dir_writes_every_part_of_a_run_folder(tmp_path):
    run = tmp_path / "run"
    p = train("--epochs", "3", "--run-dir", str(run), "--json", "--checkpoint-every", "2", "--sample-epochs", "1")
    assert p.returncode == 0, p.stderr
    json_lines = [json.loads(line) for line in p.stdout.splitlines()]
    model, train_cfg, dataset = read_config(run)
    assert model.hidden_dim == 32 and train_cfg.epochs == 3 and dataset["name"] == "digits"
    steps, epochs = read_metrics(run)
    # every step, once, in order; every epoch with the keys of --json
    assert [s for b in steps for s in b.steps] == list(range(1, 3 * 12 + 1))
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epoch_lines = [line for line in lines if line["event"] == "epoch"]
    assert [{k: v for k, v in line.items() if k != "event"} for line in epoch_lines] == json_lines
    assert [e.epoch for e in epochs] == [1, 2, 3]
    status = read_status(run)
    assert status["state"] == "finished" and status["pid"] and status["host"]
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["best.vae", "epoch-0002.vae", "latest.vae"]
    assert read_checkpoint(run / "checkpoints" / "latest.vae").epochs_done == 3
    best = min(epochs, key=lambda e: e.test_neg_elbo)
    assert read_checkpoint(run / "checkpoints" / "best.vae").epochs_done == best.epoch
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch-0001.png", "epoch-0003.png"]
    from PIL import Image

    assert Image.open(run / "samples" / "epoch-0003.png").size == (8 * 16 + 9 * 2,) * 2


def test_a_run_folder_is_not_overwritten_and_resumes_in_place(tmp_path):
    run = tmp_path / "run"
    assert train("--epochs", "1", "--run-dir", str(run)).returncode == 0
    again = train("--epochs", "1", "--run-dir", str(run))
    assert again.returncode == 2 and "already holds a run" in again.stderr
    more = train("--epochs", "2", "--resume", str(run), "--json")  # the folder's newest checkpoint, continued there
    assert more.returncode == 0, more.stderr
    assert [json.loads(line)["epoch"] for line in more.stdout.splitlines()] == [2]
    steps, epochs = read_metrics(run)
    assert [e.epoch for e in epochs] == [1, 2]
    assert [s for b in steps for s in b.steps] == list(range(1, 25))
    assert read_status(run)["state"] == "finished"


def test_the_tail_reads_complete_lines_only_and_skips_damage(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.read() == []
    with open(path, "w") as fh:
        fh.write('{"event": "epoch", "a": 1}\n{"event": "ste')
    assert tail.read() == [{"event": "epoch", "a": 1}]
    with open(path, "a") as fh:
        fh.write('ps", "b": 2}\nnot json\n[1]\n')
    assert tail.read() == [{"event": "steps", "b": 2}]
    assert tail.bad_lines == 2 and tail.read() == []


def test_a_run_killed_mid_epoch_opens_with_its_metrics_and_newest_checkpoint(tmp_path):
    run = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "vaegui", "train", "--dataset", "digits", "--hidden-dim", "32",
                          "--epochs", "1000", "--run-dir", str(run), "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    try:
        for _ in range(3):  # --json prints an epoch after its line and checkpoints are in the folder
            assert p.stdout.readline().startswith("{")
        assert read_status(run)["state"] == "running"
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.kill()
        p.wait()
    status = read_status(run)
    assert status["state"] == "stopped unexpectedly" and "gone" in status["message"]
    steps, epochs = read_metrics(run)
    assert len(epochs) >= 3 and steps
    checkpoint = newest_checkpoint(run)
    assert checkpoint is not None and checkpoint.epochs_done >= len(epochs) - 1
    # the heartbeat says so too when the writer ran on another machine
    raw = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps(dict(raw, host="elsewhere")))
    assert read_status(run, now=raw["heartbeat"] + 5)["state"] == "running"
    assert read_status(run, now=raw["heartbeat"] + 60)["state"] == "stopped unexpectedly"


def test_scan_lists_runs_with_their_figures_and_refuses_other_folders(tmp_path):
    for beta in ("1", "4"):
        assert train("--epochs", "2", "--beta", beta, "--run-dir", str(tmp_path / "sweep" / f"beta-{beta}")
                     ).returncode == 0
    (tmp_path / "sweep" / "not-a-run").mkdir()
    runs = scan_runs(tmp_path)
    assert [r.name for r in runs] == ["sweep/beta-1", "sweep/beta-4"]
    assert [r.settings["beta"] for r in runs] == [1.0, 4.0]
    assert all(r.state == "finished" and r.epochs_done == 2 and r.best_test_neg_elbo <= r.final_test_neg_elbo
               for r in runs)
    with pytest.raises(RunFolderError, match="not a run folder"):
        read_config(tmp_path / "sweep" / "not-a-run")


def test_tensorboard_events_hold_the_scalars_images_and_embedding(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    p = train("--epochs", "2", "--run-dir", str(run), "--tensorboard", "--json")
    assert p.returncode == 0, p.stderr
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert {"train/neg_elbo", "train/kl", "epoch/test_neg_elbo", "epoch/test_kl"} <= set(tags["scalars"])
    test = [e.value for e in events.Scalars("epoch/test_neg_elbo")]
    assert test == pytest.approx([json.loads(line)["test_neg_elbo"] for line in p.stdout.splitlines()], rel=1e-6)
    assert len(events.Scalars("train/neg_elbo")) == 24
    assert "samples" in tags["images"]
    assert (run / "tensorboard" / "projector_config.pbtxt").exists()


def test_tensorboard_without_a_run_folder_is_a_clear_error(tmp_path):
    p = train("--epochs", "1", "--tensorboard")
    assert p.returncode == 2 and "--run-dir" in p.stderr
