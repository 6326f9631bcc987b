"""The typed protocol between the window and its training process."""

from __future__ import annotations

import dataclasses
import pickle
import queue

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
