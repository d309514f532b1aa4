"""Style families by name, each registered with how it is built and what it is.

A spec names a family and maybe an argument (``blur:25``, ``johnson:candy.pth``); a family may also
own bare names (the 26 built-in Magenta styles). A new family is one module plus one
``register_style_family`` line, also from outside the package: parsing, the style library, the CLI's
listings, the control API's choices and the size cap for neural styles all read its ``StyleFamily``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownNameError
from .base import Style
from .magenta import BUILTIN_STYLES


@dataclass(frozen=True)
class StyleFamily:
    """``build(arg, max_side)`` makes the style: ``arg`` is the text after ``NAME:`` ("" when none was
    given; a ``Path`` for families that ``reads_file``), ``max_side`` the size cap for neural styles.
    ``neural``: run by a network (cost and memory grow with the picture's area, so it is capped and
    run off the frame loop). ``argument``: what the argument is, for help (e.g. ``RADIUS``; "" takes
    none); ``required``: it must be given. ``reads_file``: the argument is a path, which the control
    API accepts only as ``@UPLOADED-NAME``. ``names``: bare names that stand for ``NAME:<name>``.
    ``example``: shown in listings and errors. ``bare``: offered to panels as a choice on its own."""

    name: str
    build: Callable[[str | Path, int | None], Style]
    help: str
    neural: bool = False
    argument: str = ""
    required: bool = False
    reads_file: bool = False
    aliases: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    example: str | None = None
    bare: bool = True


STYLE_FAMILIES: dict[str, StyleFamily] = {}
_SPELLINGS: dict[str, str] = {}  # family names and their aliases -> family
_NAMES: dict[str, str] = {}  # bare names a family owns -> family


def register_style_family(family: StyleFamily) -> None:
    STYLE_FAMILIES[family.name] = family
    _SPELLINGS.update(dict.fromkeys((family.name, *family.aliases), family.name))
    _NAMES.update(dict.fromkeys(family.names, family.name))


def canonical_family(word: str) -> str:
    """``colour`` -> ``color``; other words come back unchanged."""
    return _SPELLINGS.get(word, word)


def resolve_family(word: str, arg: str) -> tuple[StyleFamily, str] | None:
    """The family a spec's first word means, and its argument; None when nothing matches."""
    if word in _NAMES:
        return (STYLE_FAMILIES[_NAMES[word]], word) if not arg else None
    name = _SPELLINGS.get(word)
    return (STYLE_FAMILIES[name], arg) if name is not None else None


def style_family(name: str) -> StyleFamily:
    try:
        return STYLE_FAMILIES[_SPELLINGS.get(name, name)]
    except KeyError:
        raise UnknownNameError("style family", name, tuple(STYLE_FAMILIES)) from None


# -- the built-in families -------------------------------------------------------------------------
def _number(family: str, arg: str, cast):
    from ..errors import SettingsError

    try:
        return cast(arg)
    except ValueError:
        raise SettingsError(f"{family}:{arg}: {arg!r} is not a number (e.g. {family}:16)") from None


def _magenta(arg, max_side):
    from .magenta import MultiStyle

    if str(arg).isdigit():
        return MultiStyle(int(arg), max_side=max_side)
    if arg in BUILTIN_STYLES:
        return MultiStyle(BUILTIN_STYLES.index(arg), max_side=max_side)
    raise UnknownNameError("built-in style", arg, BUILTIN_STYLES)


def _style_image(path, max_side):
    from .magenta import ArbitraryStyle

    return ArbitraryStyle(path, max_side=max_side or 640)


def _johnson(path, max_side):
    from .johnson import JohnsonStyle

    return JohnsonStyle(path, max_side=max_side)


def _filter(cls_name: str, parse=None, default=None):
    def build(arg, max_side):
        from . import filters

        cls = getattr(filters, cls_name)
        if parse is None and default is None:
            return cls()
        return cls((parse(arg) if parse else arg) if arg else default)
    return build


register_style_family(StyleFamily(
    "magenta", _magenta, "a built-in painting style by name or index", neural=True, argument="NAME|INDEX",
    required=True, names=BUILTIN_STYLES, bare=False))
register_style_family(StyleFamily(
    "blur", _filter("Blur", lambda a: _number("blur", a, float), 21), "Gaussian blur", argument="RADIUS",
    example="blur:25"))
register_style_family(StyleFamily(
    "pixelate", _filter("Pixelate", lambda a: _number("pixelate", a, int), 16), "big square pixels",
    argument="BLOCK", example="pixelate:12"))
register_style_family(StyleFamily(
    "color", _filter("SolidColour", default="green"), "one solid colour", argument="#RRGGBB|NAME",
    aliases=("colour",), example="color:#00ff00"))
register_style_family(StyleFamily(
    "image", _filter("Replace", default=""), "replace by a picture", argument="PATH", required=True,
    reads_file=True, example="image:PATH", bare=False))
register_style_family(StyleFamily(
    "style-image", _style_image, "any picture as a painting style", neural=True, argument="PATH", required=True,
    reads_file=True, example="style-image:PATH", bare=False))
register_style_family(StyleFamily(
    "johnson", _johnson, "a fast_neural_style TransformerNet checkpoint", neural=True, argument="PATH.pth",
    required=True, reads_file=True, example="johnson:PATH.pth", bare=False))
register_style_family(StyleFamily("cartoon", _filter("Cartoon"), "flat colours with ink edges"))
register_style_family(StyleFamily("sketch", _filter("Sketch"), "pencil sketch"))
register_style_family(StyleFamily("grey", _filter("Greyscale"), "black and white", aliases=("gray", "greyscale")))
register_style_family(StyleFamily("none", _filter("NoStyle"), "leave the class as it is"))


__all__ = ["STYLE_FAMILIES", "StyleFamily", "canonical_family", "register_style_family", "resolve_family",
           "style_family"]
