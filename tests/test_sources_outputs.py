"""Each source and output on its own, plus clean shutdown of the CLI engine."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from cbs_obs.engine import Engine, EngineConfig, Frame, SourceOptions, open_source
from cbs_obs.io.sources import CameraSource, FileSource, ImageSource, SourceLost, StreamSource
from cbs_obs.errors import CbsError, InputError
from cbs_obs.look import Look
from cbs_obs.io.outputs.mjpeg import MjpegStream
from cbs_obs.io.outputs.preview import PreviewWindow
from cbs_obs.io.outputs.vcam import VirtualCamera
from cbs_obs.io.video import create_writer
from cbs_obs.web import WebServer
from tests.test_cli import CLI, one_line_error


def small_video(path, n=6, size=(96, 64)):
    w = create_writer(path, 10, size)
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), i * 20, np.uint8))
    w.release()
    return path


def test_file_source_loops_or_stops(tmp_path):
    path = small_video(tmp_path / "v.mp4")
    src = open_source(str(path), SourceOptions(loop=False))
    assert isinstance(src, FileSource) and src.realtime
    src.open()
    got = [src.read() for _ in range(7)]
    assert all(f is not None for f in got[:6]) and got[6] is None
    looped = open_source(str(path), SourceOptions(loop=True, pace=False))
    looped.open()
    assert all(looped.read() is not None for _ in range(20)) and not looped.realtime


def test_file_vanishing_mid_run_is_a_lost_source(tmp_path):
    path = small_video(tmp_path / "v.mp4", n=3)
    src = open_source(str(path), SourceOptions(loop=True))
    src.open()
    path.unlink()
    with pytest.raises(SourceLost, match="disappeared"):
        for _ in range(10):
            src.read()


def test_image_source(tmp_path):
    cv2.imwrite(str(tmp_path / "i.png"), np.zeros((40, 60, 3), np.uint8))
    src = open_source(str(tmp_path / "i.png"), SourceOptions(fps=12))
    assert isinstance(src, ImageSource) and src.fps == 12 and src.read().shape == (40, 60, 3)
    once = open_source(str(tmp_path / "i.png"), SourceOptions(loop=False))
    assert once.read() is not None and once.read() is None


def test_stream_url_source_reads_our_own_mjpeg(tmp_path):
    server = WebServer("127.0.0.1", 0)
    stream = MjpegStream(server)
    stream.start(64, 48, 10)
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = (0, 0, 255)
    stop = False

    def feed():
        i = 0
        while not stop:
            stream.send(Frame(frame, i, time.monotonic()), frame)
            i += 1
            time.sleep(0.05)

    import threading

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    try:
        src = open_source(f"{server.url}/stream.mjpg", SourceOptions())
        assert isinstance(src, StreamSource)
        src.open()
        got = src.read()
        src.close()
    finally:
        stop = True
        stream.close()
    assert got.shape == (48, 64, 3)
    assert got[:, :28, 2].mean() > 200 and got[:, 36:, 2].mean() < 50


def test_stream_url_hides_credentials():
    src = StreamSource("rtsp://user:secret@10.0.0.5/live", SourceOptions())
    assert "secret" not in src.name and "***" in src.name


def test_missing_camera_is_one_clear_error(tmp_path):
    with pytest.raises(SourceLost, match="cannot open camera 9"):
        CameraSource(9, SourceOptions()).open()
    one_line_error(subprocess.run([CLI, "run", "9", "--null", "--frames", "1"], capture_output=True, text=True,
                                  timeout=120), "cannot open camera 9", "plugged in")


def test_camera_options_reach_the_device(monkeypatch):
    calls = {}

    class FakeCapture:
        def __init__(self, device, *args):
            calls["device"] = device

        def isOpened(self):
            return True

        def set(self, prop, value):
            calls[prop] = value
            return True

        def get(self, prop):
            return 30.0

        def read(self):
            return True, np.zeros((720, 1280, 3), np.uint8)

        def release(self):
            pass

    monkeypatch.setattr("cbs_obs.io.sources.cv2.VideoCapture", FakeCapture)
    src = open_source("/dev/video3", SourceOptions(width=1280, height=720, fps=60, mjpg=True))
    src.open()
    assert calls["device"] == "/dev/video3"
    assert calls[cv2.CAP_PROP_FRAME_WIDTH] == 1280 and calls[cv2.CAP_PROP_FRAME_HEIGHT] == 720
    assert calls[cv2.CAP_PROP_FPS] == 60 and calls[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"MJPG")
    assert src.read().shape == (720, 1280, 3) and src.fps == 60


def test_bad_source_specs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        open_source(str(tmp_path / "nope.mp4"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="neither a video"):
        open_source(str(tmp_path / "notes.txt"))


def test_virtual_camera_through_pyvirtualcam_api(monkeypatch):
    import pyvirtualcam

    seen = {"frames": []}

    class FakeCamera:
        def __init__(self, **kwargs):
            seen["kwargs"] = kwargs
            self.device, self.backend = "/dev/video10", "v4l2loopback"

        def send(self, frame):
            seen["frames"].append(frame)

        def close(self):
            seen["closed"] = seen.get("closed", 0) + 1

    monkeypatch.setattr(pyvirtualcam, "Camera", FakeCamera)
    cam = VirtualCamera(device="/dev/video10", backend="v4l2loopback")
    cam.start(64, 48, 30)
    kw = seen["kwargs"]
    assert (kw["width"], kw["height"], kw["fps"]) == (64, 48, 30)
    assert kw["fmt"] == pyvirtualcam.PixelFormat.BGR and kw["device"] == "/dev/video10"
    px = np.zeros((48, 64, 3), np.uint8)
    cam.send(Frame(px, 0, 0.0), px)
    cam.send(Frame(px, 1, 0.0), np.zeros((96, 128, 3), np.uint8))  # resized to the camera's size
    assert [f.shape for f in seen["frames"]] == [(48, 64, 3), (48, 64, 3)]
    cam.close()
    cam.close()
    assert seen["closed"] == 1  # idempotent


def test_virtual_camera_without_driver_says_how_to_fix():
    cam = VirtualCamera()
    with pytest.raises(CbsError) as e:
        cam.start(64, 48, 30)
    msg = str(e.value)
    assert "no virtual camera available" in msg
    if sys.platform.startswith("linux"):
        assert "modprobe v4l2loopback" in msg and "exclusive_caps=1" in msg


def test_preview_without_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(CbsError, match="needs a desktop session"):
        PreviewWindow(lambda k: None).start(64, 48, 30)


def test_mjpeg_server_errors_and_port_clash():
    server = WebServer("127.0.0.1", 0)
    stream = MjpegStream(server)
    stream.start(64, 48, 30)
    try:
        assert server.host == "127.0.0.1"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{server.url}/snapshot.jpg", timeout=5)
        assert e.value.code == 503 and "no frame yet" in json.load(e.value)["error"]
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{server.url}/nothing", timeout=5)
        assert e.value.code == 404
        with pytest.raises(CbsError, match="pick another port"):
            WebServer("127.0.0.1", server.port).start()
    finally:
        stream.close()


def test_engine_reports_missing_driver_at_start(person_model):
    engine = Engine(EngineConfig(source="demo"), Look(), [VirtualCamera()])
    with pytest.raises(CbsError, match="no virtual camera"):
        engine.start()
    engine.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly_and_finalize_recording(person_model, tmp_path, sig):
    out = tmp_path / "rec.mp4"
    proc = subprocess.Popen([CLI, "run", "demo", "--record", str(out), "--null", "-a", "background=grey"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out.exists() and out.stat().st_size > 20_000):
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "recording finalized" in stderr
    cap = cv2.VideoCapture(str(out))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = cap.read()
    cap.release()
    assert ok and n >= 10 and first.shape == (360, 640, 3)
