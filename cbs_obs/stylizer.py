"""Class-based styling of one frame: segment, style the assigned classes, composite.

The live engine runs the same three stages in parallel workers; this class is the reference
(sequential) path used by ``cbs-obs stylize`` and the Python API.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .composite import build_masks, composite
from .errors import InputError
from .look import Look
from .segment import Segmenter
from .segment.base import ClassProbs
from .style.catalog import StyleCache


def check_frame(frame) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{type(frame).__name__} {getattr(frame, 'shape', '')} {getattr(frame, 'dtype', '')}".strip()
        raise InputError(f"a frame must be a BGR uint8 array of shape HxWx3, got {got}")
    if frame.shape[0] < 8 or frame.shape[1] < 8:
        raise InputError(f"frame is too small ({frame.shape[1]}x{frame.shape[0]}); at least 8x8 pixels")
    return frame


@dataclass(frozen=True)
class StylizeResult:
    frame: np.ndarray
    probs: ClassProbs
    masks: dict[str, np.ndarray]  # style spec -> R at output size

    def combined_mask(self) -> np.ndarray:
        """Total styled weight per pixel, uint8 0..255 (what ``--mask-out`` saves)."""
        h, w = self.frame.shape[:2]
        total = sum(self.masks.values()) if self.masks else np.zeros((h, w), np.float32)
        return np.clip(np.asarray(total) * 255.0 + 0.5, 0, 255).astype(np.uint8)


class ClassStylizer:
    """Style only the chosen classes of each frame. Thread-safe look swaps; frames in BGR uint8."""

    def __init__(self, segmenter: Segmenter, look: Look | None = None, *, style_size: int | None = None,
                 styles: StyleCache | None = None):
        self.segmenter = segmenter
        self.styles = styles or StyleCache(max_side=style_size)
        self._look = Look()
        self._swap = threading.Lock()
        if look is not None:
            self.set_look(look)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.segmenter.classes

    @property
    def look(self) -> Look:
        return self._look

    def set_look(self, look: Look) -> Look:
        """Validate every class and style first; only a fully valid look replaces the current one."""
        look.check_classes(self.classes)
        # every assignment, even at strength 0 or with styling off: a look that is accepted now must
        # still work when someone turns it up or on later
        for spec in {a.style for a in look.assignments}:
            self.styles.get(spec)
        with self._swap:
            self._look = look
        return look

    def style_layers(self, frame: np.ndarray, look: Look) -> dict[str, np.ndarray]:
        return {spec: self.styles.get(spec).apply(frame) for spec in look.groups()}

    def process(self, frame: np.ndarray, look: Look | None = None) -> StylizeResult:
        frame = check_frame(frame)
        look = look or self._look
        probs = self.segmenter.segment(frame)
        masks = build_masks(probs, look, frame.shape[:2])
        styled = self.style_layers(frame, look)
        out = composite(frame, [(masks[s], styled[s]) for s in masks])
        return StylizeResult(out, probs, masks)
