"""How many threads the window's training process uses, chosen by measuring both.

The training process leaves one core to the window (:func:`vaegui.trainproc.child_threads`):
on 2 cores, any work of the window preempts one of two OpenMP threads and the other waits at
its barriers. Whether the last core is still worth taking depends on the machine and the
model: on a 2-core Xeon with AMX-BF16 (2026-12-05, `vaegui bench --gui`, a slider moved every
30 ms) the default bf16 MLP trained at 35,250–35,430 samples/s with 1 thread in the window
against 31,650–32,020 with 2, while the same model in fp32 with AVX2 kernels (the path of a CPU
without AVX-512) ran at 20,090–20,590 with 1 thread against 24,050–24,480 with 2, the window's
longest stall 27–31 ms and slider p95 7.9–12.6 ms. So the process measures: it alternates
short blocks of steps with each thread count, keeps the faster (the one that leaves a core
only when that is not at least :attr:`ThreadTuner.margin` slower), holds it for a while and
measures again, since what the window does changes (a slider dragged, the window minimised).

No Qt here: it runs in the training process.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


class ThreadTuner:
    """Picks between ``fewer`` and ``more`` intra-op threads by the measured throughput.

    Call :meth:`observe` after each report of training steps with the number of samples
    trained since the last call; it returns a thread count to set before the next step, or
    None to keep the current one. Only training time counts: the interval before a call that
    follows :meth:`interrupt` (an evaluation) or comes more than ``gap_s`` after the last one
    (a pause) is left out, so a block can span epochs.

    Args:
        fewer: the thread count that leaves a core to the window (running at the start).
        more: every core.
        block_s: seconds of training per measured block.
        settle_s: seconds of training after each switch left out of its block: the window's work
            put off while the other count ran (it got less CPU) is done then, and would be
            charged to the wrong count (with 0.5 s blocks and no settling, every core measured
            12–17 % faster for the bf16 MLP in the window, then trained no faster).
        rounds: blocks per thread count in one measurement (alternating).
        hold_s: seconds of training with the chosen count before the next measurement.
        warmup_s: seconds of training before the first measurement (allocator, caches).
        margin: ``more`` is chosen only if it trains at least this many times as fast.
        clock: seconds, monotonic (for the tests).

    Raises:
        ValueError: if ``fewer`` is not below ``more`` or a duration is not positive.
    """

    def __init__(self, fewer: int, more: int, block_s: float = 1.5, rounds: int = 2, hold_s: float = 30.0,
                 warmup_s: float = 1.0, margin: float = 1.05, gap_s: float = 1.0, settle_s: float = 0.25,
                 clock: Callable[[], float] = time.perf_counter):
        if not 1 <= fewer < more:
            raise ValueError(f"thread counts must satisfy 1 <= fewer < more, got {fewer} and {more}")
        if min(block_s, hold_s, gap_s) <= 0 or min(warmup_s, settle_s) < 0 or rounds < 1:
            raise ValueError("block, hold and gap durations must be positive and rounds at least 1")
        self.fewer, self.more = fewer, more
        self.block_s, self.rounds, self.hold_s, self.warmup_s = block_s, rounds, hold_s, warmup_s
        self.margin, self.gap_s, self.settle_s, self.clock = margin, gap_s, settle_s, clock
        #: the count in use and the count chosen by the last measurement
        self.current = self.chosen = fewer
        #: samples/s per thread count of the last complete measurement (median of its blocks)
        self.rates: dict[int, float] = {}
        #: complete measurements so far
        self.measurements = 0
        self._schedule: list[int] = []
        self._measured: dict[int, list[float]] = {}
        self._wait_s = warmup_s  # training seconds before the next measurement
        self._block_s = 0.0  # training seconds and samples of the block being measured
        self._block_samples = 0
        self._last: float | None = None

    def interrupt(self) -> None:
        """The time until the next :meth:`observe` is not training (an epoch's evaluation, a pause):
        it and the samples reported then are left out; the block goes on after it."""
        self._last = None

    def observe(self, samples: int) -> int | None:
        """Account ``samples`` trained since the last call; the thread count to switch to, or None."""
        now = self.clock()
        last, self._last = self._last, now
        if last is None or now - last > self.gap_s:  # not only training in between: not counted
            return None
        elapsed = now - last
        if not self._schedule:  # holding the chosen count
            self._wait_s -= elapsed
            if self._wait_s > 0:
                return None
            self._schedule = [self.more, self.fewer] * self.rounds
            self._measured = {self.fewer: [], self.more: []}
            self._block_s, self._block_samples = -self.settle_s, 0
            return self._switch(self._schedule[0])
        self._block_s += elapsed
        if self._block_s <= 0:  # settling after the switch
            return None
        self._block_samples += samples if self._block_s >= elapsed else round(samples * self._block_s / elapsed)
        if self._block_s < self.block_s:
            return None
        self._measured[self._schedule.pop(0)].append(self._block_samples / self._block_s)
        self._block_s, self._block_samples = -self.settle_s, 0
        if self._schedule:
            return self._switch(self._schedule[0])
        self.rates = {n: statistics.median(r) for n, r in self._measured.items()}
        self.measurements += 1
        self.chosen = self.more if self.rates[self.more] >= self.margin * self.rates[self.fewer] else self.fewer
        self._wait_s = self.hold_s
        return self._switch(self.chosen)

    def _switch(self, threads: int) -> int | None:
        if threads == self.current:
            return None
        self.current = threads
        return threads
