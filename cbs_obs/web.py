"""A small threaded HTTP server with a route table, shared by the MJPEG stream and the control API.

Binds 127.0.0.1 unless told otherwise. Handlers return a ``Response`` or stream by themselves
through ``request.handler`` (for multipart MJPEG). Standard library only: nothing to install.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from .errors import CbsError

log = logging.getLogger(__name__)
MAX_BODY = 8 * 1024 * 1024


class Headers(dict):
    """Header names are case-insensitive in HTTP; keys are stored lower-case."""

    def __init__(self, items=()):
        super().__init__((k.lower(), v) for k, v in items)

    def get(self, key, default=None):
        return super().get(key.lower(), default)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    handler: BaseHTTPRequestHandler
    params: dict[str, str] = field(default_factory=dict)

    def json(self):
        """The body as JSON; raises HttpError 400 with the parser's complaint."""
        if not self.body:
            raise HttpError(400, "request body is empty; send a JSON object")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise HttpError(400, f"request body is not valid JSON ({e})") from None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data, status: int = 200) -> "Response":
        return cls(status, json.dumps(data).encode(), "application/json")


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


Handler = Callable[[Request], "Response | None"]


class WebServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 8765):
        self.host, self.port = host, port
        self.routes: list[tuple[str, str, Handler]] = []
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.max_body = MAX_BODY
        self.before: list[Callable[[Request], None]] = []  # checks run before every handler (e.g. origin)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def route(self, method: str, path: str, fn: Handler) -> None:
        """``path`` may end with ``/{name}`` to capture one segment into ``request.params``."""
        self.routes.append((method, path, fn))

    def _match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        path_known = False
        for m, pattern, fn in self.routes:
            params = _match_path(pattern, path)
            if params is None:
                continue
            path_known = True
            if m == method:
                return fn, params, True
        return None, {}, path_known

    def start(self) -> None:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "cbs-obs"
            sys_version = ""

            def log_message(self, fmt, *args):
                log.debug("http %s", fmt % args)

            def log_request(self, code="-", size="-"):
                # the path only: a query string may carry the panel's token
                path = urlsplit(getattr(self, "path", "")).path
                log.debug("http %s %s -> %s", getattr(self, "command", "?"), path, code)

            def _dispatch(self):
                url = urlsplit(self.path)
                fn, params, known = server._match(self.command, url.path)
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                try:
                    if length < 0:
                        raise HttpError(400, "bad Content-Length header")
                    if length > server.max_body:
                        self.close_connection = True
                        raise HttpError(413, f"request body too large ({length} bytes; limit {server.max_body})")
                    body = self.rfile.read(length) if length else b""
                    req = Request(self.command, url.path, parse_qs(url.query), Headers(self.headers.items()), body,
                                  self, params)
                    for check in server.before:
                        check(req)
                    if fn is None:
                        if known:
                            raise HttpError(405, f"{self.command} is not allowed on {url.path}")
                        raise HttpError(404, f"no such endpoint: {url.path}")
                    resp = fn(req)
                except HttpError as e:
                    resp = Response.json({"error": e.message, "status": e.status}, e.status)
                except CbsError as e:
                    resp = Response.json({"error": str(e), "status": 400}, 400)
                except (BrokenPipeError, ConnectionResetError):
                    return
                except Exception as e:  # a bug must not kill the server; say so without internals
                    log.exception("internal error on %s %s", self.command, url.path)
                    resp = Response.json({"error": f"internal error ({type(e).__name__}); see the engine log",
                                          "status": 500}, 500)
                if resp is None:
                    return
                try:
                    self.send_response(resp.status)
                    self.send_header("Content-Type", resp.content_type)
                    self.send_header("Content-Length", str(len(resp.body)))
                    self.send_header("Cache-Control", "no-store")
                    for k, v in resp.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(resp.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class _Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True
            allow_reuse_address = True

        try:
            self.httpd = _Server((self.host, self.port), _Handler)
        except OSError as e:
            raise CbsError(f"cannot listen on {self.host}:{self.port} ({e.strerror}); "
                           "another program (or another cbs-obs) uses it: pick another port with --port") from e
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)
        self.thread.start()
        log.info("listening on %s", self.url)

    def close(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def _match_path(pattern: str, path: str) -> dict[str, str] | None:
    if "{" not in pattern:
        return {} if pattern == path else None
    head, _, tail = pattern.partition("{")
    name = tail.rstrip("}")
    if not path.startswith(head):
        return None
    value = path[len(head):]
    if not value or "/" in value:
        return None
    from urllib.parse import unquote

    return {name: unquote(value)}
