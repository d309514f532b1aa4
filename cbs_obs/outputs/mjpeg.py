"""MJPEG over HTTP (``/stream.mjpg``, ``/snapshot.jpg``): what an OBS media source plays.

JPEG encoding happens at most once per frame and only when someone is watching, so an idle
stream costs nothing.
"""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from ..engine.frames import Frame
from ..errors import SettingsError
from ..web import HttpError, Request, Response, WebServer

BOUNDARY = "cbsobsframe"


class MjpegStream:
    name = "mjpeg"

    def __init__(self, server: WebServer, quality: int = 85, owns_server: bool = True):
        if not 10 <= quality <= 100:
            raise SettingsError(f"JPEG quality must be 10-100, got {quality}")
        self.server, self.quality, self.owns_server = server, quality, owns_server
        self._cond = threading.Condition()
        self._pixels: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] = (0, b"")
        self._closed = False
        self.clients = 0
        server.route("GET", "/stream.mjpg", self._stream)
        server.route("GET", "/snapshot.jpg", self._snapshot)

    @property
    def url(self) -> str:
        return f"{self.server.url}/stream.mjpg"

    def start(self, width: int, height: int, fps: float) -> None:
        if self.owns_server and self.server.httpd is None:
            self.server.start()

    def send(self, frame: Frame, pixels: np.ndarray) -> None:
        with self._cond:
            self._pixels, self._seq = pixels, self._seq + 1
            self._cond.notify_all()

    def _encoded(self, seq: int, pixels: np.ndarray) -> bytes:
        with self._cond:
            if self._jpeg[0] == seq:
                return self._jpeg[1]
        ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        data = buf.tobytes() if ok else b""
        with self._cond:
            if seq >= self._jpeg[0]:
                self._jpeg = (seq, data)
        return data

    def latest_jpeg(self) -> bytes | None:
        with self._cond:
            seq, pixels = self._seq, self._pixels
        return None if pixels is None else self._encoded(seq, pixels)

    def _snapshot(self, req: Request) -> Response:
        data = self.latest_jpeg()
        if data is None:
            raise HttpError(503, "no frame yet; the engine is starting")
        return Response(200, data, "image/jpeg")

    def _stream(self, req: Request) -> None:
        h = req.handler
        h.send_response(200)
        h.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        h.send_header("Cache-Control", "no-store")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        seen = 0
        with self._cond:
            self.clients += 1
        try:
            while True:
                with self._cond:
                    while self._seq == seen and not self._closed:
                        self._cond.wait(1.0)
                    if self._closed:
                        return
                    seen, pixels = self._seq, self._pixels
                data = self._encoded(seen, pixels)
                h.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n"
                              f"X-Timestamp: {time.time():.3f}\r\n\r\n".encode() + data + b"\r\n")
                h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            return
        finally:
            with self._cond:
                self.clients -= 1

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self.owns_server:
            self.server.close()
