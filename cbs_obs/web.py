"""The engine's HTTP server: a FastAPI app on uvicorn, run in a thread of the engine process.

The control API, the web panel, the MJPEG stream and the snapshot are all routes of one app.
Every request first passes ``Guard`` (a plain ASGI layer, so it runs before any body is read):
Host must be an allowed name (DNS rebinding), Origin must be one too, changes need the token,
and off loopback reads need it as well. Limits (connections, header and body read time, body size,
JSON depth) come from the server and this layer, not from each handler.
"""
from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .errors import CbsError, ListenError

log = logging.getLogger(__name__)
MAX_BODY = 8 * 1024 * 1024
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "localhost.localdomain", "ip6-localhost")


@dataclass(frozen=True)
class ServerLimits:
    """What one client may cost the engine. Beyond ``max_connections`` new requests get 503."""

    max_connections: int = 1024
    header_timeout: float = 10.0  # a connection must finish its request line and headers this fast
    body_timeout: float = 20.0  # and send its whole body within this
    keep_alive: float = 5.0
    max_body: int = MAX_BODY
    max_json_depth: int = 32
    backlog: int = 1024


class HttpError(Exception):
    """A deliberate refusal; sent as ``{"error": message, "status": status}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    return host in LOOPBACK_NAMES or host.startswith("127.")


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("0.0.0.0", "::", "")


def allowed_host_names(bind: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """Names a browser may use to reach us: loopback, the bound address, the user's additions and, when
    bound to every interface, this machine's own name and addresses."""
    names = {*LOOPBACK_NAMES, bind.strip("[]").lower(), *(e.strip().strip("[]").lower() for e in extra if e.strip())}
    if is_wildcard(bind):
        host = socket.gethostname()
        names.update({host.lower(), f"{host.lower()}.local"})
        try:
            names.update(ai[4][0].lower() for ai in socket.getaddrinfo(host, None))
        except OSError:
            pass
    names.discard("")
    names.discard("0.0.0.0")
    names.discard("::")
    return frozenset(names)


