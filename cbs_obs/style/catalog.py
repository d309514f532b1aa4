"""Style specs (readable strings) -> style objects, with the valid choices in every error.

A spec is ``NAME`` or ``FAMILY:ARG``:
  one of the 26 built-in names (``cbs-obs styles list``), ``blur[:RADIUS]``, ``pixelate[:BLOCK]``,
  ``color[:#RRGGBB|NAME]``, ``image:PATH`` (replace by a picture), ``style-image:PATH`` (any picture
  as a painting style), ``johnson:PATH.pth`` (TransformerNet checkpoint), ``cartoon``, ``sketch``,
  ``grey``, ``none``. ``@NAME`` instead of a path names a file uploaded to the styles folder of the
  config dir; the control API accepts only that form, so no request can make the engine read
  files from elsewhere.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

from .. import paths
from ..errors import SettingsError, UnknownNameError
from . import filters
from .base import Style
from .magenta import BUILTIN_STYLES, ArbitraryStyle, MultiStyle

FILTERS = ("blur", "pixelate", "color", "image", "cartoon", "sketch", "grey", "none")
EXAMPLES = ("blur:25", "pixelate:12", "color:#00ff00", "image:PATH", "style-image:PATH", "johnson:PATH.pth")


def style_names() -> list[str]:
    """Every bare name a user can give, for listings and error messages."""
    return [*BUILTIN_STYLES, *FILTERS]


def _number(family: str, arg: str, cast):
    try:
        return cast(arg)
    except ValueError:
        raise SettingsError(f"{family}:{arg}: {arg!r} is not a number (e.g. {family}:16)") from None


PATH_FAMILIES = ("image", "style-image", "johnson")
UPLOAD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")
UPLOAD_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".pth")


def uploads_dir() -> Path:
    return paths.config_dir() / "styles"


def uploads() -> dict[str, Path]:
    folder = uploads_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in UPLOAD_EXTS and UPLOAD_RE.match(p.stem)}


def resolve_upload(name: str) -> Path:
    if not UPLOAD_RE.match(name):
        raise SettingsError(f"bad upload name {name!r}: 1-40 letters, digits, '_' or '-'")
    found = uploads().get(name)
    if found is None:
        raise UnknownNameError("upload", name, list(uploads()), "Upload an image first")
    return found


def is_safe_spec(spec: str) -> bool:
    """True when ``spec`` reads no file outside the uploads folder (what the control API allows)."""
    family, _, arg = spec.strip().partition(":")
    return family.lower() not in PATH_FAMILIES or (arg.startswith("@") and bool(UPLOAD_RE.match(arg[1:])))


def _path_arg(family: str, arg: str) -> Path:
    if not arg:
        raise SettingsError(f"{family} needs a file: {family}:PATH or {family}:@UPLOADED-NAME")
    if arg.startswith("@"):
        return resolve_upload(arg[1:])
    return Path(arg).expanduser()


def create(spec: str, *, max_side: int | None = None) -> Style:
    """Build a style from its spec. ``max_side`` caps the neural styles' processing size."""
    if not isinstance(spec, str) or not spec.strip():
        raise SettingsError("empty style; give a style name such as starry-blue or blur")
    family, _, arg = spec.strip().partition(":")
    family = family.lower()
    if family in BUILTIN_STYLES and not arg:
        return MultiStyle(BUILTIN_STYLES.index(family), max_side=max_side)
    if family == "magenta":
        if arg.isdigit():
            return MultiStyle(int(arg), max_side=max_side)
        return create(arg, max_side=max_side)
    if family == "blur":
        return filters.Blur(_number("blur", arg, float) if arg else 21)
    if family == "pixelate":
        return filters.Pixelate(_number("pixelate", arg, int) if arg else 16)
    if family in ("color", "colour"):
        return filters.SolidColour(arg or "green")
    if family == "image":
        return filters.Replace(_path_arg("image", arg))
    if family == "style-image":
        return ArbitraryStyle(_path_arg("style-image", arg), max_side=max_side or 640)
    if family == "johnson":
        from .johnson import JohnsonStyle

        return JohnsonStyle(_path_arg("johnson", arg), max_side=max_side)
    simple = {"cartoon": filters.Cartoon, "sketch": filters.Sketch, "grey": filters.Greyscale,
              "gray": filters.Greyscale, "greyscale": filters.Greyscale, "none": filters.NoStyle}
    if family in simple and not arg:
        return simple[family]()
    raise UnknownNameError("style", spec, style_names(), "Or a family with an argument: " + ", ".join(EXAMPLES))


class StyleCache:
    """Resolved styles by spec, so switching back and forth between looks costs nothing."""

    def __init__(self, max_side: int | None = None):
        self.max_side = max_side
        self._styles: dict[str, Style] = {}
        self._lock = threading.Lock()

    def get(self, spec: str) -> Style:
        with self._lock:
            style = self._styles.get(spec)
        if style is None:
            style = create(spec, max_side=self.max_side)
            with self._lock:
                self._styles[spec] = style
        return style
