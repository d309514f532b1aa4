"""One way to run every network: the inference runner.

Each network is identified by a key (its weights' sha256 and how it was built). On the CPU it runs
in ONNX Runtime from an export that was made once from our torch module and checked against it;
once that export is cached and marked verified, later runs load it straight into ONNX Runtime and
never import torch (about 0.4 GB and seconds saved for an engine that only needs these networks).
Otherwise, or with ``backend="torch"``, the torch module runs on the device ``device.py`` picks.
Networks shipped as ONNX (the Magenta pair) are wrapped by ``Network.from_onnx``.

This is also where a remote inference server plugs in (``use_remote``): callers only see
``Network.run(x) -> y`` on numpy arrays, so capture, the plate, motion and compositing never know
whether a network ran here or on another PC. Every network has a ``model`` name made from its
weights' hash, which is the name the server serves it under, so both sides run the same weights.
"""
from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from .. import paths
from ..errors import RemoteUnavailable, UnknownNameError
from .device import onnx_preferred, ort_session

log = logging.getLogger(__name__)
BACKENDS = ("onnx", "torch")


class Remote(Protocol):
    """What a remote inference client offers the runner (``cbs_obs.remote.client.RemoteClient``)."""

    fallback: str

    def infer(self, model: str, inputs: list[np.ndarray]) -> np.ndarray: ...

    def require(self, model: str) -> None: ...

    def status(self) -> dict: ...


_remote: Remote | None = None
# model name -> the network made for it in this process (what a server serves); weak: styles come and go
_networks: weakref.WeakSet[Network] = weakref.WeakSet()  # every live one: a dead copy must not hide another
_networks_lock = threading.Lock()


def use_remote(remote: Remote | None) -> None:
    """Run every network through ``remote`` from now on (None: back to local inference)."""
    global _remote
    _remote = remote


def remote() -> Remote | None:
    return _remote


def remote_status() -> dict | None:
    """The remote server's state for stats and the panel (None when networks run here)."""
    return _remote.status() if _remote is not None else None


def networks() -> dict[str, Network]:
    """Every network made in this process, by model name."""
    with _networks_lock:
        return {n.model: n for n in _networks}


def onnx_path(key: str) -> Path:
    return paths.cache_dir() / "onnx" / f"{key}.onnx"


def model_name(family: str, sha256: str) -> str:
    """The name a network is served under: what it is, and which weights (a different file: a different name)."""
    return f"{family}-{sha256[:16]}"


