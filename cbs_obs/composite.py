"""Masks from class probabilities, and the composite U = sum_c R_c * T_c + (1 - sum_c R_c) * I.

Where every R_c is exactly 0 the original pixel comes out bit-exact; masks are cut off near 0
and 1 (see MaskOptions) so "sure" pixels really are untouched.
"""
from __future__ import annotations

import cv2
import numpy as np

from .look import Assignment, Look, MaskOptions
from .segment.base import ClassProbs


def class_mask(probs: ClassProbs, assignments: list[Assignment], size: tuple[int, int],
               options: MaskOptions) -> np.ndarray:
    """R for one style group at output ``size`` = (H, W): feathered, cut off, scaled by strength."""
    strengths = {a.strength for a in assignments}
    if len(strengths) > 1:  # classes sharing a style with different strengths
        return sum(class_mask(probs, [a], size, options) for a in assignments)
    small = probs.mask([a.cls for a in assignments], hard=options.hard)
    strength = strengths.pop()
    if options.feather > 0:
        # Blur at the small size: same edge width in output pixels, a fraction of the cost.
        sigma = options.feather * small.shape[1] / size[1]
        small = cv2.GaussianBlur(small, (0, 0), max(sigma, 0.3))
    c = options.cutoff
    if c > 0:  # at the small size: cheap, and bilinear upscaling keeps exact zeros exact
        small = np.where(small < c, np.float32(0), np.where(small > 1 - c, np.float32(1), small))
    mask = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) if small.shape != size else small
    if options.hard and options.feather == 0:
        mask = (mask >= 0.5).astype(np.float32)  # hard at output resolution, with smooth (not blocky) contours
    if strength != 1.0:
        mask = mask * np.float32(strength)
    return np.ascontiguousarray(mask, dtype=np.float32)


def build_masks(probs: ClassProbs, look: Look, size: tuple[int, int]) -> dict[str, np.ndarray]:
    return {style: class_mask(probs, group, size, look.mask) for style, group in look.groups().items()}


def composite(frame: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``layers``: (mask R float32 HxW, styled T uint8 HxWx3) pairs; ``frame`` is I."""
    if not layers:
        return frame
    if len(layers) == 1:
        r, t = layers[0]
        return cv2.blendLinear(t, frame, r, 1.0 - r)
    total = np.zeros(frame.shape[:2], np.float32)
    acc = np.zeros(frame.shape, np.float32)
    for r, t in layers:
        total += r
        acc += r[..., None] * t
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-6), 1.0).astype(np.float32)
    keep = 1.0 - np.minimum(total, 1.0)
    out = acc * scale[..., None] + keep[..., None] * frame
    result = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    untouched = total == 0
    result[untouched] = frame[untouched]
    return result
