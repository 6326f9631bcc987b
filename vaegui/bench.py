"""The in-window part of ``vaegui bench --gui``: training throughput inside the GUI,
the event loop's longest stall, and slider-to-image latency, measured while a
real window trains (offscreen when there is no display)."""

from __future__ import annotations

import tempfile
import time

import numpy as np

from models.config import ModelConfig, TrainConfig


class StallMeter:
    """The GUI thread's stalls, as the benchmarks measure them: a QTimer ticking every
    ``interval_ms``; :meth:`gaps_ms` gives the gaps between its ticks minus the interval."""

    def __init__(self, interval_ms: int = 5):
        from PySide6.QtCore import QTimer

        self.interval_ms = interval_ms
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def gaps_ms(self, skip: int = 0) -> np.ndarray:
        """Each gap beyond the interval, ms, leaving out the first ``skip`` (start-up); [0] if none."""
        gaps = np.diff(self.ticks)[skip:] * 1000.0 - self.interval_ms
        return gaps if len(gaps) else np.zeros(1)


def gui_benchmark(dataset: str, model_cfg: ModelConfig, train_cfg: TrainConfig, headless_samples_per_s: float) -> dict:
    """Train in the window with a slider being moved every 30 ms; print and return the figures.

    * throughput: the trainer's own samples/s (steps only) inside the GUI, as a ratio
      of ``headless_samples_per_s`` measured in the same process just before;
    * stall: the longest gap between ticks of a 5 ms QTimer on the GUI thread, minus 5 ms;
    * latency: from a slider's ``valueChanged`` to the paint of the decoded image.
    """
    from vaegui.app import configure_pyqtgraph, freeze_startup_objects, offscreen_default

    offscreen_default()
    configure_pyqtgraph()
    import torch
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from vaegui.mainwindow import MainWindow

    torch.set_num_threads(1)  # as run_gui does: the GUI process only decodes
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(QSettings(f"{folder}/bench.ini", QSettings.Format.IniFormat), dataset=dataset)
        window.form.show_configs(model_cfg, train_cfg)
        window.controller.prewarm()
        freeze_startup_objects()  # as run_gui does
        window.show()
        window.tabs.setCurrentWidget(window.traversal)
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
        window.controller.running_changed.connect(lambda running: None if running else loop.quit())
        window.training.start_training()
        stalls.start()
        mover.start()
        loop.exec()
        stalls.stop()
        mover.stop()
        history = list(window.run.history.epochs)
        window.close()
        window.deleteLater()
        app.processEvents()

    stall_ms = max(0.0, float(stalls.gaps_ms().max()))
    lat = np.array(panel.latencies_ms[1:] or [float("nan")])  # the first includes the first layout
    gui_rate = history[-1].samples_per_s if history else float("nan")
    figures = {
        "gui_samples_per_s": gui_rate,
        "gui_vs_headless": gui_rate / headless_samples_per_s,
        "longest_stall_ms": stall_ms,
        "slider_latency_p50_ms": float(np.median(lat)),
        "slider_latency_p95_ms": float(np.percentile(lat, 95)),
        "slider_moves_painted": int(len(lat)),
    }
    print(f"GUI training: {gui_rate:,.0f} samples/s = {figures['gui_vs_headless']:.2f}x headless  (target >= 0.8x)")
    print(f"event loop longest stall while training: {stall_ms:.1f} ms  (target <= 50 ms)")
    print(
        f"slider-to-image latency over {len(lat)} moves: p50 {figures['slider_latency_p50_ms']:.1f} ms, "
        f"p95 {figures['slider_latency_p95_ms']:.1f} ms  (target p95 <= 16 ms)"
    )
    return figures
