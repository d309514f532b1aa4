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

from ..composite import Patch, class_mask, composite
from ..errors import RemoteUnavailable, SettingsError
from ..look import Look
from ..segment import segmenter_kind
from ..segment.base import ClassProbs
from ..style.catalog import is_neural
from ..stylizer import ClassStylizer
from .blink import BlinkHold
from .edges import GuidedUpsampler, MaskSmoother
from .motion import Motion
from .moving import AsyncStyler, MovingLayer, StyleResult, fade_frames
from .pace import FlowPace
from .plate import BackgroundPlate

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class PerfSettings:
    """``plate``: auto (on for the person segmenter, whose camera is still), on, off.
    ``plate_size``: longest side at which the plate is styled (None: output size).
    ``style_size``: longest side for styling moving classes (None: output size).
    ``seg_every``: run segmentation every N frames. ``similar_skip``: mean absolute pixel change
    (0-255) below which a frame reuses the previous result. ``smoothing``: 0-0.95, weight of the
    previous mask, moved along the input's motion, where the segmenter is unsure (steady edges, no
    lag on motion). ``edges``: snap mask edges to the full-resolution frame (guided filter).
    ``crop``: style moving classes only in their box. ``moving``: ``sync`` styles moving classes of
    every frame before it is shown; ``async`` (live sources only) styles them in a thread of their
    own, so the frame rate follows the camera while the style refreshes in the spare CPU.
    Either way the styled picture of a moving class is carried along the input's optical flow on
    every frame; ``temporal`` (0-0.95) is the weight the carried picture keeps where the flow is
    trustworthy when a new style result lands (0: every result replaces it, as per-frame styling).
    ``refresh``: style results landed per second at most, live (async) and in videos styled offline.
    A neural style answers tiny input changes with new texture, so every result that lands adds
    flicker, while the flow keeps the picture current in between: on again, 15 results a second (all
    a fast machine could style) gave 2.6x the input's instability, 4 a second 1.9x, 2 a second 1.7x,
    and each followed the current frame more closely (currency 11.7 -> 12.5 dB); on book more results
    follow a little more closely (13.4 dB at 2, 13.8 at 15) at 1.3x -> 2.5x the flicker. ``--moving
    sync`` live styles every frame all the same: that is what it is for."""

    style_size: int | None = 640
    plate: str = "auto"
    plate_size: int | None = None
    seg_every: int = 1
    similar_skip: float = 0.0
    smoothing: float = 0.8
    crop: bool = True
    moving: str = "async"
    temporal: float = 0.5
    edges: bool = True
    refresh: float = 2.0

    def __post_init__(self):
        if self.moving not in ("sync", "async"):
            raise SettingsError(f"moving must be sync or async, got {self.moving!r}")
        if self.plate not in ("auto", "on", "off"):
            raise SettingsError(f"plate must be auto, on or off, got {self.plate!r}")
        if self.seg_every < 1:
            raise SettingsError(f"seg_every must be 1 or more, got {self.seg_every}")
        if not 0 <= self.smoothing <= 0.95:
            raise SettingsError(f"smoothing must be between 0 and 0.95, got {self.smoothing}")
        if not 0 <= self.temporal <= 0.95:
            raise SettingsError(f"temporal must be between 0 and 0.95, got {self.temporal}")
        if not 0.1 <= self.refresh <= 120:
            raise SettingsError(f"refresh must be between 0.1 and 120 style results a second, got {self.refresh}")
        if not 0 <= self.similar_skip <= 50:
            raise SettingsError(f"similar_skip must be between 0 and 50, got {self.similar_skip}")
        for name in ("style_size", "plate_size"):
            v = getattr(self, name)
            if v is not None and not 16 <= v <= 8192:
                raise SettingsError(f"{name} must be 16-8192 pixels, got {v}")


def box_of(mask: np.ndarray, size: tuple[int, int], margin: float = 0.08,
           threshold: float = 0.05) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) at frame ``size`` around a small mask's non-zero area, grown by ``margin``."""
    inside = mask > threshold
    ys = np.flatnonzero(inside.any(1))  # the rows and columns it spans: no coordinate list per pixel
    if len(ys) == 0:
        return None
    xs = np.flatnonzero(inside.any(0))
    (h, w), (sh, sw) = size, mask.shape
    fy, fx = h / sh, w / sw
    my, mx = int(margin * h), int(margin * w)
    return (max(0, int(ys[0] * fy) - my), min(h, int((ys[-1] + 1) * fy) + my),
            max(0, int(xs[0] * fx) - mx), min(w, int((xs[-1] + 1) * fx) + mx))


