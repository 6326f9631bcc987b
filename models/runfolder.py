"""Run folders: the one on-disk form of a training run, written as it trains and
readable (followed) by another process while it is written.

A run folder holds::

    config.json      model and training configs, the dataset (written once at the start)
    metrics.jsonl    one JSON object per line, appended and flushed as it happens:
                     {"event": "steps", ...StepBatch} and {"event": "epoch", ...EpochEnd}
                     (the epoch lines carry the keys of ``vaegui train --json``), and
                     {"event": "resume", "step": S} when a run continues from step S
    status.json      running / finished / stopped / failed (with the message), pid,
                     host, started, last heartbeat, epoch and step (rewritten atomically)
    checkpoints/     latest.vae, best.vae (lowest test −ELBO), epoch-EEEE.vae every N
                     epochs (atomic, as every checkpoint: models.checkpoint)
    samples/         epoch-EEEE.png: decoded prior samples at fixed z at chosen epochs
    tensorboard/     event files, with ``tensorboard=True`` (models.tblog)

A crash or kill leaves a folder that opens: :class:`MetricsTail` reads complete
lines only, every checkpoint was written atomically, and :func:`read_status` says
"stopped unexpectedly" when the writer's process is gone (same host) or its
heartbeat is older than :data:`STALE_S` seconds.

This module imports neither Qt nor the app: ``vaegui train --run-dir``, the window's
training process and a distributed run's rank 0 write with :class:`RunWriter`; the
window's follower and the Runs panel read with :class:`MetricsTail`,
:func:`read_status` and :func:`scan_runs`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from models.checkpoint import SUFFIX, CheckpointError, atomic_write, save_checkpoint
from models.config import ModelConfig, TrainConfig
from models.trainer import EpochEnd, StepBatch

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
#: seconds between two heartbeats of a running writer
HEARTBEAT_S = 2.0
#: a running status whose heartbeat is older than this is "stopped unexpectedly"
STALE_S = 30.0
#: the states of a run folder
STATES = ("running", "finished", "stopped", "failed", "stopped unexpectedly")


class RunFolderError(ValueError):
    """A folder is not a run folder, or cannot be written; the message says why, for a person."""


def steps_line(batch: StepBatch) -> dict:
    """The metrics.jsonl line of a :class:`StepBatch` (nats per image)."""
    return {"event": "steps", **dataclasses.asdict(batch)}


def epoch_line(end: EpochEnd) -> dict:
    """The metrics.jsonl line of an :class:`EpochEnd`: ``vaegui train --json``'s keys plus ``event``."""
    return {"event": "epoch", **end.as_dict()}


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(obj: dict) -> str:
    """One JSON line; NaN and infinities are written as null (JSON has neither)."""
    try:  # the usual case, without walking the values in Python
        return json.dumps(obj, default=_json_default, separators=(",", ":"), allow_nan=False)
    except ValueError:
        pass

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(obj), default=_json_default, separators=(",", ":"))


