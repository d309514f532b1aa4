"""Every refusal as ``{"error": "one clear line", "status": N}``, whatever raised it.

The panel, the OBS script and the tests read this shape; the framework's own 404/405/422 bodies
and pydantic's validation lists are turned into it here, 422 becoming 400.
"""
from __future__ import annotations

import logging

from ..errors import ChecksumError, CbsError, DownloadError, ModelMissingError
from ..web import HttpError, json_response

log = logging.getLogger(__name__)

_LOOK_FIELDS = "use assignments, mask, enabled"

# The one table from error type to HTTP status, most specific first. What the request asked for is
# wrong: 400. The engine cannot serve it right now through no fault of the request: 5xx.
STATUS_BY_ERROR: tuple[tuple[type[CbsError], int], ...] = (
    (DownloadError, 502),  # a model could not be fetched from where it lives
    (ModelMissingError, 503),  # a model is not installed on this machine
    (ChecksumError, 503),  # a cached model is damaged
    (CbsError, 400),
)


def status_for(error: CbsError) -> int:
    return next(status for kind, status in STATUS_BY_ERROR if isinstance(error, kind))


def _where(loc) -> str:
    return ".".join(str(p) for p in loc if p != "body")


def validation_message(errors: list[dict]) -> str:
    """pydantic's first complaint as one line a person can act on."""
    if not errors:
        return "malformed request"
    e = errors[0]
    kind, loc, where = e.get("type", ""), tuple(e.get("loc", ())), _where(e.get("loc", ()))
    last = str(loc[-1]) if loc else ""
    if kind == "json_invalid":
        return f"request body is not valid JSON ({e.get('ctx', {}).get('error', 'parse error')})"
    if kind == "missing" and loc == ("body",):
        return "request body is empty; send a JSON object"
    if loc == ("body",) and kind in ("model_attributes_type", "dict_type", "model_type"):
        return "send a JSON object"
    if kind == "extra_forbidden":
        return f"unknown look field(s) [{last!r}] in {where.rsplit('.', 1)[0] or 'the look'}; {_LOOK_FIELDS}" \
            if len(loc) <= 2 else f"unknown field {last!r} in {where.rsplit('.', 1)[0]}"
    if kind == "bool_type":
        return f"{where or 'value'} must be true or false"
    if last == "strength":
        return f"{where}: strength must be a number between 0 and 1, got {e.get('input')!r}"
    if kind == "string_too_long":
        return f"{where} is too long (at most {e.get('ctx', {}).get('max_length')} characters)"
    if kind == "too_long":
        return f"{where} has too many entries (at most {e.get('ctx', {}).get('max_length')})"
    if where.startswith("assignments") or where == "mask":
        return f"malformed look: {where}: {e.get('msg', 'invalid')}"
    return f"{where or 'request'}: {e.get('msg', 'invalid')}"


def install_error_handlers(app) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(HttpError)
    async def _http_error(request, exc: HttpError):
        return json_response({"error": exc.message, "status": exc.status}, exc.status)

    @app.exception_handler(HTTPException)
    async def _framework_error(request, exc: HTTPException):
        status = exc.status_code
        if status == 404 and exc.detail == "Not Found":
            message = f"no such endpoint: {request.url.path}"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return json_response({"error": message, "status": status}, status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        return json_response({"error": validation_message(list(exc.errors())), "status": 400}, 400)

    @app.exception_handler(CbsError)
    async def _refused(request, exc: CbsError):
        status = status_for(exc)
        return json_response({"error": str(exc), "status": status}, status)

    @app.exception_handler(Exception)
    async def _bug(request, exc: Exception):  # a bug must not kill the server; say so without internals
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return json_response({"error": f"internal error ({type(exc).__name__}); see the engine log",
                              "status": 500}, 500)
