"""The live engine end to end: demo clip -> workers -> MJPEG + recording, checked against stylize."""
from __future__ import annotations

import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest

from cbs_obs.engine import Engine, EngineConfig, PerfSettings, SourceOptions
from cbs_obs.engine.frames import Closed, LatestSlot
from cbs_obs.io.sources import Source, SourceLost
from cbs_obs.look import Look
from cbs_obs.io.outputs.mjpeg import MjpegStream
from cbs_obs.io.outputs.record import Recorder
from cbs_obs.stylizer import ClassStylizer
from cbs_obs.io.video import frames, open_video
from cbs_obs.web import WebServer
from tests.conftest import wait_for

LOOK = Look.from_specs(["background=starry-blue"])


class Capture:
    """An output that keeps exact pixels and frame indices."""

    name = "capture"

    def __init__(self):
        self.items: list[tuple[int, bool, np.ndarray]] = []
        self.started = None

    def start(self, w, h, fps):
        self.started = (w, h, fps)

    def send(self, frame, pixels):
        self.items.append((frame.index, frame.signal, pixels.copy()))

    def close(self):
        pass


def read_mjpeg(url: str, count: int, timeout: float = 60) -> list[np.ndarray]:
    """A minimal multipart/x-mixed-replace client, as a media player reads the stream."""
    out = []
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        assert resp.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        while len(out) < count:
            line = resp.readline()
            if not line:
                break
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
                while resp.readline() not in (b"\r\n", b"\n"):
                    pass
                out.append(cv2.imdecode(np.frombuffer(resp.read(n), np.uint8), cv2.IMREAD_COLOR))
    return out


@pytest.fixture(scope="module")
def demo_frames():
    from cbs_obs.io.sources import demo_clip_path as demo_clip

    cap, _, _ = open_video(demo_clip())
    items = list(frames(cap))
    cap.release()
    return items


def test_end_to_end_demo_clip_to_mjpeg_and_recording(person_model, demo_frames, tmp_path):
    server = WebServer("127.0.0.1", 0)
    stream = MjpegStream(server)
    capture = Capture()
    record = tmp_path / "out.mp4"
    # the paper's path (no plate, nothing carried between frames, a style result for every frame, plain mask
    # edges): every frame is styled from itself, so the engine's plumbing must give what stylize gives
    config = EngineConfig(source="demo", source_options=SourceOptions(loop=False, pace=False),
                          perf=PerfSettings(style_size=640, plate="off", crop=False, temporal=0.0, smoothing=0.0,
                                            edges=False, refresh=30.0))
    engine = Engine(config, LOOK, [stream, Recorder(record, realtime=False), capture])
    received: list[np.ndarray] = []
    with engine:
        reader = threading.Thread(target=lambda: received.extend(read_mjpeg(stream.url, 10)))
        reader.start()
        assert engine.wait(120)
        reader.join(30)
        snap = urllib.request.urlopen(f"{server.url}/snapshot.jpg", timeout=10).read()
        stats = engine.stats.snapshot()
    # every frame of the clip went through, in order, none lost (offline mode)
    assert [i for i, _, _ in capture.items] == list(range(len(demo_frames)))
    assert stats["dropped"] == 0 and stats["errors"] == 0 and stats["output"] == len(demo_frames)
    assert stats["latency_ms"]["p50"] > 0 and stats["stages_ms"]["segment"] > 0
    # the engine's frames are what stylize gives for the same input frames
    reference = ClassStylizer(engine.stylizer.segmenter, LOOK, style_size=640)
    for idx in (0, 17, 45):
        frame = demo_frames[idx]
        ref = reference.process(frame)
        got = capture.items[idx][2]
        untouched = sum(ref.masks.values()) == 0
        assert untouched.mean() > 0.1
        np.testing.assert_array_equal(got[untouched], frame[untouched])
        styled = sum(ref.masks.values()) == 1
        assert styled.mean() > 0.3
        assert np.abs(got[styled].astype(int) - ref.frame[styled]).mean() < 2.0
        assert np.abs(got[styled].astype(int) - frame[styled]).mean() > 20
    # the MJPEG client saw engine frames (JPEG-close to one of them)
    assert len(received) >= 3
    for jpg in received:
        dist = [np.abs(jpg.astype(int) - px).mean() for _, _, px in capture.items]
        best = int(np.argmin(dist))
        assert dist[best] < 8  # JPEG of a styled (busy) frame
        assert np.abs(jpg.astype(int) - demo_frames[best]).mean() > 2 * dist[best]  # styled, not raw
    assert cv2.imdecode(np.frombuffer(snap, np.uint8), cv2.IMREAD_COLOR).shape == demo_frames[0].shape
    cap, _, count = open_video(record)
    cap.release()
    assert count == len(demo_frames)


