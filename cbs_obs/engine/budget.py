"""``--budget FPS``: pick processing sizes that hold a frame rate on this very machine.

Measures the segmenter and the look's styles on a real frame at a few sizes (a second or two at
start-up) and keeps the largest sizes whose per-frame cost fits the budget with some headroom.
"""
from __future__ import annotations

import time
from dataclasses import replace

import cv2
import numpy as np

from ..look import Look
from ..stylizer import ClassStylizer
from ..segment import segmenter_kind
from .render import PerfSettings

STYLE_SIZES = (1280, 960, 768, 640, 512, 448, 384, 320, 256, 192, 160)
HEADROOM = 0.8  # leave room for capture, outputs and the rest of the machine (OBS!)


def _median_time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def choose(stylizer: ClassStylizer, frame: np.ndarray, look: Look, fps: float, base: PerfSettings,
           segmenter_name: str) -> tuple[PerfSettings, str]:
    budget = HEADROOM / fps
    h, w = frame.shape[:2]
    t_seg = _median_time(lambda: stylizer.segmenter.segment(frame))
    t_comp = 0.004 * (h * w) / (1280 * 720)  # composite at output size, measured ~4 ms at 720p
    seg_every = 1
    while t_seg / seg_every + t_comp > budget and seg_every < 4:
        seg_every += 1
    static = segmenter_kind(segmenter_name).plate_classes(base.plate)  # what the renderer will serve from the plate
    moving = [s for s, g in look.groups().items() if not (static and all(a.cls in static for a in g))]
    style_size = base.style_size
    left = budget - t_seg / seg_every - t_comp
    if moving:
        from ..style.catalog import StyleCache

        full = StyleCache(max_side=None)  # measure at exactly the sizes tried
        style_size = STYLE_SIZES[-1]
        for size in STYLE_SIZES:
            if size > max(h, w):
                continue
            sample = cv2.resize(frame, (max(8, round(w * size / max(h, w))), max(8, round(h * size / max(h, w)))))
            cost = sum(_median_time(lambda s=s, x=sample: full.get(s).apply(x), 2) for s in moving)
            cost *= 0.6 if base.crop else 1.0  # moving classes are styled inside their box
            if cost <= left:
                style_size = size
                break
    settings = replace(base, style_size=style_size, seg_every=seg_every)
    report = (f"budget {fps:g} fps: segment {t_seg * 1000:.0f} ms every {seg_every} frame(s), "
              f"moving styles at {style_size} px" if moving else
              f"budget {fps:g} fps: segment {t_seg * 1000:.0f} ms every {seg_every} frame(s), "
              "background from the plate at full resolution")
    return settings, report
