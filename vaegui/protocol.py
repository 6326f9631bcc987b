"""The typed messages between the window and its training process.

One frozen dataclass per message, plain data only (configs, numpy arrays, the
trainer's metric records), so everything pickles over a ``multiprocessing`` queue; a
:class:`Job`'s dataset may instead hold CPU tensors in shared memory, which the queue
sends as handles (:func:`models.state.dataset_to_arrays` with ``shared=True``).
The window sends a :class:`Job` (or ``None`` to end the process); the process
answers with the messages below, in this order for a run::

    Ready                       once, when the process has started
    Started                     the run's device, precision and length
    Steps*, Snapshot*, Epoch*   while it trains (steps ~20/s, snapshots ~4/s)
    Autosaved | AutosaveFailed  after each epoch and every N minutes
    Done | Failed               how it ended
    State                       the resumable state, whenever a trainer existed
    Idle                        the job is over, whatever happened
    Exit                        the process is about to end

The receiver dispatches with ``match`` and fails loudly (:class:`ProtocolError`) on
anything else. This module imports no Qt: the training process imports it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.config import ModelConfig, TrainConfig
from models.state import TrainingState
from models.trainer import EpochEnd, StepBatch, TrainingDone


class ProtocolError(RuntimeError):
    """A message that is not part of this protocol arrived."""


@dataclass(frozen=True)
class AutosaveSettings:
    """Where and how often a run autosaves: ``folder``, every ``every_s`` seconds (0:
    epoch ends only) besides each epoch end, keeping the newest ``keep``."""

    folder: str
    keep: int = 3
    every_s: float = 0.0


@dataclass(frozen=True)
class RunFolderSettings:
    """Write the run into a run folder (:mod:`models.runfolder`): ``folder``, continuing
    the run already there when the job resumes; ``tensorboard`` events too."""

    folder: str
    tensorboard: bool = False
    samples_every: int = 1


@dataclass(frozen=True)
class Job:
    """Train ``model`` with ``train`` on ``data`` (:func:`models.state.dataset_to_arrays`:
    numpy arrays, or tensors in shared memory that the process must only read), a new model
    or ``resume`` continued to ``train.epochs`` in total."""

    model: ModelConfig
    train: TrainConfig
    data: dict
    resume: TrainingState | None = None
    autosave: AutosaveSettings | None = None
    run_folder: RunFolderSettings | None = None


@dataclass(frozen=True)
class Ready:
    """The training process has started and imported torch."""


@dataclass(frozen=True)
class Started:
    """The run started on ``device`` (``"cpu"``, ``"cuda"``) with matmul ``precision`` (``"fp32"``/``"bf16"``)."""

    device: str
    precision: str
    steps_per_epoch: int
    total_steps: int
    #: intra-op threads of the training process at the start, and the machine's cores
    threads: int = 0
    cores: int = 0


@dataclass(frozen=True)
class Threads:
    """The training process measured its throughput with each thread count
    (:class:`vaegui.threadtune.ThreadTuner`) and trains on with ``threads`` of ``cores``;
    ``rates``: samples/s per thread count (median of the measured blocks)."""

    threads: int
    cores: int
    rates: dict


@dataclass(frozen=True)
class Steps:
    """Metrics of consecutive training steps (nats per image)."""

    batch: StepBatch


@dataclass(frozen=True)
class Snapshot:
    """A versioned copy of the weights: ``{name: numpy array}``."""

    version: int
    weights: dict


@dataclass(frozen=True)
class Epoch:
    """An epoch ended: its train means and test figures (nats per image)."""

    end: EpochEnd


@dataclass(frozen=True)
class Done:
    """The run ended: finished, or stopped by the user."""

    done: TrainingDone


@dataclass(frozen=True)
class Failed:
    """The run ended on an error: a message for the user and the traceback (or "")."""

    message: str
    details: str = ""


@dataclass(frozen=True)
class State:
    """The resumable state of the run that ended."""

    state: TrainingState


@dataclass(frozen=True)
class Autosaved:
    """An autosave was written to ``path``."""

    path: str


@dataclass(frozen=True)
class AutosaveFailed:
    """An autosave could not be written (a full disk, say); training goes on."""

    reason: str


@dataclass(frozen=True)
class Idle:
    """The job is over, whatever happened."""


@dataclass(frozen=True)
class Exit:
    """The process is about to end."""
