"""The in-window part of ``vaegui bench --gui``: training throughput inside the GUI,
the event loop's longest stall, and slider-to-image latency, measured while a
real window trains (offscreen when there is no display)."""

from __future__ import annotations

import gc
import tempfile
import time

import numpy as np

from models.config import ModelConfig, TrainConfig


class StallMeter:
    """The GUI thread's stalls, as the benchmarks measure them: a QTimer ticking every
    ``interval_ms``; :meth:`gaps_ms` gives the gaps between its ticks minus the interval,
    :meth:`running_ms` how much of each gap the GUI thread was running (its CPU time)."""

    def __init__(self, interval_ms: int = 5):
        from PySide6.QtCore import QTimer

        self.interval_ms = interval_ms
        self.ticks: list[float] = []
        self.cpu: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())
        self.cpu.append(time.thread_time())

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def gaps_ms(self, skip: int = 0) -> np.ndarray:
        """Each gap beyond the interval, ms, leaving out the first ``skip`` (start-up); [0] if none."""
        gaps = np.diff(self.ticks)[skip:] * 1000.0 - self.interval_ms
        return gaps if len(gaps) else np.zeros(1)

    def running_ms(self, skip: int = 0) -> np.ndarray:
        """The GUI thread's CPU time in each gap of :meth:`gaps_ms`, ms: a long gap the thread
        spent mostly not running was a wait (for a core, the GIL or I/O), not its own work."""
        cpu = np.diff(self.cpu)[skip:] * 1000.0
        return cpu if len(cpu) else np.zeros(1)


#: what the window does while it trains in :func:`gui_benchmark`
WINDOW_STATES = {
    "interacting": "shown, a traversal slider moved every 30 ms",
    "idle": "shown on the traversal tab, no input",
    "minimised": "minimised",
}


def epoch_rates(history: list, train_size: int) -> np.ndarray:
    """Each epoch's own samples/s (steps only) from a run's :class:`~models.events.EpochEnd` list, whose
    ``samples_per_s`` is the mean since the run started: epoch k ended ``k · train_size / rate_k``
    seconds of steps into the run."""
    seconds = np.array([e.epoch * train_size / e.samples_per_s for e in history])
    return train_size / np.diff(seconds, prepend=0.0)


