"""Video file reading and writing for the CLI (clear errors, progress-friendly frame counts)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".gif")


def is_video(path: Path | str) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def open_video(path: Path | str) -> tuple[cv2.VideoCapture, float, int]:
    """(capture, fps, frame count or 0 when unknown); raises InputError for unreadable files."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"video {p} does not exist")
    cap = cv2.VideoCapture(str(p))
    ok, first = cap.read() if cap.isOpened() else (False, None)
    if not ok or first is None:
        cap.release()
        raise InputError(f"{p} is not a readable video (corrupt or unsupported codec); try an H.264 MP4")
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    if not 1 <= fps <= 240:
        fps = 30.0
    return cap, fps, max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))


def create_writer(path: Path | str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """MP4 (mp4v) writer for ``size`` = (W, H)."""
    p = Path(path)
    if p.suffix.lower() not in (".mp4", ".m4v", ".mov", ".avi", ".mkv"):
        raise InputError(f"cannot write video {p}: use .mp4")
    if not p.parent.exists():
        raise InputError(f"cannot write {p}: folder {p.parent} does not exist")
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if p.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(p), fourcc, fps, size)
    if not writer.isOpened():
        raise InputError(f"cannot open {p} for writing")
    return writer


def frames(cap: cv2.VideoCapture):
    while True:
        ok, frame = cap.read()
        if not ok:
            return
        yield np.ascontiguousarray(frame)
