"""Webcam framing: the MediaPipe selfie segmenter, rebuilt from its .tflite as a torch module."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..models import registry
from ..models.download import sha256_of
from ..models.inference import BACKENDS, Network, model_name
from ..models.onnx_runtime import cache_key
from .base import ClassProbs
from .tflite_runner import IMPORT_FORMAT


class PersonSegmenter:
    """Classes ``background`` and ``person``. ``variant``: ``landscape`` (144x256) or ``general`` (256x256).

    ``backend="onnx"`` (default on CPU) runs an ONNX export of our module through ONNX Runtime,
    checked against torch at load; ``"torch"`` runs the module itself.
    """

    name = "person"
    classes = ("background", "person")

    def __init__(self, weights: Path | None = None, *, variant: str = "landscape", progress: bool = True,
                 backend: str = "onnx"):
        from ..errors import UnknownNameError

        if variant not in ("landscape", "general"):
            raise UnknownNameError("variant", variant, ["landscape", "general"])
        if backend not in BACKENDS:
            raise UnknownNameError("backend", backend, BACKENDS)
        card = f"selfie-{variant}"
        path = registry.ensure(card, weights=weights, progress=progress)
        self.input_size = tuple(registry.card(card).input_size) or (144, 256)

        def build():
            from .tflite_import import TfliteGraph

            graph = TfliteGraph(path)
            self.input_size = graph.input_size
            return graph

        sha = sha256_of(path)
        # a 256x144 network (about 5 ms): one thread; the live engine runs it beside the frame loop, and a
        # second ONNX Runtime thread cost about 4% of a core in hand-offs for no gain (bg720, 2 cores)
        # its stride-2 convolutions' one-sided pads and its squeeze-and-excitation means are folded into
        # ONNX Runtime's blocked layout: the network's 4.0 ms become 3.0 (same numbers; see onnx_layout)
        self.network = Network(cache_key("selfie", sha, IMPORT_FORMAT, "layout-1"), build, (1, 3, *self.input_size),
                               backend=backend, model=model_name(f"selfie-{variant}", sha), one_thread=True,
                               fold_layout=True)
        self.backend = self.network.backend
        self._maps: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def net(self):
        """The torch module (built on first use when the network runs in ONNX Runtime)."""
        return self.network._module()

    def _sample(self, frame: np.ndarray) -> np.ndarray:
        """Stretch to the model size sampling at src = dst * W / w, as MediaPipe does (no half-pixel shift)."""
        H, W = frame.shape[:2]
        maps = self._maps.get((H, W))
        if maps is None:
            h, w = self.input_size
            xs = np.arange(w, dtype=np.float32) * (W / w)
            ys = np.arange(h, dtype=np.float32) * (H / h)
            maps = tuple(np.ascontiguousarray(m) for m in np.meshgrid(xs, ys))
            self._maps[(H, W)] = maps
        return cv2.remap(frame, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def segment(self, frame: np.ndarray) -> ClassProbs:
        person = self.person_probability(frame)
        return ClassProbs(np.stack([1.0 - person, person]), self.classes)

    def person_probability(self, frame: np.ndarray) -> np.ndarray:
        """P(person) at the network's size, float32 h x w (the frame stretched to it)."""
        small = cv2.cvtColor(self._sample(frame), cv2.COLOR_BGR2RGB)
        x = (small.astype(np.float32) * (1 / 255)).transpose(2, 0, 1)[None]
        return np.clip(self.network.run(x)[0, 0], 0, 1)
