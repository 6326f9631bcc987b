"""``vaegui bench --ddp`` and ``vaegui bench --follow``: the figures of run folders and
distributed training.

* ``--ddp``: ``vaegui train`` in one process with 2 threads against ``vaegui train
  --nproc 2`` (2 processes, 1 thread each, gloo) on the same global batch, interleaved:
  samples/s of each (the trainer's own figure, evaluation excluded) and the test −ELBO
  after the last epoch (nats per image).
* ``--follow``: a writer process appends 100 step lines a second to a run folder's
  metrics.jsonl while the window (offscreen) follows it: the delay from a line's
  append to the redraw that first draws it (median, p95), and the window's longest
  event-loop stall (a 5 ms timer's longest gap minus 5 ms).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _train(args: list[str], threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "vaegui", "train", "--json", *args], capture_output=True, text=True,
                       env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"vaegui train {' '.join(args)} failed: {p.stderr.strip()[-500:]}")
    last = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")][-1]
    return {"samples_per_s": last["samples_per_s"], "test_neg_elbo": last["test_neg_elbo"], "wall_s": wall}


def ddp_figures(dataset: str, epochs: int, batch: int, repeats: int, extra: list[str]) -> int:
    """Print one process × 2 threads against 2 processes × 1 thread, ``repeats`` times interleaved."""
    common = ["--dataset", dataset, "--epochs", str(epochs), "--precision", "fp32", "--device", "cpu", *extra]
    print(f"# {dataset}, {epochs} epochs, global batch {batch}, fp32 on the CPU; samples/s is the trainer's own "
          "figure (evaluation excluded), test -ELBO in nats per image after the last epoch")
    rows = []
    for r in range(repeats):
        one = _train([*common, "--batch-size", str(batch)], threads=2)
        two = _train([*common, "--batch-size", str(batch // 2), "--nproc", "2"], threads=1)
        rows.append((one, two))
        print(f"repeat {r + 1}: 1 process x 2 threads {one['samples_per_s']:>8,.0f} samples/s, test -ELBO "
              f"{one['test_neg_elbo']:.2f} ({one['wall_s']:.1f} s wall) | DDP 2 processes x 1 thread "
              f"{two['samples_per_s']:>8,.0f} samples/s, test -ELBO {two['test_neg_elbo']:.2f} "
              f"({two['wall_s']:.1f} s wall)", flush=True)
    ratio = statistics.median(two["samples_per_s"] / one["samples_per_s"] for one, two in rows)
    gap = max(abs(two["test_neg_elbo"] - one["test_neg_elbo"]) for one, two in rows)
    print(f"DDP / one process: {ratio:.2f}x samples/s (median); largest test -ELBO difference {gap:.3f} nats")
    return 0


def write_lines(folder: str, rate: float, seconds: float) -> None:
    """The writer of ``--follow``: a run folder whose metrics.jsonl gets ``rate`` step lines a
    second (each with its append time ``t``) and an epoch line every 100 steps."""
    from models.config import ModelConfig, TrainConfig
    from models.runfolder import RunWriter
    from models.trainer import EpochEnd, StepBatch

    model = ModelConfig(input_shape=(1, 8, 8), hidden_dim=32, latent_dim=2)
    writer = RunWriter(folder, model, TrainConfig(epochs=10_000, batch_size=128), {"name": "digits"})
    n = int(rate * seconds)
    start = time.perf_counter()
    for step in range(1, n + 1):
        wait = start + step / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        value = 40.0 * np.exp(-step / 500.0) + 30.0
        batch = StepBatch(step // 100 + 1, [step], [value - 1.0], [1.0], [value], [value], step % 100 or 100, 100,
                          n, 5000.0)
        writer.write_line({"event": "steps", **batch.__dict__, "t": time.time()})
        if step % 100 == 0:
            writer.epoch(EpochEnd(step // 100, step, value - 1, 1.0, value, value - 1, 1.0, value, 5000.0, 1.0))
    writer.finish("finished")


def follow_figures(rate: float = 100.0, seconds: float = 10.0) -> dict:
    """Follow a writer process for ``seconds`` in an offscreen window; the delays and the stall."""
    from vaegui.app import configure_pyqtgraph, offscreen_default

    offscreen_default()
    configure_pyqtgraph()
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from vaegui.app import freeze_startup_objects
    from vaegui.bench import StallMeter
    from vaegui.mainwindow import MainWindow

    app = QApplication.instance() or QApplication([])
    tmp = tempfile.mkdtemp(prefix="vaegui-follow-")
    folder = Path(tmp) / "run"
    writer = subprocess.Popen([sys.executable, "-m", "vaegui.runbench", str(folder), str(rate), str(seconds)])
    try:
        deadline = time.time() + 60
        while not (folder / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.01)
        w = MainWindow(settings=QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat),
                       dataset="digits")
        w.resize(1280, 720)
        w.show()
        app.processEvents()
        freeze_startup_objects()
        drawn: list[tuple[float, int]] = []

        def after_redraw() -> None:  # connected after the plots' own redraw, so it runs right after it
            drawn.append((time.time(), w.plots.point_counts()["train"]))

        w.plots.timer.timeout.connect(after_redraw)
        stalls = StallMeter()
        w.runs.follow(folder)
        following = time.time()  # lines written before this were read as a backlog, not followed
        stalls.start()
        while writer.poll() is None:
            app.processEvents()
            time.sleep(0.001)
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            app.processEvents()
        stalls.stop()
        w.close()
    finally:
        writer.kill()
        writer.wait()
    written = {}
    for line in (folder / "metrics.jsonl").read_text().splitlines():
        obj = json.loads(line)
        if obj.get("event") == "steps":
            written[obj["steps"][0]] = obj["t"]
    delays, before = [], 0
    for t, count in drawn:
        delays += [t - written[step] for step in range(before + 1, count + 1)
                   if step in written and written[step] >= following]
        before = max(before, count)
    d = np.array(delays) * 1000
    g = stalls.gaps_ms(skip=5)
    return {"lines": len(written), "drawn": before, "followed": len(delays), "delay_median_ms": float(np.median(d)),
            "delay_p95_ms": float(np.percentile(d, 95)), "stall_ms": float(g.max())}


def print_follow(rate: float = 100.0, seconds: float = 10.0) -> int:
    f = follow_figures(rate, seconds)
    print(f"following a run folder written at {rate:.0f} step lines/s for {seconds:.0f} s: {f['drawn']:,} of "
          f"{f['lines']:,} lines drawn; for the {f['followed']:,} appended while followed, the delay from append to "
          f"curve drawn: median {f['delay_median_ms']:.0f} ms, "
          f"p95 {f['delay_p95_ms']:.0f} ms; longest event-loop stall {f['stall_ms']:.0f} ms")
    return 0


if __name__ == "__main__":  # the writer process of --follow
    write_lines(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))
