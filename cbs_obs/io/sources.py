"""Frame sources: webcam, video file, stream URL, still image, and the built-in demo clip.

A source only reads; pacing, retries and "no signal" cards are the capture loop's job.
``realtime`` sources drop frames when the pipeline is behind (a camera will not wait); offline
ones (a file with ``pace=False``) make the pipeline wait so every frame is processed.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .video import VIDEO_EXTS

log = logging.getLogger(__name__)
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class SourceLost(Exception):
    """The source stopped giving frames (camera unplugged, stream dropped)."""


@dataclass(frozen=True)
class SourceOptions:
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    mjpg: bool = False
    loop: bool = True
    pace: bool = True  # files: play at their own fps like a camera; False: as fast as possible, no drops


class Source:
    name = "source"
    realtime = True
    needs_pacing = False  # files and stills are played at their fps; devices pace themselves
    fps = 30.0

    def open(self) -> None:
        """Open if not open yet; raises InputError or SourceLost."""

    def reopen(self) -> None:
        """After a loss: release and open again."""
        self.close()
        self.open()

    def read(self) -> np.ndarray | None:
        """Next BGR frame; None at the end of a finite source; raises SourceLost."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class CaptureSource(Source):
    """A source read through ``cv2.VideoCapture`` (cameras, streams, files)."""

    cap: cv2.VideoCapture | None = None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class CameraSource(CaptureSource):
    def __init__(self, device: int | str, options: SourceOptions):
        self.device, self.options = device, options
        self.name = f"camera {device}"
        self.cap: cv2.VideoCapture | None = None
        self.fps = options.fps or 30.0

    def open(self) -> None:
        if self.cap is not None:
            return
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            cap.release()
            raise SourceLost(f"cannot open {self.name}: is it plugged in and not used by another program? "
                             "(list cameras with: v4l2-ctl --list-devices)")
        o = self.options
        if o.mjpg:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        if o.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, o.width)
        if o.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, o.height)
        if o.fps:
            cap.set(cv2.CAP_PROP_FPS, o.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.fps = o.fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
        self.cap = cap

    def read(self) -> np.ndarray:
        if self.cap is None:
            raise SourceLost(f"{self.name} is not open")
        ok, frame = self.cap.read()
        if not ok or frame is None:
            raise SourceLost(f"{self.name} stopped sending frames")
        return frame


class StreamSource(CameraSource):
    """RTSP / HTTP(S) / UDP streams through FFmpeg; reconnects like a camera."""

    def __init__(self, url: str, options: SourceOptions):
        super().__init__(url, options)
        self.name = f"stream {re.sub(r'//[^@/]*@', '//***@', url)}"  # never log credentials

    def open(self) -> None:
        if self.cap is not None:
            return
        cap = cv2.VideoCapture(self.device, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceLost(f"cannot open {self.name}: check the URL and that the stream is live")
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.fps = self.options.fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
        if not 1 <= self.fps <= 240:
            self.fps = 30.0
        self.cap = cap


class FileSource(CaptureSource):
    def __init__(self, path: Path, options: SourceOptions):
        self.path, self.options = path, options
        self.name = f"file {path.name}"
        self.realtime = self.needs_pacing = options.pace
        self.cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        from .video import open_video

        if self.cap is not None:
            return
        if not self.path.exists():
            raise SourceLost(f"video {self.path} is gone")
        self.cap, fps, _ = open_video(self.path)
        self.fps = self.options.fps or fps

    def read(self) -> np.ndarray | None:
        if self.cap is None:
            raise SourceLost(f"{self.name} is not open")
        ok, frame = self.cap.read()
        if ok:
            return frame
        if not self.path.exists():
            raise SourceLost(f"video {self.path} disappeared while playing")
        if self.options.loop:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.cap.read()
            if ok:
                return frame
        return None


class ImageSource(Source):
    """A still image repeated at ``fps`` (a test card, or styling a photo live while tuning)."""

    def __init__(self, path: Path, options: SourceOptions):
        from .images import read_image

        self.path = path
        self.name = f"image {path.name}"
        self.image = read_image(path)
        self.fps = options.fps or 30.0
        self.realtime = self.needs_pacing = options.pace
        self.loop = options.loop
        self._sent = False

    def read(self) -> np.ndarray | None:
        if self._sent and not self.loop:
            return None
        self._sent = True
        return self.image


def demo_clip_path() -> Path:
    from importlib.resources import files

    return Path(str(files("cbs_obs.assets") / "demo_clip.mp4"))


def open_source(spec: str, options: SourceOptions = SourceOptions()) -> Source:
    """``demo``, a camera index (``0``) or device (``/dev/video0``), a URL, or a video/image path."""
    spec = str(spec).strip()
    if spec == "demo":
        src: Source = FileSource(demo_clip_path(), options)
        src.name = "built-in demo clip"
    elif spec.isdigit():
        src = CameraSource(int(spec), options)
    elif spec.startswith("/dev/video"):
        src = CameraSource(spec, options)
    elif re.match(r"^(rtsp|rtmp|https?|udp|tcp|srt)://", spec):
        src = StreamSource(spec, options)
    else:
        path = Path(spec).expanduser()
        suffix = path.suffix.lower()
        if not path.exists():
            raise InputError(f"source {spec!r} not found: give 'demo', a camera index (0), /dev/videoN, "
                             "a stream URL (rtsp://...) or an existing video/image file")
        if suffix in IMAGE_EXTS:
            src = ImageSource(path, options)
        elif suffix in VIDEO_EXTS or suffix in (".ts", ".flv"):
            src = FileSource(path, options)
        else:
            raise InputError(f"{path} is neither a video ({', '.join(VIDEO_EXTS)}) nor an image file")
    return src


class Pacer:
    """Sleeps so frames leave at ``fps`` without drifting (for files and stills played live)."""

    def __init__(self, fps: float):
        self.period = 1.0 / max(fps, 1e-3)
        self.next = time.monotonic()

    def wait(self) -> None:
        self.next += self.period
        delay = self.next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1.0:  # fell far behind (machine stalled): restart the clock instead of bursting
            self.next = time.monotonic()


class FramesSource(Source):
    """Frames already in memory, played at ``fps`` and looped (benchmarks and tests)."""

    def __init__(self, frames: list[np.ndarray], fps: float = 30.0, *, loop: bool = True, pace: bool = True,
                 name: str = "frames"):
        if not frames:
            raise InputError("FramesSource needs at least one frame")
        self.frames, self.fps, self.loop, self.name = frames, fps, loop, name
        self.realtime = self.needs_pacing = pace
        self.i = 0

    def read(self) -> np.ndarray | None:
        if self.i >= len(self.frames):
            if not self.loop:
                return None
            self.i = 0
        frame = self.frames[self.i]
        self.i += 1
        return frame
