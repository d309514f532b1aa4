"""A real OBS Studio, headless under Xvfb, for tests (see ../shared/notes/obs-headless.md).

Each instance gets its own HOME and XDG dirs, a websocket port and password, a fresh profile and
a scene collection that can load our script with given settings.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugin" / "cbs_obs_panel.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_obs() -> None:
    missing = [t for t in ("obs", "Xvfb") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install obs-studio xvfb; .ci/run does it)")


class Xvfb:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.proc = None
        self.display = None

    def start(self) -> str:
        rfd, wfd = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(wfd), "-screen", "0", "1280x800x24", "-nolisten",
                                      "tcp", "-noreset"], pass_fds=(wfd,), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(wfd)
        with os.fdopen(rfd) as r:
            number = r.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"
        return self.display

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)


class Obs:
    def __init__(self, tmp: Path, display: str, *, script_settings: dict | None = None,
                 scenes=("Scene", "Scene 2"), canvas=(640, 360), env: dict | None = None):
        self.tmp, self.display, self.canvas, self.extra_env = tmp, display, canvas, env or {}
        self.port = free_port()
        self.password = secrets.token_hex(8)
        self.script_settings = script_settings
        self.scenes = scenes
        self.proc = None
        self.log = tmp / "obs-stdout.log"

    @property
    def config(self) -> Path:
        return self.tmp / "config" / "obs-studio"

    def _write_config(self, collection: bool = True) -> None:
        cfg = self.config
        (cfg / "basic" / "profiles" / "Test").mkdir(parents=True, exist_ok=True)
        (cfg / "basic" / "scenes").mkdir(parents=True, exist_ok=True)
        (cfg / "global.ini").write_text(
            "[General]\nPre19Defaults=false\nPre21Defaults=false\nPre23Defaults=false\nPre24.1Defaults=false\n"
            "FirstRun=true\nLastVersion=486539266\n[Basic]\nProfile=Test\nProfileDir=Test\nSceneCollection=Test\n"
            "SceneCollectionFile=Test\n[BasicWindow]\nPreviewEnabled=false\n[OBSWebSocket]\nFirstLoad=false\n"
            f"ServerEnabled=true\nServerPort={self.port}\nAlertsEnabled=false\nAuthRequired=true\n"
            f"ServerPassword={self.password}\n")
        (cfg / "basic" / "profiles" / "Test" / "basic.ini").write_text(
            f"[General]\nName=Test\n[Video]\nBaseCX={self.canvas[0]}\nBaseCY={self.canvas[1]}\nOutputCX={self.canvas[0]}\n"
            f"OutputCY={self.canvas[1]}\nFPSType=0\nFPSCommon=30\n")
        if not collection:
            return
        collection = {
            "name": "Test", "current_scene": self.scenes[0], "current_program_scene": self.scenes[0],
            "scene_order": [{"name": s} for s in self.scenes],
            "sources": [{"id": "scene", "versioned_id": "scene", "name": s, "settings": {"id_counter": 0, "items": []}}
                        for s in self.scenes],
        }
        if self.script_settings is not None:
            collection["modules"] = {"scripts-tool": [{"path": str(PLUGIN), "settings": self.script_settings}]}
        (cfg / "basic" / "scenes" / "Test.json").write_text(json.dumps(collection))

    def start(self, timeout: float = 30, *, fresh: bool = True) -> "Obs":
        """``fresh=False`` keeps the scene collection OBS saved when it last closed (a restart)."""
        self._write_config(collection=fresh)
        # importing cv2 points QT_QPA_PLATFORM_PLUGIN_PATH at its own Qt: OBS must not see any QT_* of ours
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("QT_") and k not in ("WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "XDG_CURRENT_DESKTOP",
                                                        "PYTHONPATH", "VIRTUAL_ENV")}
        runtime = self.tmp / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env.update(HOME=str(self.tmp), XDG_CONFIG_HOME=str(self.tmp / "config"), XDG_CACHE_HOME=str(self.tmp / "cache"),
                   XDG_RUNTIME_DIR=str(runtime), DISPLAY=self.display, QT_QPA_PLATFORM="xcb",
                   PATH="/usr/local/bin:/usr/bin:/bin", LIBGL_ALWAYS_SOFTWARE="1", **self.extra_env)
        self.proc = subprocess.Popen(["obs", "--multi", "--disable-missing-files-check", "--collection", "Test",
                                      "--profile", "Test"], cwd=self.tmp, env=env, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"OBS exited with {self.proc.returncode}; see {self.log}")
            try:
                c = self.client()
                c.get_version()
                c.disconnect()
                return self
            except Exception as e:
                last = e
                time.sleep(0.3)
        raise RuntimeError(f"OBS websocket did not answer in {timeout} s ({last})")

    def client(self):
        import logging

        import obsws_python as obs

        logging.getLogger("obsws_python").setLevel(logging.CRITICAL)
        return obs.ReqClient(host="127.0.0.1", port=self.port, password=self.password, timeout=5)

    def collection(self) -> dict:
        return json.loads((self.config / "basic" / "scenes" / "Test.json").read_text())

    def obs_log(self) -> str:
        logs = sorted((self.config / "logs").glob("*.txt"))
        return logs[-1].read_text(errors="replace") if logs else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
