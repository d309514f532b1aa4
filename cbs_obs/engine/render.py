"""Per-frame rendering with work reuse: the performance knobs of DESIGN.md section 3.

- segmentation and styling of a frame run in parallel (the paper's layout);
- classes that do not move (the room behind a webcam user) come from the background plate,
  styled at full resolution and only when the room changes;
- moving classes (a person, cars) are styled only inside their box, at ``style_size``;
- masks every N frames, temporal smoothing of masks, and skipping near-identical frames.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from ..composite import build_masks, composite
from ..errors import SettingsError
from ..look import Look
from ..segment.base import ClassProbs
from ..stylizer import ClassStylizer
from .plate import BackgroundPlate

log = logging.getLogger(__name__)

STATIC_CLASSES = {
    "person": {"background"},
    "cityscapes": {"road", "sidewalk", "building", "wall", "fence", "pole", "traffic_light", "traffic_sign",
                   "vegetation", "terrain", "sky"},
}


@dataclass(frozen=True)
class PerfSettings:
    """``plate``: auto (on for the person segmenter, whose camera is still), on, off.
    ``plate_size``: longest side at which the plate is styled (None: output size).
    ``style_size``: longest side for styling moving classes (None: output size).
    ``seg_every``: run segmentation every N frames. ``similar_skip``: mean absolute pixel change
    (0-255) below which a frame reuses the previous result. ``smoothing``: 0-0.95, weight of the
    previous mask (less flicker, slower edges). ``crop``: style moving classes only in their box.
    ``moving``: ``sync`` styles moving classes of every frame before it is shown; ``async`` (live
    sources only) styles them in a thread of their own and shows the newest styled box on each frame,
    so the frame rate follows the camera while the style refreshes as fast as the CPU allows."""

    style_size: int | None = 640
    plate: str = "auto"
    plate_size: int | None = None
    seg_every: int = 1
    similar_skip: float = 0.0
    smoothing: float = 0.0
    crop: bool = True
    moving: str = "async"

    def __post_init__(self):
        if self.moving not in ("sync", "async"):
            raise SettingsError(f"moving must be sync or async, got {self.moving!r}")
        if self.plate not in ("auto", "on", "off"):
            raise SettingsError(f"plate must be auto, on or off, got {self.plate!r}")
        if self.seg_every < 1:
            raise SettingsError(f"seg_every must be 1 or more, got {self.seg_every}")
        if not 0 <= self.smoothing <= 0.95:
            raise SettingsError(f"smoothing must be between 0 and 0.95, got {self.smoothing}")
        if not 0 <= self.similar_skip <= 50:
            raise SettingsError(f"similar_skip must be between 0 and 50, got {self.similar_skip}")
        for name in ("style_size", "plate_size"):
            v = getattr(self, name)
            if v is not None and not 16 <= v <= 8192:
                raise SettingsError(f"{name} must be 16-8192 pixels, got {v}")


def box_of(mask: np.ndarray, size: tuple[int, int], margin: float = 0.08,
           threshold: float = 0.05) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) at frame ``size`` around a small mask's non-zero area, grown by ``margin``."""
    ys, xs = np.nonzero(mask > threshold)
    if len(ys) == 0:
        return None
    (h, w), (sh, sw) = size, mask.shape
    fy, fx = h / sh, w / sw
    my, mx = int(margin * h), int(margin * w)
    return (max(0, int(ys.min() * fy) - my), min(h, int((ys.max() + 1) * fy) + my),
            max(0, int(xs.min() * fx) - mx), min(w, int((xs.max() + 1) * fx) + mx))


