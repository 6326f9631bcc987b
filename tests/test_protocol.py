"""The typed protocol between the window and its training process."""

from __future__ import annotations

import dataclasses
import pickle
import queue
import sys

import numpy as np
import pytest

from models.config import ModelConfig, TrainConfig
from models.state import TrainingState
from models.trainer import EpochEnd, StepBatch, TrainingDone
from vaegui import protocol
from vaegui.worker import TrainingController


def test_every_message_is_a_frozen_dataclass_that_pickles():
    samples = {
        protocol.Started: ("cpu", "fp32", 3, 30),
        protocol.Threads: (2, 2, {1: 100.0, 2: 150.0}),
        protocol.Steps: (StepBatch(1, [1], [1.0], [0.5], [1.5], [1.5], 1, 3, 30, 100.0),),
        protocol.Snapshot: (4, {"w": np.zeros(3, np.float32)}),
        protocol.Epoch: (EpochEnd(1, 3, 1.0, 0.5, 1.5, 1.0, 0.5, 1.5, 100.0, 0.1),),
        protocol.Done: (TrainingDone(False, 1, 3),),
        protocol.Failed: ("boom", "Traceback"),
        protocol.State: (TrainingState({"model.w": np.zeros(2)}, {"position": {"epoch": 1}}),),
        protocol.Autosaved: ("/tmp/a.vae",),
        protocol.AutosaveFailed: ("disk full",),
        protocol.Job: (ModelConfig(), TrainConfig(), {}, None, protocol.AutosaveSettings("/tmp", 2, 60.0),
                       protocol.RunFolderSettings("/tmp/run", tensorboard=True)),
        protocol.AutosaveSettings: ("/tmp",),
        protocol.RunFolderSettings: ("/tmp/run",),
    }
    classes = [c for c in vars(protocol).values()
               if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == protocol.__name__]
    assert set(samples) <= set(classes)
    for cls in classes:
        message = cls(*samples.get(cls, ()))
        assert cls.__dataclass_params__.frozen
        again = pickle.loads(pickle.dumps(message))
        assert type(again) is cls


def test_an_unknown_message_fails_loudly(qtbot):
    controller = TrainingController()
    controller._events, controller._inbox = object(), queue.SimpleQueue()  # as if the process had started
    controller._inbox.put(("steps", "an old-style tuple"))
    with pytest.raises(protocol.ProtocolError, match="unknown message"):
        controller.poll()


def _receive_dataset(jobs, results) -> None:
    """A spawned process's side: what arrived, and whether it is the sender's shared memory."""
    from models.state import dataset_from_arrays

    arrays = jobs.get()
    data = dataset_from_arrays(arrays)
    results.put((type(arrays["train_x"]).__name__, data.train_x.is_shared(), data.test_x.is_shared(),
                 data.train_x.numpy().copy(), data.test_x.numpy().copy(), data.train_y.numpy().copy()))


def _fresh_dataset(n: int = 50):
    from models.data import split_images

    rng = np.random.default_rng(0)
    return split_images("u8", rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8), rng.integers(0, 3, n), n_test=10)


def test_a_jobs_dataset_in_shared_memory_is_mapped_by_the_training_process_not_copied():
    import multiprocessing as mp

    from models.state import dataset_tensors, dataset_to_arrays, share_tensors, shm_free_bytes

    if shm_free_bytes() < 2**20:
        pytest.skip("this machine has no shared memory (/dev/shm) to put a dataset in")
    data = _fresh_dataset()
    before = data.train_x.clone(), data.test_x.clone()
    assert not data.train_x.is_shared()
    assert isinstance(dataset_to_arrays(data, shared=True)["train_x"], np.ndarray)  # not shared yet: a copy
    assert share_tensors(dataset_tensors(data))
    # moved in place: the holder's own tensors now live in shared memory, with the same pixels
    assert data.train_x.is_shared() and data.test_x.is_shared()
    assert data.train_x.equal(before[0]) and data.test_x.equal(before[1])
    arrays = dataset_to_arrays(data, shared=True)
    assert arrays["train_x"] is data.train_x
    ctx = mp.get_context("spawn")
    jobs, results = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=_receive_dataset, args=(jobs, results))
    child.start()
    try:
        jobs.put(arrays)
        kind, train_shared, test_shared, train_x, test_x, train_y = results.get(timeout=60)
    finally:
        child.join(timeout=30)
    assert kind == "Tensor" and train_shared and test_shared
    assert np.array_equal(train_x, before[0].numpy()) and np.array_equal(test_x, before[1].numpy())
    assert np.array_equal(train_y, data.train_y.numpy())


def test_without_room_in_shared_memory_a_job_carries_a_copy(monkeypatch):
    """Shared memory takes a dataset only where twice its size is free (as much stays for others)."""
    from models import state

    data = _fresh_dataset()
    tensors = state.dataset_tensors(data)
    size = sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())
    monkeypatch.setattr(state, "shm_free_bytes", lambda: 2 * size - 1)
    assert not state.share_tensors(tensors) and not any(t.is_shared() for t in tensors)
    arrays = state.dataset_to_arrays(data, shared=True)
    assert isinstance(arrays["train_x"], np.ndarray)
    assert state.dataset_from_arrays(arrays).train_x.equal(data.train_x)
    if not sys.platform.startswith("linux"):
        return
    monkeypatch.setattr(state, "shm_free_bytes", lambda: 2 * size)
    assert state.share_tensors(tensors) and all(t.is_shared() for t in tensors)
    assert isinstance(state.dataset_to_arrays(data)["test_x"], np.ndarray)  # not asked to share: a copy
    assert state.dataset_to_arrays(data, shared=True)["train_x"] is data.train_x
