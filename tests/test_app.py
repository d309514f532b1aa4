"""The live app as users start it: one composition root, default outputs, outputs that never hold each other up."""
from __future__ import annotations

import os
import sys
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import numpy as np
import pytest

from cbs_obs.app import AppConfig, ControlSettings, LiveApp
from cbs_obs.engine import EngineConfig
from cbs_obs.io.sources import FramesSource
from cbs_obs.look import Look
from cbs_obs.io.outputs import OUTPUTS, OutputSpec, register_output
from tests.conftest import wait_for

CLI = shutil.which("cbs-obs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count_mjpeg_frames(url: str, seconds: float) -> int:
    """JPEG frames a viewer (an OBS media source) receives from the stream in ``seconds``."""
    n, end = 0, time.monotonic() + seconds
    with urllib.request.urlopen(url, timeout=10) as r:
        while time.monotonic() < end:
            line = r.readline()
            if not line:
                break
            n += line.startswith(b"Content-Type: image/jpeg")
    return n


def test_default_run_without_virtual_camera_driver_streams(person_model):
    """`cbs-obs run demo` with no output flag, on a machine without a virtual camera driver (this one):
    the virtual camera is left out with a warning and the MJPEG stream carries video."""
    port = free_port()
    proc = subprocess.Popen([CLI, "run", "demo", "--port", str(port), "--duration", "40"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        url = f"http://127.0.0.1:{port}"

        def first_frame():
            try:
                return len(urllib.request.urlopen(url + "/snapshot.jpg", timeout=1).read()) > 1000
            except OSError:
                return False

        assert wait_for(first_frame, timeout=60), "the engine never showed a frame"
        frames = count_mjpeg_frames(url + "/stream.mjpg", 3.0)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert frames >= 15, f"only {frames} MJPEG frames in 3 s\n{err}"
    assert "no virtual camera available" in err and "continuing without it" in err
    assert "$(" not in out, "the panel hint must be something a user can type, not shell syntax"


def _serving(port: int) -> bool:
    """The engine's control API answers on ``port``."""
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=1).status == 200
    except OSError:
        return False


def test_an_engine_started_by_a_program_stops_when_that_program_dies(person_model, tmp_path):
    """The OBS script starts the engine with --stop-with-stdin; when OBS is killed (no chance to stop
    it), the engine must not live on holding the camera and the port."""
    port = free_port()
    log = tmp_path / "engine.log"
    parent = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([{CLI!r}, 'run', 'demo', '--null', '--port', '{port}', '--stop-with-stdin'],"
        f" stdin=subprocess.PIPE, stdout=open({str(log)!r}, 'w'), stderr=subprocess.STDOUT)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(600)\n")
    boss = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    engine_pid = int(boss.stdout.readline())
    try:
        assert wait_for(lambda: _serving(port), timeout=90), "the engine never came up:\n" + log.read_text()
        boss.kill()  # like OBS killed or crashed: nothing runs its clean-up
        boss.wait(10)

        def gone():
            try:
                os.kill(engine_pid, 0)
            except ProcessLookupError:
                return True
            with open(f"/proc/{engine_pid}/stat") as f:  # a zombie (exited, not yet reaped) is gone too
                return f.read().split()[2] == "Z"

        assert wait_for(gone, timeout=20), "the engine outlived the program that started it"
    finally:
        try:
            os.kill(engine_pid, 9)
        except ProcessLookupError:
            pass
    assert "the program that started the engine has gone" in log.read_text()



def test_an_engine_stopped_by_obs_exits_cleanly_while_it_watches_stdin(person_model, tmp_path):
    """Stop engine in OBS sends SIGTERM to an engine run with --stop-with-stdin, its stdin still open: it must
    close cleanly, not abort at exit ("Fatal Python error ... could not acquire lock for <stdin>")."""
    port = free_port()
    log = tmp_path / "engine.log"
    with open(log, "w") as out:
        p = subprocess.Popen([CLI, "run", "demo", "--null", "--port", str(port), "--stop-with-stdin"],
                             stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: _serving(port), timeout=90), "the engine never came up:\n" + log.read_text()
        p.terminate()
        code = p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
        p.stdin.close()
    text = log.read_text()
    assert "Fatal Python error" not in text, text[-2000:]
    assert code == 0, f"exit code {code}\n{text[-2000:]}"

class Stalled:
    """An output that hangs on its first frame (a stuck virtual camera, a disk that stopped answering)."""

    name = "stalled"

    def __init__(self):
        self.release = threading.Event()
        self.frames = 0

    def start(self, w, h, fps):
        pass

    def send(self, frame, pixels):
        self.frames += 1
        self.release.wait(30)

    def close(self):
        self.release.set()


class Counter:
    name = "counter"

    def __init__(self):
        self.times: list[float] = []

    def start(self, w, h, fps):
        pass

    def send(self, frame, pixels):
        self.times.append(time.monotonic())

    def close(self):
        pass


def _clip(n=30, size=(160, 96)):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8) for _ in range(n)]


