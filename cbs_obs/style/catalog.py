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
from collections import OrderedDict
from pathlib import Path

from .. import paths
from ..errors import SettingsError, UnknownNameError
from . import STYLE_FAMILIES, canonical_family, resolve_family
from .base import Style


def style_names() -> list[str]:
    """Every bare name a user can give, for listings and error messages."""
    families = STYLE_FAMILIES.values()
    return [n for f in families for n in f.names] + [f.name for f in families if not f.neural and not f.names]


def examples() -> list[str]:
    return [f.example for f in STYLE_FAMILIES.values() if f.example]


UPLOAD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")
UPLOAD_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".pth")


def uploads_dir() -> Path:
    return paths.config_dir() / "styles"


def uploads() -> dict[str, Path]:
    folder = uploads_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in UPLOAD_EXTS and UPLOAD_RE.match(p.stem)}


WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def check_upload_name(name) -> str:
    """Upload names are file names on every OS the user may copy the config dir to."""
    if not isinstance(name, str) or not UPLOAD_RE.match(name):
        raise SettingsError(f"bad upload name {name!r}: 1-40 letters, digits, '_' or '-'")
    if name.lower() in WINDOWS_DEVICES:
        raise SettingsError(f"bad upload name {name!r}: it is a Windows device name; pick another")
    return name


def resolve_upload(name: str) -> Path:
    check_upload_name(name)
    found = uploads().get(name)
    if found is None:
        raise UnknownNameError("upload", name, list(uploads()), "Upload an image first")
    return found


def is_safe_spec(spec: str) -> bool:
    """True when ``spec`` reads no file outside the uploads folder (what the control API allows)."""
    family, _, arg = spec.strip().partition(":")
    return not _reads_file(canonical_family(family.lower())) or (arg.startswith("@") and bool(UPLOAD_RE.match(arg[1:])))


def _path_arg(family: str, arg: str) -> Path:
    if not arg:
        raise SettingsError(f"{family} needs a file: {family}:PATH or {family}:@UPLOADED-NAME")
    if arg.startswith("@"):
        return resolve_upload(arg[1:])
    return Path(arg).expanduser()


def _reads_file(family: str) -> bool:
    return family in STYLE_FAMILIES and STYLE_FAMILIES[family].reads_file


def create(spec: str, *, max_side: int | None = None) -> Style:
    """Build a style from its spec. ``max_side`` caps the neural styles' processing size."""
    if not isinstance(spec, str) or not spec.strip():
        raise SettingsError("empty style; give a style name such as starry-blue or blur")
    word, _, arg = spec.strip().partition(":")
    found = resolve_family(word.lower(), arg)
    if found is None or (arg and not found[0].argument):
        raise UnknownNameError("style", spec, style_names(), "Or a family with an argument: " + ", ".join(examples()))
    family, arg = found
    if family.reads_file:
        return family.build(_path_arg(family.name, arg), max_side)
    if family.required and not arg:
        raise SettingsError(f"{family.name} needs an argument: {family.name}:{family.argument}")
    return family.build(arg, max_side)


def is_neural(spec: str) -> bool:
    """True for styles run by a network (their memory grows with the picture's area)."""
    word, _, arg = normalise_spec(spec).partition(":")
    found = resolve_family(word, arg)
    return found is not None and found[0].neural


def normalise_spec(spec: str) -> str:
    """One spelling per style: ``IMAGE:@x``, `` image:@x`` and ``image:@x`` are the same entry."""
    if not isinstance(spec, str):
        return spec
    family, sep, arg = spec.strip().partition(":")
    family = canonical_family(family.strip().lower())
    arg = arg.strip()
    if not _reads_file(family) and not arg.startswith("#"):
        arg = arg.lower()
    return f"{family}{sep}{arg}" if arg else family


def _file_stamp(spec: str):
    """What identifies the picture behind an ``@upload`` or path spec now (changes when it is replaced)."""
    family, _, arg = spec.partition(":")
    if not _reads_file(family) or not arg:
        return None
    try:
        path = resolve_upload(arg[1:]) if arg.startswith("@") else Path(arg).expanduser()
        st = path.stat()
    except (OSError, SettingsError, UnknownNameError):
        return "missing"
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)


class StyleLibrary:
    """Every style the process uses, built once per (normalised spec, size cap) and shared: the
    stylizer, the background plate, the budget, the control API, the contact sheet and the bench all
    ask here. Bounded (least recently used styles are let go); styles made from a picture remember
    the file version they were made from, so a re-upload under the same name is picked up."""

    def __init__(self, capacity: int = 48):
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, int | None], tuple[object, Style]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, spec: str, max_side: int | None = None) -> Style:
        key = normalise_spec(spec)
        stamp = _file_stamp(key) if isinstance(key, str) else None
        slot = (key, max_side)
        with self._lock:
            entry = self._entries.get(slot)
            if entry is not None and entry[0] == stamp:
                self._entries.move_to_end(slot)
                return entry[1]
        style = create(key if isinstance(key, str) else spec, max_side=max_side)
        with self._lock:
            self._entries[slot] = (stamp, style)
            self._entries.move_to_end(slot)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return style

    def holds(self, spec: str, max_side: int | None = None) -> bool:
        with self._lock:
            return (normalise_spec(spec), max_side) in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


LIBRARY = StyleLibrary()


class StyleCache:
    """The shared library seen at one size cap (``max_side``: longest side neural styles run at)."""

    def __init__(self, max_side: int | None = None, library: StyleLibrary | None = None):
        self.max_side = max_side
        self.library = library or LIBRARY
        self._asked: set[str] = set()

    def get(self, spec: str) -> Style:
        self._asked.add(normalise_spec(spec))
        return self.library.get(spec, self.max_side)

    def __len__(self) -> int:
        """Distinct styles asked for through this view that the library still holds."""
        return sum(self.library.holds(k, self.max_side) for k in self._asked)
