"""Segmenters by name: ``person`` for webcams, ``person-face`` for webcams with the face as its own
class, ``cityscapes`` for street scenes."""
from __future__ import annotations

from pathlib import Path

from ..errors import UnknownNameError
from .base import CLASS_GROUPS, ClassProbs, Segmenter, known_names

SEGMENTERS = ("person", "person-face", "cityscapes")


def create_segmenter(name: str, *, weights: Path | None = None, **options) -> Segmenter:
    if name == "person":
        from .person import PersonSegmenter

        return PersonSegmenter(weights, **options)
    if name == "person-face":
        from .person_face import PersonFaceSegmenter

        return PersonFaceSegmenter(weights, **options)
    if name == "cityscapes":
        from .cityscapes import CityscapesSegmenter

        return CityscapesSegmenter(weights, **options)
    raise UnknownNameError("segmenter", name, SEGMENTERS)


def segmenter_classes(name: str, weights: Path | None = None) -> tuple[str, ...]:
    """Class names without building the network (for validation and help text).

    A checkpoint written by ``cbs-obs train seg`` carries its own class list.
    """
    from .. import registry

    if name == "person":
        return registry.card("selfie-landscape").classes
    if name == "person-face":
        return ("background", "face", "body")
    if name == "cityscapes":
        if weights is not None:
            from .cityscapes import saved_classes

            saved = saved_classes(Path(weights))
            if saved:
                return saved
        return registry.card("dabnet-cityscapes").classes
    raise UnknownNameError("segmenter", name, SEGMENTERS)


__all__ = ["CLASS_GROUPS", "SEGMENTERS", "ClassProbs", "Segmenter", "create_segmenter", "known_names",
           "segmenter_classes"]
