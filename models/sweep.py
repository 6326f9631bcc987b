"""Sweeps: a grid of runs (β × seed) trained one after another, each saved, scored and
tabulated, for the β-VAE trade-off between the ELBO and disentanglement (Higgins et al.
2017, fig. 6; Locatello et al. 2019 on the spread over seeds).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import shutil
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from models.checkpoint import atomic_write, save_checkpoint
from models.config import ModelConfig, TrainConfig
from models.data import ImageDataset
from models.metrics import SCORE_TITLES, MetricsStopped, epoch_scores
from models.runfolder import CONFIG_FILE, writer_for
from models.trainer import EpochEnd, StepBatch, Trainer, TrainingDone

#: the table's columns: key → title (nats per image where a unit applies)
COLUMNS = {
    "beta": "β", "seed": "seed", "epochs": "epochs", "test_neg_elbo": "test −ELBO (nats)",
    "test_recon": "test recon (nats)", "test_kl": "test KL (nats)", "active_dims": "active dims",
    **SCORE_TITLES, "seconds": "seconds", "file": "checkpoint",
}


def run_name(beta: float, seed: int) -> str:
    """The checkpoint's file name of one run: ``beta-4_seed-0.vae``."""
    return f"beta-{beta:g}_seed-{seed}.vae"


@dataclass
class RunStarted:
    """Run ``index`` (0-based) of ``total`` began."""

    index: int
    total: int
    beta: float
    seed: int


@dataclass
class RunEpoch:
    """An epoch of run ``index`` ended."""

    index: int
    end: EpochEnd


@dataclass
class RunFinished:
    """Run ``index`` ended: its row of the table (:data:`COLUMNS`)."""

    index: int
    row: dict


def run_sweep(model_config: ModelConfig, train_config: TrainConfig, data: ImageDataset, betas: list[float],
              seeds: list[int], out_dir: str | os.PathLike[str], scores: str = "fast", points: int = 5_000,
              stopped: Callable[[], bool] | None = None,
              on_trainer: Callable[[Trainer], None] | None = None) -> Iterator[RunStarted | RunEpoch | RunFinished]:
    """Train every (β, seed) of the grid one after another with ``train_config``'s other settings.

    Each run is written as a run folder ``out_dir/runs/beta-B_seed-S/`` while it trains
    (:mod:`models.runfolder`: metrics, status, the last epoch's samples; the Runs panel
    compares them), saved as ``out_dir/beta-B_seed-S.vae`` and scored at its end on the dataset's
    ground-truth factors when it has them (:func:`models.metrics.epoch_scores`, ``scores``
    ``"fast"`` or ``"all"``, ``points`` images); ``out_dir/sweep.csv`` is rewritten after each
    run, so the table holds every finished run even if the sweep is stopped.

    Args:
        betas, seeds: the grid; β is the weight of the objective's penalty (``train_config.objective``).
        stopped: checked between runs and while scoring; a run stopped by its trainer (see
            ``on_trainer``) is not saved and ends the sweep; one stopped while being scored is
            saved and tabled without scores.
        on_trainer: called with each run's trainer before it starts (to stop it from a signal).

    Raises:
        ValueError: an empty grid, a β outside the config's range, or a folder that cannot be written.
    """
    if not betas or not seeds:
        raise ValueError("a sweep needs at least one β and one seed")
    configs = [dataclasses.replace(train_config, beta=float(b), seed=int(s)) for b in betas for s in seeds]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise ValueError(f"{out} is not writable")
    rows: list[dict] = []
    for index, cfg in enumerate(configs):
        if stopped is not None and stopped():
            return
        yield RunStarted(index, len(configs), cfg.beta, cfg.seed)
        trainer = Trainer(model_config, cfg, data)
        if on_trainer is not None:
            on_trainer(trainer)
        if stopped is not None and stopped():  # asked while the trainer was being made
            return
        folder = out / "runs" / run_name(cfg.beta, cfg.seed).removesuffix(".vae")
        if (folder / CONFIG_FILE).exists():  # this sweep's own earlier run of the same (β, seed), as the .vae
            shutil.rmtree(folder)
        writer = writer_for(folder, trainer)
        try:
            for event in trainer.run():
                if isinstance(event, StepBatch):
                    writer.steps(event)
                elif isinstance(event, EpochEnd):
                    writer.epoch(event, model=trainer.model)
                    yield RunEpoch(index, event)
                elif isinstance(event, TrainingDone) and event.stopped:
                    writer.finish("stopped", "the sweep was stopped")
                    return
        except BaseException as exc:  # a non-finite loss, or the sweep's consumer went away (GeneratorExit)
            writer.finish("failed" if isinstance(exc, Exception) else "stopped", f"{type(exc).__name__}: {exc}")
            raise
        writer.finish("finished")
        path = out / run_name(cfg.beta, cfg.seed)
        save_checkpoint(path, *trainer.export_state())
        end = trainer.history[-1]
        row = {"beta": cfg.beta, "seed": cfg.seed, "epochs": end.epoch, "test_neg_elbo": end.test_neg_elbo,
               "test_recon": end.test_recon, "test_kl": end.test_kl, "active_dims": end.active_dims,
               "seconds": sum(e.seconds for e in trainer.history), "file": path.name}
        interrupted = False
        if data.test_factors is not None:
            try:
                found = epoch_scores(trainer.model.eval(), data, scores, points, stopped=stopped)
                row.update({k: found[k] for k in SCORE_TITLES if k in found})
            except MetricsStopped:  # the run is saved and tabled; its scores are left out
                interrupted = True
        rows.append(row)
        write_table(rows, out / "sweep.csv")
        yield RunFinished(index, row)
        if interrupted:
            return


