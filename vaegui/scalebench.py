"""``vaegui bench --scale``: epoch time and peak memory as the training set grows (Shapes at
5,000, 20,000 and 60,000 images by default), each size trained by ``vaegui train`` in its own
process so that its peak resident memory is its own (``os.wait4``'s ``ru_maxrss``); with
``--gui``, then the window's memory and its training process's, one epoch at each size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile


def store_mb(size: int) -> float:
    """MB of ``size`` Shapes images stored as uint8 (64×64, one channel)."""
    return size * 64 * 64 / 2**20


def measure(size: int, options: list[str], epochs: int) -> dict:
    """Train ``shapes:size`` for ``epochs`` in a child process: ``{"size", "epoch_s"`` (the last
    epoch, its evaluation included), ``"samples_per_s", "peak_rss_mb", "store_mb"}``.

    Raises:
        RuntimeError: when the child fails (its last error line).
    """
    cmd = [sys.executable, "-m", "vaegui", "train", "--dataset", f"shapes:{size}", "--epochs", str(epochs),
           "--json", *options]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _pid, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS, not the running maximum
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        lines, errors = out.read().splitlines(), err.read().splitlines()
    ends = [json.loads(line) for line in lines if line.startswith("{")]
    if code or not ends:
        last = [line for line in errors if line.strip()][-1:] or [f"exit status {code}"]
        raise RuntimeError(f"shapes:{size}: {last[0]}")
    return {"size": size, "epoch_s": ends[-1]["seconds"], "samples_per_s": ends[-1]["samples_per_s"],
            "peak_rss_mb": usage.ru_maxrss / 1024, "store_mb": store_mb(size)}


def run(sizes: list[int], options: list[str], epochs: int = 2) -> int:
    """Print the scale table, sizes ascending; 1 with a message when a size fails."""
    print(f"# Shapes 64x64, uint8 store; 'vaegui train {' '.join(options)} --epochs {epochs}' per size in its own "
          "process; the last epoch's time (training and the test split's evaluation) and the process's peak RSS")
    print(f"{'images':>8}  {'uint8 store MB':>14}  {'peak RSS MB':>11}  {'epoch s':>8}  {'s per 10k':>9}  "
          f"{'samples/s':>9}")
    rows = []
    for size in sorted(sizes):
        try:
            r = measure(size, options, epochs)
        except RuntimeError as exc:
            print(f"vaegui bench: {exc}", file=sys.stderr)
            return 1
        rows.append(r)
        print(f"{size:>8,}  {r['store_mb']:>14.1f}  {r['peak_rss_mb']:>11,.0f}  {r['epoch_s']:>8.2f}  "
              f"{1e4 * r['epoch_s'] / size:>9.2f}  {r['samples_per_s']:>9,.0f}", flush=True)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"epoch time x{last['epoch_s'] / first['epoch_s']:.1f} for x{last['size'] / first['size']:.0f} images "
              f"(linear: the same s per 10k); peak RSS +{last['peak_rss_mb'] - first['peak_rss_mb']:,.0f} MB for "
              f"+{last['store_mb'] - first['store_mb']:,.0f} MB of uint8 store")
    return 0


def process_memory_mb(pid: int | str = "self") -> tuple[float, float]:
    """``(peak RSS, PSS)`` in MB of a live process, from Linux's ``/proc``: the peak resident set
    (``VmHWM``) and the proportional set size (shared pages split between the processes that map
    them, so two processes' PSS add up to what they take together).

    Raises:
        OSError: without ``/proc`` (not Linux) or when the process has ended.
    """
    def field(path: str, name: str) -> float:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1]) / 1024
        raise OSError(f"{path} has no {name}")

    return field(f"/proc/{pid}/status", "VmHWM:"), field(f"/proc/{pid}/smaps_rollup", "Pss:")


def window_child(size: int, epochs: int) -> None:
    """In a process of its own: open the window (offscreen where there is no display) on
    ``shapes:size`` with a throwaway settings file, train its default model for ``epochs`` and
    print one JSON line: both processes' peak RSS and PSS after the run, and whether the dataset
    went to the training process in shared memory."""
    from vaegui.app import configure_pyqtgraph, offscreen_default

    offscreen_default()
    configure_pyqtgraph()
    from PySide6.QtCore import QEventLoop, QSettings
    from PySide6.QtWidgets import QApplication

    from vaegui.fields import set_value
    from vaegui.mainwindow import MainWindow

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(QSettings(f"{folder}/bench.ini", QSettings.Format.IniFormat), dataset=f"shapes:{size}",
                            ask_on_close=False)
        window.show()
        app.processEvents()
        data = window.handle.dataset
        set_value(window.form.fields["epochs"], epochs)
        loop = QEventLoop()
        window.controller.running_changed.connect(lambda running: None if running else loop.quit())
        window.training.start_training()
        child = window.controller._process.pid
        loop.exec()
        window_peak, window_pss = process_memory_mb()
        child_peak, child_pss = process_memory_mb(child)
        print(json.dumps({"size": size, "window_peak_mb": window_peak, "child_peak_mb": child_peak,
                          "pss_mb": window_pss + child_pss, "shared": bool(data.train_x.is_shared()),
                          "epochs": len(window.run.history.epochs), "error": window.form.error_label.text()}),
              flush=True)
    os._exit(0)  # no teardown of live pyqtgraph widgets at exit (shared/DESIGN.md, "Known pitfalls")


def window_memory(size: int, epochs: int = 1) -> dict:
    """:func:`window_child`'s figures for ``shapes:size``.

    Raises:
        RuntimeError: when the child fails or its run did not train (its last error line).
    """
    code = f"from vaegui.scalebench import window_child; window_child({int(size)}, {int(epochs)})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    ends = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not ends or ends[-1]["error"] or ends[-1]["epochs"] != epochs:
        last = ([ends[-1]["error"]] if ends and ends[-1]["error"] else
                [line for line in done.stderr.splitlines() if line.strip()][-1:] or [f"exit status {done.returncode}"])
        raise RuntimeError(f"shapes:{size} in the window: {last[0]}")
    return ends[-1]


def run_window(sizes: list[int], epochs: int = 1) -> int:
    """Print the window's memory table (Linux only), sizes ascending; 1 with a message when a size fails."""
    if not os.path.exists("/proc/self/smaps_rollup"):
        print("vaegui bench: the window's memory is read from Linux's /proc, which this system lacks", file=sys.stderr)
        return 1
    print(f"# in the window: the default model on Shapes 64x64 for {epochs} epoch(s), offscreen where there is no "
          "display; each size in its own process. Peak RSS of the window and of its training process, and the two "
          "processes' PSS after the run (shared pages counted once)")
    print(f"{'images':>8}  {'uint8 store MB':>14}  {'window peak MB':>14}  {'training peak MB':>16}  "
          f"{'PSS both MB':>11}  dataset to the training process")
    for size in sorted(sizes):
        try:
            r = window_memory(size, epochs)
        except RuntimeError as exc:
            print(f"vaegui bench: {exc}", file=sys.stderr)
            return 1
        how = "shared memory" if r["shared"] else "a pickled copy"
        print(f"{size:>8,}  {store_mb(size):>14.1f}  {r['window_peak_mb']:>14,.0f}  "
              f"{r['child_peak_mb']:>16,.0f}  {r['pss_mb']:>11,.0f}  {how}", flush=True)
    return 0
