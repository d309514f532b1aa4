"""What a viewer sees, as numbers: temporal steadiness of styled video, pops, currency, halo.

Steadiness is measured as the field measures it (Lai et al. 2018, "Learning Blind Video Temporal
Consistency"): optical flow is computed on the *input* frames, the previous output is warped onto
the current one with it, pixels the flow cannot vouch for (occlusions, motion boundaries: the
forward-backward check of Ruder et al. 2016) are left out, and what remains is the mean absolute
difference, 0-255. The same number for the input itself says how much the scene really changes;
for the naive path (every frame styled in full) it says what styling costs in steadiness.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .engine.motion import consistent, grid

ANALYSIS_SIZE = (640, 360)  # (W, H) at which steadiness is measured
POP_LEVELS = 12.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


class InputFlow:
    """Flow between input frames (by index), computed once per pair, with where it can be trusted."""

    def __init__(self, inputs: dict[int, np.ndarray]):
        self.inputs = inputs
        self._gray = {i: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for i, f in inputs.items()}
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def pair(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(map from frame j's pixels to where they were in frame i, valid) for warping i onto j."""
        if (i, j) not in self._cache:
            a, b = self._gray[i], self._gray[j]
            backward = self._dis.calc(b, a, None)
            forward = self._dis.calc(a, b, None)
            h, w = b.shape
            self._cache[(i, j)] = (grid(h, w) + backward, consistent(forward, backward))
        return self._cache[(i, j)]

    def warp_error(self, prev: np.ndarray, cur: np.ndarray, i: int, j: int, region: np.ndarray) -> float | None:
        """Mean |cur - warp(prev)| over trusted pixels of ``region``; None when nothing is left to compare."""
        coords, valid = self.pair(i, j)
        warped = cv2.remap(prev, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        keep = valid & region
        if np.count_nonzero(keep) < 100:
            return None
        return float(np.abs(cur.astype(np.float32) - warped)[keep].mean())


@dataclass(frozen=True)
class Regions:
    """Where a class is, per input frame, at analysis size: a core of it and the room well away from it."""

    person: dict[int, np.ndarray]  # bool, eroded: surely the person
    background: dict[int, np.ndarray]  # bool, away from the person's edge
    ring: dict[int, np.ndarray]  # distance (px) outside the person's edge, 0 inside

    @classmethod
    def from_masks(cls, masks: dict[int, np.ndarray], core: int = 5, away: int = 15) -> Regions:
        person, background, ring = {}, {}, {}
        for i, m in masks.items():
            u = m.astype(np.uint8)
            person[i] = cv2.erode(u, np.ones((2 * core + 1,) * 2, np.uint8)) > 0
            background[i] = cv2.dilate(u, np.ones((2 * away + 1,) * 2, np.uint8)) == 0
            ring[i] = cv2.distanceTransform(1 - u, cv2.DIST_L2, 5)
        return cls(person, background, ring)


def instability(outputs: list[tuple[int, np.ndarray]], flow: InputFlow, regions: dict[int, np.ndarray]) -> list[float]:
    """Warping error of each consecutive output pair (source indices i -> j), in the region of frame j."""
    out = []
    for (i, prev), (j, cur) in zip(outputs[:-1], outputs[1:], strict=True):
        if i == j:  # the same input shown twice (a dropped frame repeated): what changed is pure flicker
            e = float(np.abs(cur.astype(np.float32) - prev)[regions[j]].mean()) if regions[j].any() else None
        else:
            e = flow.warp_error(prev, cur, i, j, regions[j])
        if e is not None:
            out.append(e)
    return out


def mask_instability(masks: list[tuple[int, np.ndarray]], flow: InputFlow, band: int = 6,
                     still: float = 0.5) -> list[float]:
    """Flicker of a mask's edge where nothing moves: |m_t - warp(m_{t-1})| (0-255) on trusted pixels
    within ``band`` px of the edge whose flow is under ``still`` px (what moves is allowed to change)."""
    out = []
    kernel = np.ones((2 * band + 1,) * 2, np.uint8)
    for (i, prev), (j, cur) in zip(masks[:-1], masks[1:], strict=True):
        coords, valid = flow.pair(i, j)
        h, w = cur.shape
        motion = np.linalg.norm(coords - grid(h, w), axis=2)
        edge = cv2.dilate(cv2.Canny((cur > 0.5).astype(np.uint8) * 255, 1, 1), kernel) > 0
        keep = edge & valid & (motion < still)
        if np.count_nonzero(keep) < 50:
            continue
        warped = cv2.remap(prev, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out.append(float(np.abs(cur - warped)[keep].mean()) * 255)
    return out


def summary(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "p95": None, "pairs": 0}
    v = np.asarray(values)
    return {"mean": round(float(v.mean()), 2), "p95": round(float(np.percentile(v, 95)), 2), "pairs": len(v)}


def pops(values: list[float], levels: float = POP_LEVELS) -> float:
    """Share of frame pairs whose (warped) change exceeds ``levels``."""
    return round(float(np.mean(np.asarray(values) > levels)), 4) if values else 0.0


def currency(outputs: dict[int, np.ndarray], fresh: dict[int, np.ndarray], regions: dict[int, np.ndarray]) -> float:
    """How closely the output follows the current frame: PSNR at 1/8 scale against styling that very frame,
    inside the class (a stale pose costs a lot; fine texture noise, which the 1/8 scale averages out, does not)."""
    values = []
    for i, got in outputs.items():
        if i not in fresh or not regions[i].any():
            continue
        h, w = got.shape[:2]
        size = (max(1, w // 8), max(1, h // 8))
        a = cv2.resize(got, size, interpolation=cv2.INTER_AREA)
        b = cv2.resize(fresh[i], size, interpolation=cv2.INTER_AREA)
        m = cv2.resize(regions[i].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        if m.any():
            values.append(psnr(a[m], b[m]))
    return round(float(np.median(values)), 2) if values else float("nan")


def halo(outputs: dict[int, np.ndarray], inputs: dict[int, np.ndarray], fresh: dict[int, np.ndarray],
         regions: Regions, band: int = 30) -> dict:
    """The band of unstyled room around the person, and a ghost outline of the person in the room.

    ``width_px``: how far, in pixels, the room around the person stays unstyled: at each distance
    1..``band`` px outside the person's edge, the share of styling missing (0 where the output moved
    from the input as far as styling that very frame does, 1 where it did not move at all; only
    pixels the style changes by more than 15 levels count), summed over the distances.
    ``ghost``: edge energy of the output 8-24 px outside the person over that 40-56 px out, divided
    by the same ratio for the input: 1.0 is no outline that the scene itself does not have."""
    widths, ghosts = [], []
    for i, got in outputs.items():
        if i not in fresh:
            continue
        d = regions.ring[i]
        if not (d == 0).any():
            continue
        inp = inputs[i].astype(np.float32)
        wanted = np.abs(fresh[i].astype(np.float32) - inp).mean(2)
        done = np.abs(got.astype(np.float32) - inp).mean(2)
        missing = np.clip(1.0 - done / np.maximum(wanted, 1e-3), 0.0, 1.0)
        counted = wanted > 15
        width = 0.0
        for dist in range(1, band + 1):
            at = counted & (d > dist - 1) & (d <= dist)
            if np.count_nonzero(at) >= 20:
                width += float(missing[at].mean())
        widths.append(width)
        e_out, e_in = _edges(got), _edges(inputs[i])
        close, far = (d > 8) & (d <= 24), (d > 40) & (d <= 56)
        if close.any() and far.any():
            ratio_out = e_out[close].mean() / max(e_out[far].mean(), 1e-3)
            ratio_in = e_in[close].mean() / max(e_in[far].mean(), 1e-3)
            ghosts.append(ratio_out / max(ratio_in, 1e-3))
    return {"width_px": round(float(np.median(widths)), 2) if widths else None,
            "ghost": round(float(np.median(ghosts)), 3) if ghosts else None}


def _edges(img: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1))