def gui_benchmark(dataset: str, model_cfg: ModelConfig, train_cfg: TrainConfig, headless_samples_per_s: float,
                  state: str = "interacting") -> dict:
    """Train in the window, ``state`` one of :data:`WINDOW_STATES` (by default a slider moved every
    30 ms); print and return the figures.

    * throughput: the trainer's own samples/s (steps only) inside the GUI, the median epoch of the
      run's second half, as a ratio of ``headless_samples_per_s`` measured just before;
    * stall: the longest gap between ticks of a 5 ms QTimer on the GUI thread, minus 5 ms;
    * latency: from a slider's ``valueChanged`` to the paint of the decoded image.

    Raises:
        ValueError: for a ``state`` not in :data:`WINDOW_STATES`.
    """
    if state not in WINDOW_STATES:
        raise ValueError(f"unknown window state {state!r}: one of {', '.join(WINDOW_STATES)}")
    from vaegui.app import collect_garbage_on_gui_thread, configure_pyqtgraph, freeze_startup_objects, offscreen_default

    offscreen_default()
    configure_pyqtgraph()
    import torch
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from vaegui.mainwindow import MainWindow

    torch.set_num_threads(1)  # as run_gui does: the GUI process only decodes
    app = QApplication.instance() or QApplication([])
    collector = collect_garbage_on_gui_thread()  # as run_gui does
    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(QSettings(f"{folder}/bench.ini", QSettings.Format.IniFormat), dataset=dataset)
        window.form.show_configs(model_cfg, train_cfg)
        window.controller.prewarm()
        freeze_startup_objects()  # as run_gui does
        window.tabs.setCurrentWidget(window.traversal)
        window.showMinimized() if state == "minimised" else window.show()
        app.processEvents()

        stalls = StallMeter()
        rng = np.random.default_rng(0)
        panel = window.traversal

        def move_slider() -> None:
            if panel.sliders:
                k = int(rng.integers(len(panel.sliders)))
                panel.sliders[k].setValue(int(rng.integers(-300, 301)))

        mover = QTimer()
        mover.setInterval(30)
        mover.timeout.connect(move_slider)
        loop = QEventLoop()
        # (threads, samples/s per count measured): the start's, then one per measurement
        thread_choices: list[tuple[int, dict[int, float]]] = []
        window.controller.threads_changed.connect(
            lambda threads, cores: thread_choices.append((threads, dict(window.controller.thread_rates))))
        window.controller.running_changed.connect(lambda running: None if running else loop.quit())
        window.training.start_training()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        stalls.start()
        if state == "interacting":
            mover.start()
        loop.exec()
        gui_cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        stalls.stop()
        mover.stop()
        history = list(window.run.history.epochs)
        train_size = len(window.handle.dataset.train_x)
        where = (window.controller.device, window.controller.precision)
        cores = window.controller.cores
        error = window.form.error_label.text()
        window.close()
        window.deleteLater()
        app.processEvents()
    collector.timer.stop()
    gc.collect()  # the window's cycles, here on the GUI thread
    gc.enable()

    gaps, running = stalls.gaps_ms(), stalls.running_ms()
    worst = int(np.argmax(gaps))
    stall_ms = max(0.0, float(gaps[worst]))
    # the longest stretch of the GUI thread's own work: the gap in which it ran longest
    busy_ms = float(running.max()) if len(running) == len(gaps) else float("nan")
    lat = np.array(panel.latencies_ms[1:] or [float("nan")])  # the first includes the first layout
    # the median epoch of the run's second half: the first half holds the training process's measurement
    # of its threads
    per_epoch = epoch_rates(history, train_size)
    gui_rate = float(np.median(per_epoch[len(per_epoch) // 2:])) if len(per_epoch) else float("nan")
    figures = {
        "gui_samples_per_s": gui_rate,
        "gui_vs_headless": gui_rate / headless_samples_per_s,
        "gui_process_cpu": gui_cpu,
        "longest_stall_ms": stall_ms,
        "longest_stall_running_ms": float(running[worst]) if len(running) == len(gaps) else float("nan"),
        "longest_busy_ms": busy_ms,
        "slider_latency_p50_ms": float(np.median(lat)),
        "slider_latency_p95_ms": float(np.percentile(lat, 95)),
        "slider_moves_painted": int(len(lat)),
        "device": where[0],
        "precision": where[1],
        "thread_choices": thread_choices,
        "error": error,
    }
    if error:
        print(f"the window's run ended with: {error}")
    print(f"the window's training process ran on {where[0]} in {where[1]}, {len(history)} epochs, the window "
          f"{WINDOW_STATES[state]}")
    if len(thread_choices) > 1:
        print(f"the training process's threads (of {cores}): {thread_choices[0][0]} at the start, then "
              + "; ".join(f"{chosen} ({', '.join(f'{n}: {r:,.0f}' for n, r in sorted(rates.items()))} samples/s)"
                          for chosen, rates in thread_choices[1:]))
    print(f"GUI training: {gui_rate:,.0f} samples/s = {figures['gui_vs_headless']:.2f}x headless  (target >= 0.8x); "
          f"the window's process used {100 * gui_cpu:.0f} % of one core")
    print(f"event loop longest stall while training: {stall_ms:.1f} ms  (target <= 50 ms); the GUI thread ran "
          f"{figures['longest_stall_running_ms']:.1f} ms of it (the rest it waited: for a core, the GIL or I/O)")
    print(f"the GUI thread's longest run of its own work between two ticks: {busy_ms:.1f} ms")
    if state == "interacting":
        print(f"slider-to-image latency over {len(lat)} moves: p50 {figures['slider_latency_p50_ms']:.1f} ms, "
              f"p95 {figures['slider_latency_p95_ms']:.1f} ms  (target p95 <= 16 ms)")
    return figures
