"""Steady landmarks: MediaPipe's landmark smoothing (one-euro filter) for a face's 468 points.

MediaPipe's face landmarker smooths the landmarks it outputs (not the ones that place the next
crop) with ``LandmarksSmoothingCalculator``: a one-euro filter per coordinate, in pixels, with
the speed measured relative to the face's size, and min_cutoff 0.05, beta 80, derivative cutoff 1.
A still face is held almost exactly still (the oval edge does not shimmer) while a moving one
follows without lag. This is that filter, vectorised over all points.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroOptions:
    min_cutoff: float = 0.05
    beta: float = 80.0
    derivate_cutoff: float = 1.0
    frequency: float = 30.0  # assumed rate until two timestamps give the real one


class LandmarkSmoother:
    """``apply(t, points)``: points [n, k] in pixels at time ``t`` (seconds) -> smoothed points."""

    def __init__(self, options: OneEuroOptions = OneEuroOptions()):
        self.o = options
        self.frequency = options.frequency
        self.last_t: float | None = None
        self.raw: np.ndarray | None = None  # last input
        self.value: np.ndarray | None = None  # last output
        self.speed: np.ndarray | None = None  # filtered speed

    def _alpha(self, cutoff):
        te = 1.0 / self.frequency
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    def apply(self, t: float, points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, np.float64)
        if self.last_t is not None and t <= self.last_t:
            return points  # MediaPipe passes out-of-order samples through unfiltered
        if self.last_t is not None:
            self.frequency = 1.0 / (t - self.last_t)
        self.last_t = t
        scale = (np.ptp(pts[:, 0]) + np.ptp(pts[:, 1])) / 2  # the face's size in pixels
        if scale < 1e-6:
            return points
        speed = np.zeros_like(pts) if self.raw is None else (pts - self.raw) * (self.frequency / scale)
        a = self._alpha(self.o.derivate_cutoff)
        self.speed = speed if self.speed is None else a * speed + (1 - a) * self.speed
        alpha = self._alpha(self.o.min_cutoff + self.o.beta * np.abs(self.speed))
        self.value = pts if self.value is None else alpha * pts + (1 - alpha) * self.value
        self.raw = pts
        return self.value.astype(np.float32)
