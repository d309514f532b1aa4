"""Mask edges that fit the person and do not flicker.

The person segmenter answers at 256x144; stretched to 720p its edge is a soft ramp some 10-25
pixels wide, which shows as a pale band of unstyled room around the person. A guided filter
(He et al. 2013, in its fast form: coefficients fitted at the mask's own size, applied at full
size) lets the full-resolution frame decide where inside that ramp the edge really is.

Between frames, a mask is smoothed only where the segmenter is unsure, and the previous mask is
first moved along the input's motion, so a still edge stops shimmering while a moving hand gets
no lag (the smoothing of MediaPipe's calculators, made motion-aware).
"""
from __future__ import annotations

import cv2
import numpy as np

from ..segment.base import ClassProbs
from .motion import Motion


class GuidedUpsampler:
    """Upsamples small masks of one frame to its full size, edges snapped to the frame's own edges."""

    def __init__(self, frame: np.ndarray, radius: int = 1, eps: float = 1e-3):
        self.gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32) * np.float32(1 / 255)
        self.radius, self.eps = radius, eps
        self._small: dict[tuple[int, int], tuple] = {}

    def _guide_at(self, shape: tuple[int, int]):
        if shape not in self._small:
            g = cv2.resize(self.gray, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
            k = (2 * self.radius + 1,) * 2
            mean_g = cv2.blur(g, k)
            var_g = cv2.blur(g * g, k) - mean_g * mean_g
            self._small[shape] = (g, mean_g, var_g, k)
        return self._small[shape]

    def __call__(self, small: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        h, w = size
        if (h, w) != self.gray.shape:
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        g, mean_g, var_g, k = self._guide_at(small.shape)
        mean_p = cv2.blur(small, k)
        a = (cv2.blur(g * small, k) - mean_g * mean_p) / (var_g + np.float32(self.eps))
        b = mean_p - a * mean_g
        a, b = cv2.blur(a, k), cv2.blur(b, k)
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
        b = cv2.resize(b, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(cv2.multiply(a, self.gray) + b, 0.0, 1.0)


class MaskSmoother:
    """``ratio``: how much of the (motion-moved) previous mask stays where the segmenter is unsure; 0 = off."""

    def __init__(self, ratio: float):
        self.ratio = ratio
        self._prev: ClassProbs | None = None

    def __call__(self, probs: ClassProbs, motion: Motion | None) -> ClassProbs:
        prev, self._prev = self._prev, probs
        if self.ratio <= 0 or prev is None or prev.probs.shape != probs.probs.shape or prev.classes != probs.classes:
            return probs
        new = probs.probs
        carried, trusted = (prev.probs, None) if motion is None else motion.carry(prev.probs)
        uncertain = np.clip(2.0 * (1.0 - new.max(axis=0)), 0.0, 1.0) * np.float32(self.ratio)
        if trusted is not None:
            uncertain = uncertain * trusted
        out = new + (carried - new) * uncertain[None]
        smoothed = ClassProbs(out.astype(np.float32), probs.classes)
        self._prev = smoothed
        return smoothed
