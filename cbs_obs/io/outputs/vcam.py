"""Virtual camera through pyvirtualcam (v4l2loopback on Linux, OBS Virtual Camera, Unity Capture)."""
from __future__ import annotations

import logging
import sys

import cv2
import numpy as np

from ...engine.frames import Frame
from ...errors import DeviceBusyError, DeviceError

log = logging.getLogger(__name__)


def _fix_hint() -> str:
    if sys.platform.startswith("linux"):
        return ("load the loopback driver: sudo modprobe v4l2loopback devices=1 video_nr=10 "
                "card_label=\"cbs-obs\" exclusive_caps=1 (Debian/Ubuntu: sudo apt install v4l2loopback-dkms), "
                "then pass --vcam-device /dev/video10")
    if sys.platform == "darwin":
        return "install OBS Studio 30+ and start its Virtual Camera once (Tools -> Start Virtual Camera), then stop it"
    return "install OBS Studio 30+ (its Virtual Camera) or Unity Capture, then try again"


class VirtualCamera:
    """Opened by the engine at start (so a missing driver is reported at once), at the output size."""

    name = "virtual camera"

    def __init__(self, device: str | None = None, backend: str | None = None):
        self.device, self.backend = device, backend
        self.cam = None
        self.size: tuple[int, int] | None = None
        self.fps = 30.0

    def start(self, width: int, height: int, fps: float) -> None:
        import pyvirtualcam

        self.fps = fps

        try:
            self.cam = pyvirtualcam.Camera(width=width, height=height, fps=self.fps, fmt=pyvirtualcam.PixelFormat.BGR,
                                           device=self.device, backend=self.backend, print_fps=False)
        except Exception as e:  # pyvirtualcam raises RuntimeError/ValueError with backend details
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            if "busy" in detail.lower() or "in use" in detail.lower():
                raise DeviceBusyError(f"virtual camera {self.device or ''} is busy ({detail}); close the program "
                               "using it, or pick another device with --vcam-device") from e
            raise DeviceError(f"no virtual camera available ({detail}); to fix: {_fix_hint()}") from e
        self.size = (width, height)
        log.info("virtual camera %s (%s) %dx%d@%g", self.cam.device, self.cam.backend, width, height, self.fps)

    def send(self, frame: Frame, pixels: np.ndarray) -> None:
        h, w = pixels.shape[:2]
        if self.cam is None:
            self.start(w, h, self.fps)
        if (w, h) != self.size:
            pixels = cv2.resize(pixels, self.size, interpolation=cv2.INTER_AREA)
        self.cam.send(np.ascontiguousarray(pixels))

    def close(self) -> None:
        if self.cam is not None:
            self.cam.close()
            self.cam = None
