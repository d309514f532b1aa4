"""Segmenters by name, each registered with what the rest of the engine needs to know about it.

``person`` for webcams, ``person-face`` for webcams with the face as its own class, ``cityscapes``
for street scenes. A new segmenter is one module plus one ``register_segmenter`` line (also from
outside the package); nothing else names it: the plate, the budget, the CLI and the debug overlay
read its ``SegmenterKind``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownNameError
from .base import CLASS_GROUPS, ClassProbs, Segmenter, known_names


@dataclass(frozen=True)
class SegmenterKind:
    """``build(weights, **options)`` makes the segmenter; ``classes(weights)`` names its classes without
    building it. ``static``: classes that do not move (a webcam's room), served by the background
    plate; ``plate``: whether ``--plate auto`` turns the plate on (a still camera). ``palette``: RGB
    colours of the classes in the debug overlay (None: picked). ``options``: CLI options it takes."""

    name: str
    build: Callable[..., Segmenter]
    classes: Callable[[Path | None], tuple[str, ...]]
    help: str
    static: frozenset[str] = frozenset()
    plate: bool = False
    palette: tuple[tuple[int, int, int], ...] | None = None
    options: frozenset[str] = frozenset()

    def plate_classes(self, plate: str) -> frozenset[str]:
        """The classes the plate serves under ``--plate auto|on|off``."""
        on = plate == "on" or (plate == "auto" and self.plate)
        return self.static if on else frozenset()


SEGMENTERS: dict[str, SegmenterKind] = {}


def register_segmenter(kind: SegmenterKind) -> None:
    SEGMENTERS[kind.name] = kind


def segmenter_kind(name: str) -> SegmenterKind:
    try:
        return SEGMENTERS[name]
    except KeyError:
        raise UnknownNameError("segmenter", name, tuple(SEGMENTERS)) from None


def create_segmenter(name: str, *, weights: Path | None = None, **options) -> Segmenter:
    return segmenter_kind(name).build(weights, **options)


def segmenter_classes(name: str, weights: Path | None = None) -> tuple[str, ...]:
    """Class names without building the network (for validation and help text)."""
    return segmenter_kind(name).classes(weights)


# -- the built-in segmenters ------------------------------------------------------------------------
def _card_classes(card: str):
    def classes(weights: Path | None) -> tuple[str, ...]:
        from ..models import registry

        return registry.card(card).classes
    return classes


def _person(weights, **options):
    from .person import PersonSegmenter

    return PersonSegmenter(weights, **options)


def _person_face(weights, **options):
    from .person_face import PersonFaceSegmenter

    return PersonFaceSegmenter(weights, **options)


def _cityscapes(weights, **options):
    from .cityscapes import CityscapesSegmenter

    return CityscapesSegmenter(weights, **options)


def _cityscapes_classes(weights: Path | None) -> tuple[str, ...]:
    """A checkpoint written by ``cbs-obs train seg`` carries its own class list."""
    if weights is not None:
        from .cityscapes import saved_classes

        saved = saved_classes(Path(weights))
        if saved:
            return saved
    return _card_classes("dabnet-cityscapes")(None)


PERSON_RGB = ((30, 60, 160), (255, 140, 0))
# Official Cityscapes train-id colours.
CITYSCAPES_RGB = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)

register_segmenter(SegmenterKind(
    "person", _person, _card_classes("selfie-landscape"), "webcam: background and person (default)",
    static=frozenset({"background"}), plate=True, palette=PERSON_RGB, options=frozenset({"variant"})))
register_segmenter(SegmenterKind(
    "person-face", _person_face, lambda weights: ("background", "face", "body"),
    "webcam with the face as its own class: background, face, body (person = face + body)",
    static=frozenset({"background"}), plate=True, palette=(PERSON_RGB[0], (255, 220, 120), PERSON_RGB[1]),
    options=frozenset({"variant"})))
register_segmenter(SegmenterKind(
    "cityscapes", _cityscapes, _cityscapes_classes, "street scenes: the 19 Cityscapes classes (DABNet)",
    static=frozenset({"road", "sidewalk", "building", "wall", "fence", "pole", "traffic_light", "traffic_sign",
                      "vegetation", "terrain", "sky"}),
    palette=CITYSCAPES_RGB, options=frozenset({"size"})))


__all__ = ["CLASS_GROUPS", "SEGMENTERS", "ClassProbs", "Segmenter", "SegmenterKind", "create_segmenter", "known_names",
           "register_segmenter", "segmenter_classes", "segmenter_kind"]
