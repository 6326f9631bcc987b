"""The benchmarks' stall meter tells the GUI thread's own work from a wait: a busy loop on
the GUI thread and a sleep both stall the event loop, only the first as running time."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QTimer

from vaegui.bench import StallMeter


def test_a_stall_of_own_work_and_a_wait_are_told_apart(qtbot):
    meter = StallMeter(interval_ms=5)
    started = {}

    def busy():
        started["busy"] = time.perf_counter()
        while time.perf_counter() < started["busy"] + 0.08:
            pass

    def wait():
        started["wait"] = time.perf_counter()
        time.sleep(0.08)

    meter.start()
    QTimer.singleShot(100, busy)
    QTimer.singleShot(300, wait)
    qtbot.wait(500)
    meter.stop()
    gaps, running = meter.gaps_ms(), meter.running_ms()
    ticks = np.array(meter.ticks)
    own, other = (int(np.searchsorted(ticks, started[k])) - 1 for k in ("busy", "wait"))  # the gaps they fell in
    assert gaps[own] >= 70 and gaps[other] >= 70
    assert running[own] > 50  # the busy loop ran on the GUI thread
    assert running[other] < 30  # the sleep did not
