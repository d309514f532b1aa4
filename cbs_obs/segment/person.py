"""Webcam framing: the MediaPipe selfie segmenter, rebuilt from its .tflite as a torch module."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from .. import registry
from ..device import torch_device
from .base import ClassProbs
from .tflite_import import TfliteGraph


class PersonSegmenter:
    """Classes ``background`` and ``person``. ``variant``: ``landscape`` (144x256) or ``general`` (256x256)."""

    name = "person"
    classes = ("background", "person")

    def __init__(self, weights: Path | None = None, *, variant: str = "landscape", progress: bool = True):
        from ..errors import UnknownNameError

        if variant not in ("landscape", "general"):
            raise UnknownNameError("variant", variant, ["landscape", "general"])
        card = f"selfie-{variant}"
        self.device = torch_device()
        self.net = TfliteGraph(registry.ensure(card, weights=weights, progress=progress)).eval().to(self.device)
        self.input_size = self.net.input_size
        self._maps: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

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

    @torch.inference_mode()
    def segment(self, frame: np.ndarray) -> ClassProbs:
        small = cv2.cvtColor(self._sample(frame), cv2.COLOR_BGR2RGB)
        x = torch.from_numpy(small).to(self.device).permute(2, 0, 1)[None].float().mul_(1 / 255)
        person = self.net(x)[0, 0].clamp(0, 1).float().cpu().numpy()
        return ClassProbs(np.stack([1.0 - person, person]), self.classes)
