"""Run an imported .tflite model with several outputs through ONNX Runtime (torch as the fallback).

The ONNX export helper handles one output tensor, so the outputs are flattened (4-D ones back in
TFLite's NHWC order) and concatenated into one row per image, then cut apart again here into the
shapes TFLite reports. Callers see exactly what a TFLite interpreter would hand them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..download import sha256_of
from ..onnx_runtime import cache_key, export_session
from .tflite_import import TfliteGraph


class _FlatOutputs(nn.Module):
    def __init__(self, graph: TfliteGraph):
        super().__init__()
        self.graph = graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = self.graph(x)
        outs = outs if isinstance(outs, tuple) else (outs,)
        flat = [(o.permute(0, 2, 3, 1) if o.dim() == 4 else o).reshape(o.shape[0], -1) for o in outs]
        return torch.cat(flat, dim=1)


class TfliteRunner:
    """``runner(x)``: x float32 NCHW [1, 3, H, W] -> list of outputs as float32 arrays in TFLite shapes."""

    def __init__(self, path: Path, name: str, *, backend: str = "onnx"):
        graph = TfliteGraph(path).eval()
        self.input_size = graph.input_size
        self.output_names = graph.output_names
        self.shapes = [tuple(s) for s in graph.output_shapes]
        self.module = _FlatOutputs(graph).eval()
        self.session = None
        if backend == "onnx":
            example = torch.rand(1, 3, *self.input_size)
            self.session = export_session(self.module, example, cache_key(name, sha256_of(path)))
        self.backend = "onnx" if self.session is not None else "torch"

    @torch.inference_mode()
    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.session is not None:
            flat = self.session.run(None, {"input": x})[0][0]
        else:
            flat = self.module(torch.from_numpy(x))[0].numpy()
        out, pos = [], 0
        for shape in self.shapes:
            n = int(np.prod(shape[1:]))
            out.append(flat[pos : pos + n].reshape(shape[1:]))
            pos += n
        return out
