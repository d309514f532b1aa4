"""The background plate: a clean picture of the room, styled at full resolution only when it changes.

A webcam's room is mostly still, so styling it every frame is wasted work. The plate keeps the
pixels the segmenter is sure are background, notices when they really change (light switched
on, camera moved, the person revealing what was behind them) and restyles in a thread of its
own, while every frame is composited from the last styled plate at full output resolution.
"""
from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np

log = logging.getLogger(__name__)


def fill_unseen(plate: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Paint places never seen as background (behind a person who has not moved yet) from their
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


class BackgroundPlate:
    def __init__(self, *, max_side: int | None = None, threshold: float = 14.0,
                 fraction: float = 0.02, scale: int = 8, background: bool = True):
        from ..style.catalog import StyleCache

        self.styles = StyleCache(max_side=max_side)  # None: style the plate at output resolution
        self.background = background  # False (offline files): restyle in line, so results never depend on timing
        self.threshold, self.fraction, self.scale = threshold, fraction, scale
        self.plate: np.ndarray | None = None
        self.plate_small: np.ndarray | None = None
        self.seen: np.ndarray | None = None  # small-scale: places ever seen as sure background
        self.version = 0
        self._styled: dict[str, tuple[int, np.ndarray]] = {}
        self._wanted: set[str] = set()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.restyles = 0
        self.last_restyle_s = 0.0
        self._pending: list[tuple[int, float]] = []  # (plate version, monotonic time) of changes not yet styled
        self.change_to_styled_s: list[float] = []  # change noticed -> styled plate ready, per change

    # -- per frame (hot path) -------------------------------------------------------------------
    def update(self, frame: np.ndarray, background: np.ndarray) -> bool:
        """Fold a frame into the plate. ``background``: P(background) at any (small) size. True if changed."""
        h, w = frame.shape[:2]
        sw, sh = max(4, w // self.scale), max(4, h // self.scale)
        small = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.int16)
        sure_small = cv2.resize(background, (sw, sh), interpolation=cv2.INTER_LINEAR) > 0.97
        with self._cond:
            if self.plate is None or self.plate.shape != frame.shape:
                self.plate, self.plate_small, self.seen = frame.copy(), small, sure_small.copy()
                self._changed()
                return True
            newly_seen = np.count_nonzero(sure_small & ~self.seen)
            self.seen |= sure_small
            diff = np.abs(small - self.plate_small).max(axis=2) > self.threshold
            changed = np.count_nonzero(diff & sure_small)
            if changed <= self.fraction * max(1, np.count_nonzero(sure_small)) and \
                    newly_seen <= self.fraction * self.seen.size:
                return False
            sure = cv2.resize(background, (w, h), interpolation=cv2.INTER_LINEAR) > 0.97
            np.copyto(self.plate, frame, where=sure[..., None])
            self.plate_small[sure_small] = small[sure_small]
            self._changed()
            return True

    def _changed(self) -> None:
        self.version += 1
        self._pending.append((self.version, time.monotonic()))
        self._cond.notify_all()

    def styled(self, spec: str) -> np.ndarray | None:
        """The newest styled plate for ``spec`` (maybe of an older plate version), or None yet."""
        with self._cond:
            if spec not in self._wanted:
                self._wanted.add(spec)
                self._cond.notify_all()
            entry = self._styled.get(spec)
            stale = entry is None or entry[0] != self.version
        if not self.background:
            if stale and self.plate is not None:
                self._restyle_once()
                entry = self._styled.get(spec)
            return None if entry is None else entry[1]
        if self._thread is None:
            self._start()
        return None if entry is None else entry[1]

    def forget_unused(self, specs: set[str]) -> None:
        with self._cond:
            self._wanted &= specs
            for spec in list(self._styled):
                if spec not in specs:
                    del self._styled[spec]

    # -- restyling thread ---------------------------------------------------------------------------
    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="plate", daemon=True)
        self._thread.start()

    def _todo(self) -> list[str]:
        return [s for s in self._wanted if self._styled.get(s, (0, None))[0] != self.version]

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (self.plate is None or not self._todo()):
                    self._cond.wait(0.5)
                if self._stop:
                    return
            self._restyle_once()

    def _restyle_once(self) -> None:
        """Style the current plate for every wanted spec that is behind."""
        with self._cond:
            version, plate, todo = self.version, self.plate.copy(), self._todo()
            seen = self.seen.copy()
        plate = fill_unseen(plate, seen)
        for spec in todo:
            t0 = time.perf_counter()
            try:
                styled = self._style(spec, plate)
            except Exception as e:  # a failing style must not kill the plate thread
                log.warning("restyling the background with %s failed: %s", spec, e)
                with self._cond:
                    self._wanted.discard(spec)
                continue
            with self._cond:
                self._styled[spec] = (version, styled)
                self.restyles += 1
                self.last_restyle_s = time.perf_counter() - t0
        with self._cond:
            now = time.monotonic()
            self.change_to_styled_s += [now - t for v, t in self._pending if v <= version]
            self._pending = [(v, t) for v, t in self._pending if v > version]

    def _style(self, spec: str, plate: np.ndarray) -> np.ndarray:
        return self.styles.get(spec).apply(plate)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