def host_name(value: str) -> str:
    """``Host``/netloc -> bare lower-case name (no port, no brackets, no trailing dot)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":")[0]
    return value.rstrip(".")


def json_depth(body: bytes) -> int:
    """Nesting depth of a JSON text, counted without parsing it (so a hostile one costs no recursion)."""
    depth = best = 0
    in_str = escape = False
    for c in body:
        if in_str:
            if escape:
                escape = False
            elif c == 0x5C:
                escape = True
            elif c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c in (0x5B, 0x7B):
            depth += 1
            best = max(best, depth)
        elif c in (0x5D, 0x7D):
            depth -= 1
    return best


class Pulse:
    """Wakes asyncio waiters (stream and event clients) when a thread says something changed."""

    def __init__(self):
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()
        self.count = 0

    def fire(self) -> None:
        with self._lock:
            self.count += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                pass

    async def wait(self, seen: int, timeout: float) -> int:
        """Wait until ``count`` differs from ``seen`` (or ``timeout``); return the count."""
        event = asyncio.Event()
        key = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.add(key)
        try:
            if self.count == seen:
                try:
                    await asyncio.wait_for(event.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
        finally:
            with self._lock:
                self._waiters.discard(key)
        return self.count


def error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}).encode()


async def _send_error(send, status: int, message: str, close: bool = False) -> None:
    body = error_body(status, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI layer in front of the app: Host, Origin, token, body size, body time and JSON depth,
    in that order, before a handler (or the framework) reads a byte of the body."""

    def __init__(self, app, server: "WebServer"):
        self.app, self.server = app, server

    def _token_given(self, headers: dict[str, str], query: str) -> str | None:
        given = headers.get("x-cbs-token")
        auth = headers.get("authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not given and query:
            given = (parse_qs(query).get("token") or [None])[0]
        return given

    def check(self, method: str, path: str, headers: dict[str, str], query: str) -> None:
        s = self.server
        if host_name(headers.get("host", "")) not in s.allowed_hosts:
            raise HttpError(403, f"Host {headers.get('host', '')!r} is not one of this engine's names; open "
                            f"{s.url}/ (or start with --allow-host NAME to add a name)")
        origin = headers.get("origin")
        if origin and origin != "null":
            o = urlsplit(origin)
            if o.scheme not in ("http", "https") or host_name(o.netloc) not in s.allowed_hosts:
                raise HttpError(403, f"requests from {origin} are not allowed; use the panel at {s.url}/ "
                                "or an OBS browser dock")
        change = method not in ("GET", "HEAD")
        if s.token is None or not (change or s.reads_need_token) or (not change and path in s.open_paths):
            return
        given = self._token_given(headers, query)
        if not given:
            what = "this change" if change else "reading this engine off this machine"
            raise HttpError(401, f"{what} needs the API token: send 'Authorization: Bearer TOKEN' or add "
                            "?token=TOKEN to the URL (cbs-obs token prints it)")
        from .control.token import matches

        if not matches(s.token, given):
            raise HttpError(403, "wrong API token (cbs-obs token prints the right one)")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.monotonic()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        status_seen = [0]

        async def logged_send(message):
            if message["type"] == "http.response.start":
                status_seen[0] = message["status"]
                # the path only: a query string may carry the token
                log.debug("http %s %s -> %s", method, path, message["status"])
            await send(message)

        try:
            self.check(method, path, headers, scope.get("query_string", b"").decode("latin-1"))
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                raise HttpError(400, "bad Content-Length header") from None
            limits = self.server.limits
            if length < 0:
                raise HttpError(400, "bad Content-Length header")
            if length > limits.max_body:
                raise HttpError(413, f"request body too large ({length} bytes; limit {limits.max_body})")
            body = await self._read_body(receive, limits) if method not in ("GET", "HEAD") else b""
            ctype = headers.get("content-type", "")
            if body and not ctype.startswith("image/") and json_depth(body) > limits.max_json_depth:
                raise HttpError(400, f"JSON nested too deeply (limit {limits.max_json_depth} levels)")
        except HttpError as e:
            return await _send_error(logged_send, e.status, e.message, close=e.status in (408, 413))
        replayed = [False]

        async def replay():
            if not replayed[0]:
                replayed[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        scope.setdefault("state", {})["started"] = t0
        await self.app(scope, replay if method not in ("GET", "HEAD") else receive, logged_send)

    @staticmethod
    async def _read_body(receive, limits: ServerLimits) -> bytes:
        chunks, size = [], 0
        deadline = time.monotonic() + limits.body_timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HttpError(408, f"request body not received within {limits.body_timeout:.0f} s")
            try:
                message = await asyncio.wait_for(receive(), left)
            except asyncio.TimeoutError:
                raise HttpError(408, f"request body not received within {limits.body_timeout:.0f} s") from None
            if message["type"] == "http.disconnect":
                raise HttpError(400, "the client went away while sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limits.max_body:
                raise HttpError(413, f"request body too large (limit {limits.max_body} bytes)")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _protocol_class(header_timeout: float):
    """uvicorn's h11 protocol with a deadline for each request's line and headers (slow clients are cut)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _deadline = None

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(header_timeout, self._expire)

        def _expire(self) -> None:
            self._deadline = None
            waiting = self.cycle is None or self.cycle.response_complete
            if waiting and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self):
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc):
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

    return TimedH11Protocol


def _raise_fd_limit(wanted: int) -> None:
    """Idle connections cost a file descriptor each; let the cap, not the OS limit, decide."""
    try:
        import resource  # POSIX only
    except ImportError:
        return
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = min(hard if hard != resource.RLIM_INFINITY else wanted, wanted)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass


def check_bind_host(host: str) -> None:
    """Fail at once, with one line, when ``host`` is no address of this machine (before models load)."""
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise CbsError(f"--host {host}: not a valid address or a name this machine resolves "
                       f"({getattr(e, 'strerror', None) or e}); use 127.0.0.1, 0.0.0.0 or one of this machine's "
                       "addresses") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(addr)
        except OSError as e:
            raise CbsError(f"--host {host}: this machine has no such address ({e.strerror}); use 127.0.0.1, "
                           "0.0.0.0 or one of its own addresses") from None


class WebServer:
    """One FastAPI app served by uvicorn from a daemon thread; routes are added before ``start()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, *, token: str | None = None,
                 allow_hosts: tuple[str, ...] = (), limits: ServerLimits = ServerLimits()):
        from .control.errors import install_error_handlers

        self.host, self.port, self.token, self.limits = host, port, token, limits
        self.allowed_hosts = allowed_host_names(host, allow_hosts)
        self.reads_need_token = not is_loopback(host)
        self.open_paths = {"/", "/favicon.ico"}  # the panel page itself: it asks for the token
        self.app = self._make_app()
        install_error_handlers(self.app)
        self.httpd = None  # the uvicorn.Server while running
        self.thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.closing = threading.Event()

    @staticmethod
    def _make_app():
        from fastapi import FastAPI

        from . import __version__

        return FastAPI(title="cbs-obs control API", version=__version__, docs_url=None, redoc_url=None,
                       openapi_url="/api/openapi.json", redirect_slashes=False)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host == "0.0.0.0" else ("::1" if self.host == "::" else self.host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def _bind(self) -> socket.socket:
        if not 0 <= self.port <= 65535:
            raise CbsError(f"port must be 0-65535, got {self.port}; pick one with --port")
        check_bind_host(self.host)
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
            sock.listen(self.limits.backlog)
        except OSError as e:
            sock.close()
            if e.errno == errno.EADDRINUSE:
                raise ListenError(f"cannot listen on {self.host}:{self.port} ({e.strerror}); another program "
                               "(or another cbs-obs) uses it: pick another port with --port") from e
            if e.errno == errno.EACCES:
                raise ListenError(f"cannot listen on {self.host}:{self.port} ({e.strerror}); ports below 1024 need "
                               "administrator rights: use a port above 1024 with --port") from e
            raise ListenError(f"cannot listen on {self.host}:{self.port} ({e.strerror}); "
                           "this machine has no such address: use --host 127.0.0.1 or one of its own") from e
        sock.setblocking(False)
        return sock

    def start(self) -> None:
        import uvicorn

        if self.httpd is not None:
            return
        self.closing.clear()
        sock = self._bind()
        self._sock = sock
        self.port = sock.getsockname()[1]
        _raise_fd_limit(self.limits.max_connections + 256)
        config = uvicorn.Config(Guard(self.app, self), http=_protocol_class(self.limits.header_timeout),
                                lifespan="off", access_log=False, log_level="warning", log_config=None,
                                server_header=False,
                                limit_concurrency=self.limits.max_connections,
                                timeout_keep_alive=int(max(1, self.limits.keep_alive)),
                                timeout_graceful_shutdown=1, backlog=self.limits.backlog)
        server = uvicorn.Server(config)
        self.httpd = server
        self.thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="http", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            self.close()
            raise ListenError(f"the HTTP server on {self.host}:{self.port} did not start; see the log with --verbose")
        log.info("listening on %s", self.url)

    def close(self) -> None:
        """Idempotent: open streams end within a second, then the listening socket closes."""
        self.closing.set()
        server, self.httpd = self.httpd, None
        if server is not None:
            server.should_exit = True
            if self.thread is not None:
                self.thread.join(10)
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def json_response(data: Any, status: int = 200):
    from fastapi.responses import JSONResponse

    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})
