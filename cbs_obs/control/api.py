"""The HTTP control API and web panel, mounted on the engine's WebServer.

Reading is open on the bound address; every change needs the token (``Authorization: Bearer``
or ``X-CBS-Token``). Requests from other web origins are refused, so a web page in the user's
browser cannot drive the engine; the panel itself (same origin) and the OBS dock can.
A rejected request changes nothing: looks are validated in full before they are swapped in.
"""
from __future__ import annotations

import logging
import threading
from importlib.resources import files
from urllib.parse import quote, urlsplit

import cv2
import numpy as np

from ..look import Look
from ..style.catalog import FILTERS, UPLOAD_RE, create, is_safe_spec, uploads, uploads_dir
from ..style.magenta import BUILTIN_STYLES
from ..web import HttpError, Request, Response, WebServer
from . import token as tokens
from .controller import Controller
from .openapi import openapi

log = logging.getLogger(__name__)
UPLOAD_LIMIT = 8 * 1024 * 1024
UPLOAD_TYPES = {"image/png", "image/jpeg", "image/webp"}
MAX_UPLOAD_SIDE = 4096
MAX_UPLOADS = 100


class ControlApi:
    def __init__(self, server: WebServer, controller: Controller, token: str):
        self.server, self.ctl, self.token = server, controller, token
        self._thumbs: dict[str, bytes] = {}
        self._thumb_lock = threading.Lock()
        self._sample: np.ndarray | None = None
        server.before.append(self._check_origin)
        for method, path, fn in (
            ("GET", "/", self.panel), ("GET", "/api/openapi.json", self.openapi),
            ("GET", "/api/state", self.state), ("GET", "/api/classes", self.classes),
            ("GET", "/api/styles", self.styles), ("GET", "/api/thumbnail/{spec}", self.thumbnail),
            ("GET", "/api/stats", self.stats), ("GET", "/api/presets", self.list_presets),
            ("PUT", "/api/look", self.put_look), ("PATCH", "/api/look", self.patch_look),
            ("POST", "/api/presets/{name}", self.save_preset), ("DELETE", "/api/presets/{name}", self.delete_preset),
            ("POST", "/api/apply/{name}", self.apply_preset), ("POST", "/api/cycle/{direction}", self.cycle),
            ("POST", "/api/enabled/{value}", self.enabled), ("PUT", "/api/scenes", self.put_scenes),
            ("POST", "/api/scene/{scene}", self.scene), ("POST", "/api/uploads/{name}", self.upload),
            ("DELETE", "/api/uploads/{name}", self.delete_upload),
        ):
            server.route(method, path, fn)

    # -- guards -------------------------------------------------------------------------------
    def _check_origin(self, req: Request) -> None:
        origin = req.headers.get("Origin")
        if origin and origin != "null":
            o = urlsplit(origin)
            host = req.headers.get("Host", "")
            if o.netloc != host:
                raise HttpError(403, f"requests from {origin} are not allowed; use the panel at "
                                f"http://{host}/ or an OBS browser dock")
        if req.method not in ("GET", "HEAD"):
            given = req.headers.get("X-CBS-Token")
            auth = req.headers.get("Authorization", "")
            if not given and auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if not given:
                raise HttpError(401, "this change needs the API token: send 'Authorization: Bearer TOKEN' "
                                "(cbs-obs token prints it)")
            if not tokens.matches(self.token, given):
                raise HttpError(403, "wrong API token (cbs-obs token prints the right one)")

    def _json_object(self, req: Request) -> dict:
        data = req.json()
        if not isinstance(data, dict):
            raise HttpError(400, "send a JSON object")
        return data

    def _look_from(self, data) -> Look:
        return self._safe(Look.from_dict(data))

    @staticmethod
    def _safe(look: Look) -> Look:
        for a in look.assignments:
            if not is_safe_spec(a.style):
                raise HttpError(400, f"style {a.style!r} names a file path; through the API, use an uploaded "
                                "image instead: POST /api/uploads/NAME, then style-image:@NAME or image:@NAME")
        return look

    # -- reading ------------------------------------------------------------------------------
    def panel(self, req: Request) -> Response:
        html = (files("cbs_obs.assets") / "panel.html").read_bytes()
        return Response(200, html, "text/html; charset=utf-8",
                        {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                         "script-src 'self' 'unsafe-inline'; img-src 'self' blob: data:",
                         "X-Frame-Options": "DENY"})

    def openapi(self, req: Request) -> Response:
        return Response.json(openapi())

    def state(self, req: Request) -> Response:
        e = self.ctl.engine
        return Response.json({
            "look": self.ctl.look.to_dict(), "preset": self.ctl.preset, "presets": self.ctl.presets.names(),
            "scenes": self.ctl.presets.scenes, "scene": self.ctl.scene, "segmenter": e.config.segmenter,
            "classes": list(e.classes), "stats": e.stats.snapshot(), "stream": "/stream.mjpg",
            "snapshot": "/snapshot.jpg", "changes": self.ctl.changes,
        })

    def classes(self, req: Request) -> Response:
        return Response.json({"segmenter": self.ctl.engine.config.segmenter, "classes": list(self.ctl.engine.classes)})

    def styles(self, req: Request) -> Response:
        items = [{"name": n, "kind": "neural"} for n in BUILTIN_STYLES]
        # "image" needs a picture (offered per upload below); "none" is every panel's own first choice
        items += [{"name": n, "kind": "filter"} for n in FILTERS if n not in ("image", "none")]
        items += [{"name": f"style-image:@{n}", "kind": "upload"} for n, p in uploads().items() if p.suffix != ".pth"]
        items += [{"name": f"image:@{n}", "kind": "upload-replace"} for n, p in uploads().items()
                  if p.suffix != ".pth"]
        for it in items:
            it["thumbnail"] = "/api/thumbnail/" + quote(it["name"], safe="")
        return Response.json({"styles": items, "families": ["blur:RADIUS", "pixelate:BLOCK", "color:#RRGGBB",
                                                             "style-image:@UPLOAD", "image:@UPLOAD"]})

    def _sample_frame(self) -> np.ndarray:
        if self._sample is None:
            from ..engine.sources import demo_clip_path
            from ..video import open_video

            cap, _, _ = open_video(demo_clip_path())
            ok, frame = cap.read()
            cap.release()
            self._sample = cv2.resize(frame, (160, 90), interpolation=cv2.INTER_AREA)
        return self._sample

    def thumbnail(self, req: Request) -> Response:
        spec = req.params["spec"]
        if len(spec) > 200 or not is_safe_spec(spec):
            raise HttpError(400, "thumbnails are only made for built-in styles, filters and uploads")
        with self._thumb_lock:
            data = self._thumbs.get(spec)
        if data is None:
            styled = create(spec).apply(self._sample_frame())
            data = cv2.imencode(".jpg", styled, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
            with self._thumb_lock:
                if len(self._thumbs) > 500:
                    self._thumbs.clear()
                self._thumbs[spec] = data
        return Response(200, data, "image/jpeg", {"Cache-Control": "max-age=3600"})

    def stats(self, req: Request) -> Response:
        return Response.json(self.ctl.engine.stats.snapshot())

    def list_presets(self, req: Request) -> Response:
        return Response.json({"presets": {n: self.ctl.presets.get(n).to_dict() for n in self.ctl.presets.names()},
                              "current": self.ctl.preset, "scenes": self.ctl.presets.scenes})

    # -- changing -----------------------------------------------------------------------------
    def put_look(self, req: Request) -> Response:
        look = self.ctl.set_look(self._look_from(self._json_object(req)))
        return Response.json({"look": look.to_dict()})

    def patch_look(self, req: Request) -> Response:
        look = self._safe(self.ctl.patched(self._json_object(req)))
        return Response.json({"look": self.ctl.set_look(look).to_dict()})

    def save_preset(self, req: Request) -> Response:
        look = self._look_from(self._json_object(req)) if req.body else None
        self.ctl.save_preset(req.params["name"], look)
        return Response.json({"saved": req.params["name"], "presets": self.ctl.presets.names()}, 201)

    def delete_preset(self, req: Request) -> Response:
        self.ctl.presets.delete(self._known_preset(req.params["name"]))
        if self.ctl.preset == req.params["name"]:
            self.ctl.preset = None
        return Response.json({"deleted": req.params["name"], "presets": self.ctl.presets.names()})

    def _known_preset(self, name: str) -> str:
        if name not in self.ctl.presets.names():
            raise HttpError(404, f"no preset named {name!r}; presets: {', '.join(self.ctl.presets.names()) or 'none'}")
        return name

    def apply_preset(self, req: Request) -> Response:
        look = self.ctl.apply_preset(self._known_preset(req.params["name"]))
        return Response.json({"preset": req.params["name"], "look": look.to_dict()})

    def cycle(self, req: Request) -> Response:
        step = {"next": 1, "previous": -1}.get(req.params["direction"])
        if step is None:
            raise HttpError(404, "cycle direction must be next or previous")
        return Response.json({"preset": self.ctl.cycle(step)})

    def enabled(self, req: Request) -> Response:
        value = {"on": True, "off": False, "toggle": None}
        if req.params["value"] not in value:
            raise HttpError(404, "use /api/enabled/on, /off or /toggle")
        return Response.json({"enabled": self.ctl.toggle(value[req.params["value"]])})

    def put_scenes(self, req: Request) -> Response:
        self.ctl.presets.set_scenes(self._json_object(req))
        return Response.json({"scenes": self.ctl.presets.scenes})

    def scene(self, req: Request) -> Response:
        return Response.json({"scene": req.params["scene"], "preset": self.ctl.on_scene(req.params["scene"])})

    def upload(self, req: Request) -> Response:
        name = req.params["name"]
        if not UPLOAD_RE.match(name):
            raise HttpError(400, "upload names are 1-40 letters, digits, '_' or '-'")
        ctype = req.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in UPLOAD_TYPES:
            raise HttpError(415, f"upload an image as image/png, image/jpeg or image/webp (got {ctype or 'nothing'})")
        if len(req.body) > UPLOAD_LIMIT:
            raise HttpError(413, f"image too large ({len(req.body)} bytes; limit {UPLOAD_LIMIT})")
        img = cv2.imdecode(np.frombuffer(req.body, np.uint8), cv2.IMREAD_COLOR) if req.body else None
        if img is None:
            raise HttpError(400, "the upload is not a readable image")
        if max(img.shape[:2]) > MAX_UPLOAD_SIDE or min(img.shape[:2]) < 16:
            raise HttpError(400, f"image must be 16-{MAX_UPLOAD_SIDE} pixels per side "
                                 f"(got {img.shape[1]}x{img.shape[0]})")
        existing = uploads()
        if name not in existing and len(existing) >= MAX_UPLOADS:
            raise HttpError(409, f"too many uploads ({MAX_UPLOADS}); delete some first")
        folder = uploads_dir()
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{name}.*"):
            old.unlink()
        cv2.imwrite(str(folder / f"{name}.png"), img)  # re-encoded: nothing but pixels is kept
        with self._thumb_lock:
            self._thumbs = {k: v for k, v in self._thumbs.items() if not k.endswith(f"@{name}")}
        return Response.json({"upload": name, "styles": [f"style-image:@{name}", f"image:@{name}"]}, 201)

    def delete_upload(self, req: Request) -> Response:
        name = req.params["name"]
        if not UPLOAD_RE.match(name) or name not in uploads():
            raise HttpError(404, f"no upload named {name!r}")
        in_use = [a.cls for a in self.ctl.look.assignments if a.style.endswith(f"@{name}")]
        if in_use:
            raise HttpError(409, f"upload {name!r} is in use by class(es) {', '.join(in_use)}; change them first")
        uploads()[name].unlink()
        return Response.json({"deleted": name})

