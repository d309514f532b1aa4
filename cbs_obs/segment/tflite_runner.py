"""Run an imported .tflite model with several outputs through ONNX Runtime (torch as the fallback).

The ONNX export helper handles one output tensor, so the outputs are flattened (4-D ones back in
TFLite's NHWC order) and concatenated into one row per image, then cut apart again here into the
shapes TFLite reports. Callers see exactly what a TFLite interpreter would hand them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..models.download import sha256_of
from ..models.inference import Network, model_name
from ..models.onnx_runtime import cache_key

# Part of every imported model's export key: a graph exported by an older importer is not reused.
# 2: fixed sizes baked in (no run-time pad arithmetic), SAME pads inside the convolutions, PReLU as one node.
IMPORT_FORMAT = "2"


def tflite_input_size(path: Path) -> tuple[int, int]:
    """(H, W) of a .tflite model's input, read from the file (no torch needed)."""
    import tflite

    graph = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0).Subgraphs(0)
    shape = graph.Tensors(int(graph.InputsAsNumpy()[0])).ShapeAsNumpy().tolist()
    return shape[1], shape[2]


def _flat_outputs(graph):
    """The graph with its outputs flattened (4-D ones in TFLite's NHWC order) into one row per image."""
    import torch
    from torch import nn

    class FlatOutputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.graph = graph

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            outs = self.graph(x)
            outs = outs if isinstance(outs, tuple) else (outs,)
            flat = [(o.permute(0, 2, 3, 1) if o.dim() == 4 else o).flatten(1) for o in outs]
            return torch.cat(flat, dim=1)

    return FlatOutputs()


class TfliteRunner:
    """``runner(x)``: x float32 NCHW [1, 3, H, W] -> list of outputs as float32 arrays in TFLite shapes."""

    def __init__(self, path: Path, name: str, *, backend: str = "onnx", one_thread: bool = False):
        self.input_size = tflite_input_size(path)

        def build():
            from .tflite_import import TfliteGraph

            return _flat_outputs(TfliteGraph(path).eval())

        def describe(module) -> dict:
            return {"output_names": list(module.graph.output_names),
                    "shapes": [list(s) for s in module.graph.output_shapes]}

        sha = sha256_of(path)
        self.network = Network(cache_key(name, sha, IMPORT_FORMAT), build, (1, 3, *self.input_size), backend=backend,
                               describe=describe, model=model_name(name, sha), one_thread=one_thread)
        self.backend = self.network.backend
        self.output_names = tuple(self.network.facts["output_names"])
        self.shapes = [tuple(s) for s in self.network.facts["shapes"]]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        flat = self.network.run(x)[0]
        out, pos = [], 0
        for shape in self.shapes:
            n = int(np.prod(shape[1:]))
            out.append(flat[pos : pos + n].reshape(shape[1:]))
            pos += n
        return out
