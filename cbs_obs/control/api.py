"""The HTTP control API and web panel, as routes of the engine's WebServer (FastAPI).

Reading is open on loopback; every change needs the token (``Authorization: Bearer``,
``X-CBS-Token`` or ``?token=``), and off loopback reading needs it too. Host and Origin are
checked against the engine's own names before anything else (``web.Guard``), so a web page in the
user's browser, rebinding its DNS name or not, can neither drive nor watch the engine. A rejected
request changes nothing: looks are validated in full before they are swapped in. State changes
are pushed to the panel over server-sent events (``/api/events``).
"""
from __future__ import annotations

import json
import logging
import threading
from importlib.resources import files
from typing import Optional
from urllib.parse import quote

import cv2
import numpy as np
from fastapi import Request

from ..errors import CbsError
from ..look import Look
from ..style import STYLE_FAMILIES
from ..style.catalog import create, is_safe_spec, uploads, uploads_dir
from ..web import HttpError, Pulse, WebServer, json_response
from . import uploads as upload_store
from .controller import Controller
from .models import MAX_SPEC, ErrorOut, LookIn, LookPatchIn, SceneTable
from .presets import clean_stale_temps as clean_preset_temps

log = logging.getLogger(__name__)
UPLOAD_LIMIT = 8 * 1024 * 1024
UPLOAD_TYPES = {"image/png", "image/jpeg", "image/webp"}
MAX_UPLOAD_SIDE = upload_store.MAX_SIDE
MAX_UPLOADS = upload_store.MAX_UPLOADS
STATS_EVERY_S = 1.0

_ERR = {"model": ErrorOut}
READ_ERRORS = {400: _ERR, 401: _ERR, 403: _ERR, 404: _ERR}
CHANGE_ERRORS = {400: _ERR, 401: _ERR, 403: _ERR, 404: _ERR, 409: _ERR, 413: _ERR}
SECURITY = [{"bearer": []}, {"header": []}, {"query": []}]


def _safe(look: Look) -> Look:
    for a in look.assignments:
        if not is_safe_spec(a.style):
            raise HttpError(400, f"style {a.style!r} names a file path; through the API, use an uploaded "
                                 "image instead: POST /api/uploads/NAME, then style-image:@NAME or image:@NAME")
    return look


def _look(body: LookIn) -> Look:
    return _safe(Look.from_dict(body.model_dump()))


def class_groups(classes: tuple[str, ...]) -> dict[str, list[str]]:
    """The groups a look may name besides the classes ({"person": ["face", "body"]} with person-face)."""
    from ..segment import CLASS_GROUPS, known_names

    return {g: list(CLASS_GROUPS[g]) for g in known_names(classes)[len(classes):]}


