"""MJPEG over HTTP (``/stream.mjpg``, ``/snapshot.jpg``): what an OBS media source plays.

JPEG encoding happens at most once per frame and only when someone is watching, so an idle
stream costs nothing. Clients wait on the event loop (no thread per viewer); encoding runs in
a worker thread so a viewer never stalls the server.
"""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from ...engine.frames import Frame
from ...errors import SettingsError
from ...web import HttpError, Pulse, WebServer

BOUNDARY = "cbsobsframe"


class MjpegStream:
    name = "mjpeg"

    def __init__(self, server: WebServer, quality: int = 85, owns_server: bool = True):
        if not 10 <= quality <= 100:
            raise SettingsError(f"JPEG quality must be 10-100, got {quality}")
        self.server, self.quality, self.owns_server = server, quality, owns_server
        self._lock = threading.Lock()
        self._pixels: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] = (0, b"")
        self._closed = False
        self._pulse = Pulse()
        self.clients = 0
        self._routes(server.app)

    def _routes(self, app) -> None:
        from fastapi.responses import Response, StreamingResponse

        jpeg = {200: {"content": {"image/jpeg": {}}, "description": "the latest output frame"}}

        @app.get("/snapshot.jpg", response_class=Response, responses=jpeg, summary="the latest output frame")
        def snapshot():
            data = self.latest_jpeg()
            if data is None:
                raise HttpError(503, "no frame yet; the engine is starting")
            return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

        @app.get("/stream.mjpg", response_class=StreamingResponse, summary="the output as MJPEG (endless)",
                 openapi_extra={"x-endless": True},
                 responses={200: {"content": {f"multipart/x-mixed-replace; boundary={BOUNDARY}": {}},
                                  "description": "one JPEG part per frame"}})
        async def stream():
            return StreamingResponse(self._parts(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                     headers={"Cache-Control": "no-store", "Connection": "close"})

    @property
    def url(self) -> str:
        return f"{self.server.url}/stream.mjpg"

    def start(self, width: int, height: int, fps: float) -> None:
        self._closed = False
        if self.owns_server and self.server.httpd is None:
            self.server.start()

    def send(self, frame: Frame, pixels: np.ndarray) -> None:
        with self._lock:
            self._pixels, self._seq = pixels, self._seq + 1
        self._pulse.fire()

    def _encoded(self, seq: int, pixels: np.ndarray) -> bytes:
        with self._lock:
            if self._jpeg[0] == seq:
                return self._jpeg[1]
        ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        data = buf.tobytes() if ok else b""
        with self._lock:
            if seq >= self._jpeg[0]:
                self._jpeg = (seq, data)
        return data

    def latest_jpeg(self) -> bytes | None:
        with self._lock:
            seq, pixels = self._seq, self._pixels
        return None if pixels is None else self._encoded(seq, pixels)

    async def _parts(self):
        from starlette.concurrency import run_in_threadpool

        seen_pulse, seen = 0, 0
        with self._lock:
            self.clients += 1
        try:
            while not self._closed and not self.server.closing.is_set():
                with self._lock:
                    seq, pixels = self._seq, self._pixels
                if seq == seen or pixels is None:
                    seen_pulse = await self._pulse.wait(seen_pulse, 0.5)
                    continue
                seen = seq
                data = await run_in_threadpool(self._encoded, seq, pixels)
                yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n"
                       f"X-Timestamp: {time.time():.3f}\r\n\r\n").encode() + data + b"\r\n"
        finally:
            with self._lock:
                self.clients -= 1

    def close(self) -> None:
        self._closed = True
        self._pulse.fire()
        if self.owns_server:
            self.server.close()
