"""MediaPipe's 468-point face mesh around a rotated face crop, in our own code.

The mesh network sees a 192x192 crop whose rectangle comes either from a detection (the box,
turned so the eyes are level, grown 1.5x and made square) or from the previous frame's landmarks
(the same rule with the outer eye corners 33 and 263). Its landmarks are projected back through
that rectangle. Rectangles are MediaPipe ``NormalizedRect`` values: centre and size as fractions
of the frame, rotation in radians; the arithmetic follows its calculators (DetectionsToRects,
RectTransformation, ImageToTensor, LandmarkProjection) so the crops, and therefore the
landmarks, match MediaPipe's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..models import registry
from .tflite_runner import TfliteRunner

LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 33, 263  # the landmarks MediaPipe levels the next crop with
ROI_SCALE = 1.5
NUM_LANDMARKS = 468


@dataclass(frozen=True)
class NormRect:
    cx: float
    cy: float
    w: float
    h: float
    rotation: float = 0.0

    def pixels(self, size: tuple[int, int]) -> tuple[float, float, float, float, float]:
        """(cx, cy, w, h, rotation) in pixels of a frame of ``size`` = (H, W)."""
        H, W = size
        return self.cx * W, self.cy * H, self.w * W, self.h * H, self.rotation

    def _inter(self, other: NormRect) -> float:
        ax0, ay0, ax1, ay1 = self.cx - self.w / 2, self.cy - self.h / 2, self.cx + self.w / 2, self.cy + self.h / 2
        bx0, by0 = other.cx - other.w / 2, other.cy - other.h / 2
        bx1, by1 = other.cx + other.w / 2, other.cy + other.h / 2
        return max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))

    def iou(self, other: NormRect) -> float:
        """Overlap of the axis-aligned boxes, rotation ignored (as MediaPipe's association does)."""
        inter = self._inter(other)
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0

    def cover(self, other: NormRect) -> float:
        """How much of the smaller of the two axis-aligned boxes the other one covers (0..1)."""
        small = min(self.w * self.h, other.w * other.h)
        return self._inter(other) / small if small > 0 else 0.0


def normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def rect_from_box(box, p0, p1, size: tuple[int, int]) -> NormRect:
    """A normalised (xmin, ymin, xmax, ymax) box turned so that p0 -> p1 points along +x."""
    H, W = size
    x0, y0, x1, y1 = (float(v) for v in box)
    rotation = normalize_radians(-math.atan2(-(float(p1[1]) - float(p0[1])) * H, (float(p1[0]) - float(p0[0])) * W))
    return NormRect((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, rotation)


def grow(rect: NormRect, size: tuple[int, int], scale: float = ROI_SCALE) -> NormRect:
    """RectTransformation with ``square_long``: square on the long side (in pixels), then scaled."""
    H, W = size
    side = max(rect.w * W, rect.h * H)
    return NormRect(rect.cx, rect.cy, side / W * scale, side / H * scale, rect.rotation)


def roi_from_detection(box, keypoints, size: tuple[int, int]) -> NormRect:
    """The first crop for a detected face: eyes (keypoints 0 and 1) level, 1.5x, square."""
    return grow(rect_from_box(box, keypoints[0], keypoints[1], size), size)


def roi_from_landmarks(landmarks: np.ndarray, size: tuple[int, int]) -> NormRect:
    """The next frame's crop from normalised landmarks [468, >=2]: their bounds, levelled by 33 -> 263."""
    xy = landmarks[:, :2]
    box = (*xy.min(0), *xy.max(0))
    return grow(rect_from_box(box, xy[LEFT_EYE_OUTER], xy[RIGHT_EYE_OUTER], size), size)


def crop(frame: np.ndarray, rect: NormRect, out: int) -> np.ndarray:
    """The rotated rectangle resampled to ``out`` x ``out`` (edges replicated), as ImageToTensor does."""
    cx, cy, w, h, rot = rect.pixels(frame.shape[:2])
    src = cv2.boxPoints(((cx, cy), (w, h), rot * 180 / math.pi)).astype(np.float32)
    dst = np.float32([[0, out], [0, 0], [out, 0], [out, out]])
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(frame, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def project(landmarks: np.ndarray, rect: NormRect) -> np.ndarray:
    """Landmarks normalised to the crop [n, 3] -> normalised to the frame (z scaled like x)."""
    x, y = landmarks[:, 0] - 0.5, landmarks[:, 1] - 0.5
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    out = np.empty_like(landmarks, dtype=np.float32)
    out[:, 0] = (c * x - s * y) * rect.w + rect.cx
    out[:, 1] = (s * x + c * y) * rect.h + rect.cy
    out[:, 2] = landmarks[:, 2] * rect.w
    return out


class FaceLandmarker:
    """``run(frame, rect)`` -> (landmarks normalised to the frame [468, 3], face presence score)."""

    def __init__(self, weights: Path | None = None, *, backend: str = "onnx", progress: bool = True,
                 one_thread: bool = False):
        path = registry.ensure("face-landmark", weights=weights, progress=progress)
        self.runner = TfliteRunner(path, "face-landmark", backend=backend, one_thread=one_thread)
        self.size = self.runner.input_size[0]
        sizes = [int(np.prod(s)) for s in self.runner.shapes]
        self._lm = sizes.index(NUM_LANDMARKS * 3)
        self._flag = sizes.index(1)

    @property
    def backend(self) -> str:
        return self.runner.backend

    def run(self, frame: np.ndarray, rect: NormRect) -> tuple[np.ndarray, float]:
        """``frame``: BGR uint8 H x W x 3."""
        img = cv2.cvtColor(crop(frame, rect, self.size), cv2.COLOR_BGR2RGB)
        x = img.astype(np.float32).transpose(2, 0, 1)[None] * (1 / 255)
        outs = self.runner(x)
        raw = outs[self._lm].reshape(NUM_LANDMARKS, 3) / self.size
        score = 1.0 / (1.0 + math.exp(-float(np.clip(outs[self._flag].ravel()[0], -80, 80))))
        return project(raw, rect), score
