"""One way to run every network: the inference runner.

Each network is identified by a key (its weights' sha256 and how it was built). On the CPU it runs
in ONNX Runtime from an export that was made once from our torch module and checked against it;
once that export is cached and marked verified, later runs load it straight into ONNX Runtime and
never import torch (about 0.4 GB and seconds saved for an engine that only needs these networks).
Otherwise, or with ``backend="torch"``, the torch module runs on the device ``device.py`` picks.
This is the seam where another backend (a remote inference server) plugs in: callers only see
``Network.run(x) -> y`` on numpy arrays.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import paths
from .device import onnx_preferred, ort_session
from ..errors import UnknownNameError

log = logging.getLogger(__name__)
BACKENDS = ("onnx", "torch")


def onnx_path(key: str) -> Path:
    return paths.cache_dir() / "onnx" / f"{key}.onnx"


class Network:
    """``build()`` returns the torch module (called only when torch is needed); ``example_shape`` is the
    NCHW input used to export and check it; ``example_scale`` multiplies the random example."""

    def __init__(self, key: str, build: Callable, example_shape: tuple[int, ...], *, backend: str = "onnx",
                 dynamic_hw: bool = False, example_scale: float = 1.0, tolerance: float = 1e-3,
                 describe: Callable | None = None):
        """``describe(module) -> dict``: facts about the network (output shapes...) kept beside the export,
        so they are known without building the module; read them from ``self.facts``."""
        if backend not in BACKENDS:
            raise UnknownNameError("backend", backend, BACKENDS)
        self.key, self._build = key, build
        self.module = None
        self.session = None
        self.facts: dict = {}
        path = onnx_path(key)
        facts = path.with_suffix(".json")
        if backend == "onnx" and onnx_preferred():
            if path.exists() and path.with_suffix(".verified").exists() and (describe is None or facts.exists()):
                self.session = ort_session(str(path))
                if describe is not None:
                    self.facts = json.loads(facts.read_text(encoding="utf-8"))
            else:
                import torch

                from .onnx_runtime import export_session

                example = torch.rand(*example_shape) * example_scale
                self.session = export_session(self._module(), example, key, dynamic_hw=dynamic_hw,
                                              tolerance=tolerance)
        if describe is not None and not self.facts:
            self.facts = describe(self._module())
            if self.session is not None:
                paths.write_atomic(facts, json.dumps(self.facts).encode())
        self.backend = "onnx" if self.session is not None else "torch"
        if self.session is None:
            self._to_device()

    def _module(self):
        if self.module is None:
            self.module = self._build().eval()
        return self.module

    def _to_device(self) -> None:
        from .device import torch_device, torch_dtype

        self.device, self.dtype = torch_device(), torch_dtype()
        self._module().to(self.device, self.dtype)

    def run(self, x: np.ndarray) -> np.ndarray:
        """float32 NCHW in, the network's (first) output out, as float32."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.session is not None:
            return self.session.run(None, {"input": x})[0]
        import torch

        with torch.inference_mode():
            y = self.module(torch.from_numpy(x).to(self.device, self.dtype))
            y = y[0] if isinstance(y, tuple) else y
            return y.float().cpu().numpy()

