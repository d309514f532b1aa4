"""The live app, wired in one place: engine, outputs, control plane, OBS bridge.

``cbs-obs run``, the engine the OBS script starts, the tests' live fixture, the soak script and
the bench all build the app here, so they all run the same wiring a user gets. Construction is
cheap and does no I/O; ``start()`` opens the source, starts every output and the HTTP server,
and ``stop()`` (idempotent) releases all of it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .engine import Engine, EngineConfig
from .look import Look
from .io.outputs import OutputSpec, build_output
from .web import ServerLimits, is_loopback

log = logging.getLogger(__name__)

DEFAULT_OUTPUTS = (OutputSpec("vcam", optional=True),)  # no output named: the virtual camera, if a driver exists


@dataclass(frozen=True)
class ControlSettings:
    """Where the panel, API and MJPEG stream are served, and who may change things."""

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None  # None: the user's token file (made on first use)
    presets: Path | None = None  # None: the user's presets file
    allow_hosts: tuple[str, ...] = ()  # extra names browsers may use for this machine (--allow-host)
    limits: ServerLimits = field(default_factory=ServerLimits)


@dataclass(frozen=True)
class AppConfig:
    engine: EngineConfig = field(default_factory=EngineConfig)
    look: Look = field(default_factory=Look)
    outputs: tuple[OutputSpec, ...] = DEFAULT_OUTPUTS
    control: ControlSettings = field(default_factory=ControlSettings)
    obs: object | None = None  # ObsSettings: follow program scenes through obs-websocket


class LiveApp:
    """Owns every live part; the only place that knows how they connect."""

    def __init__(self, config: AppConfig, *, source=None, stylizer=None, extra_outputs=()):
        from .control import token as tokens
        from .control.api import ControlApi
        from .control.controller import Controller
        from .control.presets import Presets
        from .io.outputs.mjpeg import MjpegStream
        from .web import WebServer

        self.config = config
        self.engine = Engine(config.engine, config.look, source=source, stylizer=stylizer)
        c = config.control
        self.controller = Controller(self.engine, Presets(c.presets))
        self.token = c.token or tokens.load_or_create()
        self.server = WebServer(c.host, c.port, token=self.token, allow_hosts=c.allow_hosts, limits=c.limits)
        self.stream = MjpegStream(self.server, owns_server=False)
        self.api = ControlApi(self.server, self.controller, self.token)
        self.engine.outputs = [self.stream, *(build_output(s, self) for s in config.outputs), *extra_outputs]
        self.bridge = None
        self._stopped = False

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> LiveApp:
        if not is_loopback(self.config.control.host):
            log.warning("listening on %s: your camera (the styled stream and snapshots) and the panel are "
                        "viewable from your network by anyone with the token; changes need it too. Use --host "
                        "127.0.0.1 to keep them on this machine. Browsers may reach it as: %s (add names with "
                        "--allow-host)", self.config.control.host, ", ".join(sorted(self.server.allowed_hosts)))
        self.server.start()
        try:
            self.engine.start()
        except BaseException:
            self.server.close()
            raise
        if self.config.obs is not None:
            from .obs.bridge import ObsBridge

            self.bridge = ObsBridge(self.config.obs, self.controller)
            self.bridge.start()
        return self

    def describe(self) -> list[str]:
        """Where everything is, for the person at the terminal."""
        from .control import token as tokens

        lines = [f"web panel: {self.url}/  (first time: open {self.url}/?token=TOKEN, TOKEN from `cbs-obs token`, "
                 f"stored in {tokens.token_path()})"]
        if self.server.reads_need_token:
            lines.append(f"MJPEG stream: {self.stream.url}?token=TOKEN  (off this machine the stream and snapshot "
                         "need the token too)")
        else:
            lines.append(f"MJPEG stream: {self.stream.url}  (snapshot: {self.url}/snapshot.jpg)")
        for out in self.engine.outputs:
            device = getattr(getattr(out, "cam", None), "device", None)
            if device:
                lines.append(f"virtual camera: {device}")
        lines.append(f"running {self.engine.source.name} -> {', '.join(o.name for o in self.engine.outputs)}; "
                     "Ctrl-C to stop")
        return lines

    def stop(self) -> None:
        """Idempotent; the bridge first (it drives the controller), the HTTP server last."""
        if self._stopped:
            return
        self._stopped = True
        if self.bridge is not None:
            self.bridge.close()
        try:
            self.engine.stop()
        finally:
            self.server.close()

    def __enter__(self) -> LiveApp:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["AppConfig", "ControlSettings", "DEFAULT_OUTPUTS", "LiveApp"]
