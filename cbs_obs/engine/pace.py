"""How much detail the frame loop can afford for the input's motion, judged by its own pace.

The fine carrying flow keeps a styled person steadiest (instability 1.3x the input's on the again
clip, against 2.1x with the light one) and costs the frame loop 3-4 ms more a frame. On a quiet
2-core machine a person styled at 720p takes the loop 18-23 ms of its 33, and the fine flow is worth
its cost. When the machine gets busy (an encoder, a browser, the host of a virtual machine taking
its share) the loop's frames grow towards the whole interval and it starts dropping frames: there a
coarser flow is the better trade. So the loop watches its own time per frame, the median of the last
half second (a style result landing makes one frame in six or so slower: a median does not
follow it), and drops to the light flow once that passes 80% of the interval, taking the
fine one back below 60%. The gap between the two is wider than the cost of the detail itself, so a
switch never causes the switch back.
"""
from __future__ import annotations

from collections import deque
from statistics import median


class FlowPace:
    """``observe(seconds)`` after each frame -> whether the next frame can afford the fine flow."""

    def __init__(self, interval: float, *, fine: bool = True, fine_below: float = 0.6, light_above: float = 0.8,
                 window: int = 15):
        """``interval``: seconds between camera frames; the thresholds are shares of it. ``fine``: to start with.
        ``window``: frames the median is taken over (nothing is decided before it is full)."""
        self.interval, self.fine_below, self.light_above = interval, fine_below, light_above
        self.fine = fine
        self._recent: deque[float] = deque(maxlen=window)

    @property
    def busy(self) -> float | None:
        """The loop's typical seconds per frame lately (None before a full window)."""
        return median(self._recent) if len(self._recent) == self._recent.maxlen else None

    def observe(self, seconds: float) -> bool:
        self._recent.append(seconds)
        b = self.busy
        if b is None:
            return self.fine
        if self.fine and b > self.light_above * self.interval:
            self.fine = False
        elif not self.fine and b < self.fine_below * self.interval:
            self.fine = True
        return self.fine
