"""The training process's choice of threads (vaegui/threadtune.py), and its report to the window."""

from __future__ import annotations

import queue
import threading

import pytest
import torch

from models.config import ModelConfig, TrainConfig
from vaegui import protocol
from vaegui.threadtune import ThreadTuner


class FakeTraining:
    """Steps of ``batch`` samples whose time depends on the thread count in use, on a fake clock."""

    def __init__(self, rate: dict[int, float], batch: int = 128, **tuner):
        self.now, self.rate, self.batch = 0.0, rate, batch
        self.tuner = ThreadTuner(1, 2, clock=lambda: self.now, **tuner)
        self.threads = 1
        self.switches: list[int] = []

    def train(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now += self.batch / self.rate[self.threads]
            switch = self.tuner.observe(self.batch)
            if switch is not None:
                self.threads = switch
                self.switches.append(switch)


def test_it_takes_every_core_when_that_trains_faster():
    run = FakeTraining({1: 20_000, 2: 26_000})
    run.train(12)
    assert run.tuner.measurements == 1
    assert run.tuner.rates[1] == pytest.approx(20_000, rel=0.01)
    assert run.tuner.rates[2] == pytest.approx(26_000, rel=0.01)
    assert run.switches == [2, 1, 2, 1, 2]  # the blocks alternate, then the choice
    assert run.threads == run.tuner.chosen == 2


@pytest.mark.parametrize("more_rate", [20_000, 20_600, 15_000])
def test_it_leaves_the_core_to_the_window_unless_every_core_is_clearly_faster(more_rate):
    run = FakeTraining({1: 20_000, 2: more_rate})  # equal, 3 % faster (below the 5 % margin), slower
    run.train(12)
    assert run.tuner.measurements == 1
    assert run.threads == run.tuner.chosen == 1


def test_it_measures_again_after_holding_its_choice():
    run = FakeTraining({1: 20_000, 2: 26_000}, hold_s=10)
    run.train(12)
    assert run.threads == 2
    run.rate[2] = 16_000  # the window got busy: every core is slower now
    run.train(20)
    assert run.tuner.measurements == 2
    assert run.threads == 1


def test_time_outside_training_is_not_counted():
    run = FakeTraining({1: 20_000, 2: 26_000}, warmup_s=0, settle_s=0)
    for _ in range(40):  # epochs of 0.3 s, each followed by a 0.5 s evaluation and then a long pause
        run.train(0.3)
        run.tuner.interrupt()
        run.now += 0.5
        run.tuner.observe(run.batch)  # these samples were trained partly during the evaluation
        run.train(0.05)
        run.now += 5.0  # a pause longer than the gap: the next interval is not counted either
    assert run.tuner.measurements >= 1
    assert run.tuner.rates[1] == pytest.approx(20_000, rel=0.02)
    assert run.tuner.rates[2] == pytest.approx(26_000, rel=0.02)


@pytest.mark.parametrize("kwargs", [dict(fewer=2, more=2), dict(fewer=0, more=2), dict(fewer=1, more=2, block_s=0),
                                    dict(fewer=1, more=2, rounds=0), dict(fewer=1, more=2, settle_s=-1)])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        ThreadTuner(**kwargs)


def test_the_training_process_measures_reports_and_restores_its_threads(monkeypatch):
    import vaegui.trainproc as trainproc
    from models import load_dataset
    from models.state import dataset_to_arrays

    digits = load_dataset("digits")
    class QuickTuner(ThreadTuner):
        def __init__(self, fewer, more):
            super().__init__(fewer, more, block_s=0.02, rounds=1, warmup_s=0, settle_s=0, hold_s=1e9)

    monkeypatch.setattr(trainproc, "ThreadTuner", QuickTuner)
    monkeypatch.setattr(trainproc.os, "cpu_count", lambda: 2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sent = []
        job = protocol.Job(ModelConfig(input_shape=digits.image_shape, latent_dim=2, hidden_dim=32),
                           TrainConfig(epochs=3, batch_size=32, precision="fp32"), dataset_to_arrays(digits))
        trainproc.run_job(job, sent.append, threading.Event(), threading.Event(), tune_threads=True)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    started = next(m for m in sent if isinstance(m, protocol.Started))
    assert (started.threads, started.cores) == (1, 2)
    reports = [m for m in sent if isinstance(m, protocol.Threads)]
    assert len(reports) == 1 and reports[0].threads in (1, 2) and reports[0].cores == 2
    assert set(reports[0].rates) == {1, 2} and all(r > 0 for r in reports[0].rates.values())
    assert isinstance(sent[-1], protocol.Idle) and not any(isinstance(m, protocol.Failed) for m in sent)
    assert after == 1  # the next job starts as this one did


def test_the_status_bar_shows_the_threads_in_use(window):
    controller = window.controller
    controller._events, controller._inbox = object(), queue.SimpleQueue()  # as if the process had started
    controller.running = True
    controller._inbox.put(protocol.Started("cpu", "bf16", 10, 100, 1, 2))
    controller.poll()
    assert window.training.device_label.text() == "device: cpu · bf16 · 1 of 2 threads"
    controller._inbox.put(protocol.Threads(2, 2, {1: 20_000.0, 2: 26_000.0}))
    controller.poll()
    assert window.training.device_label.text() == "device: cpu · bf16 · 2 of 2 threads"
    assert controller.thread_rates == {1: 20_000.0, 2: 26_000.0}
    controller.running = False
    controller._events = None
