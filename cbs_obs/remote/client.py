"""The engine's side of remote inference: tritonclient over gRPC, with reconnects and a clear state.

While the server is lost, calls fail at once (no frame waits on a dead server) until the next
retry, which comes after 0.5 s, then 1, 2, 4, 5, 5... s. The first answer after that is the
recovery: the engine catches up on its own, without a restart. Each thread has its own client
(segmentation and styling call in parallel); a reconnect replaces them all.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque

import numpy as np

from ..errors import RemoteAuthError, RemoteError, RemoteUnavailable
from . import protocol
from .settings import RemoteSettings

log = logging.getLogger(__name__)
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 5.0
CONNECT_TIMEOUT_S = 3.0
# gRPC codes that mean "not reachable now" (a restart, a cable, a busy server), not "you are wrong"
LOST = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "UNKNOWN", "RESOURCE_EXHAUSTED", "ABORTED")


def _code(error) -> str:
    status = error.status() if hasattr(error, "status") else None
    return str(status or "").rpartition(".")[2]


def _is_key_error(error) -> bool:
    text = str(error).lower()
    return "restricted" in text or protocol.KEY_HEADER in text or _code(error) in ("UNAUTHENTICATED",
                                                                                      "PERMISSION_DENIED")


class RemoteClient:
    """Runs networks on the server ``settings`` names; ``status()`` tells stats and the panel how it goes."""

    def __init__(self, settings: RemoteSettings):
        self.settings = settings
        self.fallback = settings.fallback
        self._local = threading.local()
        self._generation = 0
        self._lock = threading.Lock()
        self._state = "starting"
        self._retry_at = 0.0
        self._delay = RETRY_FIRST_S
        self._served: set[str] = set()
        self.calls = self.failed = self.reconnects = self.fallback_calls = 0
        self.last_error = ""
        self._latency: deque[float] = deque(maxlen=300)
        self._bytes_sent = 0

    # -- plumbing -------------------------------------------------------------------------------
    def _client(self):
        import tritonclient.grpc as grpcclient

        c = getattr(self._local, "client", None)
        if c is None or self._local.generation != self._generation:
            if c is not None:
                _close(c)
            c = grpcclient.InferenceServerClient(self.settings.address)
            self._local.client, self._local.generation = c, self._generation
        return c

    @property
    def _headers(self) -> dict | None:
        return {protocol.GRPC_KEY_HEADER: self.settings.key} if self.settings.key else None

    def _unreachable(self, error) -> RemoteError:
        return RemoteError(f"cannot reach the inference server at {self.settings.url} ({_first_line(error)}); "
                           "start it on the GPU PC with `cbs-obs serve --host 0.0.0.0 --key KEY`, open its "
                           "gRPC port in that PC's firewall, and check the address")

    def _refused_key(self) -> RemoteAuthError:
        return RemoteAuthError(f"the inference server at {self.settings.url} refused the shared key: give the key it "
                               "was started with (--remote-key KEY or the CBS_OBS_REMOTE_KEY variable)")

    # -- at start -------------------------------------------------------------------------------
    def check(self) -> None:
        """Is the server there, and does it take our key? One clear line if not."""
        from tritonclient.utils import InferenceServerException

        try:
            ready = self._client().is_server_ready(headers=self._headers, client_timeout=CONNECT_TIMEOUT_S)
        except InferenceServerException as e:
            raise self._unreachable(e) from None
        if not ready:
            raise RemoteError(f"the inference server at {self.settings.url} is not ready yet (still loading its "
                              "networks?); wait until `cbs-obs serve` says it is serving, then start again")
        try:
            self._call(protocol.PROBE_MODEL, [np.zeros((1,), np.float32)], CONNECT_TIMEOUT_S)
        except InferenceServerException as e:
            if _is_key_error(e):
                raise self._refused_key() from None
            raise RemoteError(f"the server at {self.settings.url} is not a cbs-obs inference server "
                              f"({_first_line(e)}); start it with `cbs-obs serve`") from None
        self._state = "ok"

    def require(self, model: str) -> None:
        """The server must serve ``model`` (these very weights): else say how to start it so it does."""
        from tritonclient.utils import InferenceServerException

        if model in self._served:
            return
        try:
            ready = self._client().is_model_ready(model, headers=self._headers, client_timeout=CONNECT_TIMEOUT_S)
        except InferenceServerException as e:
            if _code(e) in LOST and self.fallback == "local":
                return  # lost already: the local fallback runs it
            raise self._unreachable(e) from None
        if not ready:
            family = model.rpartition("-")[0]
            how = ("start it with --johnson PATH for that checkpoint" if family == "johnson" else
                   "the server has other weights for it (same cbs-obs version and model files on both PCs?)")
            raise RemoteError(f"the inference server at {self.settings.url} does not serve {model}: {how}")
        self._served.add(model)

    # -- running --------------------------------------------------------------------------------
    def _call(self, model: str, inputs: list[np.ndarray], timeout: float) -> np.ndarray:
        import tritonclient.grpc as grpcclient

        wire = []
        for i, a in enumerate(inputs):
            kind, packed = protocol.pack(a)
            t = grpcclient.InferInput(protocol.input_name(i, kind), (1, *packed.shape),
                                      "FP32" if kind == "INPUT" else "UINT8")
            t.set_data_from_numpy(packed[None])
            wire.append(t)
            self._bytes_sent += packed.nbytes
        result = self._client().infer(model, wire, outputs=[grpcclient.InferRequestedOutput(protocol.OUTPUT)],
                                      headers=self._headers, client_timeout=timeout)
        return result.as_numpy(protocol.OUTPUT)[0]

    def infer(self, model: str, inputs: list[np.ndarray]) -> np.ndarray:
        from tritonclient.utils import InferenceServerException

        now = time.monotonic()
        with self._lock:
            if self._state == "lost" and now < self._retry_at:
                self.failed += 1
                if self.fallback == "local":
                    self.fallback_calls += 1
                raise RemoteUnavailable(f"inference server {self.settings.url} lost; retrying in "
                                        f"{self._retry_at - now:.1f} s")
        t0 = time.perf_counter()
        try:
            out = self._call(model, inputs, self.settings.timeout_s)
        except InferenceServerException as e:
            if _is_key_error(e):
                raise self._refused_key() from None
            if _code(e) == "NOT_FOUND" or "unknown model" in str(e).lower():
                self._lost(e)  # a server restarted without this network: keep trying, say what is missing
                raise RemoteUnavailable(f"the inference server at {self.settings.url} no longer serves {model}; "
                                        "start it with the same options as before") from None
            if _code(e) not in LOST:  # the server answered, with an error about this request
                raise RemoteError(f"the inference server failed on {model}: {_first_line(e)}") from None
            self._lost(e)
            raise RemoteUnavailable(f"inference server {self.settings.url} lost ({_first_line(e)}); "
                                    "reconnecting") from None
        with self._lock:
            self.calls += 1
            self._latency.append(time.perf_counter() - t0)
            if self._state != "ok":
                if self._state == "lost":
                    self.reconnects += 1
                    log.warning("inference server %s is back", self.settings.url)
                self._state, self._delay = "ok", RETRY_FIRST_S
        return out

    def _lost(self, error) -> None:
        with self._lock:
            self.failed += 1
            self.last_error = _first_line(error)
            if self.fallback == "local":
                self.fallback_calls += 1
            if self._state != "lost":
                log.warning("inference server %s lost (%s); %s meanwhile, reconnecting", self.settings.url,
                            self.last_error, "running the networks here" if self.fallback == "local" else
                            "keeping the last masks and styles")
                self._delay = RETRY_FIRST_S
            else:
                self._delay = min(self._delay * 2, RETRY_MAX_S)
            self._state = "lost"
            self._retry_at = time.monotonic() + self._delay
            self._generation += 1  # fresh channels: a restarted server is found at once, not after gRPC's own backoff

    def status(self) -> dict:
        with self._lock:
            lat = sorted(self._latency)
            p50 = round(lat[len(lat) // 2] * 1000, 1) if lat else None
            p95 = round(lat[min(len(lat) - 1, int(len(lat) * 0.95))] * 1000, 1) if lat else None
            state = self._state
            if state == "lost" and self.fallback == "local":
                state = "lost (running here)"
            return {"url": self.settings.url, "state": state, "calls": self.calls, "failed": self.failed,
                    "reconnects": self.reconnects, "fallback": self.fallback, "ran_here": self.fallback_calls,
                    "last_error": self.last_error,
                    "latency_ms": {"p50": p50, "p95": p95}, "sent_mb": round(self._bytes_sent / 1e6, 1)}


def _close(client) -> None:
    try:
        client.close()
    except Exception:  # a channel to a dead server may complain while closing; it is being replaced anyway
        pass


def _first_line(error) -> str:
    text = error.message() if hasattr(error, "message") and callable(error.message) else str(error)
    return (text or type(error).__name__).strip().splitlines()[0][:200]
