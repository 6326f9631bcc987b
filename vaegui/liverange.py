"""Auto-range for live plots that moves in steps instead of at every redraw.

pyqtgraph's auto-range fits the view to the data on every change, so while a run trains
the axes of every plot get a new range ten times a second, and each new range lays the
axis ticks and their text out again (most of a redraw's cost on the GUI thread). Here the
view keeps its range while the data stays inside it and fills enough of it, and the step
axis spans the planned steps of the run from the start.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pyqtgraph as pg

#: a new range leaves this fraction of the data's span free on each side
PADDING = 0.05
#: the range is fitted again when the data fills less than this fraction of it
MIN_FILL = 0.6


def sticky_range(data: tuple[float, float], current: tuple[float, float], padding: float = PADDING,
                 min_fill: float = MIN_FILL) -> tuple[float, float] | None:
    """The view range ``(lo, hi)`` to show data spanning ``data``, or None to keep ``current``.

    ``current`` is kept while it holds the data and the data's span is at least ``min_fill``
    of it; otherwise the new range is the data's span with ``padding`` of it on either side
    (a single value gets ±``padding`` of its magnitude, or ±1 around 0).

    Raises:
        ValueError: for a non-finite bound or ``lo > hi`` in ``data``.
    """
    lo, hi = data
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"not a data range: {data}")
    clo, chi = current
    if clo <= lo and hi <= chi and (hi - lo) >= min_fill * (chi - clo):
        return None
    span = hi - lo
    pad = padding * span if span > 0 else (padding * abs(lo) or 1.0)
    return lo - pad, hi + pad


class LiveViewBox(pg.ViewBox):
    """A ViewBox whose auto-range follows :func:`sticky_range` and, on the x axis, spans
    ``planned_x()`` (the run's planned last step; 0 when unknown) from the first redraw.

    Everything else is pyqtgraph's: a pan or zoom by the user turns auto-range off, the
    "A" button and the menu turn it on again, and the menu's "visible data only",
    "auto pan" and fractional auto-range fall back to pyqtgraph's own fitting.
    """

    def __init__(self, planned_x: Callable[[], int] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.planned_x = planned_x or (lambda: 0)

    def updateAutoRange(self) -> None:  # noqa: N802 (pyqtgraph's name)
        auto = self.state["autoRange"]  # False, or the fraction of the data to fit (True or 1.0: all of it)
        if (any(self.state["autoVisibleOnly"]) or any(self.state["autoPan"]) or self.state["logMode"][0]
                or any(a is not False and a != 1 for a in auto)):
            super().updateAutoRange()
            return
        if self._updatingRange:
            return
        self._updatingRange = True
        try:
            if not any(auto):
                return
            bounds = self.childrenBounds()
            bounds[0] = self._steps_bounds()  # all the steps: a curve clipped to a zoomed view holds only some
            current = self.viewRange()
            args = {}
            for axis, key in ((0, "xRange"), (1, "yRange")):
                if not auto[axis] or bounds[axis] is None:
                    continue
                lo, hi = (float(v) for v in bounds[axis])
                if not (math.isfinite(lo) and math.isfinite(hi)):
                    continue
                if axis == 0:
                    hi = max(hi, float(self.planned_x()))
                new = sticky_range((lo, hi), tuple(current[axis]))
                if new is not None:
                    args[key] = new
            if args:
                self.setRange(padding=0.0, disableAutoRange=False, **args)
        finally:
            self._autoRangeNeedsUpdate = False
            self._updatingRange = False

    def _steps_bounds(self) -> list[float] | None:
        """The x extent of every visible curve's whole data (None when there is none): its first
        and last step, the x values being in increasing order (as clip-to-view assumes too)."""
        lo, hi = math.inf, -math.inf
        for item in self.addedItems:
            x = getattr(item, "xData", None)
            if x is None or not len(x) or not item.isVisible():
                continue
            first, last = float(x[0]), float(x[-1])
            if math.isfinite(first) and math.isfinite(last):
                lo, hi = min(lo, first), max(hi, last)
        return [lo, hi] if lo <= hi else None