class RunWriter:
    """Writes one run folder as a trainer's events arrive.

    Args:
        folder: the run folder (created; a folder holding another run's files is
            continued only with ``resume``).
        model_config, train_config: what is trained.
        dataset: ``{"name", "title", "image_shape", "n_train", "n_test"}``.
        checkpoint_every: also keep ``epoch-EEEE.vae`` every N epochs (0: never).
        sample_epochs: epochs whose samples grid is written (besides every
            ``samples_every``-th, and the last).
        samples_every: a samples grid every N epochs (0: only ``sample_epochs`` and the last).
        resume: continue a folder that already holds a run (metrics are appended).
        extra: more keys for config.json (``{"distributed": {...}}``, say).
        tensorboard: also write TensorBoard events into ``tensorboard/``
            (:class:`models.tblog.TensorBoardLog`); ``embed``: ``(x, labels, class_names)``
            of the test images whose posterior means go to its Projector.

    Raises:
        RunFolderError: when the folder cannot be created or written, or holds
            another run and ``resume`` is False.
        models.tblog.MissingTensorBoard: ``tensorboard`` without the package.
    """

    def __init__(self, folder: str | os.PathLike[str], model_config: ModelConfig, train_config: TrainConfig,
                 dataset: dict, checkpoint_every: int = 0, sample_epochs=(), samples_every: int = 0,
                 resume: bool = False, extra: dict | None = None, tensorboard: bool = False, embed=None):
        self.folder = Path(folder)
        self.tb = None
        if tensorboard:
            from models.tblog import TENSORBOARD, TensorBoardLog

            x, labels, names = embed if embed is not None else (None, None, ())
            self.tb = TensorBoardLog(self.folder / TENSORBOARD, x, labels, names)
        self.model_config, self.train_config = model_config, train_config
        self.checkpoint_every, self.samples_every = int(checkpoint_every), int(samples_every)
        self.sample_epochs = {int(e) for e in sample_epochs}
        self.best = math.inf
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / CHECKPOINTS).mkdir(exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"could not create the run folder {self.folder}: {exc.strerror or exc}") from exc
        if (self.folder / METRICS_FILE).exists() and not resume:
            raise RunFolderError(f"{self.folder} already holds a run: choose another folder, or resume it")
        if resume:
            self.best = min((e.test_neg_elbo for e in read_metrics(self.folder)[1]), default=math.inf)
        self._status = {"state": "running", "message": "", "pid": os.getpid(), "host": socket.gethostname(),
                        "started": time.time(), "heartbeat": time.time(), "epoch": 0, "step": 0,
                        "epochs": train_config.epochs}
        config = {"model_config": model_config.to_dict(), "train_config": train_config.to_dict(),
                  "dataset": dataset, **(extra or {})}
        try:
            atomic_write(self.folder / CONFIG_FILE, (json.dumps(config, indent=1) + "\n").encode())
            self._metrics = open(self.folder / METRICS_FILE, "a", encoding="utf-8")
        except (OSError, CheckpointError) as exc:
            raise RunFolderError(f"could not write the run folder {self.folder}: {exc}") from exc
        self._lock = threading.Lock()
        self._write_status()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="run-heartbeat", daemon=True)
        self._beat.start()

    # -- status ------------------------------------------------------------------------------------
    def _write_status(self) -> None:
        with self._lock:
            self._status["heartbeat"] = time.time()
            data = (json.dumps(self._status, indent=1) + "\n").encode()
        try:
            atomic_write(self.folder / STATUS_FILE, data)
        except CheckpointError:  # a full disk must not stop training; the next beat tries again
            pass

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self._write_status()

    # -- events ------------------------------------------------------------------------------------
    def write_line(self, obj: dict) -> None:
        """Append one line to metrics.jsonl and flush it to the operating system."""
        self._metrics.write(dumps(obj) + "\n")
        self._metrics.flush()

    def resumed(self, step: int) -> None:
        """The run continues from ``step``: later metrics in the file are replaced by what follows."""
        self.write_line({"event": "resume", "step": int(step)})

    def steps(self, batch: StepBatch) -> None:
        self.write_line(steps_line(batch))
        with self._lock:
            self._status["step"] = batch.steps[-1] if batch.steps else self._status["step"]
        if self.tb is not None:
            self.tb.steps(batch)

    def epoch(self, end: EpochEnd, export_state=None, model=None) -> str:
        """An epoch ended: its line, then the checkpoints (``export_state()`` gives the
        trainer's ``(tensors, info)``) and the samples grid (decoded by ``model``).

        Returns:
            "" or, when a checkpoint or the grid could not be written (a full disk), why:
            the run goes on and the caller says so.
        """
        import torch

        self.write_line(epoch_line(end))
        with self._lock:
            self._status.update(epoch=end.epoch, step=end.step)
        if self.tb is not None:
            self.tb.epoch(end)
        try:
            with torch.no_grad():
                if export_state is not None:
                    self.save_checkpoints(end, *export_state())
                if model is not None and self.wants_samples(end.epoch):
                    self.save_samples(model, end.epoch, end.step)
        except CheckpointError as exc:
            return str(exc)
        return ""

    def save_checkpoints(self, end: EpochEnd, tensors, info) -> None:
        ckpt = self.folder / CHECKPOINTS
        save_checkpoint(ckpt / f"latest{SUFFIX}", tensors, info)
        if end.test_neg_elbo < self.best:
            self.best = end.test_neg_elbo
            save_checkpoint(ckpt / f"best{SUFFIX}", tensors, info)
        if self.checkpoint_every and end.epoch % self.checkpoint_every == 0:
            save_checkpoint(ckpt / f"epoch-{end.epoch:04d}{SUFFIX}", tensors, info)

    def wants_samples(self, epoch: int) -> bool:
        return (epoch in self.sample_epochs or epoch == self.train_config.epochs
                or bool(self.samples_every and epoch % self.samples_every == 0))

    def save_samples(self, model, epoch: int, step: int = 0) -> Path:
        """Write ``samples/epoch-EEEE.png``: 8 × 8 prior samples at fixed z (seed 0);
        with TensorBoard, the same grid and the test images' posterior means too."""
        from models.latent import png_bytes, samples_grid

        (self.folder / SAMPLES).mkdir(exist_ok=True)
        path = self.folder / SAMPLES / f"epoch-{epoch:04d}.png"
        grid = samples_grid(model)
        atomic_write(path, png_bytes(grid))
        if self.tb is not None:
            self.tb.images(grid, step)
            self.tb.embedding(model, step)
            self.tb.flush()
        return path

    def finish(self, state: str, message: str = "", export_state=None) -> None:
        """The run ended: ``state`` one of finished / stopped / failed, ``message`` why. A
        stopped run's state (``export_state()``) goes to ``checkpoints/latest.vae``, so the
        folder resumes where it stopped, not at its last epoch end; a checkpoint that
        cannot be written (a full disk) keeps the previous one."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        if state == "stopped" and export_state is not None:
            try:
                save_checkpoint(self.folder / CHECKPOINTS / f"latest{SUFFIX}", *export_state())
            except CheckpointError as exc:
                message = f"{message}; the stopped state was not saved: {exc}"
        self._stop.set()
        self._beat.join(timeout=5)
        with self._lock:
            self._status.update(state=state, message=message, ended=time.time())
        self._write_status()
        if self.tb is not None:
            self.tb.close()
        try:
            self._metrics.close()
        except OSError:
            pass


# -- reading -------------------------------------------------------------------------------------------
class MetricsTail:
    """Reads the lines appended to a metrics.jsonl since the last call, without
    re-reading the file: a partial last line (a writer mid-write, or killed) waits for
    its end; a line that is not JSON is skipped and counted in ``bad_lines``."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.offset = 0
        self._partial = b""
        self.bad_lines = 0

    def read(self) -> list[dict]:
        """The complete new lines, parsed; [] when nothing new (or no file yet)."""
        try:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self.offset:  # the file was replaced: start again
                    self.offset, self._partial = 0, b""
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                self.bad_lines += 1
                continue
            if isinstance(obj, dict):
                out.append(obj)
            else:
                self.bad_lines += 1
        return out