def test_a_stalled_output_never_delays_the_others(person_model):
    stalled, counter = Stalled(), Counter()
    app = LiveApp(AppConfig(engine=EngineConfig(source="clip"), look=Look.from_specs(["background=grey"]),
                            outputs=(), control=ControlSettings(port=0, token="t" * 32)),
                  source=FramesSource(_clip(), 30.0), extra_outputs=[stalled, counter])
    with app:
        assert wait_for(lambda: stalled.frames >= 1, timeout=30)
        n0 = len(counter.times)
        time.sleep(3.0)
        fps = (len(counter.times) - n0) / 3.0
        mjpeg = count_mjpeg_frames(app.stream.url, 1.0)
        held = stalled.frames
    assert held == 1, "the stalled output was handed frames while busy: it should skip them"
    assert fps >= 25, f"the other outputs fell to {fps:.1f} fps while one output was stalled"
    assert mjpeg >= 20


def test_an_output_registered_from_outside_runs_live(person_model):
    """A third party adds an output with one registration line and names it in the config."""
    got = []

    class Toy:
        name = "toy"

        def __init__(self, options):
            self.every = options["every"]

        def start(self, w, h, fps):
            got.append(("start", w, h))

        def send(self, frame, pixels):
            if frame.index % self.every == 0:
                got.append(("frame", frame.index, pixels.shape))

        def close(self):
            got.append(("close",))

    register_output("toy", lambda options, app: Toy(options))
    try:
        app = LiveApp(AppConfig(engine=EngineConfig(source="clip", max_frames=20),
                                look=Look.from_specs(["background=grey"]),
                                outputs=(OutputSpec("toy", {"every": 5}),),
                                control=ControlSettings(port=0, token="t" * 32)),
                      source=FramesSource(_clip(20), 30.0, loop=False, pace=False))
        with app:
            app.engine.wait(60)
    finally:
        del OUTPUTS["toy"]
    assert got[0] == ("start", 160, 96) and got[-1] == ("close",)
    assert [g[1] for g in got if g[0] == "frame"] == [0, 5, 10, 15]


def test_unknown_output_lists_the_registered_ones():
    from cbs_obs.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="valid outputs: .*null.*record.*vcam"):
        LiveApp(AppConfig(outputs=(OutputSpec("nope"),), control=ControlSettings(port=0, token="t" * 32)))


@pytest.mark.parametrize("argv", [["--help"], ["token"], ["models", "list"], ["styles", "list"], ["run", "--help"]])
def test_quick_commands_do_not_load_torch(argv, tmp_path):
    """Commands that run no network must start fast: torch alone takes seconds and ~0.4 GB to import."""
    code = ("import sys\nfrom cbs_obs.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'LEAN')")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CBS_OBS_CONFIG": str(tmp_path)})
    assert proc.stdout.strip().endswith("LEAN"), proc.stdout[-500:] + proc.stderr[-2000:]


class Halves:
    """A third-party segmenter: the left half of the frame is one class, the right half the other."""

    name, classes = "halves", ("left", "right")

    def segment(self, frame):
        from cbs_obs.segment import ClassProbs

        p = np.zeros((8, 8), np.float32)
        p[:, :4] = 1.0
        return ClassProbs(np.stack([p, 1 - p]), self.classes)


class Keep:
    """A third-party output that keeps every frame it is sent."""

    name = "keep"

    def __init__(self, got: list):
        self.got = got

    def start(self, w, h, fps):
        pass

    def send(self, frame, pixels):
        self.got.append(pixels)

    def close(self):
        pass


