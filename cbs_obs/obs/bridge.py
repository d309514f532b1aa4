"""The engine's OBS bridge: follows program scene changes and applies the mapped preset.

Reconnects with backoff when OBS restarts (and re-applies the current scene's preset), and
never logs the password: obsws-python logs connection details at INFO, so its logger is capped.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from ..errors import ObsAuthError, ObsError

log = logging.getLogger(__name__)
logging.getLogger("obsws_python").setLevel(logging.WARNING)


@dataclass(frozen=True)
class ObsSettings:
    host: str = "127.0.0.1"
    port: int = 4455
    password: str | None = None
    timeout: float = 5.0

    @classmethod
    def from_args(cls, args) -> "ObsSettings":
        password = args.obs_password or os.environ.get("CBS_OBS_OBS_PASSWORD") or None
        return cls(args.obs_host, args.obs_port, password)

    def __repr__(self) -> str:  # never show the password, even in a debugger or a log line
        return f"ObsSettings(host={self.host!r}, port={self.port}, password={'***' if self.password else None})"


def _port_open(host: str, port: int, timeout: float) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def connect(settings: ObsSettings):
    """A ReqClient, or CbsError saying what to check: OBS not listening and a refused password read differently."""
    import obsws_python as obs

    if not _port_open(settings.host, settings.port, min(settings.timeout, 3.0)):
        raise ObsError(f"cannot reach OBS at {settings.host}:{settings.port}: start OBS and turn on Tools -> "
                       "WebSocket Server Settings -> Enable WebSocket server (port "
                       f"{settings.port}, or pass --obs-port)")
    quiet = logging.getLogger("obsws_python")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # it logs tracebacks (and the password) on failures; we say it in one line
    try:
        return obs.ReqClient(host=settings.host, port=settings.port, password=settings.password or "",
                             timeout=settings.timeout)
    except Exception as e:
        text = f"{type(e).__name__} {e}".lower()
        if "auth" in text or "4009" in text or "identify" in text or "closed" in text:
            hint = "the password is wrong" if settings.password else "it needs a password"
            raise ObsAuthError(f"OBS at {settings.host}:{settings.port} refused the connection: {hint}; use the one "
                           "from Tools -> WebSocket Server Settings -> Show Connect Info (CBS_OBS_OBS_PASSWORD or "
                           "--obs-password)") from None
        raise ObsError(f"OBS at {settings.host}:{settings.port} did not answer as obs-websocket 5 "
                       f"({type(e).__name__}); is that port OBS's WebSocket server?") from None
    finally:
        quiet.setLevel(level)


class ObsBridge:
    def __init__(self, settings: ObsSettings, controller, *, max_backoff: float = 10.0):
        self.settings, self.controller, self.max_backoff = settings, controller, max_backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.state = "starting"
        self.connections = 0

    def start(self) -> "ObsBridge":
        self._thread = threading.Thread(target=self._run, name="obs-bridge", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        import obsws_python as obs

        delay = 0.5
        while not self._stop.is_set():
            events = req = None
            try:
                req = connect(self.settings)
                scene = req.get_current_program_scene().current_program_scene_name

                events = obs.EventClient(host=self.settings.host, port=self.settings.port,
                                         password=self.settings.password or "", timeout=self.settings.timeout)
                events.callback.register(self.on_current_program_scene_changed)
                self.controller.on_scene(scene)  # re-applied after every (re)connect
                self.connections += 1
                self.state = "connected"
                self.connected.set()
                log.info("connected to OBS at %s:%d (program scene %r)", self.settings.host, self.settings.port, scene)
                delay = 0.5
                while not self._stop.wait(1.0):
                    req.get_version()  # raises once OBS is gone
            except Exception as e:  # OBS not there yet, gone, or restarting
                if self.connected.is_set():
                    log.warning("lost OBS (%s); reconnecting", type(e).__name__)
                else:
                    log.debug("OBS not reachable: %s", e)
                self.connected.clear()
                self.state = "reconnecting"
            finally:
                for client in (events, req):
                    try:
                        if client is not None:
                            client.disconnect()
                    except Exception:
                        pass
            self._stop.wait(delay)
            delay = min(delay * 2, self.max_backoff)

    def on_current_program_scene_changed(self, data) -> None:
        """Named as obsws-python expects: it routes events to callbacks by function name."""
        self.controller.on_scene(data.scene_name)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
