"""The background plate: the room behind a webcam user, styled at full resolution, changed gently.

A webcam's room is mostly still, so styling it every frame is wasted work, and worse: a neural
style answers a 2-level change of sensor noise with a new texture (about 11 levels here), so a
room restyled now and then *pops*. The plate therefore

- keeps the pixels the segmenter is sure are room, away from the person's edge and not moving
  (so no ghost of the person, nor their shadow or a foot the segmenter missed as they walk out, is
  ever styled into the room), and paints places never seen from their surroundings;
- watches the room in tiles, at 1/8 scale (sensor noise and compression average out) and on every
  third frame (a room does not change faster than that matters), after compensating slow exposure
  drift, and calls a tile changed only when the change persists;
- backs off from parts of the room that change again and again (a screen showing slides, a light
  that keeps switching): each time such a tile changes again right after its restyle, it waits
  twice as long (what never stands still, a screen playing video, is not taken in at all);
- restyles only the changed tiles, styling them with a context margin and matching their tone to
  the styled room around them, and blends them in with a soft seam;
- fades every new styled plate in over a few frames, so even a real change (a light switched on)
  never swaps the texture at once.
Restyling runs in a thread of its own for live sources; offline files restyle in line, so their
results never depend on timing.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from ..models.device import background_work

from ..errors import RemoteUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlateSettings:
    """``scale``: change detection at 1/scale. ``tile``: tile side in small pixels. ``threshold``:
    per-pixel change (0-255, after exposure compensation) that counts. ``tile_fraction``: share of a
    tile's room pixels that must change. ``persist``: consecutive frames a change must last.
    ``persist_near``: the same next to the person, whose moving hands and shadow come and go.
    ``cooldown``: frames before a restyled tile may be restyled again (a screen showing slides in the
    room would otherwise be restyled, and its new texture faded in, on every slide); a tile that changes
    again within twice its cooldown doubles it, up to ``cooldown_max``, and a quiet tile goes back.
    ``watch_every``: the room is compared every N frames (frame counts above stay in frames).
    ``margin``: context around restyled tiles, in output pixels. ``fade``: frames a new plate takes
    to fade in. ``full_above``: share of tiles above which the whole plate is restyled. ``edge``:
    distance from the person, in small pixels, inside which the room is not trusted. ``reveal``:
    share of a tile, painted so far, that must be seen for real before it is restyled. ``gather_s``
    (live only): a restyle starts at least this long after the one before, so tiles that change one
    after another (the room uncovered by people walking through it) are styled in one go.
    ``duty`` (live only): the share of one core restyling may take on average; after a restyle that
    took S seconds the next waits S * (1 / duty - 1), gathering what changed meanwhile. People walking
    through the room uncover it all the time: on the one-by-one clip the engine took 98% of a core
    without the cap (27 restyles in 20 s) and 59% with it (4 restyles, nearly the same tiles)."""

    scale: int = 8
    tile: int = 10
    threshold: float = 14.0
    tile_fraction: float = 0.05
    persist: int = 6
    persist_near: int = 45
    cooldown: int = 90
    cooldown_max: int = 900
    watch_every: int = 3
    margin: int = 96
    fade: int = 10
    full_above: float = 0.45
    edge: int = 3
    reveal: float = 0.4
    exposure_limit: float = 0.15
    gather_s: float = 0.5
    duty: float = 0.2


def fill_unseen(plate: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Paint places never seen as room (behind a person who has not moved yet) from their
    surroundings, so soft mask edges blend into plausible room rather than a styled ghost of the person."""
    if seen.all() or not seen.any():
        return plate
    h, w = plate.shape[:2]
    sh, sw = seen.shape
    small = cv2.resize(plate, (sw, sh), interpolation=cv2.INTER_AREA)
    hole = (~seen).astype(np.uint8) * 255
    filled = cv2.resize(cv2.inpaint(small, hole, 3, cv2.INPAINT_TELEA), (w, h), interpolation=cv2.INTER_LINEAR)
    hole_full = cv2.resize(hole, (w, h), interpolation=cv2.INTER_NEAREST) > 0
    out = plate.copy()
    out[hole_full] = filled[hole_full]
    return out


