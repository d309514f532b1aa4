"""The look: which classes get which style, how strongly, and how masks are shaped.

A Look is an immutable value. Whoever changes it (CLI, control API, OBS) builds a new one and
swaps it in whole, so the frame loop reads one consistent snapshot without locks.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .errors import SettingsError, UnknownNameError


def _unit(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} must be a number between 0 and 1, got {value!r}") from None
    if not (0.0 <= v <= 1.0) or math.isnan(v):
        raise SettingsError(f"{name} must be between 0 and 1, got {value!r}")
    return v


@dataclass(frozen=True)
class Assignment:
    cls: str
    style: str
    strength: float = 1.0

    def __post_init__(self):
        if not isinstance(self.cls, str) or not self.cls:
            raise SettingsError("a class name is required, e.g. background=blur")
        if not isinstance(self.style, str) or not self.style:
            raise SettingsError(f"class {self.cls!r} needs a style, e.g. {self.cls}=blur")
        object.__setattr__(self, "strength", _unit("strength", self.strength))

    @classmethod
    def parse(cls, text: str, default_strength: float = 1.0) -> Assignment:
        """``CLASS=STYLE`` or ``CLASS=STYLE@STRENGTH``."""
        name, sep, style = text.partition("=")
        if not sep or not name.strip() or not style.strip():
            raise SettingsError(f"bad assignment {text!r}; write CLASS=STYLE, e.g. background=starry-blue")
        strength = default_strength
        if "@" in style:
            style, _, s = style.rpartition("@")
            strength = s
        return cls(name.strip(), style.strip(), strength)


@dataclass(frozen=True)
class MaskOptions:
    """``feather``: edge softening in output pixels. ``hard``: argmax masks instead of probabilities.

    ``cutoff``: mask values below it count as 0 and above 1-cutoff as 1, so pixels the segmenter
    is sure about stay bit-exact instead of picking up a 1% tint.
    """

    feather: float = 0.0
    hard: bool = False
    cutoff: float = 0.02

    def __post_init__(self):
        try:
            feather = float(self.feather)
        except (TypeError, ValueError):
            raise SettingsError(f"feather must be a number of pixels, got {self.feather!r}") from None
        if not 0.0 <= feather <= 100.0 or math.isnan(feather):
            raise SettingsError(f"feather must be between 0 and 100 pixels, got {self.feather!r}")
        object.__setattr__(self, "feather", feather)
        if not isinstance(self.hard, bool):
            raise SettingsError(f"hard must be true or false, got {self.hard!r}")
        c = _unit("cutoff", self.cutoff)
        if c >= 0.5:
            raise SettingsError(f"cutoff must be below 0.5, got {c}")
        object.__setattr__(self, "cutoff", c)


@dataclass(frozen=True)
class Look:
    assignments: tuple[Assignment, ...] = ()
    mask: MaskOptions = field(default_factory=MaskOptions)
    enabled: bool = True

    def __post_init__(self):
        if not isinstance(self.assignments, tuple) or not all(isinstance(a, Assignment) for a in self.assignments):
            raise SettingsError("assignments must be a list of {cls, style, strength} objects")
        if not isinstance(self.mask, MaskOptions):
            raise SettingsError("mask must be an object with feather, hard and cutoff")
        if not isinstance(self.enabled, bool):
            raise SettingsError(f"enabled must be true or false, got {self.enabled!r}")
        seen = set()
        for a in self.assignments:
            if a.cls in seen:
                raise SettingsError(f"class {a.cls!r} is assigned twice; give each class one style")
            seen.add(a.cls)

    @classmethod
    def from_specs(cls, specs, *, strength: float = 1.0, feather: float = 0.0, hard: bool = False) -> Look:
        return cls(tuple(Assignment.parse(s, strength) for s in specs), MaskOptions(feather=feather, hard=hard))

    def check_classes(self, classes: tuple[str, ...]) -> None:
        """Every assigned name is a class or a group of them (``person`` = face + body), none twice."""
        from .segment.base import group_members, known_names

        owner: dict[str, str] = {}
        for a in self.assignments:
            members = group_members(a.cls, classes) or ((a.cls,) if a.cls in classes else None)
            if members is None:
                raise UnknownNameError("class", a.cls, known_names(classes))
            for m in members:
                if m in owner:
                    raise SettingsError(f"class {m!r} gets a style from both {owner[m]!r} and {a.cls!r}; "
                                        f"style each class once (a group name covers all its classes)")
                owner[m] = a.cls

    def groups(self) -> dict[str, list[Assignment]]:
        """Assignments by style: classes sharing a style are styled once."""
        out: dict[str, list[Assignment]] = {}
        for a in self.assignments:
            if a.style != "none" and a.strength > 0:
                out.setdefault(a.style, []).append(a)
        return out if self.enabled else {}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Look:
        if not isinstance(data, dict):
            raise SettingsError("a look must be an object with 'assignments', 'mask' and 'enabled'")
        unknown = set(data) - {"assignments", "mask", "enabled"}
        if unknown:
            raise SettingsError(f"unknown look field(s) {sorted(unknown)}; use assignments, mask, enabled")
        items, mask = data.get("assignments", []), data.get("mask", {})
        if not isinstance(items, (list, tuple)) or not all(isinstance(a, dict) for a in items) \
                or not isinstance(mask, dict):
            raise SettingsError("malformed look: assignments must be a list of objects and mask an object")
        try:
            assignments = tuple(Assignment(**a) for a in items)
            mask = MaskOptions(**mask)
        except TypeError as e:
            raise SettingsError(f"malformed look: {e}") from None
        return cls(assignments, mask, data.get("enabled", True))