class FlakySource(Source):
    """Gives frames, then 'unplugs' for a few reopen attempts, then comes back."""

    name = "flaky camera"

    def __init__(self, lose_after=5, failed_reopens=2):
        self.n, self.lose_after, self.failed_reopens = 0, lose_after, failed_reopens
        self.opens = 0
        self.img = np.full((72, 128, 3), 90, np.uint8)

    def open(self):
        self.opens += 1
        if 1 < self.opens <= 1 + self.failed_reopens:
            raise SourceLost("flaky camera is unplugged")

    def read(self):
        self.n += 1
        if self.n == self.lose_after:
            raise SourceLost("flaky camera stopped sending frames")
        time.sleep(0.01)
        return self.img


def test_camera_loss_shows_no_signal_and_recovers(person_model):
    src = FlakySource()
    capture = Capture()
    engine = Engine(EngineConfig(source="flaky", retry_max_s=0.5), Look.from_specs(["background=grey"]),
                    [capture], source=src)
    with engine:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            signals = [s for _, s, _ in capture.items]
            if False in signals and signals[-1] and signals.count(True) > 10:
                break
            time.sleep(0.1)
        stats = engine.stats.snapshot()
    signals = [s for _, s, _ in capture.items]
    first_card = signals.index(False)
    assert any(signals[:first_card]) and any(signals[first_card:])  # frames before and after the loss
    card = next(px for _, s, px in capture.items if not s)
    assert card.shape == (72, 128, 3) and card.std() > 5  # a drawn card, not a black frame
    assert src.opens >= 4 and stats["source"] == "ok" and stats["no_signal_frames"] > 0
    assert "stopped sending frames" in stats["last_error"]


def test_worker_exception_skips_the_frame_and_keeps_running(person_model, monkeypatch):
    capture = Capture()
    config = EngineConfig(source="demo", source_options=SourceOptions(loop=False, pace=False))
    engine = Engine(config, Look.from_specs(["background=grey"]), [capture])
    real = engine.stylizer.segmenter.segment
    calls = {"n": 0}

    def flaky_segment(frame):
        calls["n"] += 1
        if calls["n"] in (3, 7):
            raise RuntimeError("simulated worker failure")
        return real(frame)

    monkeypatch.setattr(engine.stylizer.segmenter, "segment", flaky_segment)
    with engine:
        assert engine.wait(60)
    stats = engine.stats.snapshot()
    assert stats["errors"] == 2 and "simulated worker failure" in stats["last_error"]
    assert len(capture.items) == 58 and stats["output"] == 58


def test_look_swap_applies_to_following_frames(person_model):
    capture = Capture()
    config = EngineConfig(source="demo", source_options=SourceOptions(loop=True, pace=True))
    engine = Engine(config, Look.from_specs(["background=color:#0000ff"]), [capture])
    with engine:
        assert wait_for(lambda: len(capture.items) >= 3)
        engine.set_look(Look.from_specs(["background=color:#00ff00"]))
        n = len(capture.items)
        assert wait_for(lambda: len(capture.items) >= n + 4)
        with pytest.raises(Exception, match="unknown style"):
            engine.set_look(Look.from_specs(["background=plaid"]))
        assert engine.look == Look.from_specs(["background=color:#00ff00"])
        assert engine.stats.snapshot()["stages_ms"]["blend"] is not None  # a live frame is blended on the output thread
    corner = [tuple(px[2, 2]) for _, _, px in capture.items]
    assert corner[0] == (255, 0, 0) and corner[-1] == (0, 255, 0)  # BGR blue, then green


def test_latest_slot_drops_old_items_and_blocks_when_asked():
    slot: LatestSlot[int] = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.get(0) == (5, 4) and slot.overwritten == 4
    assert slot.get(5, timeout=0.05) is None
    done = []
    t = threading.Thread(target=lambda: (slot.put(6, block=True), slot.put(7, block=True), done.append(1)))
    t.start()
    time.sleep(0.1)
    assert not done  # 7 waits until 6 is taken
    assert slot.get(5)[1] == 6
    t.join(2)
    assert done and slot.get(6)[1] == 7
    slot.close()
    with pytest.raises(Closed):
        slot.get(7)
