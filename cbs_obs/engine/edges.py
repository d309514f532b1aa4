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

from ..composite import Stretched
from ..segment.base import ClassProbs
from .motion import Motion


_ABOVE_0, _BELOW_1 = float(np.finfo(np.float32).smallest_subnormal), float(np.nextafter(np.float32(1), np.float32(0)))


class GuidedUpsampler:
    """Upsamples small masks of one frame to its full size, edges snapped to the frame's own edges.

    The filter runs against the frame at about 640 px across (``guide_side``); the result is then
    stretched to full size: edges 2-3x finer than the segmenter's at a quarter of full-size cost."""

    def __init__(self, frame: np.ndarray, radius: int = 1, eps: float = 1e-3, guide_side: int = 640,
                 stretched: bool = False):
        """``stretched``: return masks as ``Stretched`` (held at the guide's size, stretched only where the
        compositor blends) when the frame's sides divide by the guide's factor; else full-size arrays."""
        h, w = frame.shape[:2]
        self.size = (h, w)
        k = max(1, round(max(h, w) / guide_side))
        self.stretch = k if stretched and k > 1 and h % k == 0 and w % k == 0 else 0
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if k > 1:
            gray = cv2.resize(gray, (-(-w // k), -(-h // k)), interpolation=cv2.INTER_AREA)
        self.gray = gray.astype(np.float32) * np.float32(1 / 255)
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

    def __call__(self, small: np.ndarray, size: tuple[int, int], cutoff: float = 0.0) -> np.ndarray:
        """``small`` at ``size``; values within ``cutoff`` of 0 or 1 snap to it (sure pixels stay bit-exact)."""
        if tuple(size) != self.size:
            return _snap(cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_LINEAR), cutoff)
        gh, gw = self.gray.shape
        mask = cv2.resize(small, (gw, gh), interpolation=cv2.INTER_LINEAR)
        g, mean_g, var_g, k = self._guide_at(small.shape)
        mean_p = cv2.blur(small, k)
        a = (cv2.blur(g * small, k) - mean_g * mean_p) / (var_g + np.float32(self.eps))
        b = mean_p - a * mean_g
        a, b = cv2.blur(a, k), cv2.blur(b, k)
        # where the mask is surely 0 or 1 all around, the filter gives the mask back (and bilinear
        # stretching of sure 0s and 1s stays exact): work only in the box around the edges
        edge = cv2.dilate(cv2.inRange(mean_p, _ABOVE_0, _BELOW_1),
                          np.ones(k, np.uint8))
        box = cv2.boundingRect(edge)
        if box[2] and box[3]:
            sh, sw = small.shape
            cx0, cy0, cx1, cy1 = box[0], box[1], box[0] + box[2], box[1] + box[3]
            fy, fx = gh / sh, gw / sw
            y0, y1, x0, x1 = round(cy0 * fy), round(cy1 * fy), round(cx0 * fx), round(cx1 * fx)
            size_in = (x1 - x0, y1 - y0)
            part = mask[y0:y1, x0:x1]
            cv2.multiply(cv2.resize(a[cy0:cy1, cx0:cx1], size_in, interpolation=cv2.INTER_LINEAR),
                         self.gray[y0:y1, x0:x1], dst=part)
            cv2.add(part, cv2.resize(b[cy0:cy1, cx0:cx1], size_in, interpolation=cv2.INTER_LINEAR), dst=part)
            _snap(part, cutoff)  # and into 0..1
        if self.stretch:
            return Stretched(mask, self.stretch)
        if (gh, gw) != tuple(size):
            mask = cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        return mask


def _snap(mask: np.ndarray, cutoff: float) -> np.ndarray:
    """In place: values up to ``cutoff`` become 0, above 1 - ``cutoff`` 1, and all of them 0..1."""
    cv2.threshold(mask, cutoff, 0.0, cv2.THRESH_TOZERO, dst=mask)
    cv2.max(mask, cv2.threshold(mask, 1.0 - cutoff, 1.0, cv2.THRESH_BINARY)[1], dst=mask)
    cv2.min(mask, 1.0, dst=mask)
    return mask


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
        out = np.subtract(carried, new, dtype=np.float32)  # new + (carried - new) * uncertain, in place
        out *= uncertain[None]
        out += new
        smoothed = ClassProbs(out, probs.classes)
        self._prev = smoothed
        return smoothed
