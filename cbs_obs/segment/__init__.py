"""Segmenters by name: ``person`` for webcams, ``cityscapes`` for street scenes."""
from __future__ import annotations

from pathlib import Path

from ..errors import UnknownNameError
from .base import ClassProbs, Segmenter

SEGMENTERS = ("person", "cityscapes")


def create_segmenter(name: str, *, weights: Path | None = None, **options) -> Segmenter:
    if name == "person":
        from .person import PersonSegmenter

        return PersonSegmenter(weights, **options)
    if name == "cityscapes":
        from .cityscapes import CityscapesSegmenter

        return CityscapesSegmenter(weights, **options)
    raise UnknownNameError("segmenter", name, SEGMENTERS)


def segmenter_classes(name: str) -> tuple[str, ...]:
    """Class names without loading any weights (for validation and help text)."""
    from .. import registry

    if name == "person":
        return registry.card("selfie-landscape").classes
    if name == "cityscapes":
        return registry.card("dabnet-cityscapes").classes
    raise UnknownNameError("segmenter", name, SEGMENTERS)


__all__ = ["SEGMENTERS", "ClassProbs", "Segmenter", "create_segmenter", "segmenter_classes"]