def write_table(rows: list[dict], path: str | os.PathLike[str]) -> None:
    """The sweep's table as CSV (the :data:`COLUMNS` that any row has), written atomically."""
    keys = [k for k in COLUMNS if any(k in r for r in rows)]
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(keys)
    writer.writerows([r.get(k, "") for k in keys] for r in rows)
    atomic_write(path, text.getvalue().encode("utf-8"))


def read_table(path: str | Path) -> list[dict]:
    """A ``sweep.csv``'s rows with numbers as numbers (raises ``ValueError`` on a file that is not one)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path} cannot be read ({exc})") from exc
    out = []
    for r in rows:
        if "beta" not in r or "test_neg_elbo" not in r:
            raise ValueError(f"{path} is not a sweep table (no beta and test_neg_elbo columns)")
        row = {}
        for k, v in r.items():
            if v in ("", None):
                continue
            try:
                row[k] = int(v) if k in ("seed", "epochs", "active_dims") else (v if k == "file" else float(v))
            except ValueError as exc:
                raise ValueError(f"{path}: {k}={v!r} is not a number") from exc
        out.append(row)
    return out


def tradeoff(rows: list[dict], score: str = "mig") -> list[dict]:
    """One point per β for the trade-off plot: the mean and the standard deviation over seeds
    of the test −ELBO (nats per image) and of ``score``: ``{"beta", "n", "neg_elbo", "neg_elbo_sd",
    "score", "score_sd"}`` (sd 0 for a single seed; ``score`` NaN where it was not computed)."""
    out = []
    for beta in sorted({r["beta"] for r in rows}):
        group = [r for r in rows if r["beta"] == beta]
        elbo = [r["test_neg_elbo"] for r in group]
        vals = [r[score] for r in group if score in r]
        out.append({"beta": beta, "n": len(group), "neg_elbo": statistics.mean(elbo), "neg_elbo_sd": _sd(elbo),
                    "score": statistics.mean(vals) if vals else math.nan, "score_sd": _sd(vals)})
    return out


def _sd(values: list[float]) -> float:
    """The sample standard deviation; 0 for one value, NaN for none."""
    return statistics.stdev(values) if len(values) > 1 else (0.0 if values else math.nan)