def _run_kept(segmenter: str, specs: list[str], frames: int):
    """Runs the live app on a small clip into a ``Keep`` output; returns the frames and the plate."""
    got = []
    register_output("keep", lambda options, app: Keep(got))
    try:
        app = LiveApp(AppConfig(engine=EngineConfig(source="clip", segmenter=segmenter, max_frames=frames),
                                look=Look.from_specs(specs), outputs=(OutputSpec("keep"),),
                                control=ControlSettings(port=0, token="t" * 32)),
                      source=FramesSource(_clip(frames), 30.0, loop=False, pace=False))
        with app:
            app.engine.wait(60)
            return got, app.engine.renderer.plate
    finally:
        del OUTPUTS["keep"]


def test_a_segmenter_registered_from_outside_runs_live_with_its_declared_plate():
    """A third-party segmenter: one registration line, then it is named like the built-in ones."""
    from cbs_obs.segment import SEGMENTERS, SegmenterKind, register_segmenter

    register_segmenter(SegmenterKind("halves", lambda weights, **o: Halves(), lambda weights: Halves.classes,
                                     "left and right halves", static=frozenset({"right"}), plate=True))
    try:
        got, plate = _run_kept("halves", ["left=color:#00ff00", "right=color:#0000ff"], 5)
    finally:
        del SEGMENTERS["halves"]
    assert len(got) == 5
    assert (got[-1][40, 20] == (0, 255, 0)).all() and (got[-1][40, 140] == (255, 0, 0)).all()
    assert plate is not None and plate.restyles >= 1, "the class it declared static must come from the plate"


def test_a_style_family_registered_from_outside_runs_live():
    """A third-party style family: one registration line, then specs name it like the built-in ones."""
    from cbs_obs.segment import SEGMENTERS, SegmenterKind, register_segmenter
    from cbs_obs.style import STYLE_FAMILIES, StyleFamily, register_style_family
    from cbs_obs.style.catalog import is_neural, style_names

    class Tint:
        def __init__(self, level):
            self.name, self.level = f"tint:{level}", level

        def apply(self, frame):
            return np.full_like(frame, self.level)

    register_style_family(StyleFamily("tint", lambda arg, max_side: Tint(int(arg or 7)), "one grey level",
                                      argument="LEVEL"))
    register_segmenter(SegmenterKind("halves", lambda weights, **o: Halves(), lambda weights: Halves.classes,
                                     "left and right halves"))
    try:
        assert "tint" in style_names() and not is_neural("tint:3")
        got, _ = _run_kept("halves", ["left=tint:200", "right=tint"], 3)
    finally:
        del STYLE_FAMILIES["tint"], SEGMENTERS["halves"]
    assert len(got) == 3
    assert (got[-1][40, 20] == 200).all() and (got[-1][40, 140] == 7).all()


def test_each_error_type_has_its_http_status():
    """One table decides: what the request got wrong is 400; what the engine cannot serve is 5xx."""
    from cbs_obs.control.errors import status_for
    from cbs_obs.errors import (ChecksumError, DeviceError, DownloadError, ModelError, ModelMissingError,
                                SettingsError, UnknownNameError)

    assert status_for(SettingsError("x")) == 400
    assert status_for(UnknownNameError("style", "x", ["a"])) == 400
    assert status_for(ModelError("not a checkpoint")) == 400  # the user's own file is wrong
    assert status_for(DeviceError("no driver")) == 400
    assert status_for(DownloadError("x")) == 502
    assert status_for(ModelMissingError("x")) == 503 and status_for(ChecksumError("x")) == 503


def test_class_groups_are_listed_for_the_panels(person_model):
    """With face and body as classes, `person` (= face + body) is offered wherever classes are listed."""
    import json

    from cbs_obs.segment import SEGMENTERS, ClassProbs, SegmenterKind, register_segmenter

    class ThreeClasses:
        name, classes = "three", ("background", "face", "body")

        def segment(self, frame):
            return ClassProbs(np.full((3, 4, 4), 1 / 3, np.float32), self.classes)

    register_segmenter(SegmenterKind("three", lambda weights, **o: ThreeClasses(),
                                     lambda weights: ThreeClasses.classes, "test"))
    try:
        app = LiveApp(AppConfig(engine=EngineConfig(source="clip", segmenter="three"), look=Look(), outputs=(),
                                control=ControlSettings(port=0, token="t" * 32)),
                      source=FramesSource(_clip(5), 30.0))
        with app:
            got = json.loads(urllib.request.urlopen(app.url + "/api/classes", timeout=10).read())
    finally:
        del SEGMENTERS["three"]
    assert got["classes"] == ["background", "face", "body"] and got["groups"] == {"person": ["face", "body"]}