class Renderer:
    """Renders frames of one live run (or one offline video): segmentation, the background plate,
    the moving-class layers and their motion, the composite."""

    def __init__(self, stylizer: ClassStylizer, settings: PerfSettings, pool: ThreadPoolExecutor,
                 segmenter_name: str = "person", realtime: bool = True, fps: float = 30.0):
        self.stylizer, self.settings, self.pool = stylizer, settings, pool
        self.async_styler = AsyncStyler(self._style_box, interval=1.0 / settings.refresh) \
            if settings.moving == "async" and realtime else None
        # offline, a moving class is styled on every Nth frame of the file (the live rate, in the file's time)
        self._style_every = 1 if realtime else max(1, round(fps / settings.refresh))
        # a new result comes in over a few frames, done before the next can land (live sync: every frame its own)
        self._fade = 1 if realtime and settings.moving == "sync" else fade_frames(fps / settings.refresh)
        self.static = set(segmenter_kind(segmenter_name).plate_classes(settings.plate))
        self.plate = BackgroundPlate(max_side=settings.plate_size, background=realtime) if self.static else None
        # live, the flow's detail follows the loop's headroom (a file styled offline always gets the fine one).
        # The face tracker runs the face mesh on every frame beside the person network, so with it the loop
        # starts with the light flow (face + body on again with the fine one: 29.3 fps, 8 frames dropped in
        # 450 and latency p95 80 ms, against 30 fps, 0 and 51 ms) and takes the fine one when it has room.
        self.motion = Motion(light=realtime and getattr(stylizer.segmenter, "tracker", None) is not None)
        self.pace = FlowPace(1.0 / fps, fine=self.motion.fine) if realtime else None
        self.layers: dict[str, MovingLayer] = {}
        self.smoother = MaskSmoother(settings.smoothing)
        self.blink = BlinkHold()
        self._probs: ClassProbs | None = None
        self._boxes: dict[str, tuple[int, int, int, int] | None] = {}
        self._count = 0
        self._last: tuple[np.ndarray, Look, Composition] | None = None  # (thumbnail, look, output)
        self._interim: dict[str, np.ndarray] = {}  # static spec -> this look's first frame, styled in line
        self._neural: dict[str, bool] = {}  # spec -> run by a network (else a filter, applied in line)

    def _segment(self, pixels: np.ndarray, t: float | None = None) -> ClassProbs:
        seg = self.stylizer.segmenter
        # segmenters that filter over time (the face tracker's landmark smoothing) take the frame's time
        return seg.segment(pixels, t=t) if t is not None and getattr(seg, "timed", False) else seg.segment(pixels)

    def _segment_smoothed(self, pixels: np.ndarray, t: float | None, moved: threading.Event | None):
        """(this frame's class probabilities smoothed over time, seconds the network took). ``moved``: set
        when this frame's motion is known, to smooth along it (None: smooth without motion)."""
        t0 = time.perf_counter()
        raw = self._segment(pixels, t)
        took = time.perf_counter() - t0
        if moved is not None:
            moved.wait()
        return self.smoother(raw, self.motion if moved is not None else None), took

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

    def _style_moving(self, pixels: np.ndarray, specs: list[str], tag: int) -> dict[str, Patch]:
        """Carry every moving class's canvas along this frame's motion; land new style results in it.
        Filters (sketch, blur, cartoon...) are cheap and give the same picture for the same input:
        they are applied to this very frame instead, so they follow it exactly and never wait for a
        neural style in the styler's thread. Returns those in-line results."""
        shape = pixels.shape[:2]
        jobs = {spec: self._box_for(spec, shape) for spec in specs}
        for s in specs:
            if s not in self._neural:
                self._neural[s] = is_neural(s)
        inline = [s for s in specs if not self._neural[s]]
        carried = [s for s in specs if s not in inline]
        for spec in list(self.layers):
            if spec not in carried:
                del self.layers[spec]
        for spec in carried:
            layer = self.layers.setdefault(spec, MovingLayer(spec, blend=1.0 - self.settings.temporal, fade=self._fade))
            layer.advance(self.motion, jobs[spec])
        if self.async_styler is not None:
            for result in self.async_styler.take():
                if result.spec in self.layers:
                    self.layers[result.spec].land(result, pixels, self.motion)
            if carried and self.async_styler.submit(pixels, {s: jobs[s] for s in carried}, tag):
                for spec in carried:
                    self.layers[spec].follow(tag, self.motion)
        due = (tag - 1) % self._style_every == 0
        for spec in carried:  # sync mode (offline: every Nth frame), or a new look's first frame: style this frame
            layer = self.layers[spec]
            if not layer.ready or (self.async_styler is None and due):
                try:
                    styled = self._style_box(spec, pixels, jobs[spec])
                except RemoteUnavailable:  # the server is reconnecting: carry the last canvas (or the frame itself)
                    if layer.ready:
                        continue
                    styled = _crop(pixels, jobs[spec])
                layer.land(StyleResult(spec, jobs[spec], styled, shape, tag), pixels, self.motion, now=True)
        return {spec: Patch(jobs[spec] or (0, shape[0], 0, shape[1]), self._style_box(spec, pixels, jobs[spec]))
                for spec in inline}

    def render(self, pixels: np.ndarray, look: Look, t: float | None = None) -> tuple[np.ndarray, dict[str, float]]:
        """The frame styled and composited now. ``t``: the frame's time in seconds when it is not now
        (a video file styled offline)."""
        t0 = time.perf_counter()
        composition, stages = self.prepare(pixels, look, t)
        blended_now = not composition.done  # a skipped frame hands back the last one, already blended
        out = composition.result()
        masks = stages.pop("masks", 0.0)
        if blended_now:
            stages["composite"] = masks + composition.seconds
        stages["process"] = time.perf_counter() - t0
        return out, stages

    def prepare(self, pixels: np.ndarray, look: Look, t: float | None = None) -> tuple[Composition, dict[str, float]]:
        """Everything of a frame but the blending of its layers: that is left to whoever shows it (the live
        engine's output thread), so it overlaps with the next frame's work here."""
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
        # the network runs while this thread measures the motion and carries the moving classes; its
        # worker then smooths the masks along that motion while this thread is still carrying. With no
        # moving class there is nothing to overlap: the network runs in line, which saves the hand-off
        # (3-4% of a core, bg720), and the masks are smoothed without motion
        moved = threading.Event()
        seg_future = None if not need_seg else self.pool.submit(self._segment_smoothed, pixels, t, moved) \
            if moving_specs else _InLine(self._segment_smoothed, pixels, t, None)
        t_motion = time.perf_counter()
        try:
            if moving_specs:  # only moving classes need the input's motion
                self.motion.update(pixels)
        finally:
            moved.set()
        stages["motion"] = time.perf_counter() - t_motion
        t_style = time.perf_counter()
        inline = self._style_moving(pixels, moving_specs, tag)
        stages["style"] = time.perf_counter() - t_style
        # the room's edge around the person is where a pale band would show: those masks are snapped to
        # the frame's own edges (its guide is made before the network's answer is waited for)
        edges = GuidedUpsampler(pixels, stretched=True) if self.settings.edges and static_specs and \
            not look.mask.hard else None
        if seg_future is not None:
            try:
                self._probs, stages["segment"] = seg_future.result()
                if static_specs:  # a person the segmenter blinks out of the frame is not painted over by the room
                    self._probs = self.blink(self._probs, pixels, self.plate,
                                             sorted(self.static & set(self._probs.classes)))
            except RemoteUnavailable:  # the server is reconnecting: keep the last masks
                if self._probs is None:  # none yet: show the frame as it is
                    stages["process"] = time.perf_counter() - t0
                    return Composition(pixels, []), stages
        probs = self._probs
        t1 = time.perf_counter()
        shape = pixels.shape[:2]
        masks = {spec: class_mask(probs, groups[spec], shape, look.mask, edges if spec in static_specs else None,
                                  stretched=True) for spec in groups}
        styled = {spec: inline[spec] if spec in inline else self.layers[spec].patch(shape, lazy=True)
                  for spec in moving_specs}
        for spec in moving_specs:
            self._boxes[spec] = box_of(probs.mask([a.cls for a in groups[spec]]), shape)
        if self.plate is not None:
            self.plate.forget_unused(set(static_specs))
            if static_specs:
                self.plate.update(pixels, probs.mask(sorted(self.static & set(probs.classes))))
            for spec in static_specs:
                plate = self.plate.styled(spec)
                if plate is None:  # a new look: style one frame in line and show it until the plate is ready
                    plate = self._interim.get(spec)
                    if plate is None or plate.shape != pixels.shape:
                        try:
                            plate = self._interim[spec] = self.stylizer.styles.get(spec).apply(pixels)
                        except RemoteUnavailable:  # the server is reconnecting: the room unstyled until it is back
                            plate = pixels
                else:
                    self._interim.pop(spec, None)
                styled[spec] = plate
        out = Composition(pixels, [(masks[s], styled[s]) for s in masks])
        stages["masks"] = time.perf_counter() - t1  # the blend is timed when it is made
        stages["process"] = time.perf_counter() - t0
        if self.pace is not None and moving_specs:
            self.motion.fine = self.pace.observe(stages["process"])
        if thumb is not None:
            self._last = (thumb, look, out)
        return out, stages

    def close(self) -> None:
        if self.plate is not None:
            self.plate.close()
        if self.async_styler is not None:
            self.async_styler.close()


def _crop(pixels: np.ndarray, box) -> np.ndarray:
    if box is None:
        return pixels
    y0, y1, x0, x1 = box
    return np.ascontiguousarray(pixels[y0:y1, x0:x1])


class Composition:
    """One frame's layers, blended into the picture when first asked for (then kept). Everything it
    holds is this frame's own: nothing the renderer changes for later frames (layers hand over copies
    of their canvases), so another thread may blend it while the renderer goes on."""

    def __init__(self, frame: np.ndarray, layers: list):
        self._frame, self._layers = frame, layers
        self._out: np.ndarray | None = None
        self.seconds = 0.0  # how long the blend took

    @property
    def done(self) -> bool:
        return self._out is not None

    def result(self) -> np.ndarray:
        if self._out is None:
            t0 = time.perf_counter()
            self._out = composite(self._frame, self._layers)
            self.seconds = time.perf_counter() - t0
            self._frame = self._layers = None
        return self._out


class _InLine:
    """A job the frame loop runs itself when its ``result()`` is asked for (as a pool's future would give it)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def result(self):
        return self.fn(*self.args)
