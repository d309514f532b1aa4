"""Where composited frames go: virtual camera, MJPEG stream, recording, preview window, null.

Every output has ``start(w, h, fps)``, ``send(frame, pixels)`` and an idempotent ``close()``. A failing output is
logged and dropped by the engine; the others keep running.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from ..engine.frames import Frame


class Output(Protocol):
    name: str

    def start(self, width: int, height: int, fps: float) -> None:
        """Acquire devices, files and ports; raise CbsError with the fix when that is impossible."""
        ...

    def send(self, frame: Frame, pixels: np.ndarray) -> None: ...

    def close(self) -> None: ...


class NullOutput:
    """Discards frames (benchmarks, or a run that only feeds stats)."""

    name = "null"

    def __init__(self):
        self.frames = 0

    def start(self, width: int, height: int, fps: float) -> None:
        pass

    def send(self, frame: Frame, pixels: np.ndarray) -> None:
        self.frames += 1

    def close(self) -> None:
        pass