def shrink(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` area-averaged down to ``size`` (w, h), by halving while the sides allow it: OpenCV's
    area resize by 8 costs twice three halvings at 720p (1.1 ms against 0.5; within one level)."""
    w, h = size
    while frame.shape[1] >= 2 * w and frame.shape[0] >= 2 * h and frame.shape[1] % 2 == 0 and frame.shape[0] % 2 == 0:
        frame = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if frame.shape[:2] != (h, w):
        frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
    return frame


def max_channel(a: np.ndarray) -> np.ndarray:
    """Per-pixel maximum over the 3 channels (numpy's ``max(axis=2)`` is 20x slower on these small images)."""
    return cv2.max(cv2.max(a[..., 0], a[..., 1]), a[..., 2])


def _median(values: np.ndarray) -> np.ndarray:
    """Per column, the median (np.median along axis 0 of an N x 3 array, 3x faster)."""
    n = len(values)
    lo, hi = (n - 1) // 2, n // 2
    out = []
    for c in range(values.shape[1]):
        part = np.partition(values[:, c], (lo, hi))
        out.append((part[lo] + part[hi]) / 2)
    return np.array(out, np.float32)


def exposure_gain(frame: np.ndarray, room: np.ndarray, where: np.ndarray) -> np.ndarray:
    """One gain per channel that brings ``frame`` (small float) to the exposure of ``room``, judged on the
    pixels ``where``: auto exposure and clouds move the whole picture; the median ignores what really changed."""
    return _median(cv2.divide(room + 1.0, frame + 1.0)[where])


def match_tone(new: np.ndarray, old: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Scale and shift each channel of ``new`` so that, on the ``ring`` pixels, it has the mean and
    spread of ``old`` (a tile styled with less context comes out in a slightly different tone)."""
    if np.count_nonzero(ring) < 64:
        return new
    out = new.astype(np.float32)
    for c in range(3):
        a, b = new[..., c][ring].astype(np.float32), old[..., c][ring].astype(np.float32)
        gain = float(np.clip(b.std() / max(a.std(), 1e-3), 0.7, 1.4))
        out[..., c] = (out[..., c] - a.mean()) * gain + b.mean()
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


class _Fade:
    """A styled plate on its way in: shown as ``old + (new - old) * k / n`` on frame k."""

    def __init__(self, old: np.ndarray, new: np.ndarray, frames: int):
        self.old, self.new, self.frames, self.k = old, new, max(1, frames), 0

    def step(self) -> tuple[np.ndarray, bool]:
        self.k += 1
        if self.k >= self.frames:
            return self.new, True
        t = self.k / self.frames
        return cv2.addWeighted(self.new, t, self.old, 1.0 - t, 0.0), False


class BackgroundPlate:
    def __init__(self, *, max_side: int | None = None, background: bool = True,
                 settings: PlateSettings = PlateSettings(), styles=None):
        from ..style.catalog import StyleCache

        self.styles = styles or StyleCache(max_side=max_side)  # None: style the plate at output resolution
        self.background = background  # False (offline files): restyle in line
        self.s = settings
        self.plate: np.ndarray | None = None
        self.seen: np.ndarray | None = None  # small: places ever seen as sure room
        self.reference: np.ndarray | None = None  # small float: the room as it was when last styled
        self._last_small: np.ndarray | None = None  # small float: the frame last watched
        self._seen_at_style: np.ndarray | None = None
        self._streak: np.ndarray | None = None  # per tile: consecutive frames it looked changed
        self._dirty: np.ndarray | None = None  # per tile: confirmed change not yet restyled
        self._age: np.ndarray | None = None
        self._cool: np.ndarray | None = None  # per tile: frames it waits after a restyle (backs off)
        self._frames = 0
        self._relit = 0  # consecutive frames in which the whole room's light looked different
        self.version = 0
        self._styled: dict[str, tuple[int, np.ndarray]] = {}  # spec -> (version, target styled plate)
        self._shown: dict[str, np.ndarray] = {}  # spec -> what the last frame showed
        self._fades: dict[str, _Fade] = {}
        self._jobs: dict[int, np.ndarray] = {}  # version -> tile mask (small bool) restyled by it
        self._wanted: set[str] = set()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._last_start = 0.0  # monotonic time the plate thread last started a restyle
        self._next_start = 0.0  # and when it may start the next one (the duty cap)
        self.restyles = 0
        self.tiles_restyled = 0
        self.last_restyle_s = 0.0
        self._pending: list[tuple[int, float]] = []  # (plate version, monotonic time) of changes not yet styled
        self.change_to_styled_s: list[float] = []

    # -- per frame (hot path) -------------------------------------------------------------------
    def update(self, frame: np.ndarray, background: np.ndarray) -> bool:
        """Fold a frame into the plate. ``background``: P(room) at any (small) size. True if a restyle was asked."""
        h, w = frame.shape[:2]
        s = self.s
        every = max(1, s.watch_every)
        self._frames += 1
        if self.plate is not None and self.plate.shape == frame.shape and self._frames % every:
            return False
        sw, sh = max(4, w // s.scale), max(4, h // s.scale)
        small = shrink(frame, (sw, sh)).astype(np.float32)
        sure = cv2.resize(background, (sw, sh), interpolation=cv2.INTER_LINEAR) > 0.97
        if s.edge > 0:  # the person's edge is never trusted: no ghost of them in the room
            sure = cv2.erode(sure.astype(np.uint8), np.ones((2 * s.edge + 1,) * 2, np.uint8)) > 0
        last, self._last_small = self._last_small, small
        if last is not None and last.shape == small.shape:
            # a room stands still: what moved since the last look (a shadow crossing the floor, a foot the
            # segmenter calls room as someone walks out of the picture) is neither kept nor a change of the
            # room (on the one-by-one clip a leaving person's shadow stayed in the plate for 2 s without this)
            moving = (max_channel(cv2.absdiff(small, last)) > s.threshold).astype(np.uint8)
            sure &= cv2.dilate(moving, np.ones((3, 3), np.uint8)) == 0
        with self._cond:
            if self.plate is None or self.plate.shape != frame.shape:
                self.plate, self.seen = frame.copy(), sure.copy()
                self.reference, self._seen_at_style = small, sure.copy()
                ty, tx = -(-sh // s.tile), -(-sw // s.tile)
                self._streak, self._dirty = np.zeros((ty, tx), np.int32), np.zeros((ty, tx), bool)
                self._age = np.zeros((ty, tx), np.int32)  # frames since each tile was last restyled
                self._cool = np.full((ty, tx), s.cooldown, np.int32)
                self._frames = 0
                self._styled.clear()
                self._shown.clear()
                self._fades.clear()
                self._changed(np.ones((ty, tx), bool))
                self._age[:] = s.cooldown  # the first styling starts no cooldown
                return True
            self.seen |= sure
            # the plate follows the room it sees (what is styled, and what a person is told apart from)
            cv2.copyTo(frame, cv2.resize(sure.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST), self.plate)
            self._age += every
            changed = self._changed_tiles(small, sure)
            self._streak = np.where(changed, self._streak + every, 0)
            near = self._tile_share(cv2.dilate((~sure).astype(np.uint8), np.ones((s.tile, s.tile), np.uint8))) > 0
            confirmed = self._streak >= np.where(near & (self._relit == 0), s.persist_near, s.persist)
            confirmed &= (self._age >= self._cool) | (self._relit > 0)
            revealed = (self._tile_share(self.seen & ~self._seen_at_style) > s.reveal) & ~near
            new = confirmed | (revealed & ~self._dirty)
            if not new.any():
                return False
            restless = confirmed & (self._age < 2 * self._cool) & (self._relit == 0)
            self._cool = np.where(restless, np.minimum(2 * self._cool, s.cooldown_max),
                                  np.where(new, s.cooldown, self._cool))
            self._streak[new] = 0
            self._changed(new)
            return True

    def _tile_share(self, small_mask: np.ndarray) -> np.ndarray:
        """Share of each tile's small pixels set in ``small_mask``."""
        t = self.s.tile
        sh, sw = small_mask.shape
        ty, tx = -(-sh // t), -(-sw // t)
        padded = np.zeros((ty * t, tx * t), np.float32)
        padded[:sh, :sw] = small_mask
        return padded.reshape(ty, t, tx, t).mean(axis=(1, 3))

    def _changed_tiles(self, small: np.ndarray, sure: np.ndarray) -> np.ndarray:
        s = self.s
        both = sure & self._seen_at_style
        if np.count_nonzero(both) < 16:
            return np.zeros_like(self._streak, bool)
        # slow exposure drift (auto exposure, clouds) is one gain per channel, not a change of the room;
        # the median ignores the part of the room that really changed
        gain = exposure_gain(small, self.reference, both)
        if np.abs(gain - 1).max() > s.exposure_limit:  # the light really changed: everything is new
            self._relit += 1
            return np.ones_like(self._streak, bool)
        self._relit = 0
        diff = max_channel(np.abs(small * gain - self.reference)) > s.threshold
        clipped = (max_channel(small) > 235) | (max_channel(self.reference) > 235)  # no gain brings these back
        share = self._tile_share(diff & both & ~clipped)
        room = self._tile_share(both)
        return (room > 0.2) & (share > s.tile_fraction * np.maximum(room, 1e-6))

    def _changed(self, tiles: np.ndarray) -> None:
        self.version += 1
        self._dirty |= tiles
        self._age[tiles] = 0
        self._pending.append((self.version, time.monotonic()))
        self._cond.notify_all()

    def styled(self, spec: str) -> np.ndarray | None:
        """What this frame shows of the styled room for ``spec`` (fading towards the newest), or None yet."""
        with self._cond:
            if spec not in self._wanted:
                self._wanted.add(spec)
                self._cond.notify_all()
            stale = self._dirty is not None and (bool(self._dirty.any()) or spec not in self._styled)
        if not self.background:
            if stale and self.plate is not None:
                self._restyle_once()
        elif self._thread is None:
            self._start()
        with self._cond:
            fade = self._fades.get(spec)
            if fade is not None:
                shown, done = fade.step()
                if done:
                    del self._fades[spec]
                self._shown[spec] = shown
            return self._shown.get(spec)

    def forget_unused(self, specs: set[str]) -> None:
        with self._cond:
            self._wanted &= specs
            for d in (self._styled, self._shown, self._fades):
                for spec in list(d):
                    if spec not in specs:
                        del d[spec]

    # -- restyling ------------------------------------------------------------------------------------
    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="plate", daemon=True)
        self._thread.start()

    def _todo(self) -> bool:
        return bool(self._wanted) and (bool(self._dirty.any()) or any(s not in self._styled for s in self._wanted))

    def _loop(self) -> None:
        background_work()
        while True:
            with self._cond:
                while not self._stop and (self.plate is None or not self._todo()):
                    self._cond.wait(0.5)
                if self._stop:
                    return
                if all(spec in self._styled for spec in self._wanted):  # a new look is styled at once
                    start = max(self._last_start + self.s.gather_s, self._next_start)
                    while not self._stop and time.monotonic() < start:
                        self._cond.wait(start - time.monotonic())
                    if self._stop:
                        return
                self._last_start = time.monotonic()
            self._restyle_once()
            took = time.monotonic() - self._last_start
            with self._cond:
                self._next_start = self._last_start + took / max(self.s.duty, 1e-3)

    def _restyle_once(self) -> None:
        """Restyle the dirty tiles (or everything, for a spec never styled) of every wanted spec."""
        s = self.s
        with self._cond:
            version, plate, seen = self.version, self.plate.copy(), self.seen.copy()
            tiles, self._dirty = self._dirty.copy(), np.zeros_like(self._dirty)
            small_now = cv2.resize(plate, seen.shape[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)
            self.reference = np.where(self._upsample_tiles(tiles, seen.shape)[..., None], small_now, self.reference)
            self._seen_at_style = np.where(self._upsample_tiles(tiles, seen.shape), seen, self._seen_at_style)
            wanted = sorted(self._wanted)
            current = {spec: self._styled.get(spec) for spec in wanted}
        h, w = plate.shape[:2]
        filled = None
        for spec in wanted:
            t0 = time.perf_counter()
            old = current[spec]
            try:
                if old is None or tiles.mean() > s.full_above:
                    if filled is None:
                        filled = fill_unseen(plate, seen)
                    target = self._style(spec, filled)
                    if old is not None:  # only the changed tiles take the new texture
                        m = self._soft_tiles(tiles, (h, w))
                        target = _mix(old[1], target, m)
                    n_tiles = tiles.size if old is None else int(tiles.sum())
                else:
                    target, n_tiles = self._restyle_tiles(spec, plate, seen, old[1], tiles), int(tiles.sum())
            except RemoteUnavailable as e:  # the server is reconnecting: keep showing the last plate, try later
                log.debug("background not restyled: %s", e)
                with self._cond:
                    self._wanted.discard(spec)
                time.sleep(0.25)
                continue
            except Exception as e:  # a failing style must not kill the plate thread
                log.warning("restyling the background with %s failed: %s", spec, e)
                with self._cond:
                    self._wanted.discard(spec)
                continue
            with self._cond:
                self._styled[spec] = (version, target)
                shown = self._shown.get(spec)
                if shown is None or shown.shape != target.shape:
                    self._shown[spec] = target
                else:
                    self._fades[spec] = _Fade(shown, target, s.fade)
                self.restyles += 1
                self.tiles_restyled += n_tiles
                self.last_restyle_s = time.perf_counter() - t0
        with self._cond:
            now = time.monotonic()
            self.change_to_styled_s += [now - t for v, t in self._pending if v <= version]
            self._pending = [(v, t) for v, t in self._pending if v > version]

    def _restyle_tiles(self, spec: str, plate: np.ndarray, seen: np.ndarray, old: np.ndarray,
                       tiles: np.ndarray) -> np.ndarray:
        """Style the changed tiles with a context margin (places never seen painted in, in that crop
        only: a fifth of a tile restyle's time when done for the whole plate); match the tone to the
        room around them; blend."""
        h, w = plate.shape[:2]
        full = self._upsample_tiles(tiles, (h, w))
        ys, xs = np.nonzero(full)
        m, k = self.s.margin, self.s.scale
        y0, x0 = max(0, ys.min() - m) // k * k, max(0, xs.min() - m) // k * k  # on the small grid
        y1, x1 = min(h, -(-(ys.max() + 1 + m) // k) * k), min(w, -(-(xs.max() + 1 + m) // k) * k)
        region = fill_unseen(plate[y0:y1, x0:x1], seen[y0 // k:-(-y1 // k), x0 // k:-(-x1 // k)])
        crop = self._style(spec, np.ascontiguousarray(region))
        ring = ~full[y0:y1, x0:x1]
        crop = match_tone(crop, old[y0:y1, x0:x1], ring)
        weight = self._soft_tiles(tiles, (h, w))[y0:y1, x0:x1]
        out = old.copy()
        out[y0:y1, x0:x1] = _mix(old[y0:y1, x0:x1], crop, weight)
        return out

    def _upsample_tiles(self, tiles: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Per-tile flags -> bool mask at ``size`` (small or full)."""
        h, w = size
        sh, sw = self.seen.shape
        t = self.s.tile
        small = np.kron(tiles, np.ones((t, t), bool))[:sh, :sw]
        if (h, w) == (sh, sw):
            return small
        return cv2.resize(small.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0

    def _soft_tiles(self, tiles: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Tiles as a weight 0..1 at ``size`` with seams softened over about half the margin."""
        small = self._upsample_tiles(tiles, self.seen.shape).astype(np.float32)
        sigma = max(0.5, self.s.margin / 4 / self.s.scale)
        grow = 2 * int(np.ceil(2 * sigma)) + 1  # the whole tile takes the new texture; the seam lies outside it
        small = cv2.GaussianBlur(cv2.dilate(small, np.ones((grow, grow), np.uint8)), (0, 0), sigma)
        return cv2.resize(np.clip(small, 0, 1), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)

    def _style(self, spec: str, plate: np.ndarray) -> np.ndarray:
        return self.styles.get(spec).apply(plate)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _mix(old: np.ndarray, new: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return cv2.blendLinear(new, old, weight.astype(np.float32), (1.0 - weight).astype(np.float32))
