"""Runs `cbs-obs run` for the OBS panel and keeps it running.

A thread starts the engine with subprocess.Popen (multiprocessing and sys.executable would start a
second OBS, because inside OBS the interpreter *is* OBS), restarts it when it exits on its own with
a growing pause (1 s, 2 s, 4 s ... 30 s; back to 1 s after a minute of good running), and stops it
with SIGTERM (the engine closes cleanly), then SIGKILL, when the script unloads or OBS exits.
Standard library only.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

MAX_BACKOFF = 30.0
HEALTHY_AFTER = 60.0


def engine_env(config_dir: Path | None) -> dict:
    """OBS's environment minus what belongs to OBS's own Python and Qt, so the engine's venv is its own."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "VIRTUAL_ENV") and not k.startswith("QT_")}
    if config_dir is not None:
        env["CBS_OBS_CONFIG"] = str(config_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def last_error_line(path: Path) -> str:
    """The engine's own one-line reason (``cbs-obs: error: ...``, an ERROR log line or an exception)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    errors = [t.strip() for t in text if "error" in t.lower() and not t.startswith(("Traceback", "  "))]
    return errors[-1] if errors else ""


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"code {code}"


class Supervisor:
    """One engine process at a time; ``state`` and ``last_exit`` say what it is doing, for the status line."""

    def __init__(self, argv_fn, *, env: dict, log_path: Path, on_message=None):
        self.argv_fn, self.env, self.log_path = argv_fn, env, log_path
        self.on_message = on_message or (lambda text: None)
        self.proc: subprocess.Popen | None = None
        self.state = "stopped"
        self.last_exit = ""
        self.starts = 0
        self.next_start = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self.starts = 0  # "restarted Nx" counts restarts after crashes, not the user's own Start clicks
        self._thread = threading.Thread(target=self._run, name="cbs-obs-engine", daemon=True)
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        argv = self.argv_fn()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "w", encoding="utf-8")
        kwargs = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kwargs["start_new_session"] = True
        try:
            # stdin stays an open pipe that we never write to: when OBS exits, even killed, the OS closes
            # it and an engine run with --stop-with-stdin stops instead of holding the camera on
            return subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE, stdout=log,
                                    stderr=subprocess.STDOUT, env=self.env, **kwargs)
        finally:
            log.close()

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                proc = self._spawn()
            except Exception as e:  # the executable vanished, no permission...
                self.last_exit = f"cannot start the engine: {type(e).__name__}: {e}"
                self.on_message(self.last_exit)
                proc = None
            started = time.monotonic()
            if proc is not None:
                with self._lock:
                    self.proc = proc
                self.starts += 1
                self.state = "running"
                self.on_message(f"engine started (pid {proc.pid}, log {self.log_path})")
                code = proc.wait()
                proc.stdin.close()
                with self._lock:
                    self.proc = None
                if self._stop.is_set():
                    break
                why = last_error_line(self.log_path)
                self.last_exit = f"engine exited ({describe_exit(code)})" + (f": {why}" if why else "")
                self.on_message(self.last_exit)
            if time.monotonic() - started > HEALTHY_AFTER:
                delay = 1.0
            self.state = "restarting"
            self.next_start = time.monotonic() + delay
            self.on_message(f"restarting the engine in {delay:.0f} s")
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, MAX_BACKOFF)
        self.state = "stopped"

    def stop(self, timeout: float = 8.0) -> None:
        self._stop.set()
        with self._lock:
            proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                if sys.platform == "win32":
                    proc.send_signal(signal.CTRL_BREAK_EVENT)
                else:
                    proc.terminate()
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)
        self.state = "stopped"

    def describe(self, answering: bool = True, shown: str = "") -> str:
        """What the engine process is doing; ``shown``: an error the caller already shows (not repeated)."""
        if self.state == "running" and self.proc is not None:
            again = f", restarted {self.starts - 1}x" if self.starts > 1 else ""
            if not answering:
                return f"starting, pid {self.proc.pid}{again}"
            return f"started by OBS, pid {self.proc.pid}{again}"
        if self.state == "restarting":
            wait = max(0.0, self.next_start - time.monotonic())
            repeat = self.last_exit and self.last_exit not in shown
            return f"restarting in {wait:.0f} s" + (f"; {self.last_exit}" if repeat else "")
        return ""
