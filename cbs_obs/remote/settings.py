"""The user's choices for remote inference, checked when they are made."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import SettingsError
from . import protocol

KEY_ENV = "CBS_OBS_REMOTE_KEY"
FALLBACKS = ("none", "local")


def parse_url(url: str) -> tuple[str, int]:
    """``grpc://HOST:PORT`` (the port defaults to Triton's gRPC port) -> (host, port)."""
    if not isinstance(url, str) or not url.startswith("grpc://"):
        raise SettingsError(f"--remote {url!r}: give the server as grpc://HOST:PORT, e.g. grpc://192.168.1.20:8001")
    rest = url[len("grpc://"):].rstrip("/")
    host, sep, port = rest.rpartition(":") if not rest.endswith("]") else (rest, "", "")
    if not sep:
        host, port = rest, str(protocol.DEFAULT_GRPC_PORT)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"--remote {url!r}: give the server as grpc://HOST:PORT, e.g. grpc://192.168.1.20:8001")
    return host, int(port)


@dataclass(frozen=True)
class RemoteSettings:
    """``url``: grpc://HOST:PORT. ``key``: the server's shared key (None: the CBS_OBS_REMOTE_KEY variable,
    else none). ``fallback``: ``none`` keeps the last masks and styles while the server is lost,
    ``local`` runs the networks here meanwhile. ``timeout_s``: longest wait for one answer."""

    url: str
    key: str | None = None
    fallback: str = "none"
    timeout_s: float = 10.0

    def __post_init__(self):
        parse_url(self.url)
        if self.fallback not in FALLBACKS:
            raise SettingsError(f"--remote-fallback must be {' or '.join(FALLBACKS)}, got {self.fallback!r}")
        if not 0 < self.timeout_s <= 120:
            raise SettingsError(f"remote timeout must be 0-120 s, got {self.timeout_s}")
        if self.key is None and os.environ.get(KEY_ENV):
            object.__setattr__(self, "key", os.environ[KEY_ENV])

    @property
    def address(self) -> str:
        host, port = parse_url(self.url)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def public(self) -> dict:
        """For the control API's state: never the key itself."""
        return {"url": self.url, "fallback": self.fallback, "key": bool(self.key)}


@dataclass(frozen=True)
class ServeSettings:
    """Where ``cbs-obs serve`` listens (Triton's default ports) and what it serves."""

    host: str = "127.0.0.1"
    grpc_port: int = protocol.DEFAULT_GRPC_PORT
    http_port: int = protocol.DEFAULT_HTTP_PORT
    metrics_port: int = protocol.DEFAULT_METRICS_PORT
    key: str | None = None
    johnson: tuple[Path, ...] = ()
    segmenters: tuple[str, ...] = ("person", "person-face", "cityscapes")

    def __post_init__(self):
        from ..web import is_loopback

        ports = (self.grpc_port, self.http_port, self.metrics_port)
        if any(not 0 < p < 65536 for p in ports) or len(set(ports)) != 3:
            raise SettingsError(f"serve ports must be three different numbers 1-65535, got {ports}")
        if self.key is None and os.environ.get(KEY_ENV):
            object.__setattr__(self, "key", os.environ[KEY_ENV])
        if self.key is not None and len(self.key) < 8:
            raise SettingsError("the shared key must be at least 8 characters; make one with: "
                                "python -c \"import secrets; print(secrets.token_urlsafe(24))\"")
        if not is_loopback(self.host) and not self.key:
            raise SettingsError(f"serving on {self.host} lets anyone on your network use this PC's GPU: give a shared "
                                f"key with --key KEY (or {KEY_ENV}), or keep --host 127.0.0.1")
