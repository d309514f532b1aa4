"""How much detail the frame loop can afford for the input's motion, judged by its own pace.

The fine carrying flow keeps a styled person steadiest, but it costs about 3.5 ms more a frame than
the light one. On a 2-core machine a person styled at 720p takes the frame loop 16-17 ms of its 33
when the machine is otherwise quiet, and 21-24 ms when it is not (an encoder, a browser, the host of a
virtual machine taking its share); there the extra detail is what pushes latency past 50 ms and
drops frames. So the loop watches its own time per frame, smoothed over about a third of a second,
and uses the fine flow while it has room and the light one when it has not. The two thresholds are
further apart than the cost of the detail itself, so switching never causes the switch back.
"""
from __future__ import annotations


class FlowPace:
    """``observe(seconds)`` after each frame -> whether the next frame can afford the fine flow."""

    def __init__(self, interval: float, *, fine_below: float = 0.5, light_above: float = 0.7,
                 smoothing: float = 0.1):
        """``interval``: seconds between camera frames; the thresholds are shares of it."""
        self.interval, self.fine_below, self.light_above = interval, fine_below, light_above
        self.smoothing = smoothing
        self.fine = True
        self.busy: float | None = None  # the loop's smoothed seconds per frame

    def observe(self, seconds: float) -> bool:
        b = self.busy = seconds if self.busy is None else self.busy + self.smoothing * (seconds - self.busy)
        if self.fine and b > self.light_above * self.interval:
            self.fine = False
        elif not self.fine and b < self.fine_below * self.interval:
            self.fine = True
        return self.fine
