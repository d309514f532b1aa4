"""What a style is: something that turns a BGR uint8 frame into a styled frame of the same size."""
from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np


class Style(Protocol):
    name: str

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """BGR uint8 HxWx3 in, BGR uint8 HxWx3 of the same size out."""
        ...


def fit_within(frame: np.ndarray, max_side: int | None, multiple: int = 1) -> np.ndarray:
    """Downscale so the longer side is at most ``max_side`` (never upscale)."""
    h, w = frame.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return frame
    s = max_side / max(h, w)
    nh, nw = max(multiple, round(h * s)), max(multiple, round(w * s))
    return cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)


def pad_to_multiple(img: np.ndarray, multiple: int) -> tuple[np.ndarray, int, int]:
    """Reflect-pad H and W up to a multiple (for nets with stride-4 bodies); returns the original size."""
    h, w = img.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = cv2.BORDER_REFLECT_101 if min(h, w) > 1 else cv2.BORDER_REPLICATE
        img = cv2.copyMakeBorder(img, 0, ph, 0, pw, mode)
    return img, h, w


def back_to_size(styled: np.ndarray, h: int, w: int) -> np.ndarray:
    if styled.shape[:2] != (h, w):
        styled = cv2.resize(styled, (w, h), interpolation=cv2.INTER_LINEAR)
    return styled