def _none_to_nan(d: dict, keys) -> dict:
    return {k: (math.nan if d.get(k) is None and k in keys else v) for k, v in d.items()}


_EPOCH_FIELDS = {f.name for f in dataclasses.fields(EpochEnd)}
_STEP_FIELDS = {f.name for f in dataclasses.fields(StepBatch)}
_FLOAT_EPOCH = ("train_recon", "train_kl", "train_neg_elbo", "test_recon", "test_kl", "test_neg_elbo")


def parse_epoch(line: dict) -> EpochEnd:
    """An :class:`EpochEnd` from its metrics.jsonl line (nulls back to NaN)."""
    d = _none_to_nan({k: v for k, v in line.items() if k in _EPOCH_FIELDS}, _FLOAT_EPOCH)
    return EpochEnd(**d)


def parse_steps(line: dict) -> StepBatch:
    """A :class:`StepBatch` from its metrics.jsonl line (nulls back to NaN)."""
    d = {k: line[k] for k in _STEP_FIELDS if k in line}
    for key in ("recon", "kl", "neg_elbo", "loss"):
        values = d.get(key, [])
        if None in values:
            d[key] = [math.nan if v is None else v for v in values]
    return StepBatch(**d)


def apply_lines(lines: list[dict], steps: list[StepBatch] | None, epochs: list[EpochEnd]) -> None:
    """Fold metrics.jsonl lines into ``steps`` (None: leave the steps out) and ``epochs`` (a
    resume drops what came after its step)."""
    for line in lines:
        kind = line.get("event")
        try:
            if kind == "steps":
                if steps is not None:
                    steps.append(parse_steps(line))
            elif kind == "epoch":
                epochs.append(parse_epoch(line))
            elif kind == "resume":
                at = int(line["step"])
                if steps is not None:
                    steps[:] = [b for b in steps if b.steps and b.steps[-1] <= at]
                epochs[:] = [e for e in epochs if e.step <= at]
        except (TypeError, ValueError, KeyError):
            continue