class AsyncStyler:
    """Styles the newest frame's boxes in its own thread; the frame loop only picks up results.

    Each result carries the tag of the frame it was styled from, so the frame loop can move it to
    where the class is now (see ``Renderer._shifted``)."""

    def __init__(self, style_fn):
        self.style_fn = style_fn
        self._cond = threading.Condition()
        self._request = None
        self._results: dict[str, tuple] = {}  # spec -> (box, styled, frame shape, frame tag)
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="moving-style", daemon=True)
        self._thread.start()
        self.styled_frames = 0

    def submit(self, pixels: np.ndarray, jobs: dict[str, tuple[int, int, int, int] | None], tag: int) -> None:
        with self._cond:
            self._request = (pixels, jobs, tag)
            self._cond.notify_all()

    def latest(self, spec: str, shape: tuple[int, int]):
        with self._cond:
            r = self._results.get(spec)
        return r if r is not None and r[2] == shape else None

    def put(self, spec: str, box, styled: np.ndarray, shape: tuple[int, int], tag: int) -> None:
        with self._cond:
            self._results[spec] = (box, styled, shape, tag)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._request is None and not self._stop:
                    self._cond.wait(0.5)
                if self._stop:
                    return
                (pixels, jobs, tag), self._request = self._request, None
            for spec, box in jobs.items():
                try:
                    styled = self.style_fn(spec, pixels, box)
                except Exception as e:  # logged once per failure; the frame loop falls back to sync styling
                    log.warning("styling %s failed: %s", spec, e)
                    continue
                self.put(spec, box, styled, pixels.shape[:2], tag)
            self.styled_frames += 1

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=5)


