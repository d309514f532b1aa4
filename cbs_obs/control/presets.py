"""Named looks (presets) and the OBS scene -> preset table, saved atomically in the config dir."""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from .. import paths
from ..errors import SettingsError, UnknownNameError
from ..look import Look

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,39}$")
MAX_PRESETS = 200


def clean_stale_temps(folder: Path, older_than_s: float = 60.0) -> int:
    """Temp files of saves a crash interrupted (``.presets.json.*.tmp``, and older writers' ``.presets.*.json``)."""
    return paths.clean_stale_temps(folder, (".presets.*.tmp", ".presets.*.json"), older_than_s)


def check_name(name, what: str = "preset") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SettingsError(f"bad {what} name {name!r}: 1-40 letters, digits, spaces, '.', '_' or '-', "
                            "starting with a letter or digit")
    return name


class Presets:
    def __init__(self, path: Path | None = None):
        self.path = path or paths.config_dir() / "presets.json"
        self._lock = threading.Lock()
        self.looks: dict[str, Look] = {}
        self.scenes: dict[str, str] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        if self.path.parent == paths.config_dir():
            paths.private_dir(self.path.parent)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.looks = {check_name(k): Look.from_dict(v) for k, v in data.get("presets", {}).items()}
            self.scenes = {str(k): check_name(v) for k, v in data.get("scenes", {}).items()}
        except (ValueError, SettingsError, AttributeError) as e:
            raise SettingsError(f"{self.path} is damaged ({e}); fix or delete it (your presets are in it)") from e

    def _save(self) -> None:
        """Written atomically: a crash leaves the old file or the new one."""
        data = {"presets": {k: v.to_dict() for k, v in self.looks.items()}, "scenes": self.scenes}
        paths.private_dir(self.path.parent)
        paths.write_atomic(self.path, json.dumps(data, indent=2).encode())

    def names(self) -> list[str]:
        with self._lock:
            return list(self.looks)

    def get(self, name: str) -> Look:
        with self._lock:
            look = self.looks.get(name)
            names = list(self.looks)
        if look is None:
            raise UnknownNameError("preset", name, names, "Save one first")
        return look

    def save(self, name: str, look: Look) -> None:
        check_name(name)
        with self._lock:
            if name not in self.looks and len(self.looks) >= MAX_PRESETS:
                raise SettingsError(f"too many presets ({MAX_PRESETS}); delete some first")
            self.looks[name] = look
            self._save()

    def delete(self, name: str) -> None:
        with self._lock:
            if name not in self.looks:
                raise UnknownNameError("preset", name, list(self.looks))
            del self.looks[name]
            self.scenes = {s: p for s, p in self.scenes.items() if p != name}
            self._save()

    def set_scenes(self, table: dict[str, str]) -> None:
        if not isinstance(table, dict) or len(table) > 500:
            raise SettingsError("scenes must be an object mapping OBS scene names to preset names")
        clean = {}
        for scene, preset in table.items():
            if not isinstance(scene, str) or not 0 < len(scene) <= 200:
                raise SettingsError(f"bad scene name {scene!r}")
            check_name(preset)
            clean[scene] = preset
        with self._lock:
            missing = [p for p in clean.values() if p not in self.looks]
            if missing:
                raise UnknownNameError("preset", missing[0], list(self.looks))
            self.scenes = clean
            self._save()

    def for_scene(self, scene: str) -> str | None:
        with self._lock:
            return self.scenes.get(scene)

    def neighbour(self, current: str | None, step: int) -> str:
        with self._lock:
            names = list(self.looks)
        if not names:
            raise SettingsError("no presets saved yet; save the current look as a preset first")
        if current not in names:
            return names[0] if step > 0 else names[-1]
        return names[(names.index(current) + step) % len(names)]
