"""Faults a live show meets: the source vanishes or drops, the disk fills, the camera device is busy.
Each test injects the fault into a running engine and checks that streaming goes on and it recovers."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from cbs_obs.engine import Engine, EngineConfig, Frame
from cbs_obs.errors import CbsError
from cbs_obs.look import Look
from cbs_obs.io.outputs.mjpeg import MjpegStream
from cbs_obs.io.outputs.record import Recorder
from cbs_obs.web import WebServer
from tests.conftest import Timeline, wait_for

LOOK = Look.from_specs(["background=grey"])


def test_source_file_vanishes_and_comes_back(person_model, tmp_path):
    from cbs_obs.io.sources import demo_clip_path

    clip = tmp_path / "show.mp4"
    shutil.copyfile(demo_clip_path(), clip)
    out = Timeline()
    engine = Engine(EngineConfig(source=str(clip), retry_max_s=0.5), LOOK, [out])
    with engine:
        assert wait_for(lambda: len(out.frames) > 20)
        hidden = tmp_path / "elsewhere.mp4"
        clip.rename(hidden)  # the file vanishes mid-run
        assert wait_for(lambda: engine.stats.snapshot()["source"] == "lost", 20)
        cards = engine.stats.snapshot()["no_signal_frames"]
        assert wait_for(lambda: engine.stats.snapshot()["no_signal_frames"] > cards + 3)  # outputs keep going
        hidden.rename(clip)  # and comes back
        assert wait_for(lambda: engine.stats.snapshot()["source"] == "ok", 20)
        n = engine.stats.snapshot()["processed"]
        assert wait_for(lambda: engine.stats.snapshot()["processed"] > n + 10)
    s = engine.stats.snapshot()
    print(f"file fault: {s['no_signal_frames']} no-signal frames, {s['errors']} errors, output {s['output']}")


def test_network_source_drops_and_returns(person_model):
    frame = np.zeros((72, 128, 3), np.uint8)
    frame[:, :64] = (0, 0, 255)
    server = WebServer("127.0.0.1", 0)
    upstream = MjpegStream(server)
    upstream.start(128, 72, 15)
    port = server.port
    feeding = threading.Event()
    feeding.set()

    def feed():
        i = 0
        while feeding.is_set():
            upstream.send(Frame(frame, i, time.monotonic()), frame)
            i += 1
            time.sleep(1 / 15)

    threading.Thread(target=feed, daemon=True).start()
    out = Timeline()
    engine = Engine(EngineConfig(source=f"http://127.0.0.1:{port}/stream.mjpg", retry_max_s=0.5), LOOK, [out])
    with engine:
        assert wait_for(lambda: engine.stats.snapshot()["processed"] > 10)
        upstream.close()  # the stream drops
        assert wait_for(lambda: engine.stats.snapshot()["source"] == "lost", 30)
        assert wait_for(lambda: engine.stats.snapshot()["no_signal_frames"] > 3)
        server2 = WebServer("127.0.0.1", port)  # and returns on the same address
        upstream2 = MjpegStream(server2)
        upstream2.start(128, 72, 15)
        upstream.send = upstream2.send  # the feeder thread now feeds the new server
        assert wait_for(lambda: engine.stats.snapshot()["source"] == "ok", 30)
        n = engine.stats.snapshot()["processed"]
        assert wait_for(lambda: engine.stats.snapshot()["processed"] > n + 5, 30)
    feeding.clear()
    upstream2.close()


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)],
                                                        capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root; the disk-full test cannot run here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_disk_fills_recording_stops_streaming_goes_on(person_model, small_disk):
    out = Timeline()
    rec = Recorder(small_disk / "show.mp4", min_free_bytes=8 * 2**20)
    engine = Engine(EngineConfig(source="demo"), LOOK, [rec, out])
    with engine:
        assert wait_for(lambda: rec.written > 10)
        with open(small_disk / "filler.bin", "wb") as f:  # something else fills the disk
            f.write(b"\0" * (20 * 2**20))
        assert wait_for(lambda: "recording stopped" in engine.stats.snapshot()["last_error"], 30)
        assert rec not in engine.outputs
        n = len(out.frames)
        assert wait_for(lambda: len(out.frames) > n + 20)  # streaming goes on
    import cv2

    cap = cv2.VideoCapture(str(small_disk / "show.mp4"))
    ok, first = cap.read()
    cap.release()
    assert ok and first.shape == (360, 640, 3)  # what was recorded stays playable


def test_virtual_camera_busy(monkeypatch):
    import pyvirtualcam

    from cbs_obs.io.outputs.vcam import VirtualCamera

    def busy(**kwargs):
        raise RuntimeError("error opening /dev/video10: Device or resource busy")

    monkeypatch.setattr(pyvirtualcam, "Camera", busy)
    with pytest.raises(CbsError, match="is busy .* close the program using it"):
        VirtualCamera(device="/dev/video10").start(64, 48, 30)
