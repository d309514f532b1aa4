"""What every control surface (HTTP API, OBS bridge, preview keys) does to the running engine.

One place that applies presets, edits the look and follows OBS scenes, so the web panel, the
OBS script and hotkeys cannot drift apart. Every change is validated in full before it lands.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import replace

from ..errors import SettingsError
from ..look import Assignment, Look, MaskOptions
from .presets import Presets

log = logging.getLogger(__name__)


class Controller:
    def __init__(self, engine, presets: Presets):
        self.engine, self.presets = engine, presets
        self.preset: str | None = None  # the applied preset, None once the look was edited by hand
        self.scene: str | None = None
        self._lock = threading.RLock()  # every read-modify-write of the look holds it
        self.changes = 0
        self._listeners: list = []

    def on_change(self, fn) -> None:
        """``fn()`` runs after every change (look, preset, scenes); it must be quick and thread-safe."""
        self._listeners.append(fn)

    def _changed(self) -> None:
        self.changes += 1
        for fn in list(self._listeners):
            try:
                fn()
            except Exception:  # a listener must not undo a change that already happened
                log.exception("change listener failed")

    @property
    def look(self) -> Look:
        return self.engine.look

    def set_look(self, look: Look, preset: str | None = None) -> Look:
        with self._lock:
            self.engine.set_look(look)  # raises before anything changes
            self.preset = preset
            self._changed()
        return look

    def patch_look(self, patch: dict, check=None) -> Look:
        """Read, edit and swap under one lock, so two edits at once cannot lose one; ``check(look)`` may
        refuse the result before it lands."""
        with self._lock:
            look = self.patched(patch)
            if check is not None:
                check(look)
            return self.set_look(look)

    def patched(self, patch: dict) -> Look:
        """The look after a partial edit, not applied yet.

        ``{"assignments": {cls: {"style", "strength"} | "style" | null}, "mask": {...}, "enabled": bool}``
        """
        if not isinstance(patch, dict):
            raise SettingsError("a look patch must be a JSON object")
        unknown = set(patch) - {"assignments", "mask", "enabled"}
        if unknown:
            raise SettingsError(f"unknown look field(s) {sorted(unknown)}; use assignments, mask, enabled")
        look = self.look
        by_class = {a.cls: a for a in look.assignments}
        changes = patch.get("assignments", {})
        if not isinstance(changes, dict):
            raise SettingsError("assignments must be an object: {class: {style, strength} or null}")
        for cls, value in changes.items():
            if value is None:
                by_class.pop(cls, None)
                continue
            if isinstance(value, str):
                value = {"style": value}
            if not isinstance(value, dict) or set(value) - {"style", "strength"}:
                raise SettingsError(f"assignment for {cls!r} must be {{'style': ..., 'strength': ...}}")
            old = by_class.get(cls)
            style = value.get("style", old.style if old else None)
            strength = value.get("strength", old.strength if old else 1.0)
            if style is None:
                raise SettingsError(f"class {cls!r} has no style yet; give one")
            by_class[cls] = Assignment(cls, style, strength)
        mask = look.mask
        if "mask" in patch:
            if not isinstance(patch["mask"], dict):
                raise SettingsError("mask must be an object with feather, hard, cutoff")
            try:
                mask = MaskOptions(**{**look.mask.__dict__, **patch["mask"]})
            except TypeError as e:
                raise SettingsError(f"bad mask options: {e}") from None
        enabled = patch.get("enabled", look.enabled)
        if not isinstance(enabled, bool):
            raise SettingsError("enabled must be true or false")
        return Look(tuple(by_class.values()), mask, enabled)

    def apply_preset(self, name: str) -> Look:
        return self.set_look(self.presets.get(name), preset=name)

    def cycle(self, step: int) -> str:
        name = self.presets.neighbour(self.preset, step)
        self.apply_preset(name)
        return name

    def toggle(self, on: bool | None = None) -> bool:
        with self._lock:
            look = self.look
            enabled = (not look.enabled) if on is None else on
            self.set_look(replace(look, enabled=enabled), preset=self.preset)
        return enabled

    def save_preset(self, name: str, look: Look | None = None) -> None:
        """Validated like a look being applied (classes and every style), so a preset always applies."""
        from ..style.catalog import create

        with self._lock:
            look = look or self.look
            look.check_classes(self.engine.classes)
            styles = getattr(getattr(self.engine, "stylizer", None), "styles", None)
            for a in look.assignments:
                styles.get(a.style) if styles is not None else create(a.style)
            self.presets.save(name, look)
            self._changed()

    def delete_preset(self, name: str) -> None:
        with self._lock:
            self.presets.delete(name)
            if self.preset == name:
                self.preset = None
            self._changed()

    def set_scenes(self, table: dict[str, str]) -> None:
        with self._lock:
            self.presets.set_scenes(table)
            self._changed()

    def refresh_uploads(self, name: str) -> None:
        """A picture was replaced or added: re-resolve the current look so its styles pick it up now."""
        with self._lock:
            look = self.look
            if any(a.style.endswith(f"@{name}") for a in look.assignments):
                self.engine.set_look(look)  # the style cache sees the new file and rebuilds those styles
                # the background plate keeps styled copies per spec: drop the ones made from the old picture
                plate = getattr(getattr(self.engine, "renderer", None), "plate", None)
                if plate is not None:
                    _forget_in_plate(plate, {a.style for a in look.assignments if not a.style.endswith(f"@{name}")})
            self._changed()

    def on_scene(self, scene: str) -> str | None:
        """A program scene became live: apply its preset, if it has one."""
        self.scene = scene
        self._changed()
        name = self.presets.for_scene(scene)
        if name is not None:
            try:
                self.apply_preset(name)
                log.info("scene %r -> preset %r", scene, name)
            except Exception as e:  # a preset that no longer validates must not break scene switching
                log.warning("scene %r: preset %r could not be applied: %s", scene, name, e)
                return None
        return name


def _forget_in_plate(plate, keep: set[str]) -> None:
    """Drop the plate's styled copies of every spec not in ``keep``, now and once more after the restyle
    that may have been running with the old picture finishes (it would store an old copy again)."""
    before = getattr(plate, "restyles", 0)
    plate.forget_unused(keep)

    def again():
        import time

        deadline = time.monotonic() + 15
        while getattr(plate, "restyles", 0) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        plate.forget_unused(keep)

    threading.Thread(target=again, name="plate-refresh", daemon=True).start()
