"""What segmenters produce: per-class probabilities at the network's own (small) resolution.

Masks are only resized to frame size for the classes someone asked for, which is where the
time goes at 720p and above.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from ..errors import UnknownNameError


# Names that stand for several classes, wherever a class is named (looks, presets, CLI, API).
# A group applies to any segmenter that has all its members and no class of the group's own name:
# with ``person-face`` (background, face, body), ``person`` means face + body.
CLASS_GROUPS: dict[str, tuple[str, ...]] = {"person": ("face", "body")}


def group_members(name: str, classes: tuple[str, ...]) -> tuple[str, ...] | None:
    """The classes ``name`` stands for when it is a group among ``classes``, else None."""
    members = CLASS_GROUPS.get(name)
    if members and name not in classes and all(m in classes for m in members):
        return members
    return None


def resolve_classes(names, classes: tuple[str, ...]) -> tuple[str, ...]:
    """Class and group names -> the distinct classes they cover, in the order given."""
    out: dict[str, None] = {}
    for n in names:
        for c in group_members(n, classes) or (n,):
            out[c] = None
    return tuple(out)


def known_names(classes: tuple[str, ...]) -> tuple[str, ...]:
    """Every name a look may use with these classes: the classes, then the groups that apply."""
    return tuple(classes) + tuple(g for g in CLASS_GROUPS if group_members(g, classes))


@dataclass(frozen=True)
class ClassProbs:
    """Soft segmentation: ``probs[c]`` is P(class c) per pixel, float32 C x h x w, summing to 1."""

    probs: np.ndarray
    classes: tuple[str, ...]

    def index(self, name: str) -> int:
        try:
            return self.classes.index(name)
        except ValueError:
            raise UnknownNameError("class", name, known_names(self.classes)) from None

    def mask(self, names, size: tuple[int, int] | None = None, *, hard: bool = False) -> np.ndarray:
        """P(any of ``names``) as float32 H x W in [0, 1], resized to ``size`` = (H, W).

        Group names (CLASS_GROUPS) count as all their classes; a class named twice counts once.

        ``hard`` gives 1 where the most probable class is one of ``names`` and 0 elsewhere.
        """
        idx = [self.index(n) for n in resolve_classes(names, self.classes)]
        if hard:
            small = np.isin(self.probs.argmax(0), idx).astype(np.float32)
        else:
            small = self.probs[idx].sum(0) if len(idx) > 1 else self.probs[idx[0]]
        if size is not None and small.shape != tuple(size):
            small = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        return np.clip(small, 0.0, 1.0)

    def labels(self, size: tuple[int, int] | None = None) -> np.ndarray:
        """Most probable class id per pixel (uint8), probabilities resized first when ``size`` is given."""
        probs = self.probs
        if size is not None and probs.shape[1:] != tuple(size):
            probs = np.stack([cv2.resize(p, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for p in probs])
        return probs.argmax(0).astype(np.uint8)


class Segmenter(Protocol):
    name: str
    classes: tuple[str, ...]

    def segment(self, frame: np.ndarray) -> ClassProbs:
        """BGR uint8 H x W x 3 -> class probabilities (at any resolution)."""
        ...