def read_metrics(folder: str | os.PathLike[str], with_steps: bool = True) -> tuple[list[StepBatch], list[EpochEnd]]:
    """Every complete step (unless ``with_steps`` is False) and epoch line of a run folder."""
    steps: list[StepBatch] | None = [] if with_steps else None
    epochs: list[EpochEnd] = []
    apply_lines(MetricsTail(Path(folder) / METRICS_FILE).read(), steps, epochs)
    return steps or [], epochs


def read_config(folder: str | os.PathLike[str]) -> tuple[ModelConfig, TrainConfig, dict]:
    """The configs and the dataset description of a run folder.

    Raises:
        RunFolderError: no config.json, or one that is not a run's.
    """
    path = Path(folder) / CONFIG_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return (ModelConfig.from_dict(doc["model_config"]), TrainConfig.from_dict(doc["train_config"]),
                dict(doc.get("dataset") or {}))
    except FileNotFoundError as exc:
        raise RunFolderError(f"{folder} is not a run folder: it has no {CONFIG_FILE}") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunFolderError(f"{path} cannot be read: {exc}") from exc


def read_status(folder: str | os.PathLike[str], now: float | None = None) -> dict:
    """The run's status.json, with ``state`` "stopped unexpectedly" when it says running
    but its writer is gone: a dead pid on this host, or a heartbeat older than
    :data:`STALE_S` seconds. A missing or unreadable file reads as that too when a
    config exists (the writer died before its first status)."""
    now = time.time() if now is None else now
    try:
        status = json.loads((Path(folder) / STATUS_FILE).read_text(encoding="utf-8"))
        if not isinstance(status, dict):
            raise ValueError("not an object")
    except (OSError, ValueError):
        return {"state": "stopped unexpectedly", "message": "the run folder has no readable status.json"}
    if status.get("state") == "running":
        same_host = status.get("host") == socket.gethostname()
        pid = status.get("pid")
        gone = same_host and isinstance(pid, int) and not psutil.pid_exists(pid)
        stale = now - float(status.get("heartbeat") or 0) > STALE_S
        if gone or stale:
            status = dict(status, state="stopped unexpectedly",
                          message="its process is gone" if gone else
                          f"no heartbeat for {now - float(status.get('heartbeat') or 0):.0f} s")
    return status


def checkpoints(folder: str | os.PathLike[str]) -> list[Path]:
    """The run's checkpoint files, newest first (by modification time)."""
    ckpt = Path(folder) / CHECKPOINTS
    if not ckpt.is_dir():
        return []
    files = [p for p in ckpt.glob(f"*{SUFFIX}") if not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name == f"latest{SUFFIX}"), reverse=True)


def newest_checkpoint(folder: str | os.PathLike[str]):
    """The newest checkpoint of a run folder that reads, as a
    :class:`~models.checkpoint.Checkpoint`, or None; damaged files are passed over."""
    from models.checkpoint import read_checkpoint

    for path in checkpoints(folder):
        try:
            return read_checkpoint(path)
        except CheckpointError:
            continue
    return None


@dataclass
class RunSummary:
    """One run folder in a list of runs: what the Runs panel's table shows."""

    folder: Path
    name: str
    state: str
    message: str
    epochs_done: int
    epochs: int
    best_test_neg_elbo: float
    final_test_neg_elbo: float
    settings: dict = field(default_factory=dict)
    model_config: ModelConfig | None = None
    train_config: TrainConfig | None = None


