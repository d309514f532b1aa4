"""Recording to a video file, finalized on stop (Ctrl-C and SIGTERM included).

For live sources frames are placed on the file's timeline by their capture time, repeating the
last frame over gaps, so a recording plays at real speed even when processing was slower.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from ...engine.frames import Frame
from ...errors import CbsError
from ..video import create_writer

log = logging.getLogger(__name__)
MIN_FREE_BYTES = 64 * 1024 * 1024


class Recorder:
    name = "recording"

    def __init__(self, path: Path | str, *, realtime: bool = True, min_free_bytes: int = MIN_FREE_BYTES):
        self.path = Path(path)
        self.min_free_bytes = min_free_bytes
        self.realtime = realtime
        self.writer = None
        self.fps = 30.0
        self.size: tuple[int, int] | None = None
        self.written = 0
        self._t0: float | None = None
        self._last: np.ndarray | None = None

    def start(self, width: int, height: int, fps: float) -> None:
        self.fps, self.size = fps, (width, height)
        self.writer = create_writer(self.path, fps, (width, height))
        self._check_space()

    def _check_space(self) -> None:
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            return
        if free < self.min_free_bytes:
            self.close()  # finalize what was recorded so far: it stays playable
            raise CbsError(f"recording stopped: only {free // 2**20} MiB free on the disk holding {self.path}; "
                           "free some space or record elsewhere (streaming goes on)")

    def send(self, frame: Frame, pixels: np.ndarray) -> None:
        if self.writer is None:
            return
        if self.realtime:
            if self._t0 is None:
                self._t0 = frame.t_capture
            slot = int(round((frame.t_capture - self._t0) * self.fps))
            while self._last is not None and self.written < slot:
                self.writer.write(self._last)  # repeat over gaps: real-time playback speed
                self.written += 1
            if self.written > slot:  # two outputs for one slot: keep the newer one
                self._last = pixels
                return
        self.writer.write(pixels)
        self._last = pixels
        self.written += 1
        if self.written % 30 == 0:
            self._check_space()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            log.info("recording finalized: %s (%d frames)", self.path, self.written)
