"""Drives OBS's Qt windows like a user, under Xvfb without a window manager: xdotool moves the
mouse, clicks and types; ffmpeg's x11grab takes screenshots to look at (and to find things in).

Coordinates are relative to OBS 29's windows at the sizes set here; every step checks that the
window it expects is there and fails with the path of a screenshot when it is not.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SCRIPTS_SIZE = (1260, 790)  # the Scripts window, enlarged so every control of the panel is on screen


def require_xdotool() -> None:
    missing = [t for t in ("xdotool", "ffmpeg") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install xdotool ffmpeg; .ci/run does it)")


class Screen:
    def __init__(self, display: str, shots: Path):
        self.display, self.shots = display, shots
        shots.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "DISPLAY": display}

    def xdo(self, *args, check: bool = True) -> str:
        r = subprocess.run(["xdotool", *map(str, args)], env=self.env, capture_output=True, text=True, timeout=20)
        if check and r.returncode != 0:
            raise RuntimeError(f"xdotool {' '.join(map(str, args))}: {r.stderr.strip()}")
        return r.stdout.strip()

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "x11grab", "-video_size", "1280x800", "-i",
                        self.display, "-frames:v", "1", str(path)], env=self.env, check=True, timeout=20)
        return path

    def window(self, title_regex: str, timeout: float = 10.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = self.xdo("search", "--onlyvisible", "--name", title_regex, check=False).split()
            if found:
                return found[-1]
            time.sleep(0.2)
        shot = self.shot("missing-window")
        pytest.fail(f"no window titled {title_regex!r} (screen: {shot})")

    def click(self, x: int, y: int) -> None:
        self.xdo("mousemove", x, y)
        self.xdo("click", 1)
        time.sleep(0.3)

    def type(self, text: str) -> None:
        self.xdo("type", "--delay", 10, text)

    def key(self, *keys: str) -> None:
        for k in keys:
            self.xdo("key", k)
            time.sleep(0.08)


class ScriptsWindow:
    """Tools -> Scripts, its + button and file dialog, and the script's properties."""

    def __init__(self, screen: Screen):
        self.screen = screen
        self.wid = None

    def open(self) -> "ScriptsWindow":
        s = self.screen
        main = s.window("^OBS [0-9]", timeout=20)
        s.xdo("windowmove", main, 0, 0)
        s.click(378, 13)  # Tools
        s.click(389, 147)  # Scripts
        self.wid = s.window("^Scripts$")
        return self

    def enlarge(self) -> None:
        self.screen.xdo("windowmove", self.wid, 0, 0)
        self.screen.xdo("windowsize", self.wid, *SCRIPTS_SIZE)
        time.sleep(0.6)

    def geometry(self) -> tuple[int, int, int, int]:
        out = self.screen.xdo("getwindowgeometry", "--shell", self.wid)
        v = dict(line.split("=") for line in out.splitlines())
        return int(v["X"]), int(v["Y"]), int(v["WIDTH"]), int(v["HEIGHT"])

    def add_script(self, path: Path) -> None:
        """The + under 'Loaded Scripts', then the path typed into Qt's file dialog (as a user may)."""
        x, y, w, h = self.geometry()
        self.screen.click(x + 38, y + h - 83)
        dialog = self.screen.window("^Add Scripts$")
        self.screen.xdo("windowfocus", "--sync", dialog)
        self.screen.type(str(path))
        self.screen.key("Return")
        time.sleep(1.5)

    def close_script_log(self) -> None:
        """OBS pops the Script Log up on warnings (an engine exit); close it as a user would."""
        found = self.screen.xdo("search", "--onlyvisible", "--name", "^Script Log$", check=False).split()
        if not found:
            return
        out = self.screen.xdo("getwindowgeometry", "--shell", found[-1])
        v = {k: int(x) for k, x in (line.split("=") for line in out.splitlines()) if k in "XYWIDTHEIGHT"}
        self.screen.click(v["X"] + v["WIDTH"] - 46, v["Y"] + v["HEIGHT"] - 30)
