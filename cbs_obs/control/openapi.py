"""The control API described as OpenAPI 3.0, served at /api/openapi.json (and used by the fuzz tests)."""
from __future__ import annotations

from .. import __version__

_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_OK = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}


def _op(summary: str, *, params=(), body=None, change=False, ok=None) -> dict:
    op: dict = {"summary": summary, "responses": {"200": ok or _OK, "400": _ERR, "404": _ERR}}
    if params:
        op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    if change:
        op["security"] = [{"bearer": []}, {"header": []}]
        op["responses"].update({"401": _ERR, "403": _ERR})
    return op


def openapi() -> dict:
    look = {"$ref": "#/components/schemas/Look"}
    json_body = lambda schema: {"application/json": {"schema": schema}}  # noqa: E731
    return {
        "openapi": "3.0.3",
        "info": {"title": "cbs-obs control API", "version": __version__},
        "paths": {
            "/api/state": {"get": _op("everything the panel shows")},
            "/api/classes": {"get": _op("the segmenter's classes")},
            "/api/styles": {"get": _op("style names with thumbnail URLs")},
            "/api/thumbnail/{spec}": {"get": _op("a style's thumbnail (JPEG)", params=["spec"],
                                                 ok={"description": "JPEG", "content": {"image/jpeg": {}}})},
            "/api/stats": {"get": _op("live figures")},
            "/api/presets": {"get": _op("saved presets and the scene table")},
            "/api/look": {
                "put": _op("replace the look", body=json_body(look), change=True),
                "patch": _op("edit part of the look", body=json_body({"$ref": "#/components/schemas/LookPatch"}),
                             change=True),
            },
            "/api/presets/{name}": {
                "post": _op("save the current look (or the body's) as a preset", params=["name"],
                            body=json_body(look), change=True),
                "delete": _op("delete a preset", params=["name"], change=True),
            },
            "/api/apply/{name}": {"post": _op("apply a preset", params=["name"], change=True)},
            "/api/cycle/{direction}": {"post": _op("next or previous preset", params=["direction"], change=True)},
            "/api/enabled/{value}": {"post": _op("styling on, off or toggle", params=["value"], change=True)},
            "/api/scenes": {"put": _op("OBS scene -> preset table", change=True,
                                       body=json_body({"type": "object", "additionalProperties": {"type": "string"}}))},
            "/api/scene/{scene}": {"post": _op("a program scene went live", params=["scene"], change=True)},
            "/api/uploads/{name}": {
                "post": _op("upload an image usable as style-image:@NAME or image:@NAME", params=["name"],
                            change=True, body={t: {"schema": {"type": "string", "format": "binary"}}
                                               for t in ("image/png", "image/jpeg", "image/webp")}),
                "delete": _op("delete an upload", params=["name"], change=True),
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "header": {"type": "apiKey", "in": "header", "name": "X-CBS-Token"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "status"],
                          "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
                "Assignment": {"type": "object", "required": ["cls", "style"],
                               "properties": {"cls": {"type": "string"}, "style": {"type": "string"},
                                              "strength": {"type": "number", "minimum": 0, "maximum": 1}}},
                "Mask": {"type": "object", "properties": {"feather": {"type": "number"}, "hard": {"type": "boolean"},
                                                          "cutoff": {"type": "number"}}},
                "Look": {"type": "object", "properties": {
                    "assignments": {"type": "array", "items": {"$ref": "#/components/schemas/Assignment"}},
                    "mask": {"$ref": "#/components/schemas/Mask"}, "enabled": {"type": "boolean"}}},
                "LookPatch": {"type": "object", "properties": {
                    "assignments": {"type": "object", "additionalProperties": {"nullable": True}},
                    "mask": {"$ref": "#/components/schemas/Mask"}, "enabled": {"type": "boolean"}}},
            },
        },
    }
