"""Debug overlay: class colours blended over the frame, with a legend of the classes present."""
from __future__ import annotations

import cv2
import numpy as np

# Official Cityscapes train-id colours (RGB).
CITYSCAPES_RGB = [
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
]
PERSON_RGB = [(30, 60, 160), (255, 140, 0)]


def palette(classes: tuple[str, ...]) -> np.ndarray:
    rgb = PERSON_RGB if len(classes) == 2 else CITYSCAPES_RGB
    if len(rgb) < len(classes):
        rng = np.random.default_rng(0)
        rgb = list(rgb) + [tuple(int(v) for v in rng.integers(0, 255, 3)) for _ in range(len(classes) - len(rgb))]
    return np.array([(b, g, r) for r, g, b in rgb[: len(classes)]], np.uint8)


def overlay(frame: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], alpha: float = 0.5) -> np.ndarray:
    colours = palette(classes)[labels]
    out = cv2.addWeighted(frame, 1.0 - alpha, colours, alpha, 0.0)
    present = [int(i) for i in np.unique(labels)]
    y = 22
    for i in present:
        b, g, r = (int(v) for v in palette(classes)[i])
        cv2.rectangle(out, (8, y - 14), (24, y + 2), (b, g, r), -1)
        cv2.putText(out, classes[i], (30, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        y += 20
    return out