class Network:
    """``build()`` returns the torch module (called only when torch is needed); ``example_shape`` is the
    NCHW input used to export and check it; ``example_scale`` multiplies the random example.
    ``model``: the served name (``model_name``); ``inputs``: the input names, in order."""

    def __init__(self, key: str, build: Callable | None, example_shape: tuple[int, ...] = (), *,
                 backend: str = "onnx", dynamic_hw: bool = False, example_scale: float = 1.0,
                 tolerance: float = 1e-3, describe: Callable | None = None, model: str | None = None,
                 inputs: tuple[str, ...] = ("input",), onnx: Callable[[], str | bytes] | None = None,
                 one_thread: bool = False, fold_layout: bool = False):
        """``describe(module) -> dict``: facts about the network (output shapes...) kept beside the export,
        so they are known without building the module; read them from ``self.facts``. ``onnx``: for
        networks that exist only as ONNX, returns the file or its bytes (no torch module). ``one_thread``:
        ONNX Runtime runs it on the caller's thread only (see ``device.ort_session``). ``fold_layout``: the
        export is rewritten so ONNX Runtime keeps its blocked layout through it (``onnx_layout``); part of
        how the graph is built, so it belongs in ``key``."""
        if backend not in BACKENDS:
            raise UnknownNameError("backend", backend, BACKENDS)
        self.key, self._build, self._onnx = key, build, onnx
        self._example = (tuple(example_shape), example_scale, dynamic_hw, tolerance)
        self._describe, self._want = describe, backend
        self._one_thread, self._fold_layout = one_thread, fold_layout
        self.model = model or key
        self.inputs = tuple(inputs)
        self.module = None
        self.session = None
        self.facts: dict = {}
        self._local_lock = threading.Lock()
        self._local_ready = False
        with _networks_lock:
            _networks.add(self)
        if _remote is not None:
            _remote.require(self.model)  # the server must serve these very weights; else one clear line now
            self.facts = self._cached_facts()
            if describe is not None and not self.facts:
                self._load_local()
            self.backend = "remote"
        else:
            self._load_local()

    @classmethod
    def from_onnx(cls, model: str, onnx: Callable[[], str | bytes], inputs: tuple[str, ...], *,
                  one_thread: bool = False) -> Network:
        """A network shipped as ONNX: ``onnx()`` gives the file (or bytes) when it must run here."""
        return cls(model, None, model=model, inputs=inputs, onnx=onnx, one_thread=one_thread)

    def _cached_facts(self) -> dict:
        facts = onnx_path(self.key).with_suffix(".json")
        if self._describe is not None and facts.exists():
            return json.loads(facts.read_text(encoding="utf-8"))
        return {}

    # -- running here ---------------------------------------------------------------------------
    def _load_local(self) -> None:
        """Load the network for this machine (once): ONNX Runtime where it fits, else torch."""
        with self._local_lock:
            if self._local_ready:
                return
            if self._onnx is not None:
                self.session = ort_session(self._onnx(), one_thread=self._one_thread)
                self.backend = "onnx"
                self._local_ready = True
                return
            shape, scale, dynamic_hw, tolerance = self._example
            path = onnx_path(self.key)
            facts = path.with_suffix(".json")
            if self._want == "onnx" and onnx_preferred():
                if path.exists() and path.with_suffix(".verified").exists() and \
                        (self._describe is None or facts.exists()):
                    self.session = ort_session(str(path), one_thread=self._one_thread)
                    if self._describe is not None:
                        self.facts = json.loads(facts.read_text(encoding="utf-8"))
                else:
                    import torch

                    from .onnx_runtime import export_session

                    example = torch.rand(*shape) * scale
                    self.session = export_session(self._module(), example, self.key, dynamic_hw=dynamic_hw,
                                                  tolerance=tolerance, one_thread=self._one_thread,
                                                  fold_layout=self._fold_layout)
            if self._describe is not None and not self.facts:
                self.facts = self._describe(self._module())
                if self.session is not None:
                    paths.write_atomic(facts, json.dumps(self.facts).encode())
            if _remote is None:
                self.backend = "onnx" if self.session is not None else "torch"
            if self.session is None:
                self._to_device()
            self._local_ready = True

    def _module(self):
        if self.module is None:
            if self._build is None:
                raise UnknownNameError("torch module of network", self.model, (), "It exists only as ONNX")
            self.module = self._build().eval()
        return self.module

    def _to_device(self) -> None:
        from .device import torch_device, torch_dtype

        self.device, self.dtype = torch_device(), torch_dtype()
        self._module().to(self.device, self.dtype)

    def _feed(self, x) -> list[np.ndarray]:
        """The inputs as float32 arrays in ``self.inputs`` order (one array: the first input)."""
        if isinstance(x, dict):
            missing = [n for n in self.inputs if n not in x]
            if missing:
                raise UnknownNameError("network input", missing[0], self.inputs)
            arrays = [x[n] for n in self.inputs]
        else:
            arrays = [x]
        return [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]

    def run_local(self, x) -> np.ndarray:
        """Run on this machine whatever ``use_remote`` says (the server's side, and the local fallback)."""
        if not self._local_ready:
            self._load_local()
        arrays = self._feed(x)
        if self.session is not None:
            names = [i.name for i in self.session.get_inputs()]
            return self.session.run(None, dict(zip(names, arrays, strict=False)))[0]
        import torch

        with torch.inference_mode():
            y = self.module(*(torch.from_numpy(a).to(self.device, self.dtype) for a in arrays))
            y = y[0] if isinstance(y, tuple) else y
            return y.float().cpu().numpy()

    def run(self, x) -> np.ndarray:
        """float32 in (one NCHW array, or a dict by input name), the network's (first) output out, as float32.

        With a remote server: run there; when it is unreachable, run here if the user asked for a local
        fallback, else raise ``RemoteUnavailable`` (the engine then keeps its last masks and styles)."""
        server = _remote
        if server is None:
            return self.run_local(x)
        try:
            return server.infer(self.model, self._feed(x))
        except RemoteUnavailable:
            if server.fallback != "local":
                raise
        return self.run_local(x)
