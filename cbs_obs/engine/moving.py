"""Styling for classes that move (a person, cars): carried along the input's motion every frame.

A neural style takes longer than a frame, so a styled person cannot be restyled 30 times a
second on a CPU. Showing the newest styled result as it is (or moved rigidly) looks like
stop-motion: hands and face hold an old pose, then jump. Instead each moving class keeps a
*canvas*, the styled picture as the viewer last saw it, and on every frame moves it with the
input's dense optical flow, so the styled hand follows the hand. When a new style result lands
(styled from a frame a few frames back) it is first moved to the current frame along the flow
accumulated since its frame, then blended in where the carried canvas is trustworthy (a partial
step, so a refresh never jumps) and taken directly where it is not (occlusions, newly visible
places). Neural styles answer tiny input changes with new texture; the blend is also what keeps
that texture from shimmering, and it is spread over the next few frames (carried along with the
canvas meanwhile), so the new texture flows in instead of jumping in on one frame.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from ..composite import Patch, Stretched
from ..models.device import background_work
from .motion import Motion, remap_region

from ..errors import RemoteUnavailable

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 in frame pixels


@dataclass
class StyleResult:
    """A styled box of frame ``tag``."""

    spec: str
    box: Box | None
    styled: np.ndarray
    shape: tuple[int, int]
    tag: int


class AsyncStyler:
    """Styles one frame's boxes at a time in its own thread; the frame loop hands it a frame only
    when it is idle (so exactly one frame is in flight, and its motion can be followed) and picks
    up results when they are ready, and at most one frame every ``interval`` seconds."""

    def __init__(self, style_fn, interval: float = 0.0):
        self.style_fn, self.interval = style_fn, interval
        self._submitted = -float("inf")  # monotonic time the last frame was taken
        self._cond = threading.Condition()
        self._request = None
        self._busy = False
        self._results: list[StyleResult] = []
        self._stop = False
        self.styled_frames = 0
        self._thread = threading.Thread(target=self._loop, name="moving-style", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._busy

    def submit(self, pixels: np.ndarray, jobs: dict[str, Box | None], tag: int) -> bool:
        """Start styling ``jobs`` of this frame unless a frame is in flight or the last one was taken less
        than ``interval`` ago. True if taken."""
        now = time.monotonic()
        with self._cond:
            if self._busy or now - self._submitted < self.interval:
                return False
            self._busy, self._request, self._submitted = True, (pixels, jobs, tag), now
            self._cond.notify_all()
            return True

    def take(self) -> list[StyleResult]:
        with self._cond:
            out, self._results = self._results, []
        return out

    def _loop(self) -> None:
        background_work()
        while True:
            with self._cond:
                while self._request is None and not self._stop:
                    self._cond.wait(0.5)
                if self._stop:
                    return
                (pixels, jobs, tag), self._request = self._request, None
            done = []
            for spec, box in jobs.items():
                try:
                    done.append(StyleResult(spec, box, self.style_fn(spec, pixels, box), pixels.shape[:2], tag))
                except RemoteUnavailable as e:  # reconnecting: the frame loop keeps carrying the last canvas
                    log.debug("styling %s skipped: %s", spec, e)
                    time.sleep(0.1)
                except Exception as e:  # logged; the frame loop keeps carrying the last canvas
                    log.warning("styling %s failed: %s", spec, e)
            with self._cond:
                self._results += done
                self._busy = False
                self.styled_frames += 1

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=5)


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def fade_frames(between: float) -> int:
    """Frames a new result takes to come in when results land every ``between`` frames: at most 6 (200 ms
    at 30 fps), and done before the next one lands."""
    return min(6, max(1, round(between) - 1))


def canvas_scale(shape: tuple[int, int]) -> int:
    """How much smaller than the frame a moving class's styled picture is kept: about 640 px across,
    the size neural styles run at anyway, so carrying it along costs a quarter at 720p."""
    return max(1, round(max(shape) / 640))


class MovingLayer:
    """The styled picture of one moving class (one style spec), kept steady across frames.

    ``blend``: share of a new style result mixed into the carried canvas where the flow is
    trustworthy (1 = take every result as it is, the old behaviour; lower = steadier, slower to
    take on a changed look). ``fade``: frames over which a result comes in (in full where the flow was
    not trustworthy, there the carried canvas is wrong; by ``blend`` elsewhere). At 2 results a second a
    result blended on one frame changed the styled person by 10-13 levels at once (book, mean over its
    box); spread over 6 frames, by 4.8 at most, with the input's own change there 1-3. The canvas is
    kept at 1/``canvas_scale`` of the frame size; boxes given and taken are in frame pixels."""

    def __init__(self, spec: str, blend: float = 0.5, fade: int = 6):
        self.spec, self.blend, self.fade = spec, blend, max(1, fade)
        self._incoming: np.ndarray | None = None  # canvas size BGRA: a result on its way in, A = its weight
        self._fade_step = 0
        self.canvas: np.ndarray | None = None  # the frame at 1/k, meaningful inside ``region``
        self.region: Box | None = None  # in canvas pixels
        self.k = 1
        self._frame_shape: tuple[int, int] | None = None
        self._chains: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # tag -> (map now -> that frame, valid)
        self._trust: np.ndarray | None = None  # flow size, 0..1: was the canvas carried correctly here?
        self.landed = 0

    @property
    def ready(self) -> bool:
        return self.canvas is not None

    def reset(self) -> None:
        self.canvas, self.region, self._chains, self._trust = None, None, {}, None
        self._incoming = None

    def _small(self, box: Box) -> Box:
        """A frame box in canvas pixels (covering it)."""
        k, (h, w) = self.k, self.canvas.shape[:2]
        y0, y1, x0, x1 = box
        return y0 // k, min(h, -(-y1 // k)), x0 // k, min(w, -(-x1 // k))

    def _shape(self) -> tuple[int, int]:
        return self.canvas.shape[:2]

    # -- every frame -----------------------------------------------------------------------------
    def advance(self, motion: Motion, box: Box | None) -> None:
        """Move the canvas (and the maps of frames still being styled) by this frame's motion."""
        for tag, (coords, valid) in list(self._chains.items()):
            self._chains[tag] = motion.chain(coords, valid)
        if self.canvas is None:
            return
        if self._frame_shape != motion.shape:
            self.reset()
            return
        h, w = self._shape()
        region = self._small(box) if box is not None else (0, h, 0, w)
        y0, y1, x0, x1 = region
        if not motion.still:
            xy = motion.full_map(motion.step_map(), region, (h, w))
            self.canvas[y0:y1, x0:x1] = remap_region(self.canvas, xy)
            if self._incoming is not None:
                self._incoming[y0:y1, x0:x1] = remap_region(self._incoming, xy)
            self._trust = motion.carry_small(self._trust) * motion.valid
        self.region = region
        if self._incoming is not None:
            self._fade_in(region)

    def _fade_in(self, region: Box) -> None:
        """One step of the result on its way in: after step k of n, k / n of its weight has come in."""
        y0, y1, x0, x1 = region
        incoming = self._incoming[y0:y1, x0:x1]
        w = incoming[..., 3].astype(np.float32) * np.float32(1 / 255)
        k, n = self._fade_step, self.fade
        step = w / np.maximum(np.float32(n) - w * np.float32(k), np.float32(1e-3))  # of what is left to come in
        part = self.canvas[y0:y1, x0:x1]
        self.canvas[y0:y1, x0:x1] = cv2.blendLinear(np.ascontiguousarray(incoming[..., :3]), part, step, 1.0 - step)
        self._fade_step += 1
        if self._fade_step >= n:
            self._incoming = None

    def follow(self, tag: int, motion: Motion) -> None:
        """A frame was handed to the styler: follow the motion from it until its result lands."""
        self._chains = {tag: motion.identity()}

    def land(self, result: StyleResult, pixels: np.ndarray, motion: Motion, *, now: bool = False) -> None:
        """Blend a style result into the canvas, moved from its frame to this one (``now``: styled from this frame)."""
        h, w = pixels.shape[:2]
        if result.shape != (h, w):
            return
        chain = None if now else self._chains.pop(result.tag, None)
        if chain is None and not now:  # its frame's motion was not followed: it cannot be placed
            return
        if self.canvas is None or self._frame_shape != (h, w):
            self.k = canvas_scale((h, w))
            self._frame_shape = (h, w)
            self.canvas = cv2.resize(pixels, (-(-w // self.k), -(-h // self.k)), interpolation=cv2.INTER_AREA) \
                if self.k > 1 else pixels.copy()
            self.region = None
            self._trust = np.ones(motion.valid.shape, np.float32)
            self._chains = {}
            fresh_start = True
        else:
            fresh_start = False
        ch, cw = self._shape()
        box = self._small(result.box or (0, h, 0, w))
        y0, y1, x0, x1 = box
        styled = result.styled
        if styled.shape[:2] != (y1 - y0, x1 - x0):
            styled = cv2.resize(styled, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        if fresh_start:
            self.canvas[y0:y1, x0:x1] = styled
            self.region = box
            self.landed += 1
            return
        source = self.canvas.copy()
        source[y0:y1, x0:x1] = styled
        region = _union(self.region, box)
        ry0, ry1, rx0, rx1 = region
        if chain is None or motion.still:  # styled from this very frame
            fresh = np.ascontiguousarray(source[ry0:ry1, rx0:rx1])
            covered = np.zeros((ry1 - ry0, rx1 - rx0), np.float32)
            covered[y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0] = 1.0
            valid = np.ones(motion.valid.shape, bool)
        else:
            coords, valid = chain
            xy = motion.full_map(coords, region, (ch, cw))
            fresh = remap_region(source, xy)
            # where the map reads inside the styled box: one pass over the 2-channel map, no x and y copies
            outside = cv2.inRange(xy, (x0, y0), (x1 - 1, y1 - 1)) == 0
            covered = motion.full_mask(valid, region, (ch, cw)).copy()
            covered[outside] = 0.0
        trusted = motion.full_mask(self._trust, region, (ch, cw))
        if self._incoming is not None:  # the last result is still coming in: it lands in full now
            while self._incoming is not None:
                self._fade_in(self.region or region)
        self._trust = np.maximum(self._trust, valid.astype(np.float32))
        weight = trusted * np.float32(1.0 - self.blend)  # covered * (1 - (1 - blend) * trusted), in place
        np.subtract(np.float32(1.0), weight, out=weight)
        weight *= covered
        if self.fade == 1:
            old = self.canvas[ry0:ry1, rx0:rx1]
            self.canvas[ry0:ry1, rx0:rx1] = cv2.blendLinear(fresh, old, weight, 1.0 - weight)
        else:  # it comes in over the next frames, carried along with the canvas
            self._incoming = np.zeros((ch, cw, 4), np.uint8)
            self._incoming[ry0:ry1, rx0:rx1, :3] = fresh
            self._incoming[ry0:ry1, rx0:rx1, 3] = np.clip(weight * np.float32(255) + 0.5, 0, 255).astype(np.uint8)
            self._fade_step = 0
        self.region = region
        self.landed += 1

    def patch(self, shape: tuple[int, int], *, lazy: bool = False) -> Patch:
        """This class's styled canvas over its region, at frame size (outside it: the frame itself), in
        pixels of its own: the canvas moves on with the next frame while this one may still be blended.
        ``lazy``: the pixels held at the canvas's size (``Stretched``), stretched by the compositor only
        where the class shows: a person's box is a third frame around the person."""
        h, w = shape
        ch, cw = self._shape()
        y0, y1, x0, x1 = self.region or (0, ch, 0, cw)
        k = self.k
        fy0, fy1, fx0, fx1 = y0 * k, min(h, y1 * k), x0 * k, min(w, x1 * k)
        part = self.canvas[y0:y1, x0:x1]
        if k == 1:
            return Patch((fy0, fy1, fx0, fx1), part[:fy1 - fy0, :fx1 - fx0].copy())
        if lazy:
            return Patch((fy0, fy1, fx0, fx1), Stretched(part.copy(), k))
        part = cv2.resize(part, ((x1 - x0) * k, (y1 - y0) * k), interpolation=cv2.INTER_LINEAR)
        return Patch((fy0, fy1, fx0, fx1), part[:fy1 - fy0, :fx1 - fx0])

    def frame(self, pixels: np.ndarray) -> np.ndarray:
        """The frame with this class's styled canvas in place (outside its region: the frame itself)."""
        p = self.patch(pixels.shape[:2])
        y0, y1, x0, x1 = p.box
        if p.box == (0, pixels.shape[0], 0, pixels.shape[1]):
            return np.ascontiguousarray(p.pixels)
        out = pixels.copy()
        out[y0:y1, x0:x1] = p.pixels
        return out
