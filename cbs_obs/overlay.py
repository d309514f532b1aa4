"""Debug overlay: class colours blended over the frame, with a legend of the classes present."""
from __future__ import annotations

import cv2
import numpy as np

def palette(classes: tuple[str, ...], colours=None) -> np.ndarray:
    """BGR colours per class: the segmenter's own (``SegmenterKind.palette``), then picked ones."""
    rgb = list(colours or ())[: len(classes)]
    if len(rgb) < len(classes):
        rng = np.random.default_rng(0)
        rgb += [tuple(int(v) for v in rng.integers(0, 255, 3)) for _ in range(len(classes) - len(rgb))]
    return np.array([(b, g, r) for r, g, b in rgb], np.uint8)


def overlay(frame: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], alpha: float = 0.5,
            colours=None) -> np.ndarray:
    table = palette(classes, colours)
    colours = table[labels]
    out = cv2.addWeighted(frame, 1.0 - alpha, colours, alpha, 0.0)
    present = [int(i) for i in np.unique(labels)]
    y = 22
    for i in present:
        b, g, r = (int(v) for v in table[i])
        cv2.rectangle(out, (8, y - 14), (24, y + 2), (b, g, r), -1)
        cv2.putText(out, classes[i], (30, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        y += 20
    return out
