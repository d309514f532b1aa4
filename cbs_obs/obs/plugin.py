"""Where the OBS script is, and the note beside it that tells the script where cbs-obs is installed.

OBS runs the script in its own Python, which cannot import cbs-obs; the script starts the
``cbs-obs`` console script instead. ``cbs-obs obs plugin-path`` records that executable in
``cbs_obs_panel.json`` next to the script, so the user never edits a path.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

SCRIPT_NAME = "cbs_obs_panel.py"
LOCATION_NAME = "cbs_obs_panel.json"


def script_path() -> Path:
    """The OBS script shipped in the package (plugin/ in a git checkout)."""
    return Path(str(files("cbs_obs.plugin") / SCRIPT_NAME))


def this_executable() -> Path | None:
    """The cbs-obs console script of the environment running now."""
    name = "cbs-obs.exe" if sys.platform == "win32" else "cbs-obs"
    here = Path(sys.executable).parent
    for candidate in (here / name, here / "Scripts" / name):
        if candidate.is_file():
            return candidate
    found = shutil.which("cbs-obs")
    return Path(found) if found else None


def write_location(script: Path | None = None) -> Path | None:
    """Write the note beside the script (atomically); None when that folder is read-only."""
    script = script or script_path()
    exe = this_executable()
    # the config dir is not recorded: the script and the engine it starts find it the same way cbs-obs
    # does (CBS_OBS_CONFIG, else the platform's), so a test or a one-off CBS_OBS_CONFIG cannot stick
    data = {"cbs_obs": str(exe) if exe else None, "python": sys.executable}
    target = script.parent / LOCATION_NAME
    try:
        fd, tmp = tempfile.mkstemp(dir=script.parent, prefix=".cbs_obs_panel.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, target)
    except OSError:
        return None
    return target
