"""Networks on another PC: a Triton inference server (``cbs-obs serve``) and the engine's client (``--remote``).

The engine keeps capture, the background plate, motion carry-forward and compositing; only the
networks' inputs travel, at the size each network runs at. ``protocol.py`` names what both sides
agree on, ``settings.py`` holds the user's choices, ``client.py`` is the engine's side (tritonclient),
``server.py`` the serving side (PyTriton) and ``served.py`` which networks a server offers.
Both packages are imported only when these features are used.
"""
from __future__ import annotations

from .settings import RemoteSettings, ServeSettings

_connected: tuple[RemoteSettings, object] | None = None


def connect(settings: RemoteSettings | None):
    """Route every network through the server ``settings`` names (None: local inference). Checks the
    server and the key now, so a wrong address or key is one clear line before anything else starts.
    Connecting twice with the same settings reuses the client."""
    global _connected
    from ..models import inference

    if settings is None:
        inference.use_remote(None)
        _connected = None
        return None
    if _connected is not None and _connected[0] == settings:
        inference.use_remote(_connected[1])
        return _connected[1]
    from .client import RemoteClient

    client = RemoteClient(settings)
    client.check()
    inference.use_remote(client)
    _connected = (settings, client)
    return client


__all__ = ["RemoteSettings", "ServeSettings", "connect"]