#: the settings a run's row shows (config field names)
KEY_SETTINGS = ("model", "latent_dim", "likelihood", "objective", "beta", "lr", "batch_size", "seed")


def summarize(folder: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> RunSummary:
    """A :class:`RunSummary` of one run folder.

    Raises:
        RunFolderError: when it is not a run folder.
    """
    folder = Path(folder)
    model, train, _ = read_config(folder)
    _, epochs = read_metrics(folder, with_steps=False)
    status = read_status(folder)
    tests = [e.test_neg_elbo for e in epochs if math.isfinite(e.test_neg_elbo)]
    settings = {**{k: getattr(model, k) for k in KEY_SETTINGS if hasattr(model, k)},
                **{k: getattr(train, k) for k in KEY_SETTINGS if hasattr(train, k)}}
    if model.discrete:  # its latent size is the codebook's
        settings["latent_dim"] = f"K {model.codebook_size} × D {model.code_dim}"
    elif model.hierarchical:
        settings["latent_dim"] = f"{model.layer1_dim} + {model.latent_dim}"
    name = str(folder.relative_to(root)) if root is not None and folder != Path(root) else folder.name
    return RunSummary(folder, name, str(status.get("state", "")), str(status.get("message", "")),
                      epochs[-1].epoch if epochs else 0, train.epochs, min(tests, default=math.nan),
                      tests[-1] if tests else math.nan, settings, model, train)


def find_runs(root: str | os.PathLike[str], max_depth: int = 4) -> list[Path]:
    """Every run folder (a folder with config.json and metrics.jsonl) under ``root``,
    ``root`` itself included, at most ``max_depth`` levels down."""
    root = Path(root)
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        if (folder / CONFIG_FILE).is_file() and (folder / METRICS_FILE).exists():
            found.append(folder)
            return
        if depth >= max_depth:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            walk(child, depth + 1)

    walk(root, 0)
    return found


def scan_runs(root: str | os.PathLike[str], max_depth: int = 4) -> list[RunSummary]:
    """:func:`summarize` of every run folder under ``root`` (:func:`find_runs`), sorted by
    name; unreadable ones are left out."""
    found = []
    for folder in find_runs(root, max_depth):
        try:
            found.append(summarize(folder, root))
        except RunFolderError:
            pass
    return sorted(found, key=lambda r: r.name)


def writer_for(folder: str | os.PathLike[str], trainer, *, resume: bool = False, checkpoint_every: int = 0,
               samples_every: int = 0, sample_epochs=(), tensorboard: bool = False, embed_images: int = 500,
               extra: dict | None = None) -> RunWriter:
    """A :class:`RunWriter` for a :class:`models.trainer.Trainer`'s run (its configs and
    dataset; with ``tensorboard``, the first ``embed_images`` test images for the Projector).

    Raises:
        RunFolderError, models.tblog.MissingTensorBoard: as :class:`RunWriter`.
    """
    data = trainer.dataset
    dataset = {"name": data.name, "title": data.title, "image_shape": list(data.image_shape),
               "n_train": len(data.train_x), "n_test": len(data.test_x)}
    embed = (data.test_x[:embed_images], data.test_y[:embed_images], data.class_names) if tensorboard else None
    writer = RunWriter(folder, trainer.model_config, trainer.config, dataset, checkpoint_every=checkpoint_every,
                       sample_epochs=sample_epochs, samples_every=samples_every, resume=resume, extra=extra,
                       tensorboard=tensorboard, embed=embed)
    if resume:
        writer.resumed(trainer.step)
    return writer


def resume_path(path: str | os.PathLike[str]) -> Path:
    """The checkpoint to resume for ``path``: the file itself, or a run folder's newest
    readable checkpoint.

    Raises:
        RunFolderError: a run folder without a checkpoint.
    """
    path = Path(path)
    if not path.is_dir():
        return path
    from models.checkpoint import read_checkpoint

    for candidate in checkpoints(path):
        try:
            read_checkpoint(candidate)
        except CheckpointError:
            continue
        return candidate
    raise RunFolderError(f"the run folder {path} has no readable checkpoint to resume yet")
