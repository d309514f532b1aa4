"""Where composited frames go: virtual camera, MJPEG stream, recording, preview window, null.

Every output has ``start(w, h, fps)``, ``send(frame, pixels)`` and an idempotent ``close()``. A failing output is
logged and dropped by the engine; the others keep running. Outputs are found by name in a registry
(``register_output``), so a new output is one module plus one registration line, also from outside
the package.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from ...errors import UnknownNameError

import numpy as np

from ...engine.frames import Frame


class Output(Protocol):
    name: str

    def start(self, width: int, height: int, fps: float) -> None:
        """Acquire devices, files and ports; raise CbsError with the fix when that is impossible."""
        ...

    def send(self, frame: Frame, pixels: np.ndarray) -> None: ...

    def close(self) -> None: ...


class NullOutput:
    """Discards frames (benchmarks, or a run that only feeds stats)."""

    name = "null"

    def __init__(self):
        self.frames = 0

    def start(self, width: int, height: int, fps: float) -> None:
        pass

    def send(self, frame: Frame, pixels: np.ndarray) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class OutputSpec:
    """An output by registered name with its options. ``optional``: if it cannot start (no driver),
    the app runs on without it and says so, instead of refusing to start."""

    kind: str
    options: Mapping = field(default_factory=lambda: MappingProxyType({}))
    optional: bool = False


# name -> factory(options, app) -> Output. ``app`` is the LiveApp (outputs such as the preview window
# drive its engine and controller).
OUTPUTS: dict[str, Callable] = {}


def register_output(name: str, factory: Callable) -> None:
    OUTPUTS[name] = factory


def build_output(spec: OutputSpec, app=None) -> Output:
    try:
        factory = OUTPUTS[spec.kind]
    except KeyError:
        raise UnknownNameError("output", spec.kind, sorted(OUTPUTS)) from None
    out = factory(dict(spec.options), app)
    if spec.optional:
        out.optional = True
    return out


def _vcam(options, app):
    from .vcam import VirtualCamera

    return VirtualCamera(device=options.get("device"), backend=options.get("backend"))


def _record(options, app):
    from .record import Recorder

    return Recorder(options["path"], realtime=options.get("realtime", True))


def _preview(options, app):
    from .preview import PreviewWindow

    return PreviewWindow(lambda key: preview_key(app, key))


def preview_key(app, key: str) -> None:
    """A key pressed in the preview window: quit, styling on/off, next/previous preset."""
    import logging

    from ...errors import CbsError

    try:
        if key == "quit":
            app.engine.request_stop()
        elif key == "toggle":
            app.controller.toggle()
        elif key in ("next", "previous"):
            app.controller.cycle(1 if key == "next" else -1)
    except CbsError as e:
        logging.getLogger(__name__).warning("%s", e)


register_output("vcam", _vcam)
register_output("record", _record)
register_output("preview", _preview)
register_output("null", lambda options, app: NullOutput())
