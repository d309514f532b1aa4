"""A preview window with keys: q/Esc quit, space styling on/off, n/p next/previous preset."""
from __future__ import annotations

import os
import sys
from typing import Callable

import numpy as np

from ...engine.frames import Frame
from ...errors import CbsError

KEYS = {ord("q"): "quit", 27: "quit", ord(" "): "toggle", ord("n"): "next", ord("p"): "previous"}


class PreviewWindow:
    name = "preview"

    def __init__(self, on_key: Callable[[str], None], title: str = "cbs-obs preview"):
        self.on_key, self.title = on_key, title
        self.open = False

    def start(self, width: int, height: int, fps: float) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise CbsError("--preview needs a desktop session (no DISPLAY); use --mjpeg and open "
                           "http://127.0.0.1:8765/stream.mjpg in a browser instead")
        import cv2

        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise CbsError(f"cannot open a preview window ({e.msg.strip()}); use --mjpeg instead") from e
        self.open = True

    def send(self, frame: Frame, pixels: np.ndarray) -> None:
        import cv2

        if not self.open:
            return
        cv2.imshow(self.title, pixels)
        action = KEYS.get(cv2.waitKey(1) & 0xFF)
        if action:
            self.on_key(action)

    def close(self) -> None:
        if self.open:
            import cv2

            cv2.destroyWindow(self.title)
            self.open = False
