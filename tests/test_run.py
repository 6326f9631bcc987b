"""The Qt-free run model: a feed's calls fill its history, progress and state, and
views hear about it through plain callbacks."""

from __future__ import annotations

import threading

from models import ModelConfig, TrainConfig, Trainer, load_dataset
from models.run import Run
from models.state import TrainingState
from models.trainer import EpochEnd, StepBatch, TrainingDone


def feed_a_real_run(run: Run, epochs: int = 2) -> Trainer:
    """What the training process does, in this process: the trainer's events into the run."""
    data = load_dataset("digits")
    model, train = ModelConfig(input_shape=data.image_shape, latent_dim=2, hidden_dim=16), TrainConfig(epochs=epochs)
    run.begin(model, train, data.name)
    trainer = Trainer(model, train, data, stop_event=threading.Event())
    run.on_started("cpu", "fp32", trainer.steps_per_epoch, trainer.steps_per_epoch * epochs)
    for event in trainer.run():
        if isinstance(event, StepBatch):
            run.on_steps(event)
        elif isinstance(event, EpochEnd):
            run.on_epoch(event)
        elif isinstance(event, TrainingDone):
            run.on_finished(event)
    run.on_state(TrainingState.from_tensors(*trainer.export_state()))
    run.on_ended()
    return trainer


def test_a_fed_run_holds_every_metric_its_progress_and_its_state():
    run = Run()
    heard: dict[str, list] = {name: [] for name in ("reset", "steps", "epoch", "progress", "finished", "state", "file")}
    for name, calls in heard.items():
        getattr(run.events, name).connect(lambda *args, calls=calls: calls.append(args))
    trainer = feed_a_real_run(run)
    spe = trainer.steps_per_epoch
    assert run.history.steps.size == 2 * spe and [e.epoch for e in run.history.epochs] == [1, 2]
    assert run.progress.phase == "finished" and run.progress.done == run.progress.total == 2 * spe
    assert run.progress.text() == "Finished 2 epochs"
    assert run.state.position.epoch == 2 and run.dirty and run.path is None
    assert len(heard["reset"]) == 1 and len(heard["epoch"]) == 2
    assert [s for (batch,) in heard["steps"] for s in batch.steps] == list(range(1, 2 * spe + 1))
    assert heard["finished"][0][0].epochs_completed == 2 and heard["file"][-1] == (None, True)
    phases = [p[0].phase for p in heard["progress"]]
    assert phases[0] == "starting" and "evaluating" in phases and phases[-1] == "finished"
    info = run.checkpoint_info()
    assert info["step_metrics"]["step"] == list(range(1, 2 * spe + 1))
    header, rows = run.history.rows()
    assert header[0] == "split" and len(rows) == 2 * spe + 2


def test_opening_a_state_replaces_the_history_and_going_back_cuts_it():
    run = Run()
    feed_a_real_run(run, epochs=1)
    state = TrainingState(run.state.arrays, run.checkpoint_info())
    other = Run()
    other.open(state, "digits", "/tmp/m.vae")
    assert other.history.steps.size == run.history.steps.size and other.history.epochs == run.history.epochs
    assert other.path == "/tmp/m.vae" and not other.dirty
    cut = []
    other.events.truncated.connect(cut.append)
    info = dict(state.info, position=dict(state.info["position"], step=3))
    other.on_state(TrainingState(state.arrays, info))  # training went back to step 3
    assert cut == [3] and other.history.steps.size == 3 and other.history.epochs == []


def test_one_epoch_is_said_in_the_singular():
    from models.run import epochs_text

    run = Run()
    feed_a_real_run(run, epochs=1)
    assert run.progress.text() == "Finished 1 epoch"
    assert [epochs_text(n) for n in (0, 1, 2, 1000)] == ["0 epochs", "1 epoch", "2 epochs", "1,000 epochs"]
