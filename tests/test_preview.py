"""The preview window on a real X display (Xvfb): keys typed into it reach the engine's controls."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from tests.obs_harness import Xvfb

WINDOW = textwrap.dedent("""
    import time, numpy as np
    from cbs_obs.engine.frames import Frame
    from cbs_obs.io.outputs.preview import PreviewWindow
    keys = []
    w = PreviewWindow(keys.append, title="cbs-obs preview")
    w.start(320, 180, 30)
    img = np.zeros((180, 320, 3), np.uint8)
    end = time.time() + 30
    while time.time() < end and "quit" not in keys:
        w.send(Frame(img, 0, 0.0), img)
        time.sleep(0.02)
    w.close()
    print("KEYS", " ".join(keys))
""")


def test_preview_window_keys(tmp_path):
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("Xvfb and xdotool not installed (apt-get install xvfb xdotool; .ci/run does)")
    x = Xvfb(tmp_path)
    env = {**os.environ, "DISPLAY": x.start()}
    try:
        proc = subprocess.Popen([sys.executable, "-c", WINDOW], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        window = []
        deadline = time.monotonic() + 20
        while not window and time.monotonic() < deadline:
            window = subprocess.run(["xdotool", "search", "--name", "^cbs-obs preview$"], env=env,
                                    capture_output=True, text=True).stdout.split()
            time.sleep(0.2)
        assert window, "the preview window never appeared"
        for key in ("space", "n", "p", "q"):
            subprocess.run(["xdotool", "windowfocus", "--sync", window[-1], "key", key], env=env, check=True)
            time.sleep(0.3)
        out, _ = proc.communicate(timeout=30)
    finally:
        x.stop()
    assert out.split("KEYS", 1)[1].split() == ["toggle", "next", "previous", "quit"]


def test_preview_keys_drive_the_controls():
    from types import SimpleNamespace

    from cbs_obs.io.outputs import preview_key

    calls = []

    class Engine:
        def request_stop(self):
            calls.append("stop")

    class Controller:
        def toggle(self):
            calls.append("toggle")

        def cycle(self, step):
            calls.append(step)

    for key in ("toggle", "next", "previous", "quit"):
        preview_key(SimpleNamespace(engine=Engine(), controller=Controller()), key)
    assert calls == ["toggle", 1, -1, "stop"]