class Renderer:
    def __init__(self, stylizer: ClassStylizer, settings: PerfSettings, pool: ThreadPoolExecutor,
                 segmenter_name: str = "person", realtime: bool = True):
        self.stylizer, self.settings, self.pool = stylizer, settings, pool
        self.async_styler = AsyncStyler(self._style_box) if settings.moving == "async" and realtime else None
        use_plate = settings.plate == "on" or (settings.plate == "auto" and segmenter_name == "person")
        self.static = STATIC_CLASSES.get(segmenter_name, set()) if use_plate else set()
        self.plate = BackgroundPlate(max_side=settings.plate_size, background=realtime) if self.static else None
        self._probs: ClassProbs | None = None
        self._boxes: dict[str, tuple[int, int, int, int] | None] = {}
        self._centroids: dict[int, dict[str, tuple[float, float] | None]] = {}  # frame tag -> spec -> (y, x)
        self._count = 0
        self._last: tuple[np.ndarray, Look, np.ndarray] | None = None  # (thumbnail, look, output)

    def _segment(self, pixels: np.ndarray) -> ClassProbs:
        probs = self.stylizer.segmenter.segment(pixels)
        a = self.settings.smoothing
        prev = self._probs
        if a > 0 and prev is not None and prev.probs.shape == probs.probs.shape:
            probs = ClassProbs(a * prev.probs + (1 - a) * probs.probs, probs.classes)
        return probs

    def _box_for(self, spec: str, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """Last frame's box for ``spec`` when cropping pays off, else None (style the whole frame)."""
        box = self._boxes.get(spec) if self.settings.crop else None
        if box is None or (box[1] - box[0]) * (box[3] - box[2]) > 0.6 * shape[0] * shape[1]:
            return None
        return box

    def _style_box(self, spec: str, pixels: np.ndarray, box) -> np.ndarray:
        style = self.stylizer.styles.get(spec)
        if box is None:
            return style.apply(pixels)
        y0, y1, x0, x1 = box
        return style.apply(np.ascontiguousarray(pixels[y0:y1, x0:x1]))

    @staticmethod
    def _paste(pixels: np.ndarray, box, styled: np.ndarray, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
        """The frame with a styled box pasted in, moved by ``shift`` = (dy, dx) pixels."""
        dy, dx = shift
        if box is None:
            if dy == 0 and dx == 0:
                return styled
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            return cv2.warpAffine(styled, m, (styled.shape[1], styled.shape[0]), borderMode=cv2.BORDER_REPLICATE)
        h, w = pixels.shape[:2]
        y0, y1, x0, x1 = box
        ty0, tx0 = max(0, y0 + dy), max(0, x0 + dx)
        ty1, tx1 = min(h, y1 + dy), min(w, x1 + dx)
        canvas = pixels.copy()
        if ty1 > ty0 and tx1 > tx0:
            canvas[ty0:ty1, tx0:tx1] = styled[ty0 - y0 - dy : ty1 - y0 - dy, tx0 - x0 - dx : tx1 - x0 - dx]
        return canvas

    @staticmethod
    def _centroid(small: np.ndarray, shape: tuple[int, int]) -> tuple[float, float] | None:
        """Mass centre of a small mask, in frame pixels (y, x)."""
        total = float(small.sum())
        if total < 1e-3:
            return None
        ys, xs = np.indices(small.shape)
        return (float((ys * small).sum() / total) * shape[0] / small.shape[0],
                float((xs * small).sum() / total) * shape[1] / small.shape[1])

    def _style_moving(self, pixels: np.ndarray, specs: list[str], tag: int) -> tuple[dict, dict]:
        """Styles for moving classes inside last frame's box: (finished canvases, async results to place)."""
        done, pending = {}, {}
        shape = pixels.shape[:2]
        jobs = {spec: self._box_for(spec, shape) for spec in specs}
        if self.async_styler is not None and specs:
            self.async_styler.submit(pixels, jobs, tag)
        for spec, box in jobs.items():
            ready = self.async_styler.latest(spec, shape) if self.async_styler is not None else None
            if ready is None:  # sync mode, or the first frame of a new look
                done[spec] = self._paste(pixels, box, self._style_box(spec, pixels, box))
            else:
                pending[spec] = ready
        return done, pending

    def _shifted(self, pixels, spec, ready, now) -> np.ndarray:
        """An async result moved by how far the class moved since its frame (motion compensation)."""
        box, styled, _, tag = ready
        then = self._centroids.get(tag, {}).get(spec)
        shift = (0, 0) if then is None or now is None else (round(now[0] - then[0]), round(now[1] - then[1]))
        return self._paste(pixels, box, styled, shift)

    def render(self, pixels: np.ndarray, look: Look) -> tuple[np.ndarray, dict[str, float]]:
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        thumb = None
        if self.settings.similar_skip > 0:
            thumb = cv2.resize(pixels, (32, 18), interpolation=cv2.INTER_AREA).astype(np.int16)
            if self._last is not None and self._last[1] is look and \
                    np.abs(thumb - self._last[0]).mean() < self.settings.similar_skip:
                stages["process"] = time.perf_counter() - t0
                return self._last[2], stages

        groups = look.groups()
        static_specs = [s for s, g in groups.items() if self.static and all(a.cls in self.static for a in g)]
        moving_specs = [s for s in groups if s not in static_specs]
        need_seg = self._probs is None or self._count % self.settings.seg_every == 0 or \
            self._probs.probs.shape[0] != len(self.stylizer.classes)
        self._count += 1
        tag = self._count
        seg_future = self.pool.submit(_timed, self._segment, pixels) if need_seg else None
        t_style = time.perf_counter()
        styled, pending = self._style_moving(pixels, moving_specs, tag)
        stages["style"] = time.perf_counter() - t_style
        if seg_future is not None:
            self._probs, stages["segment"] = seg_future.result()
        probs = self._probs
        t1 = time.perf_counter()
        masks = build_masks(probs, look, pixels.shape[:2])
        shape = pixels.shape[:2]
        if moving_specs:
            small = {spec: probs.mask([a.cls for a in groups[spec]]) for spec in moving_specs}
            now = {spec: self._centroid(small[spec], shape) for spec in moving_specs}
            self._centroids[tag] = now
            self._centroids.pop(tag - 90, None)  # results older than ~3 s are never placed
            for spec in moving_specs:
                self._boxes[spec] = box_of(small[spec], shape)
            for spec, ready in pending.items():
                styled[spec] = self._shifted(pixels, spec, ready, now[spec])
        if self.plate is not None:
            self.plate.forget_unused(set(static_specs))
            if static_specs:
                self.plate.update(pixels, probs.mask(sorted(self.static & set(probs.classes))))
            for spec in static_specs:
                plate = self.plate.styled(spec)
                if plate is None:  # first frame of a new look: style this frame once, the plate follows
                    plate = self.stylizer.styles.get(spec).apply(pixels)
                styled[spec] = plate
        out = composite(pixels, [(masks[s], styled[s]) for s in masks])
        stages["composite"] = time.perf_counter() - t1
        stages["process"] = time.perf_counter() - t0
        if thumb is not None:
            self._last = (thumb, look, out)
        return out, stages

    def close(self) -> None:
        if self.plate is not None:
            self.plate.close()
        if self.async_styler is not None:
            self.async_styler.close()


def _timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0
