"""Holding a person the segmenter blinks out of a frame while they are still in it.

The webcam segmenter is made for a face near the camera. Someone seen from behind walking out of
the picture at its edge can vanish from its answer in one frame while they are plainly there (on
the one-by-one clip P(person) fell from 1.0 to 0.004 at frames 190, 443 and 689, for several
frames): the styled room is then drawn over them, and they pop out of the picture before they
leave it. A person does not leave in one frame, so when most of the person is lost at once and
the frame, near where they were, still differs from the known room (the background plate's
unstyled picture), the previous answer is kept there, for a few frames at most. Nothing is held
where the room shows again, so someone who really left is let go at once.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..segment.base import ClassProbs
from .plate import BackgroundPlate, exposure_gain, max_channel, shrink


class BlinkHold:
    """``drop``: share of the person's area lost in one frame that counts as a blink. ``frames``: how long
    a blink is bridged at most. ``differ``: per-pixel difference from the room (0-255, at the mask's size)
    that counts as someone there, unless it is a shadow's: the same chromaticity (within ``colour``, on a
    0-255 scale) at a brightness ratio between ``shade`` and its inverse. ``reach``: mask cells around the
    person's last place where they may be (6 cells of 256 are 30 px at 720p: a brisk walk at 30 fps).
    ``keep``: share of the person's area that must still differ from the room to go on holding (less is
    not a person any more, but the room's own changes)."""

    def __init__(self, drop: float = 0.6, frames: int = 4, differ: float = 30.0, colour: float = 12.0,
                 shade: float = 0.55, reach: int = 6, keep: float = 0.3, min_area: float = 0.005):
        self.drop, self.frames, self.differ, self.colour, self.shade = drop, frames, differ, colour, shade
        self.reach, self.keep = reach, keep
        self.min_area = min_area
        self._prev: ClassProbs | None = None
        self._area = 0.0  # the person's area (mask cells) before the blink
        self.held = 0  # consecutive frames bridged so far
        self.bridged = 0  # frames bridged in all

    def __call__(self, probs: ClassProbs, frame: np.ndarray, plate: BackgroundPlate, room: list[str]) -> ClassProbs:
        """``probs`` with a blink bridged; ``room``: the classes the plate holds (everything else is someone)."""
        prev, self._prev = self._prev, probs
        if prev is None or prev.probs.shape != probs.probs.shape or prev.classes != probs.classes \
                or plate.plate is None or plate.plate.shape != frame.shape or not room:
            self.held = 0
            return probs
        was, now = 1.0 - prev.mask(room), 1.0 - probs.mask(room)
        lost = float(was.sum()) - float(now.sum())
        if self.held >= self.frames or was.mean() < self.min_area or lost < self.drop * float(was.sum()):
            self.held = 0
            return probs
        h, w = was.shape
        seen = cv2.resize(plate.seen.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        near = cv2.dilate((was > 0.5).astype(np.uint8), np.ones((2 * self.reach + 1,) * 2, np.uint8)) > 0
        someone = self._someone(shrink(frame, (w, h)).astype(np.float32),
                                shrink(plate.plate, (w, h)).astype(np.float32), seen & ~near)
        # whatever differs from the room and touches where the person was is the person, however far they
        # moved since (a 10 fps clip walks 50 px a frame)
        count, labels = cv2.connectedComponents((someone & seen).astype(np.uint8), connectivity=8)
        touched = np.unique(labels[near & someone & seen])
        keep = np.isin(labels, touched[touched > 0]) & (now < 0.5)
        if self.held == 0:
            self._area = float(was.sum())
        if np.count_nonzero(keep) < self.keep * self._area:
            self.held = 0
            return probs
        # the held pixels take the class the person mostly was (person, or body for the face segmenter)
        others = [i for i, c in enumerate(probs.classes) if c not in room]
        cls = others[int(np.argmax([prev.probs[i].sum() for i in others]))]
        out = probs.probs.copy()
        out[:, keep] = 0.0
        out[cls, keep] = 1.0
        self.held += 1
        self.bridged += 1
        self._prev = held = ClassProbs(out, probs.classes)
        return held

    def _someone(self, small: np.ndarray, room: np.ndarray, far: np.ndarray) -> np.ndarray:
        """Where the frame differs from the room by more than a shadow. A shadow (the person's own, cast on the
        room while the plate took it in, and gone now) dims or brightens the room by a share and keeps its
        colour: on one-by-one a pillar lit again after she stepped away was held as her without this."""
        if np.count_nonzero(far) >= 64:  # the camera's exposure moves with a person close to it: one gain per channel
            small *= exposure_gain(small, room, far)
        total_s, total_r = small.sum(axis=2) + 3.0, room.sum(axis=2) + 3.0
        ratio = total_s / total_r
        colour = max_channel(np.abs(small / total_s[..., None] - room / total_r[..., None])) * 255.0
        shadow = (colour < self.colour) & (ratio > self.shade) & (ratio < 1.0 / self.shade)
        return (max_channel(cv2.absdiff(small, room)) > self.differ) & ~shadow