class ControlApi:
    def __init__(self, server: WebServer, controller: Controller, token: str):
        self.server, self.ctl, self.token = server, controller, token
        if server.token is None:
            server.token = token
        self._thumbs: dict[str, bytes] = {}
        self._thumb_lock = threading.Lock()
        self._sample: np.ndarray | None = None
        self.pulse = Pulse()
        controller.on_change(self.pulse.fire)
        upload_store.clean_stale_temps(uploads_dir())
        clean_preset_temps(controller.presets.path.parent)
        self._routes(server.app)
        _document_security(server.app)

    # -- reading ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        e = self.ctl.engine
        return {
            "look": self.ctl.look.to_dict(), "preset": self.ctl.preset, "presets": self.ctl.presets.names(),
            "scenes": self.ctl.presets.scenes, "scene": self.ctl.scene, "segmenter": e.config.segmenter,
            "classes": list(e.classes), "groups": class_groups(tuple(e.classes)), "stats": e.stats.snapshot(),
            "stream": "/stream.mjpg",
            "snapshot": "/snapshot.jpg", "events": "/api/events", "changes": self.ctl.changes,
            "token_for_reading": self.server.reads_need_token,
        }

    def styles_dict(self) -> dict:
        families = STYLE_FAMILIES.values()
        items = [{"name": n, "kind": "neural" if f.neural else "filter"} for f in families for n in f.names]
        # "none" is the panels' own "off" choice, so it is not listed twice
        items += [{"name": f.name, "kind": "filter"} for f in families if f.bare and f.name != "none"]
        ups = [n for n, p in uploads().items() if p.suffix != ".pth"]
        items += [{"name": f"style-image:@{n}", "kind": "upload"} for n in ups]
        items += [{"name": f"image:@{n}", "kind": "upload-replace"} for n in ups]
        for it in items:
            it["thumbnail"] = "/api/thumbnail/" + quote(it["name"], safe="")
        forms = [f"{f.name}:{'@UPLOAD' if f.reads_file else f.argument}" for f in families
                 if f.argument and not f.names]
        return {"styles": items, "families": forms}

    def _sample_frame(self) -> np.ndarray:
        if self._sample is None:
            from ..io.sources import demo_clip_path
            from ..io.video import open_video

            cap, _, _ = open_video(demo_clip_path())
            ok, frame = cap.read()
            cap.release()
            self._sample = cv2.resize(frame, (160, 90), interpolation=cv2.INTER_AREA)
        return self._sample

    def thumbnail_jpeg(self, spec: str) -> bytes:
        if len(spec) > MAX_SPEC or not is_safe_spec(spec):
            raise HttpError(400, "thumbnails are only made for built-in styles, filters and uploads")
        key = spec
        if "@" in spec:  # an upload: a re-upload must show the new picture
            name = spec.rsplit("@", 1)[1]
            path = uploads().get(name)
            key = f"{spec}|{path.stat().st_mtime_ns if path else 'missing'}"
        with self._thumb_lock:
            data = self._thumbs.get(key)
        if data is None:
            styled = create(spec).apply(self._sample_frame())
            data = cv2.imencode(".jpg", styled, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
            with self._thumb_lock:
                if len(self._thumbs) > 500:
                    self._thumbs.clear()
                self._thumbs[key] = data
        return data

    async def events(self):
        """``state`` on connect and after every change, ``stats`` every second, until the client leaves."""
        from starlette.concurrency import run_in_threadpool

        seen = -1
        last_stats = 0.0
        import time

        while not self.server.closing.is_set():
            if self.pulse.count != seen:
                seen = self.pulse.count
                state = await run_in_threadpool(self.state_dict)
                yield f"event: state\ndata: {json.dumps(state)}\n\n"
            now = time.monotonic()
            if now - last_stats >= STATS_EVERY_S:
                last_stats = now
                yield f"event: stats\ndata: {json.dumps(self.ctl.engine.stats.snapshot())}\n\n"
            await self.pulse.wait(seen, STATS_EVERY_S)

    # -- changing -----------------------------------------------------------------------------
    def _known_preset(self, name: str) -> str:
        if name not in self.ctl.presets.names():
            raise HttpError(404, f"no preset named {name!r}; presets: {', '.join(self.ctl.presets.names()) or 'none'}")
        return name

    def store_upload(self, name: str, data: bytes, ctype: str) -> dict:
        try:
            upload_store.check_upload_name(name)
        except CbsError as e:
            raise HttpError(400, str(e)) from None
        if ctype not in UPLOAD_TYPES:
            raise HttpError(415, f"upload an image as image/png, image/jpeg or image/webp (got {ctype or 'nothing'})")
        if len(data) > UPLOAD_LIMIT:
            raise HttpError(413, f"image too large ({len(data)} bytes; limit {UPLOAD_LIMIT})")
        existing = uploads()
        if name not in existing and len(existing) >= MAX_UPLOADS:
            raise HttpError(409, f"too many uploads ({MAX_UPLOADS}); delete some first")
        upload_store.store(name, data)
        self.ctl.refresh_uploads(name)  # the style library and the running look pick up the new picture
        return {"upload": name, "styles": [f"style-image:@{name}", f"image:@{name}"]}

    def delete_upload(self, name: str) -> dict:
        if name not in uploads():
            raise HttpError(404, f"no upload named {name!r}")
        with self.ctl._lock:
            in_use = [a.cls for a in self.ctl.look.assignments if a.style.endswith(f"@{name}")]
            if in_use:
                raise HttpError(409, f"upload {name!r} is in use by class(es) {', '.join(in_use)}; change them first")
            uploads()[name].unlink()
        self.ctl.refresh_uploads(name)
        return {"deleted": name}

    # -- routes -------------------------------------------------------------------------------
    def _routes(self, app) -> None:  # noqa: C901 (one flat table of small routes reads best)
        from fastapi import Body
        from fastapi.responses import HTMLResponse, Response, StreamingResponse

        ctl = self.ctl

        @app.get("/", response_class=HTMLResponse, include_in_schema=False)
        def panel():
            html = (files("cbs_obs.assets") / "panel.html").read_bytes()
            return HTMLResponse(html, headers={
                "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                           "script-src 'self' 'unsafe-inline'; img-src 'self' blob: data:",
                "X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

        @app.get("/api/state", summary="everything the panel shows", responses=READ_ERRORS)
        def state() -> dict:
            return json_response(self.state_dict())

        @app.get("/api/events", summary="server-sent events: 'state' after every change, 'stats' every second",
                 response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}},
                 openapi_extra={"x-endless": True})
        async def events():
            return StreamingResponse(self.events(), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

        @app.get("/api/classes", summary="the segmenter's classes", responses=READ_ERRORS)
        def classes() -> dict:
            classes = tuple(ctl.engine.classes)
            return json_response({"segmenter": ctl.engine.config.segmenter, "classes": list(classes),
                                  "groups": class_groups(classes)})

        @app.get("/api/styles", summary="style names with thumbnail URLs", responses=READ_ERRORS)
        def styles() -> dict:
            return json_response(self.styles_dict())

        @app.get("/api/thumbnail/{spec:path}", summary="a style's thumbnail (JPEG)", response_class=Response,
                 responses={200: {"content": {"image/jpeg": {}}}, **READ_ERRORS})
        def thumbnail(spec: str):
            return Response(self.thumbnail_jpeg(spec), media_type="image/jpeg",
                            headers={"Cache-Control": "max-age=3600"})

        @app.get("/api/stats", summary="live figures", responses=READ_ERRORS)
        def stats() -> dict:
            return json_response(ctl.engine.stats.snapshot())

        @app.get("/api/presets", summary="saved presets and the scene table", responses=READ_ERRORS)
        def list_presets() -> dict:
            return json_response({"presets": {n: ctl.presets.get(n).to_dict() for n in ctl.presets.names()},
                                  "current": ctl.preset, "scenes": ctl.presets.scenes})

        @app.put("/api/look", summary="replace the look", responses=CHANGE_ERRORS)
        def put_look(body: LookIn) -> dict:
            return json_response({"look": ctl.set_look(_look(body)).to_dict()})

        @app.patch("/api/look", summary="edit part of the look", responses=CHANGE_ERRORS)
        def patch_look(body: LookPatchIn) -> dict:
            return json_response({"look": ctl.patch_look(body.as_patch(), check=_safe).to_dict()})

        @app.post("/api/presets/{name:path}", summary="save the current look (or the body's) as a preset",
                  status_code=201, responses=CHANGE_ERRORS)
        def save_preset(name: str, body: Optional[LookIn] = Body(None)) -> dict:
            ctl.save_preset(name, _look(body) if body is not None else None)
            return json_response({"saved": name, "presets": ctl.presets.names()}, 201)

        @app.delete("/api/presets/{name:path}", summary="delete a preset", responses=CHANGE_ERRORS)
        def delete_preset(name: str) -> dict:
            ctl.delete_preset(self._known_preset(name))
            return json_response({"deleted": name, "presets": ctl.presets.names()})

        @app.post("/api/apply/{name:path}", summary="apply a preset", responses=CHANGE_ERRORS)
        def apply_preset(name: str) -> dict:
            look = ctl.apply_preset(self._known_preset(name))
            return json_response({"preset": name, "look": look.to_dict()})

        @app.post("/api/cycle/{direction}", summary="next or previous preset", responses=CHANGE_ERRORS)
        def cycle(direction: str) -> dict:
            step = {"next": 1, "previous": -1}.get(direction)
            if step is None:
                raise HttpError(404, "cycle direction must be next or previous")
            return json_response({"preset": ctl.cycle(step)})

        @app.post("/api/enabled/{value}", summary="styling on, off or toggle", responses=CHANGE_ERRORS)
        def enabled(value: str) -> dict:
            choice: dict[str, Optional[bool]] = {"on": True, "off": False, "toggle": None}
            if value not in choice:
                raise HttpError(404, "use /api/enabled/on, /off or /toggle")
            return json_response({"enabled": ctl.toggle(choice[value])})

        @app.put("/api/scenes", summary="OBS scene -> preset table", responses=CHANGE_ERRORS)
        def put_scenes(body: SceneTable) -> dict:
            ctl.set_scenes(body)
            return json_response({"scenes": ctl.presets.scenes})

        @app.post("/api/scene/{scene:path}", summary="a program scene went live", responses=CHANGE_ERRORS)
        def scene(scene: str) -> dict:
            return json_response({"scene": scene, "preset": ctl.on_scene(scene)})

        upload_body = {"requestBody": {"required": True, "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in sorted(UPLOAD_TYPES)}}}

        @app.post("/api/uploads/{name:path}", summary="upload a picture usable as style-image:@NAME or image:@NAME",
                  status_code=201, openapi_extra=upload_body, responses={**CHANGE_ERRORS, 415: _ERR})
        async def upload(name: str, request: Request) -> dict:
            from starlette.concurrency import run_in_threadpool

            data = await request.body()  # already read and bounded by the guard
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            return json_response(await run_in_threadpool(self.store_upload, name, data, ctype), 201)

        @app.delete("/api/uploads/{name:path}", summary="delete an upload", responses=CHANGE_ERRORS)
        def delete_upload(name: str) -> dict:
            return json_response(self.delete_upload(name))

        for route in app.routes:  # every change needs the token: say so in the document
            methods = getattr(route, "methods", None) or set()
            if methods - {"GET", "HEAD"} and hasattr(route, "openapi_extra"):
                route.openapi_extra = {**(route.openapi_extra or {}), "security": SECURITY}


def _document_security(app) -> None:
    """Token schemes in the generated document (checked by ``web.Guard``, before the body is read)."""
    make = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = make()
            for ops in doc.get("paths", {}).values():  # invalid bodies are answered 400, never 422
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)
            for unused in ("HTTPValidationError", "ValidationError"):
                doc.get("components", {}).get("schemas", {}).pop(unused, None)
            doc.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "header": {"type": "apiKey", "in": "header", "name": "X-CBS-Token"},
                "query": {"type": "apiKey", "in": "query", "name": "token"}}
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi


def openapi_document() -> dict:
    """The document the running engine serves at /api/openapi.json, built without starting anything."""
    from .presets import Presets

    class _Engine:
        classes = ()
        look = Look()

    server = WebServer("127.0.0.1", 0)
    ctl = Controller(_Engine(), Presets.__new__(Presets))
    ctl.presets.path = uploads_dir().parent / "presets.json"
    api = ControlApi.__new__(ControlApi)
    api.server, api.ctl, api.token = server, ctl, None
    api.pulse = Pulse()
    api._routes(server.app)
    _document_security(server.app)
    from ..io.outputs.mjpeg import MjpegStream

    MjpegStream(server)
    return server.app.openapi()

